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

// singleWriter is a read model that takes one write at a time and stalls
// on a write of more than most events, for longer than any deadline, as the
// embedded FerretDB did on bulk writes of a hundred updates or more. A write
// whose caller gave up is not stopped: it keeps the store busy until it
// would have finished, and a later write waits behind it, as an abandoned
// command does in the store. Smaller writes go at the real store's pace.
type singleWriter struct {
	reducers.Sink
	most  int
	stall time.Duration
	mu    sync.Mutex
	free  time.Time // when the store is done with the writes it took
	// abandoned counts writes of events given up by their caller;
	// contended counts those that arrived while an abandoned one still ran.
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
	s.free = start
	if len(changes) > s.most {
		s.free = start.Add(s.stall)
	}
	done := s.free
	s.mu.Unlock()
	t := time.NewTimer(time.Until(done))
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
		if len(changes) > 0 {
			s.abandoned.Add(1)
		}
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
	// A batch of more than 300 events never fits in an attempt's deadline.
	store := &singleWriter{Sink: f.rm, most: 300, stall: 3 * time.Second}
	ctx, cancel := context.WithCancel(context.Background())
	src, err := f.events.Consumer(ctx, 0, eventstore.ConsumerConfig{Name: "t", FetchWait: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	r, err := reducers.New(src, func() reducers.Sink { return store }, testkit.Logger(), reducers.NewMetrics(prometheus.NewRegistry()),
		reducers.Config{BatchSize: 1000, StopTimeout: time.Second, RetryMax: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { defer close(done); _ = r.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })

	start := time.Now()
	testkit.Eventually(t, 60*time.Second, 100*time.Millisecond, func() error {
		if cp, err := f.rm.Checkpoint(t.Context(), 0); err != nil || cp != events {
			return fmt.Errorf("checkpoint %d (%v), want %d; %d writes abandoned", cp, err, events, store.abandoned.Load())
		}
		return nil
	})
	t.Logf("folded %d events in %v; %d writes abandoned", events, time.Since(start).Round(time.Millisecond), store.abandoned.Load())
	// Two to find a size that fits, and a few retries of the size that
	// failed; a reducer growing straight back into the stall would give up
	// on every other write.
	if n := store.abandoned.Load(); n > 8 {
		t.Errorf("%d writes abandoned, want at most 8", n)
	}
	if n := store.contended.Load(); n != 0 {
		t.Errorf("%d writes sent while a write given up still ran, want 0", n)
	}
	if n, err := f.rm.CountByScan(t.Context(), readmodel.Filter{}); err != nil || n != events {
		t.Errorf("%d messages (%v), want %d", n, err, events)
	}
}

// sizes is a read model that records the size of each write of events.
type sizes struct {
	reducers.Sink
	mu      sync.Mutex
	largest int
}

func (s *sizes) Apply(ctx context.Context, p int, changes []readmodel.Change, through uint64) error {
	s.mu.Lock()
	s.largest = max(s.largest, len(changes))
	s.mu.Unlock()
	return s.Sink.Apply(ctx, p, changes, through)
}

// A reducer pulls at most FirstPull events before its turn to write, and
// then fills its write from the backlog JetStream holds, so a backlog is
// still written in batches larger than that.
func TestBacklogIsWrittenInBatchesLargerThanTheFirstPull(t *testing.T) {
	const events, batch = 3 * reducers.FirstPull, 2 * reducers.FirstPull
	f := setup(t, 1)
	at := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	for i := range events {
		f.post(t, "t", fmt.Sprint(i), at.Add(time.Duration(i)*time.Second))
	}
	store := &sizes{Sink: f.rm}
	f.run(t, func(c *reducers.Config, s *reducers.Sink) {
		c.BatchSize = batch
		*s = store
	})
	f.waitCount(t, events)
	store.mu.Lock()
	defer store.mu.Unlock()
	if store.largest <= reducers.FirstPull {
		t.Errorf("largest write held %d events, want more than the first pull of %d", store.largest, reducers.FirstPull)
	}
}
