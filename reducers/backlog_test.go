package reducers_test

import (
	"context"
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

// singleWriter is a read model that, like SQLite under the embedded
// FerretDB, takes one write at a time and spends a time proportional to the
// events written. A write whose caller gave up is not stopped: it keeps the
// store busy until it would have finished, and a later write waits behind
// it, as the abandoned inserts of a timed-out reducer do.
type singleWriter struct {
	reducers.Sink
	perEvent time.Duration
	mu       sync.Mutex
	free     time.Time // when the store is done with the writes it took
	// abandoned counts writes given up by their caller; contended counts
	// writes of events that arrived while an abandoned one still ran.
	abandoned, contended atomic.Int64
}

func (s *singleWriter) Apply(ctx context.Context, p int, changes []readmodel.Change, through uint64) error {
	s.mu.Lock()
	start := time.Now()
	if s.free.After(start) {
		start = s.free
		if len(changes) > 0 {
			s.contended.Add(1)
		}
	}
	s.free = start.Add(time.Duration(len(changes)) * s.perEvent)
	done := s.free
	s.mu.Unlock()
	t := time.NewTimer(time.Until(done))
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
		s.abandoned.Add(1)
		return fmt.Errorf("%w: %w", readmodel.ErrUnavailable, ctx.Err())
	}
	return s.Sink.Apply(ctx, p, changes, through)
}

// A reducer facing a backlog on a store that cannot write a full batch
// within an attempt's deadline still folds it all: it writes smaller batches
// until one fits, and never sends a write while one it gave up still runs.
func TestSlowStoreStillShrinksTheBacklog(t *testing.T) {
	const events = 10000
	f := setup(t, 1)
	at := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	for i := range events {
		f.post(t, fmt.Sprint("tag", i%5), fmt.Sprint(i), at.Add(time.Duration(i)*time.Minute))
	}
	// A batch of 1000 takes the store 1s, twice an attempt's deadline.
	store := &singleWriter{Sink: f.rm, perEvent: time.Millisecond}
	ctx, cancel := context.WithCancel(context.Background())
	src, err := f.events.Consumer(ctx, 0, eventstore.ConsumerConfig{Name: "t", FetchWait: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	r, err := reducers.New(src, func() reducers.Sink { return store }, testkit.Logger(), reducers.NewMetrics(prometheus.NewRegistry()),
		reducers.Config{BatchSize: 1000, StopTimeout: 500 * time.Millisecond, RetryMax: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { defer close(done); _ = r.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })

	start := time.Now()
	testkit.Eventually(t, 60*time.Second, 100*time.Millisecond, func() error {
		if cp, err := f.rm.Checkpoint(testkit.Context(t), 0); err != nil || cp != events {
			return fmt.Errorf("checkpoint %d (%v), want %d; %d writes abandoned", cp, err, events, store.abandoned.Load())
		}
		return nil
	})
	t.Logf("folded %d events in %v; %d writes abandoned", events, time.Since(start).Round(time.Millisecond), store.abandoned.Load())
	if n := store.contended.Load(); n != 0 {
		t.Errorf("%d writes sent while a write given up still ran, want 0", n)
	}
	if n, err := f.rm.CountByScan(testkit.Context(t), readmodel.Filter{}); err != nil || n != events {
		t.Errorf("%d messages (%v), want %d", n, err, events)
	}
}
