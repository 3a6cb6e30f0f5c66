package reducers_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/messages-io/messages/eventstore"
	"github.com/messages-io/messages/internal/testkit"
	"github.com/messages-io/messages/readmodel"
	"github.com/messages-io/messages/reducers"
	"github.com/prometheus/client_golang/prometheus"
)

// unpinnedFirst is a read model whose first write of messages lasts until
// JetStream has taken the partition's pin from the reducer, as a write
// slower than the takeover setting on a busy machine does.
type unpinnedFirst struct {
	reducers.Sink
	pinned  func() (string, error)
	slowed  atomic.Bool
	lapsed  atomic.Bool
	timeout time.Duration
}

func (s *unpinnedFirst) Apply(ctx context.Context, partition int, changes []readmodel.Change, through uint64) error {
	if len(changes) > 0 && !s.slowed.Swap(true) {
		for deadline := time.Now().Add(s.timeout); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			if id, err := s.pinned(); err == nil && id == "" {
				s.lapsed.Store(true)
				break
			}
		}
	}
	return s.Sink.Apply(ctx, partition, changes, through)
}

// The poison test's flake, made certain: the reducer's pin lapses while it
// writes the event before a poison. JetStream pins it again and delivers the
// released events in an order of its own; the poison is parked after its
// attempts, and the event after it is folded at once, not after the ack wait
// (an hour here).
func TestPoisonBehindAWriteSlowerThanThePin(t *testing.T) {
	f := setup(t, 1)
	ctx := testkit.Context(t)
	var tries atomic.Int64
	project := func(rec eventstore.Record) (readmodel.Change, error) {
		c, err := reducers.Project(rec)
		if err == nil && c.Message.Text == "poison" {
			tries.Add(1)
			return c, errors.New("the read model rejects it")
		}
		return c, err
	}
	before := f.post(t, "go", "before", time.Now())
	f.post(t, "go", "poison", time.Now())
	after := f.post(t, "go", "after", time.Now())

	src, err := f.events.Consumer(ctx, 0, eventstore.ConsumerConfig{Name: "t", FetchWait: 300 * time.Millisecond,
		PinnedTTL: time.Second, AckWait: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	cons, err := f.js.Consumer(ctx, "EV", "t-p0")
	if err != nil {
		t.Fatal(err)
	}
	sink := &unpinnedFirst{Sink: f.rm, timeout: 30 * time.Second, pinned: func() (string, error) {
		info, err := cons.Info(ctx)
		if err != nil {
			return "", err
		}
		for _, g := range info.PriorityGroups {
			if g.PinnedClientID != "" {
				return g.PinnedClientID, nil
			}
		}
		return "", nil
	}}
	r, err := reducers.New(src, func() reducers.Sink { return sink }, testkit.Logger(), reducers.NewMetrics(prometheus.NewRegistry()),
		reducers.Config{BatchSize: 8, RetryMin: 10 * time.Millisecond, RetryMax: 50 * time.Millisecond, MaxAttempts: 3,
			Project: project, Park: f.events.Park})
	if err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { _ = r.Run(rctx) })
	t.Cleanup(func() { cancel(); wg.Wait() })

	testkit.Eventually(t, 60*time.Second, 20*time.Millisecond, func() error {
		if _, err := f.rm.Get(ctx, after.ID); err != nil {
			return fmt.Errorf("the event after the poison: %v", err)
		}
		return nil
	})
	if !sink.lapsed.Load() {
		t.Fatal("the pin did not lapse during the first write")
	}
	if _, err := f.rm.Get(ctx, before.ID); err != nil {
		t.Errorf("the event before the poison: %v", err)
	}
	if n := tries.Load(); n != 3 {
		t.Errorf("tried the poison %d times, want 3", n)
	}
	if dls, err := f.events.DeadLetters(ctx); err != nil || len(dls) != 1 || dls[0].OriginalSequence != 2 {
		t.Errorf("dead letters %+v (%v), want the event at sequence 2", dls, err)
	}
}
