package readmodel

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/messages-io/messages/fault"
	"github.com/messages-io/messages/message"
	"github.com/messages-io/messages/position"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"golang.org/x/sync/errgroup"
)

// Sentinel errors of the package; callers test them with errors.Is.
var (
	// ErrNotFound means no such message is in the read model.
	ErrNotFound = fault.New("not found", fault.ErrNotFound)
	// ErrUnavailable means the database could not be reached or did not
	// answer in time.
	ErrUnavailable = fault.New("read model unavailable", fault.ErrUnavailable)
)

// Collection names of one generation, after its prefix.
const (
	messagesCollection    = "messages"
	checkpointsCollection = "checkpoints"
	countsCollection      = "counts"
	slotsCollection       = "slots"
)

// Store is one generation of the read model: its messages, counts and
// checkpoints, in collections named g<generation>_<name>.
type Store struct {
	db          *mongo.Database
	generation  int
	messages    *mongo.Collection
	checkpoints *mongo.Collection
	counts      *mongo.Collection
	slots       *mongo.Collection
	// leafCap is the most messages a slot holds: LeafCap but in tests.
	leafCap int
	// bulk is the most writes sent in one command: maxBulk but in tests;
	// insertChunk the most messages inserted in one: insertChunk but in
	// tests.
	bulk, insertChunk int
	// foldOps holds a token for each slot read or write of folding under
	// way (see foldOp).
	foldOps chan struct{}
	// spanMu guards spanVersion, the newest version of the span this
	// store has seen, and spanned, that version.
	spanMu      sync.Mutex
	spanVersion int
	spanned     span
	// notify, when set, is told what each Apply folded (see Notify).
	notify atomic.Pointer[func(position.Folded)]
	// known holds, per partition, what its writer knows of the documents
	// it wrote (see known).
	knownMu sync.Mutex
	known   map[int]*known
}

// Notify makes every later Apply tell fn what it folded, once the
// checkpoint is written; nil stops it. fn must not block: a reducer waits
// for it.
func (s *Store) Notify(fn func(position.Folded)) {
	if fn == nil {
		s.notify.Store(nil)
		return
	}
	s.notify.Store(&fn)
}

// Open returns the active generation of the read model in db, creating the
// first one in an empty database.
func Open(ctx context.Context, db *mongo.Database) (*Store, error) {
	gens, err := OpenGenerations(ctx, db)
	if err != nil {
		return nil, err
	}
	gen, err := gens.Active(ctx)
	if err != nil {
		return nil, err
	}
	return gens.Store(ctx, gen)
}

// openStore returns generation gen in db. Every read and write of a
// generation is by _id, so it needs no index of its own.
func openStore(_ context.Context, db *mongo.Database, gen int) (*Store, error) {
	prefix := "g" + strconv.Itoa(gen) + "_"
	s := &Store{
		db:          db,
		generation:  gen,
		messages:    db.Collection(prefix + messagesCollection),
		checkpoints: db.Collection(prefix + checkpointsCollection),
		counts:      db.Collection(prefix + countsCollection),
		slots:       db.Collection(prefix + slotsCollection),
		leafCap:     LeafCap,
		bulk:        maxBulk,
		insertChunk: insertChunk,
		foldOps:     make(chan struct{}, maxFoldOps),
		known:       map[int]*known{},
	}
	return s, nil
}

// Database is the database that holds the read model.
func (s *Store) Database() *mongo.Database { return s.db }

// Generation is the number of the generation the store holds.
func (s *Store) Generation() int { return s.generation }

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.db.Client().Ping(ctx, nil); err != nil {
		return fmt.Errorf("ping: %w", unavailable(err))
	}
	return nil
}

// doc is a message as stored.
type doc struct {
	ID        string    `bson:"_id"`
	UserID    string    `bson:"userId"`
	Text      string    `bson:"text"`
	Tag       string    `bson:"tag"`
	CreatedAt time.Time `bson:"createdAt"`
	Seq       int64     `bson:"seq"`
}

func (d doc) message() message.Message {
	return message.Message{ID: d.ID, UserID: d.UserID, Text: d.Text, Tag: d.Tag, CreatedAt: d.CreatedAt.UTC()}
}

// Change is one folded event: the message it creates and its sequence in the
// log.
type Change struct {
	Message  message.Message
	Sequence uint64
}

// Apply folds the changes of one partition, given in log order: it writes
// the messages, places them in their slots, adds them to the counts, and
// then records through as the partition's checkpoint. It is idempotent:
// applying the same changes again, in whole or in part, after a failure at
// any point, leaves the model as applying them once. It first reads the
// checkpoint, to tell whether what it knows of the partition's documents
// from its last Apply still holds (see known).
func (s *Store) Apply(ctx context.Context, partition int, changes []Change, through uint64) error {
	k := s.knownOf(partition)
	stored, err := k.check(ctx, s, partition)
	if err != nil {
		return err
	}
	fresh, err := s.apply(ctx, k, partition, changes, through)
	if err != nil {
		k.forget()
		return err
	}
	k.wrote(max(stored, through))
	if fn := s.notify.Load(); fn != nil {
		(*fn)(s.folded(partition, changes, fresh, through))
	}
	return nil
}

// apply writes what Apply does and returns the changes whose event stored
// their message.
func (s *Store) apply(ctx context.Context, k *known, partition int, changes []Change, through uint64) ([]Change, error) {
	var fresh []Change
	if len(changes) > 0 {
		var new bool
		var err error
		fresh, new, err = s.insert(ctx, changes)
		if err != nil {
			return nil, err
		}
		if err := s.widenSpan(ctx, partition, fresh); err != nil {
			return nil, err
		}
		if err := s.addSlots(ctx, k, partition, fresh, new); err != nil {
			return nil, err
		}
		if err := s.addCounts(ctx, k, partition, fresh); err != nil {
			return nil, err
		}
	}
	if err := s.SetCheckpoint(ctx, partition, through); err != nil {
		return nil, err
	}
	return fresh, nil
}

// Concerns reports whether f tells of this generation.
func (s *Store) Concerns(f position.Folded) bool {
	return f.Database == s.db.Name() && f.Generation == s.generation
}

// folded says what an Apply of changes through sequence through did, fresh
// being the changes whose event stored its message. Changes are a run of
// the partition's events in log order, so every event from the first
// change on that created a message and is not among them stored none.
func (s *Store) folded(partition int, changes, fresh []Change, through uint64) position.Folded {
	f := position.Folded{Database: s.db.Name(), Generation: s.generation, Partition: partition,
		From: through + 1, Through: through}
	if len(changes) > 0 {
		f.From = changes[0].Sequence
	}
	if len(fresh) > 0 {
		f.Stored = make([]uint64, len(fresh))
		for i, c := range fresh {
			f.Stored[i] = c.Sequence
		}
		slices.Sort(f.Stored)
	}
	return f
}

// insert writes the messages of changes and returns the changes whose
// message was stored by that very event: newly now, or by an earlier attempt
// of the same event. A message already stored by another event of the same
// id is not returned, so it is counted once; nor is a second event of one id
// within changes. It also says whether every message returned is new: not
// stored before this attempt.
//
// A batch none of whose messages is stored costs one round trip per
// insertChunk messages. A batch
// delivered again costs about what its first delivery did: the insert names
// the messages stored before, and the slots, read as when placing the
// messages, say which event stored each of them; only a message stored but
// not yet placed when the earlier attempt died is looked up by its id.
func (s *Store) insert(ctx context.Context, changes []Change) (fresh []Change, new bool, err error) {
	seen := make(map[string]bool, len(changes))
	firsts := make([]Change, 0, len(changes))
	for _, c := range changes {
		if !seen[c.Message.ID] {
			seen[c.Message.ID] = true
			firsts = append(firsts, c)
		}
	}
	// Unordered, each insert stores every message not stored yet and names
	// each one that is.
	var present []int
	for lo := 0; lo < len(firsts); lo += s.insertChunk {
		chunk := firsts[lo:min(lo+s.insertChunk, len(firsts))]
		_, err = s.messages.InsertMany(ctx, docsOf(chunk), options.InsertMany().SetOrdered(false))
		if err == nil {
			continue
		}
		in, err := duplicates(err, len(chunk))
		if err != nil {
			return nil, false, fmt.Errorf("insert messages: %w", err)
		}
		for _, i := range in {
			present = append(present, lo+i)
		}
	}
	if len(present) == 0 {
		return firsts, true, nil
	}
	var stored []Change
	for _, i := range present {
		stored = append(stored, firsts[i])
	}
	storedBy, err := s.storedBy(ctx, stored)
	if err != nil {
		return nil, false, err
	}
	fresh = firsts[:0:0]
	for _, c := range firsts {
		if seq, ok := storedBy[c.Message.ID]; !ok || seq == int64(c.Sequence) {
			fresh = append(fresh, c)
		}
	}
	return fresh, false, nil
}

// insertChunk is the most messages one insert carries. A store converts
// the documents of a command all at once, so the messages of a large batch
// go in several inserts, one after another, rather than be held whole in
// the store's memory; an insert of a few thousand costs about what its
// documents cost.
const insertChunk = 4000

// storedBy returns the sequence of the event that stored each message of
// changes that is stored. The slots of the messages' tags tell it for the
// messages placed; the others are looked up by id.
func (s *Store) storedBy(ctx context.Context, changes []Change) (map[string]int64, error) {
	byTag := map[string][]string{}
	for _, c := range changes {
		byTag[c.Message.Tag] = append(byTag[c.Message.Tag], c.Message.ID)
	}
	out := map[string]int64{}
	for tag, ids := range byTag {
		if err := s.placed(ctx, tag, "", ids, out); err != nil {
			return nil, err
		}
	}
	// Messages stored but not yet placed when an attempt died are looked
	// up by id, several at once.
	var unplaced []string
	for _, c := range changes {
		if _, ok := out[c.Message.ID]; !ok {
			unplaced = append(unplaced, c.Message.ID)
		}
	}
	seqs := make([]int64, len(unplaced))
	err := atOnce(ctx, len(unplaced), func(ctx context.Context, i int) error {
		seq, err := s.SequenceOf(ctx, unplaced[i])
		switch {
		case err == nil:
			seqs[i] = int64(seq)
		case errors.Is(err, ErrNotFound):
			seqs[i] = -1
		default:
			return err
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	for i, id := range unplaced {
		if seqs[i] >= 0 {
			out[id] = seqs[i]
		}
	}
	return out, nil
}

// maxReads bounds the reads of one call that run at once.
const maxReads = 8

// atOnce calls fn for 0 ≤ i < n, up to maxReads at a time, and returns the
// first error; the others are then cancelled through ctx.
func atOnce(ctx context.Context, n int, fn func(ctx context.Context, i int) error) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(maxReads)
	for i := range n {
		g.Go(func() error { return fn(gctx, i) })
	}
	return g.Wait()
}

func docsOf(changes []Change) []any {
	docs := make([]any, len(changes))
	for i, c := range changes {
		docs[i] = docOf(c)
	}
	return docs
}

// duplicates returns the indexes, among n writes, of those that failed
// because their _id is taken; any other failure is an error.
func duplicates(err error, n int) ([]int, error) {
	var bwe mongo.BulkWriteException
	if !errors.As(err, &bwe) || len(bwe.WriteErrors) == 0 || bwe.WriteConcernError != nil {
		return nil, unavailable(err)
	}
	out := make([]int, 0, len(bwe.WriteErrors))
	for _, we := range bwe.WriteErrors {
		if !mongo.IsDuplicateKeyError(we) || we.Index < 0 || we.Index >= n {
			return nil, unavailable(err)
		}
		out = append(out, we.Index)
	}
	return out, nil
}

func docOf(c Change) doc {
	m := c.Message
	return doc{ID: m.ID, UserID: m.UserID, Text: m.Text, Tag: m.Tag, CreatedAt: m.CreatedAt, Seq: int64(c.Sequence)}
}

func checkpointID(partition int) string { return "p" + strconv.Itoa(partition) }

// SetCheckpoint records that every event of partition up to seq is folded.
// A checkpoint never moves back.
func (s *Store) SetCheckpoint(ctx context.Context, partition int, seq uint64) error {
	_, err := s.checkpoints.UpdateOne(ctx,
		bson.M{"_id": checkpointID(partition)},
		bson.M{"$max": bson.M{"seq": int64(seq)}, "$set": bson.M{"updatedAt": time.Now().UTC()}},
		options.UpdateOne().SetUpsert(true))
	if err != nil {
		return fmt.Errorf("checkpoint partition %d: %w", partition, unavailable(err))
	}
	return nil
}

// Checkpoint returns the sequence of the last event applied to partition, 0
// when none was.
func (s *Store) Checkpoint(ctx context.Context, partition int) (uint64, error) {
	var cp struct {
		Seq int64 `bson:"seq"`
	}
	err := s.checkpoints.FindOne(ctx, bson.M{"_id": checkpointID(partition)}).Decode(&cp)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("checkpoint partition %d: %w", partition, unavailable(err))
	}
	return uint64(cp.Seq), nil
}

// Get returns the message with id.
func (s *Store) Get(ctx context.Context, id string) (message.Message, error) {
	var d doc
	err := s.messages.FindOne(ctx, bson.M{"_id": id}).Decode(&d)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return message.Message{}, fmt.Errorf("message %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return message.Message{}, fmt.Errorf("message %s: %w", id, unavailable(err))
	}
	return d.message(), nil
}

func unavailable(err error) error {
	if errors.Is(err, context.Canceled) {
		return err
	}
	return fmt.Errorf("%w: %w", ErrUnavailable, err)
}

// Checkpoints returns the checkpoint of every partition that has one.
func (s *Store) Checkpoints(ctx context.Context) (map[int]uint64, error) {
	cur, err := s.checkpoints.Find(ctx, bson.M{})
	if err != nil {
		return nil, fmt.Errorf("checkpoints: %w", unavailable(err))
	}
	var docs []struct {
		ID  string `bson:"_id"`
		Seq int64  `bson:"seq"`
	}
	if err := cur.All(ctx, &docs); err != nil {
		return nil, fmt.Errorf("checkpoints: %w", unavailable(err))
	}
	out := make(map[int]uint64, len(docs))
	for _, d := range docs {
		p, err := strconv.Atoi(d.ID[1:])
		if err != nil {
			continue
		}
		out[p] = uint64(d.Seq)
	}
	return out, nil
}

// EachMessage calls fn for every message, in id order, with the sequence of
// the event that stored it, streaming.
func (s *Store) EachMessage(ctx context.Context, fn func(m message.Message, seq uint64) error) error {
	cur, err := s.messages.Find(ctx, bson.M{}, options.Find().SetSort(bson.M{"_id": 1}))
	if err != nil {
		return fmt.Errorf("messages: %w", unavailable(err))
	}
	defer cur.Close(ctx)
	for cur.Next(ctx) {
		var d doc
		if err := cur.Decode(&d); err != nil {
			return fmt.Errorf("messages: %w", err)
		}
		if err := fn(d.message(), uint64(d.Seq)); err != nil {
			return err
		}
	}
	if err := cur.Err(); err != nil {
		return fmt.Errorf("messages: %w", unavailable(err))
	}
	return nil
}

// DayCount is the stored count of one day: under one tag, or under all tags
// (Tag empty) summed over partitions.
type DayCount struct {
	Tag string
	Day time.Time
	N   int64
}

// DayCounts returns every stored day count.
func (s *Store) DayCounts(ctx context.Context) ([]DayCount, error) {
	cur, err := s.counts.Find(ctx, bson.M{"k": bson.M{"$exists": true}})
	if err != nil {
		return nil, fmt.Errorf("counts: %w", unavailable(err))
	}
	defer cur.Close(ctx)
	sums := map[DayCount]int64{}
	for cur.Next(ctx) {
		var doc countDoc
		if err := cur.Decode(&doc); err != nil {
			return nil, fmt.Errorf("counts: %w", err)
		}
		key := doc.Key
		if key == allTags {
			key = ""
		}
		doc.eachDay(func(day time.Time, n int64) { sums[DayCount{Tag: key, Day: day}] += n })
	}
	if err := cur.Err(); err != nil {
		return nil, fmt.Errorf("counts: %w", unavailable(err))
	}
	out := make([]DayCount, 0, len(sums))
	for k, n := range sums {
		k.N = n
		out = append(out, k)
	}
	return out, nil
}
