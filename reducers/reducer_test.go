package reducers_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/messages-io/messages/event"
	"github.com/messages-io/messages/eventstore"
	"github.com/messages-io/messages/internal/testkit"
	"github.com/messages-io/messages/message"
	"github.com/messages-io/messages/readmodel"
	"github.com/messages-io/messages/reducers"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/oklog/ulid/v2"
	"github.com/prometheus/client_golang/prometheus"
	"go.mongodb.org/mongo-driver/v2/bson"
)

type fixture struct {
	js     jetstream.JetStream
	events *eventstore.Store
	rm     *readmodel.Store
}

func setup(t *testing.T, partitions int) fixture {
	t.Helper()
	_, js := testkit.JetStream(t, testkit.NATS(t))
	ctx := t.Context()
	events, err := eventstore.Open(ctx, js, eventstore.Config{Stream: "EV", Partitions: partitions})
	if err != nil {
		t.Fatal(err)
	}
	rm, err := readmodel.Open(ctx, testkit.Database(t))
	if err != nil {
		t.Fatal(err)
	}
	return fixture{js: js, events: events, rm: rm}
}

// run starts a reducer for every partition and stops them when the test ends
// or when the returned function is called. Options change the reducers'
// configuration and read model.
func (f fixture) run(t *testing.T, options ...func(*reducers.Config, *reducers.Sink)) (stop func(), rs []*reducers.Reducer) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	metrics := reducers.NewMetrics(prometheus.NewRegistry())
	var wg sync.WaitGroup
	for p := range f.events.Partitions() {
		src, err := f.events.Consumer(ctx, p, eventstore.ConsumerConfig{Name: "t", FetchWait: 500 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		cfg, sink := reducers.Config{BatchSize: 16, RetryMax: 200 * time.Millisecond}, reducers.Sink(f.rm)
		for _, o := range options {
			o(&cfg, &sink)
		}
		r, err := reducers.New(src, func() reducers.Sink { return sink }, testkit.Logger(), metrics, cfg)
		if err != nil {
			t.Fatal(err)
		}
		rs = append(rs, r)
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := r.Run(ctx); err != nil {
				t.Errorf("reducer: %v", err)
			}
		}()
	}
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); wg.Wait() }) }
	t.Cleanup(stop)
	return stop, rs
}

func (f fixture) post(t *testing.T, tag, text string, at time.Time) message.Message {
	t.Helper()
	m := message.Message{ID: ulid.MustNew(ulid.Timestamp(at), ulid.DefaultEntropy()).String(), UserID: "u", Text: text, Tag: tag, CreatedAt: at.UTC().Truncate(time.Millisecond)}
	ev, err := message.CreatedEvent(m, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.events.Append(t.Context(), eventstore.Append{Event: ev, PartitionKey: tag}); err != nil {
		t.Fatal(err)
	}
	return m
}

func (f fixture) waitCount(t *testing.T, want int64) {
	t.Helper()
	testkit.Eventually(t, 20*time.Second, 20*time.Millisecond, func() error {
		n, err := f.rm.Count(t.Context(), readmodel.Filter{})
		if err != nil {
			return err
		}
		if n != want {
			return fmt.Errorf("count %d, want %d", n, want)
		}
		return nil
	})
}

func TestReducersFoldEveryPartition(t *testing.T) {
	f := setup(t, 3)
	f.run(t)
	var posted []message.Message
	start := time.Now()
	for i := range 60 {
		posted = append(posted, f.post(t, fmt.Sprint("tag", i%7), fmt.Sprint("m", i), start.Add(time.Duration(i)*time.Millisecond)))
	}
	f.waitCount(t, 60)
	for _, m := range posted {
		got, err := f.rm.Get(t.Context(), m.ID)
		if err != nil || got != m {
			t.Fatalf("read model has %+v (%v), want %+v", got, err, m)
		}
	}
	// Each partition's checkpoint is the sequence of its last event.
	ctx := t.Context()
	for p := range 3 {
		var last uint64
		err := f.events.Read(ctx, 1, func(r eventstore.Record) error {
			if r.Partition == p {
				last = r.Sequence
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		testkit.Eventually(t, 5*time.Second, 20*time.Millisecond, func() error {
			if cp, err := f.rm.Checkpoint(ctx, p); err != nil || cp != last {
				return fmt.Errorf("partition %d checkpoint %d (%v), want %d", p, cp, err, last)
			}
			return nil
		})
	}
}

// The same event in the log twice (a retried append outside the duplicate
// window) and the same events delivered again after a lost checkpoint leave
// one message each and unchanged counts.
func TestRedeliveredEventsLeaveOneMessage(t *testing.T) {
	f := setup(t, 1)
	at := time.Date(2026, 2, 3, 4, 5, 6, 0, time.UTC)
	m := message.Message{ID: ulid.MustNew(ulid.Timestamp(at), ulid.DefaultEntropy()).String(), UserID: "u", Text: "twice", Tag: "go", CreatedAt: at}
	ev, _ := message.CreatedEvent(m, "")
	ctx := t.Context()
	for _, id := range []string{"a", "b"} {
		if _, err := f.events.Append(ctx, eventstore.Append{Event: ev, PartitionKey: "go", MsgID: id}); err != nil {
			t.Fatal(err)
		}
	}
	f.post(t, "go", "other", at.Add(48*time.Hour))
	stop, _ := f.run(t)
	testkit.Eventually(t, 20*time.Second, 20*time.Millisecond, func() error {
		if cp, _ := f.rm.Checkpoint(ctx, 0); cp != 3 {
			return fmt.Errorf("checkpoint %d, want 3", cp)
		}
		return nil
	})
	stop()
	wantDay := readmodel.Filter{Tag: "go", From: readmodel.At(at.Truncate(24 * time.Hour)), To: readmodel.At(at.Truncate(24 * time.Hour).Add(24 * time.Hour))}
	if n, _ := f.rm.Count(ctx, readmodel.Filter{}); n != 2 {
		t.Fatalf("count = %d, want 2", n)
	}
	if n, _ := f.rm.Count(ctx, wantDay); n != 1 {
		t.Fatalf("count of the day = %d, want 1", n)
	}

	// Lose the checkpoint and the consumer's position: everything is
	// delivered and folded again.
	if _, err := f.rm.Database().Collection(fmt.Sprintf("g%d_checkpoints", f.rm.Generation())).DeleteMany(ctx, bson.M{}); err != nil {
		t.Fatal(err)
	}
	stream, _ := f.js.Stream(ctx, "EV")
	if err := stream.DeleteConsumer(ctx, "t-p0"); err != nil {
		t.Fatal(err)
	}
	f.run(t)
	testkit.Eventually(t, 20*time.Second, 20*time.Millisecond, func() error {
		if cp, _ := f.rm.Checkpoint(ctx, 0); cp != 3 {
			return fmt.Errorf("checkpoint %d, want 3", cp)
		}
		return nil
	})
	if n, _ := f.rm.Count(ctx, readmodel.Filter{}); n != 2 {
		t.Errorf("count after refolding = %d, want 2", n)
	}
	if n, _ := f.rm.Count(ctx, wantDay); n != 1 {
		t.Errorf("count of the day after refolding = %d, want 1", n)
	}
}

// An event that cannot be folded halts its partition: the events before it
// are applied, it is never acknowledged, and nothing after it is applied.
func TestPoisonEventHaltsItsPartition(t *testing.T) {
	f := setup(t, 1)
	ctx := t.Context()
	good := f.post(t, "go", "before", time.Now())
	if _, err := f.js.Publish(ctx, "messages.events.0.message.created", []byte(`{"id":"not json`)); err != nil {
		t.Fatal(err)
	}
	after := f.post(t, "go", "after", time.Now())
	_, rs := f.run(t)
	testkit.Eventually(t, 20*time.Second, 20*time.Millisecond, func() error {
		if rs[0].Halted() == nil {
			return errors.New("partition not halted")
		}
		return nil
	})
	if !errors.Is(rs[0].Halted(), event.ErrMalformed) {
		t.Errorf("halted because %v, want a malformed event", rs[0].Halted())
	}
	if _, err := f.rm.Get(ctx, good.ID); err != nil {
		t.Errorf("the event before the poison was not applied: %v", err)
	}
	if _, err := f.rm.Get(ctx, after.ID); !errors.Is(err, readmodel.ErrNotFound) {
		t.Errorf("the event after the poison: %v, want not applied", err)
	}
	if cp, _ := f.rm.Checkpoint(ctx, 0); cp != 1 {
		t.Errorf("checkpoint = %d, want 1", cp)
	}
	stream, _ := f.js.Stream(ctx, "EV")
	cons, err := stream.Consumer(ctx, "t-p0")
	if err != nil {
		t.Fatal(err)
	}
	if info, _ := cons.Info(ctx); info.AckFloor.Stream != 1 {
		t.Errorf("ack floor = %d, want 1: the poison must stay unacknowledged", info.AckFloor.Stream)
	}
}

func TestProjectRejectsWhatItCannotFold(t *testing.T) {
	at := time.Now()
	m := message.Message{ID: ulid.MustNew(ulid.Timestamp(at), ulid.DefaultEntropy()).String(), UserID: "u", Text: "x", Tag: "go", CreatedAt: at}
	ev, _ := message.CreatedEvent(m, "")
	for name, rec := range map[string]eventstore.Record{
		"unknown type":     {Event: event.Event{ID: ev.ID, Type: "message.liked", Version: 1, Data: ev.Data}},
		"future version":   {Event: event.Event{ID: ev.ID, Type: ev.Type, Version: 9, Data: ev.Data}},
		"data not an obj":  {Event: event.Event{ID: ev.ID, Type: ev.Type, Version: 1, Data: []byte(`"x"`)}},
		"undecodable body": {Err: event.ErrMalformed},
	} {
		if _, err := reducers.Project(rec); !errors.Is(err, event.ErrMalformed) {
			t.Errorf("%s: err = %v, want ErrMalformed", name, err)
		}
	}
	c, err := reducers.Project(eventstore.Record{Event: ev, Sequence: 7})
	if err != nil || c.Sequence != 7 || c.Message.ID != m.ID || c.Message.Text != "x" {
		t.Errorf("Project = %+v, %v", c, err)
	}
}

// slowSink is a read model whose writes take a while, and which records how
// many were in progress at once.
type slowSink struct {
	reducers.Sink
	mu         sync.Mutex
	now, most  int
	partitions map[int]bool
}

func (s *slowSink) Apply(ctx context.Context, partition int, changes []readmodel.Change, through uint64) error {
	s.mu.Lock()
	s.now++
	s.most = max(s.most, s.now)
	s.partitions[partition] = true
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.now--
		s.mu.Unlock()
	}()
	time.Sleep(5 * time.Millisecond)
	return s.Sink.Apply(ctx, partition, changes, through)
}

// Reducers sharing a queue of one write slot write one batch at a time,
// whatever their partitions, and fold everything.
func TestWritesQueueAcrossPartitions(t *testing.T) {
	f := setup(t, 4)
	slow := &slowSink{Sink: f.rm, partitions: map[int]bool{}}
	writes := make(chan struct{}, 1)
	f.run(t, func(c *reducers.Config, s *reducers.Sink) {
		c.Writes, *s = writes, slow
	})
	at := time.Date(2026, 4, 5, 6, 7, 8, 0, time.UTC)
	for i := range 60 {
		f.post(t, fmt.Sprintf("tag%d", i%12), fmt.Sprint(i), at.Add(time.Duration(i)*time.Second))
	}
	f.waitCount(t, 60)
	slow.mu.Lock()
	defer slow.mu.Unlock()
	if slow.most != 1 || len(slow.partitions) < 2 {
		t.Errorf("%d batches written at once at most, over partitions %v; want 1, over several", slow.most, slow.partitions)
	}
}
