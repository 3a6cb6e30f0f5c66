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

// stallUntil is a read model whose writes, once stall is set, wait until
// released says so, as writes slower than the takeover setting do.
type stallUntil struct {
	reducers.Sink
	stall    atomic.Bool
	released func() bool
}

func (s *stallUntil) Apply(ctx context.Context, partition int, changes []readmodel.Change, through uint64) error {
	for s.stall.Load() && !s.released() {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
	return s.Sink.Apply(ctx, partition, changes, through)
}

// A reducer whose partition another reducer took over (its pin lapsed in a
// slow write) stops reporting the partition's lag, checkpoint, checkpoint
// age, batch limit and halt, which are the holder's to report; its counters
// start again from 0, and the holder reports every series.
func TestReducerThatLostItsPinStopsReportingThePartition(t *testing.T) {
	f := setup(t, 1)
	ctx := t.Context()
	var firstPin string
	released := func() bool {
		p := pinOf(t, f)
		return p != "" && p != firstPin
	}
	a := startStandby(t, f, released)
	f.post(t, "go", "1", time.Now())
	testkit.Eventually(t, 30*time.Second, 20*time.Millisecond, func() error { return a.reports(t, 1) })
	firstPin = pinOf(t, f)
	if firstPin == "" {
		t.Fatal("no reducer is pinned")
	}

	// The next write of a lasts until b holds the partition: b takes over
	// once a's pin lapses and an event comes.
	a.sink.stall.Store(true)
	b := startStandby(t, f, released)
	f.post(t, "go", "2", time.Now())
	testkit.Eventually(t, 30*time.Second, 50*time.Millisecond, func() error {
		if p := pinOf(t, f); p == "" || p == firstPin {
			f.post(t, "go", "more", time.Now())
			return fmt.Errorf("pinned %q, the first pin %q", p, firstPin)
		}
		return nil
	})
	checkStandingBy(t, f, a)
	testkit.Eventually(t, 30*time.Second, 20*time.Millisecond, func() error { return b.reports(t, 1) })

	// b stops and hands the partition back; a holds it again, continues
	// from b's checkpoint and folds only what came after it.
	b.stop()
	folded, err := f.rm.Checkpoint(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	last := f.post(t, "go", "last", time.Now())
	testkit.Eventually(t, 30*time.Second, 20*time.Millisecond, func() error {
		if _, err := f.rm.Get(ctx, last.ID); err != nil {
			return err
		}
		return a.reports(t, 1)
	})
	end, err := f.events.LastSequence(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := partitionSeries(t, a.reg, "0")["messages_reducer_events_applied_total"]; got != float64(end-folded) {
		t.Errorf("a, holding the partition again after b's checkpoint %d, applied %v events, want the %d after it", folded, got, end-folded)
	}
}

// pinOf is the pinned client of partition 0, "" while none is.
func pinOf(t *testing.T, f fixture) string {
	c, err := f.js.Consumer(t.Context(), "EV", "t-p0")
	if err != nil {
		return ""
	}
	info, err := c.Info(t.Context())
	if err != nil {
		return ""
	}
	for _, g := range info.PriorityGroups {
		return g.PinnedClientID
	}
	return ""
}

// standby is a reducer of partition 0 with a registry of its own, whose
// writes stall, once told to, until released.
type standby struct {
	reg  *prometheus.Registry
	sink *stallUntil
	stop func()
}

// partitionGauges are the series of a partition that only its holder
// reports.
var partitionGauges = []string{"messages_reducer_lag_events", "messages_reducer_checkpoint_sequence",
	"messages_reducer_checkpoint_age_seconds", "messages_reducer_batch_limit_events", "messages_reducer_partition_halted"}

func startStandby(t *testing.T, f fixture, released func() bool) standby {
	t.Helper()
	src, err := f.events.Consumer(t.Context(), 0, eventstore.ConsumerConfig{Name: "t", FetchWait: 300 * time.Millisecond, PinnedTTL: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	metrics := reducers.NewMetrics(reg)
	metrics.Serve(0)
	sink := &stallUntil{Sink: f.rm, released: released}
	r, err := reducers.New(src, func() reducers.Sink { return sink }, testkit.Logger(), metrics,
		reducers.Config{BatchSize: 16, RetryMin: 10 * time.Millisecond, RetryMax: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { _ = r.Run(rctx) })
	stop := func() { cancel(); wg.Wait() }
	t.Cleanup(stop)
	return standby{reg: reg, sink: sink, stop: stop}
}

// reports says whether r reports every series of partition 0, having
// applied at least applied events.
func (r standby) reports(t *testing.T, applied float64) error {
	got := partitionSeries(t, r.reg, "0")
	for _, name := range partitionGauges {
		if _, ok := got[name]; !ok {
			return fmt.Errorf("series %v, want %s", got, name)
		}
	}
	if got["messages_reducer_events_applied_total"] < applied {
		return fmt.Errorf("series %v, want at least %v applied", got, applied)
	}
	return nil
}

// checkStandingBy waits until a, which lost the partition, stops reporting
// the holder's series, and checks that its counters start from 0. It learns
// that it lost the partition when its pull is refused, which JetStream
// answers as it delivers the next event.
func checkStandingBy(t *testing.T, f fixture, a standby) {
	t.Helper()
	testkit.Eventually(t, 30*time.Second, 100*time.Millisecond, func() error {
		got := partitionSeries(t, a.reg, "0")
		for _, name := range partitionGauges[:4] {
			if _, ok := got[name]; ok {
				f.post(t, "go", "more", time.Now())
				return fmt.Errorf("a, standing by, still reports %v", got)
			}
		}
		return nil
	})
	got := partitionSeries(t, a.reg, "0")
	if v, ok := got["messages_reducer_partition_halted"]; !ok || v != 0 {
		t.Errorf("a standing by: halted %v (reported %v), want 0", v, ok)
	}
	for _, name := range []string{"messages_reducer_events_applied_total", "messages_reducer_dead_letters_total"} {
		if v, ok := got[name]; !ok || v != 0 {
			t.Errorf("a standing by: %s %v (reported %v), want 0", name, v, ok)
		}
	}
}
