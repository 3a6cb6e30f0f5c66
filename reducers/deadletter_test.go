package reducers_test

import (
	"context"
	"encoding/json"
	"errors"
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
	"github.com/oklog/ulid/v2"
	"github.com/prometheus/client_golang/prometheus"
)

// runWith starts one reducer for partition 0 with cfg and returns its
// registry; it stops when the test ends.
func (f fixture) runWith(t *testing.T, cfg reducers.Config) *prometheus.Registry {
	t.Helper()
	reg := prometheus.NewRegistry()
	ctx, cancel := context.WithCancel(context.Background())
	// Nothing here waits for an acknowledgement to time out: an event
	// released and not delivered again at once shows as a failure, not as a
	// delay of AckWait.
	src, err := f.events.Consumer(ctx, 0, eventstore.ConsumerConfig{Name: "t", FetchWait: 300 * time.Millisecond, AckWait: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	r, err := reducers.New(src, func() reducers.Sink { return f.rm }, testkit.Logger(), reducers.NewMetrics(reg), cfg)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); _ = r.Run(ctx) }()
	t.Cleanup(func() { cancel(); wg.Wait() })
	return reg
}

func counter(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	total := 0.0
	for _, mf := range mfs {
		if mf.GetName() == name {
			for _, m := range mf.GetMetric() {
				total += m.GetCounter().GetValue()
			}
		}
	}
	return total
}

// An event that cannot be folded is tried a bounded number of times, parked
// with its reason, and its partition moves on; retried once it can be
// folded, it is folded.
func TestPoisonEventIsParkedAndRetried(t *testing.T) {
	f := setup(t, 1)
	ctx := t.Context()
	var cured atomic.Bool
	var tries atomic.Int64
	project := func(rec eventstore.Record) (readmodel.Change, error) {
		c, err := reducers.Project(rec)
		if err == nil && c.Message.Text == "poison" && !cured.Load() {
			tries.Add(1)
			return c, errors.New("the read model rejects it")
		}
		return c, err
	}
	before := f.post(t, "go", "before", time.Now())
	poison := f.post(t, "go", "poison", time.Now())
	after := f.post(t, "go", "after", time.Now())
	reg := f.runWith(t, reducers.Config{BatchSize: 8, RetryMin: 10 * time.Millisecond, RetryMax: 50 * time.Millisecond,
		MaxAttempts: 3, Project: project, Park: f.events.Park})

	// The bound is generous for a machine busy with the rest of the suite.
	testkit.Eventually(t, 60*time.Second, 20*time.Millisecond, func() error {
		if _, err := f.rm.Get(ctx, after.ID); err != nil {
			return fmt.Errorf("the event after the poison: %v", err)
		}
		return nil
	})
	if _, err := f.rm.Get(ctx, before.ID); err != nil {
		t.Errorf("the event before the poison: %v", err)
	}
	if _, err := f.rm.Get(ctx, poison.ID); !errors.Is(err, readmodel.ErrNotFound) {
		t.Errorf("the poison was folded: %v", err)
	}
	if n := tries.Load(); n != 3 {
		t.Errorf("tried the poison %d times, want 3", n)
	}
	dls, err := f.events.DeadLetters(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(dls) != 1 || dls[0].OriginalSequence != 2 || dls[0].Partition != 0 ||
		dls[0].Error != "the read model rejects it" || dls[0].Reason == "" {
		t.Fatalf("dead letters = %+v, want the event at sequence 2 with its reason", dls)
	}
	if got := counter(t, reg, "messages_reducer_dead_letters_total"); got != 1 {
		t.Errorf("dead letters metric = %v, want 1", got)
	}

	// Once it can be folded, a retry brings it back.
	cured.Store(true)
	seq, err := f.events.Retry(ctx, dls[0].Sequence)
	if err != nil {
		t.Fatal(err)
	}
	if seq != 4 {
		t.Errorf("retried event stored at %d, want 4", seq)
	}
	testkit.Eventually(t, 20*time.Second, 20*time.Millisecond, func() error {
		_, err := f.rm.Get(ctx, poison.ID)
		return err
	})
	if dls, _ := f.events.DeadLetters(ctx); len(dls) != 0 {
		t.Errorf("dead letters after retry = %+v, want none", dls)
	}
	// A batch writes its messages, then its counts, then its checkpoint: the
	// retried message is visible a moment before it is counted.
	testkit.Eventually(t, 20*time.Second, 20*time.Millisecond, func() error {
		if n, err := f.rm.Count(ctx, readmodel.Filter{Tag: "go"}); err != nil || n != 3 {
			return fmt.Errorf("count = %d (%v), want 3", n, err)
		}
		return nil
	})
}

// A log that mixes schema versions folds to the same model as one written in
// the current version.
func TestMixedSchemaVersionsFoldAlike(t *testing.T) {
	f := setup(t, 1)
	ctx := t.Context()
	at := time.Date(2026, 6, 1, 10, 0, 0, 0, time.UTC)
	var want []message.Message
	for i := range 6 {
		m := message.Message{ID: ulid.MustNew(ulid.Timestamp(at.Add(time.Duration(i)*time.Hour)), ulid.DefaultEntropy()).String(),
			UserID: "u", Text: fmt.Sprint("text ", i), Tag: "go", CreatedAt: at.Add(time.Duration(i) * time.Hour)}
		want = append(want, m)
		ev, err := message.CreatedEvent(m, "")
		if err != nil {
			t.Fatal(err)
		}
		if i%2 == 0 { // written by an older dispatcher
			ev.Version = 1
			ev.Data, _ = json.Marshal(map[string]string{"text": m.Text, "tag": m.Tag})
		}
		if _, err := f.events.Append(ctx, eventstore.Append{Event: ev, PartitionKey: "go"}); err != nil {
			t.Fatal(err)
		}
	}
	f.run(t)
	f.waitCount(t, 6)
	for _, m := range want {
		if got, err := f.rm.Get(ctx, m.ID); err != nil || got != m {
			t.Errorf("folded %+v (%v), want %+v", got, err, m)
		}
	}
}
