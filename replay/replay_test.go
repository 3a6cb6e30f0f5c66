package replay_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/messages-io/messages/eventstore"
	"github.com/messages-io/messages/internal/testkit"
	"github.com/messages-io/messages/message"
	"github.com/messages-io/messages/readmodel"
	"github.com/messages-io/messages/reducers"
	"github.com/messages-io/messages/replay"
	"github.com/oklog/ulid/v2"
	"github.com/prometheus/client_golang/prometheus"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
)

type stack struct {
	events *eventstore.Store
	db     *mongo.Database
	gens   *readmodel.Generations
	live   *readmodel.Live
	posted atomic.Int64
}

const partitions = 3

// start runs the log, the read model and live reducers that follow the
// active generation, as the service does.
func start(t *testing.T) *stack {
	t.Helper()
	ctx := t.Context()
	_, js := testkit.JetStream(t, testkit.NATS(t))
	events, err := eventstore.Open(ctx, js, eventstore.Config{Stream: "EV", Partitions: partitions})
	if err != nil {
		t.Fatal(err)
	}
	db := testkit.Database(t)
	gens, err := readmodel.OpenGenerations(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	live, err := readmodel.NewLive(ctx, gens, testkit.Logger())
	if err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); _ = live.Follow(rctx, 20*time.Millisecond) }()
	metrics := reducers.NewMetrics(prometheus.NewRegistry())
	for p := range partitions {
		src, err := events.Consumer(ctx, p, eventstore.ConsumerConfig{Name: "live", FetchWait: 300 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		r, err := reducers.New(src, func() reducers.Sink { return live.Current() }, testkit.Logger(), metrics, reducers.Config{BatchSize: 64})
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() { defer wg.Done(); _ = r.Run(rctx) }()
	}
	t.Cleanup(func() { cancel(); wg.Wait() })
	return &stack{events: events, db: db, gens: gens, live: live}
}

func (s *stack) post(t *testing.T, i int) {
	t.Helper()
	if err := s.append(t.Context(), i); err != nil {
		t.Fatal(err)
	}
}

// append stores message i of the test's sequence. It calls no testing.T
// method, so that goroutines other than the test's may use it.
func (s *stack) append(ctx context.Context, i int) error {
	at := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(i) * 37 * time.Minute)
	m := message.Message{ID: ulid.MustNew(ulid.Timestamp(at), ulid.DefaultEntropy()).String(), UserID: "u",
		Text: fmt.Sprint("m", i), Tag: fmt.Sprint("tag", i%5), CreatedAt: at}
	ev, err := message.CreatedEvent(m, "")
	if err != nil {
		return err
	}
	if _, err := s.events.Append(ctx, eventstore.Append{Event: ev, PartitionKey: m.Tag}); err != nil {
		return fmt.Errorf("append message %d: %w", i, err)
	}
	s.posted.Add(1)
	return nil
}

// settled waits until the active generation holds every posted message with
// its counts.
func (s *stack) settled(t *testing.T) *readmodel.Store {
	t.Helper()
	ctx := t.Context()
	want := s.posted.Load()
	testkit.Eventually(t, 30*time.Second, 25*time.Millisecond, func() error {
		last, _ := s.events.LastSequence(ctx)
		cps, err := s.live.Current().Checkpoints(ctx)
		if err != nil {
			return err
		}
		for p := range partitions {
			if cps[p] < last && s.hasEventsAfter(t, p, cps[p]) {
				return fmt.Errorf("partition %d at %d of %d", p, cps[p], last)
			}
		}
		if n, _ := s.live.Current().CountByScan(ctx, readmodel.Filter{}); n != want {
			return fmt.Errorf("%d messages, want %d", n, want)
		}
		return nil
	})
	return s.live.Current()
}

func (s *stack) hasEventsAfter(t *testing.T, p int, seq uint64) bool {
	found := false
	_ = s.events.Read(t.Context(), seq+1, func(r eventstore.Record) error {
		if r.Partition == p {
			found = true
			return fmt.Errorf("found")
		}
		return nil
	})
	return found
}

// exact checks every count of gen against the messages themselves.
func exact(t *testing.T, gen *readmodel.Store, total int64) {
	t.Helper()
	ctx := t.Context()
	if n, err := gen.Count(ctx, readmodel.Filter{}); err != nil || n != total {
		t.Errorf("count = %d (%v), want %d", n, err, total)
	}
	day := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	for _, tag := range []string{"", "tag0", "tag3"} {
		for d := range 8 {
			f := readmodel.Filter{Tag: tag, From: readmodel.At(day.AddDate(0, 0, d)), To: readmodel.At(day.AddDate(0, 0, d+1))}
			got, _ := gen.Count(ctx, f)
			want, _ := gen.CountByScan(ctx, f)
			if got != want {
				t.Errorf("count %+v = %d, messages say %d", f, got, want)
			}
		}
	}
}

func TestReplaySwitchesUnderTraffic(t *testing.T) {
	s := start(t)
	for i := range 150 {
		s.post(t, i)
	}
	s.settled(t)

	// Traffic goes on through the whole replay.
	stop := make(chan struct{})
	traffic := make(chan error, 1) // the first failed append, or nil
	ctx := t.Context()
	go func() {
		for i := 150; ; i++ {
			select {
			case <-stop:
				traffic <- nil
				return
			default:
			}
			if err := s.append(ctx, i); err != nil {
				traffic <- err
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	}()
	var phases sync.Map
	res, err := replay.Run(t.Context(), s.events, s.gens, testkit.Logger(), replay.Options{
		BatchSize:     50,
		CatchUpRounds: 5,
		Progress:      func(p replay.Progress) { phases.Store(p.Phase, true) },
	})
	if err != nil {
		close(stop)
		<-traffic
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond) // more traffic after the switch
	close(stop)
	if err := <-traffic; err != nil {
		t.Fatalf("traffic during the replay: %v", err)
	}

	if !res.Switched || res.Generation != 2 || res.Replaced != 1 || res.Events < 150 {
		t.Errorf("result = %+v", res)
	}
	if _, ok := phases.Load("switch"); !ok {
		t.Error("no progress reported for the switch")
	}
	if gen, _ := s.gens.Active(t.Context()); gen != 2 {
		t.Fatalf("active generation %d, want 2", gen)
	}
	gen := s.settled(t)
	if gen.Generation() != 2 {
		t.Fatalf("live model on generation %d", gen.Generation())
	}
	exact(t, gen, s.posted.Load())
	t.Logf("replayed %d events, %d posted in all", res.Events, s.posted.Load())
}

func TestReplayDryRunDoesNotSwitch(t *testing.T) {
	s := start(t)
	for i := range 30 {
		s.post(t, i)
	}
	s.settled(t)
	res, err := replay.Run(t.Context(), s.events, s.gens, testkit.Logger(), replay.Options{DryRun: true,
		Verify: func(ctx context.Context, g *readmodel.Store) error {
			exact(t, g, 30)
			return nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Switched {
		t.Error("a dry run switched")
	}
	if gen, _ := s.gens.Active(t.Context()); gen != 1 {
		t.Errorf("active generation %d after a dry run, want 1", gen)
	}
}

// A partial replay from a sequence restores what went missing after it and
// recounts everything.
func TestPartialReplayFromASequence(t *testing.T) {
	s := start(t)
	for i := range 60 {
		s.post(t, i)
	}
	old := s.settled(t)
	ctx := t.Context()
	// Lose the messages of two late events, and corrupt a count.
	msgs := s.db.Collection("g1_messages")
	if _, err := msgs.DeleteMany(ctx, bson.M{"seq": bson.M{"$in": bson.A{int64(50), int64(55)}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.db.Collection("g1_counts").UpdateMany(ctx, bson.M{}, bson.M{"$inc": bson.M{"01-01": int64(7), "06-15": int64(7)}}); err != nil {
		t.Fatal(err)
	}
	if n, _ := old.CountByScan(ctx, readmodel.Filter{}); n != 58 {
		t.Fatalf("corrupted model has %d messages", n)
	}
	res, err := replay.Run(ctx, s.events, s.gens, testkit.Logger(), replay.Options{From: 40, DropOld: true, DropGrace: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if res.CopiedFirst != 39 || !res.DroppedOld {
		t.Errorf("result = %+v, want 39 copied and the old generation dropped", res)
	}
	gen := s.settled(t)
	exact(t, gen, 60)
	if infos, _ := s.gens.List(ctx); len(infos) != 1 || infos[0].Number != 2 {
		t.Errorf("generations = %+v", infos)
	}
}
