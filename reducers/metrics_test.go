package reducers_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/messages-io/messages/eventstore"
	"github.com/messages-io/messages/internal/testkit"
	"github.com/messages-io/messages/reducers"
	"github.com/prometheus/client_golang/prometheus"
)

// partitionSeries returns, for each metric family of the reducers, the value
// of its series for partition, leaving out families with no such series.
func partitionSeries(t *testing.T, g prometheus.Gatherer, partition string) map[string]float64 {
	t.Helper()
	families, err := g.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	got := map[string]float64{}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() != "partition" || l.GetValue() != partition {
					continue
				}
				switch {
				case m.GetCounter() != nil:
					got[f.GetName()] = m.GetCounter().GetValue()
				case m.GetGauge() != nil:
					got[f.GetName()] = m.GetGauge().GetValue()
				}
			}
		}
	}
	return got
}

// A partition's counters exist at 0 from the moment a process serves it, so
// that an alert on increase() sees the first dead letter; once it is
// released, none of its series is reported any more.
func TestMetricsSeriesFollowServedPartitions(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := reducers.NewMetrics(reg)
	if got := partitionSeries(t, reg, "3"); len(got) != 0 {
		t.Fatalf("before serving partition 3: %v, want no series", got)
	}

	m.Serve(3)
	m.Serve(4)
	got := partitionSeries(t, reg, "3")
	for _, name := range []string{
		"messages_reducer_dead_letters_total",
		"messages_reducer_fold_failures_total",
		"messages_reducer_events_applied_total",
		"messages_reducer_events_redelivered_total",
		"messages_reducer_partition_halted",
	} {
		v, ok := got[name]
		if !ok || v != 0 {
			t.Errorf("%s{partition=\"3\"} = %v (present %v), want 0 and present", name, v, ok)
		}
	}

	// A reducer that folds partition 0 adds its checkpoint, lag, age and
	// batch limit.
	f := setup(t, 1)
	ctx, cancel := context.WithCancel(context.Background())
	src, err := f.events.Consumer(ctx, 0, eventstore.ConsumerConfig{Name: "t", FetchWait: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	r, err := reducers.New(src, func() reducers.Sink { return f.rm }, testkit.Logger(), m, reducers.Config{})
	if err != nil {
		t.Fatal(err)
	}
	m.Serve(0)
	done := make(chan struct{})
	go func() { defer close(done); _ = r.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	f.post(t, "go", "one", time.Now())
	testkit.Eventually(t, 20*time.Second, 20*time.Millisecond, func() error {
		got := partitionSeries(t, reg, "0")
		if got["messages_reducer_events_applied_total"] != 1 {
			return fmt.Errorf("partition 0 series %v, want one event applied", got)
		}
		for _, name := range []string{"messages_reducer_checkpoint_sequence", "messages_reducer_lag_events", "messages_reducer_checkpoint_age_seconds", "messages_reducer_batch_limit_events"} {
			if _, ok := got[name]; !ok {
				return fmt.Errorf("partition 0 series %v, want %s", got, name)
			}
		}
		return nil
	})
	cancel()
	<-done

	m.Release(0)
	m.Release(3)
	for _, p := range []string{"0", "3"} {
		if got := partitionSeries(t, reg, p); len(got) != 0 {
			t.Errorf("after releasing partition %s: %v, want no series", p, got)
		}
	}
	if got := partitionSeries(t, reg, "4"); len(got) != 5 {
		t.Errorf("partition 4, still served: %v, want its 5 series", got)
	}
}
