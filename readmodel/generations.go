package readmodel

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/messages-io/messages/message"
	"github.com/messages-io/messages/position"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// ErrActive is returned when dropping the active generation.
var ErrActive = errors.New("generation is active")

const generationsCollection = "generations"

// GenerationInfo describes one generation.
type GenerationInfo struct {
	Number    int       `bson:"_id" json:"generation"`
	State     string    `bson:"state" json:"state"` // building, active, retired
	CreatedAt time.Time `bson:"createdAt" json:"createdAt"`
	Note      string    `bson:"note,omitempty" json:"note,omitempty"`
}

// Generation states.
const (
	StateBuilding = "building"
	StateActive   = "active"
	StateRetired  = "retired"
)

// Generations manages the generations of the read model in one database.
type Generations struct {
	db   *mongo.Database
	meta *mongo.Collection
}

// activeID is the document naming the active generation.
const activeID = "active"

// OpenGenerations returns the generations in db, making generation 1 active
// in a database that has none.
func OpenGenerations(ctx context.Context, db *mongo.Database) (*Generations, error) {
	g := &Generations{db: db, meta: db.Collection(generationsCollection)}
	err := g.meta.FindOne(ctx, bson.M{"_id": activeID}).Err()
	if errors.Is(err, mongo.ErrNoDocuments) {
		_, err = g.meta.InsertMany(ctx, []any{
			GenerationInfo{Number: 1, State: StateActive, CreatedAt: time.Now().UTC()},
			bson.M{"_id": activeID, "generation": 1, "switchedAt": time.Now().UTC()},
		})
		if mongo.IsDuplicateKeyError(err) {
			err = nil // another process made it first
		}
	}
	if err != nil {
		return nil, fmt.Errorf("generations: %w", unavailable(err))
	}
	return g, nil
}

// ErrNoReadModel is returned for a database that holds no read model.
var ErrNoReadModel = errors.New("no read model")

// OpenExistingGenerations returns the generations in db, as OpenGenerations
// does, but ErrNoReadModel for a database that holds none: a tool that reads
// the read model refuses to start one where there is none.
func OpenExistingGenerations(ctx context.Context, db *mongo.Database) (*Generations, error) {
	names, err := db.ListCollectionNames(ctx, bson.M{"name": generationsCollection})
	if err != nil {
		return nil, fmt.Errorf("generations: %w", unavailable(err))
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("database %s holds %w", db.Name(), ErrNoReadModel)
	}
	return OpenGenerations(ctx, db)
}

// Find returns generation gen, the active one when 0. A gen that is not
// among the generations is an error that names those there are.
func (g *Generations) Find(ctx context.Context, gen int) (*Store, error) {
	if gen == 0 {
		active, err := g.Active(ctx)
		if err != nil {
			return nil, err
		}
		return g.Store(ctx, active)
	}
	all, err := g.List(ctx)
	if err != nil {
		return nil, err
	}
	var have []string
	for _, info := range all {
		if info.Number == gen {
			return g.Store(ctx, gen)
		}
		have = append(have, strconv.Itoa(info.Number))
	}
	return nil, fmt.Errorf("no generation %d in database %s (it has %s)", gen, g.db.Name(), strings.Join(have, ", "))
}

// Active returns the number of the active generation.
func (g *Generations) Active(ctx context.Context) (int, error) {
	var doc struct {
		Generation int `bson:"generation"`
	}
	if err := g.meta.FindOne(ctx, bson.M{"_id": activeID}).Decode(&doc); err != nil {
		return 0, fmt.Errorf("active generation: %w", unavailable(err))
	}
	return doc.Generation, nil
}

// Store returns generation gen, creating its indexes when missing.
func (g *Generations) Store(ctx context.Context, gen int) (*Store, error) {
	return openStore(ctx, g.db, gen)
}

// List returns every generation, oldest first.
func (g *Generations) List(ctx context.Context) ([]GenerationInfo, error) {
	cur, err := g.meta.Find(ctx, bson.M{"_id": bson.M{"$type": "number"}}, options.Find().SetSort(bson.M{"_id": 1}))
	if err != nil {
		return nil, fmt.Errorf("generations: %w", unavailable(err))
	}
	var out []GenerationInfo
	if err := cur.All(ctx, &out); err != nil {
		return nil, fmt.Errorf("generations: %w", unavailable(err))
	}
	return out, nil
}

// Create starts a new generation, numbered after every existing one, in the
// building state.
func (g *Generations) Create(ctx context.Context, note string) (*Store, error) {
	all, err := g.List(ctx)
	if err != nil {
		return nil, err
	}
	next := 1
	for _, info := range all {
		next = max(next, info.Number+1)
	}
	info := GenerationInfo{Number: next, State: StateBuilding, CreatedAt: time.Now().UTC(), Note: note}
	if _, err := g.meta.InsertOne(ctx, info); err != nil {
		return nil, fmt.Errorf("create generation %d: %w", next, unavailable(err))
	}
	return g.Store(ctx, next)
}

// Activate makes gen the active generation, in one write, and retires the
// one it replaces.
func (g *Generations) Activate(ctx context.Context, gen int) error {
	old, err := g.Active(ctx)
	if err != nil {
		return err
	}
	if _, err := g.meta.UpdateOne(ctx, bson.M{"_id": activeID},
		bson.M{"$set": bson.M{"generation": gen, "switchedAt": time.Now().UTC()}}); err != nil {
		return fmt.Errorf("activate generation %d: %w", gen, unavailable(err))
	}
	states := []struct {
		gen   int
		state string
	}{{old, StateRetired}, {gen, StateActive}}
	for _, st := range states {
		if st.gen == gen && st.state == StateRetired {
			continue
		}
		if _, err := g.meta.UpdateOne(ctx, bson.M{"_id": st.gen}, bson.M{"$set": bson.M{"state": st.state}}); err != nil {
			return fmt.Errorf("generation %d state: %w", st.gen, unavailable(err))
		}
	}
	return nil
}

// Drop deletes generation gen, which must not be active.
func (g *Generations) Drop(ctx context.Context, gen int) error {
	active, err := g.Active(ctx)
	if err != nil {
		return err
	}
	if gen == active {
		return fmt.Errorf("drop generation %d: %w", gen, ErrActive)
	}
	s, err := openStore(ctx, g.db, gen)
	if err != nil {
		return err
	}
	for _, c := range []*mongo.Collection{s.messages, s.counts, s.slots, s.checkpoints} {
		if err := c.Drop(ctx); err != nil {
			return fmt.Errorf("drop generation %d: %w", gen, unavailable(err))
		}
	}
	if _, err := g.meta.DeleteOne(ctx, bson.M{"_id": gen}); err != nil {
		return fmt.Errorf("drop generation %d: %w", gen, unavailable(err))
	}
	return nil
}

// Live is the read model as its active generation: it follows a switch to
// another generation within its poll interval, without restart. Each call
// reads one generation whole.
type Live struct {
	gens   *Generations
	log    *slog.Logger
	cur    atomic.Pointer[Store]
	notify atomic.Pointer[func(position.Folded)]
}

// NewLive returns the active generation, followed.
func NewLive(ctx context.Context, gens *Generations, log *slog.Logger) (*Live, error) {
	l := &Live{gens: gens, log: log}
	if err := l.refresh(ctx); err != nil {
		return nil, err
	}
	return l, nil
}

// Current returns the active generation as last seen.
func (l *Live) Current() *Store { return l.cur.Load() }

func (l *Live) refresh(ctx context.Context) error {
	gen, err := l.gens.Active(ctx)
	if err != nil {
		return err
	}
	if cur := l.cur.Load(); cur != nil && cur.generation == gen {
		return nil
	}
	s, err := l.gens.Store(ctx, gen)
	if err != nil {
		return err
	}
	if fn := l.notify.Load(); fn != nil {
		s.Notify(*fn)
	}
	if old := l.cur.Swap(s); old != nil {
		l.log.Info("read model switched generation", "from", old.generation, "to", gen)
	}
	return nil
}

// Notify makes every Apply to the active generation, this one and those
// switched to later, tell fn what it folded (see Store.Notify).
func (l *Live) Notify(fn func(position.Folded)) {
	l.notify.Store(&fn)
	l.Current().Notify(fn)
}

// Concerns reports whether f tells of the active generation.
func (l *Live) Concerns(f position.Folded) bool { return l.Current().Concerns(f) }

// Follow polls for the active generation every interval until ctx ends.
func (l *Live) Follow(ctx context.Context, interval time.Duration) error {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			if err := l.refresh(ctx); err != nil && ctx.Err() == nil {
				l.log.Warn("reading the active generation", "err", err)
			}
		}
	}
}

// Get returns the message with id from the active generation.
func (l *Live) Get(ctx context.Context, id string) (message.Message, error) {
	return l.Current().Get(ctx, id)
}

// List returns one page from the active generation.
func (l *Live) List(ctx context.Context, p Page) ([]message.Message, error) {
	return l.Current().List(ctx, p)
}

// Count counts in the active generation.
func (l *Live) Count(ctx context.Context, f Filter) (int64, error) {
	return l.Current().Count(ctx, f)
}

// Ping checks that the database answers.
func (l *Live) Ping(ctx context.Context) error { return l.Current().Ping(ctx) }
