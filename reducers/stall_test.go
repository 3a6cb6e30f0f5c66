package reducers_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/messages-io/messages/eventstore"
	"github.com/messages-io/messages/internal/testkit"
	"github.com/messages-io/messages/readmodel"
	"github.com/messages-io/messages/reducers"
	"github.com/prometheus/client_golang/prometheus"
)

// downSink is a read model that refuses writes while down is set.
type downSink struct {
	reducers.Sink
	down *atomic.Bool
}

func (d downSink) Apply(ctx context.Context, p int, ch []readmodel.Change, through uint64) error {
	if d.down.Load() {
		return readmodel.ErrUnavailable
	}
	return d.Sink.Apply(ctx, p, ch, through)
}

func gauge(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}

// A reducer that cannot write while events wait shows as stalled, in its
// metrics and its readiness, and recovers by itself.
func TestStalledReducerShowsAndRecovers(t *testing.T) {
	f := setup(t, 1)
	var down atomic.Bool
	down.Store(true)
	reg := prometheus.NewRegistry()
	ctx, cancel := context.WithCancel(context.Background())
	src, err := f.events.Consumer(ctx, 0, eventstore.ConsumerConfig{Name: "t", FetchWait: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	sink := downSink{Sink: f.rm, down: &down}
	r, err := reducers.New(src, func() reducers.Sink { return sink }, testkit.Logger(), reducers.NewMetrics(reg),
		reducers.Config{RetryMin: 10 * time.Millisecond, RetryMax: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { defer close(done); _ = r.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })

	if err := r.Stalled(200 * time.Millisecond); err != nil {
		t.Errorf("idle reducer stalled: %v", err)
	}
	m := f.post(t, "go", "waits", time.Now())
	testkit.Eventually(t, 10*time.Second, 20*time.Millisecond, func() error {
		if r.Stalled(300*time.Millisecond) == nil {
			return errors.New("not stalled yet")
		}
		return nil
	})
	if age := gauge(t, reg, "messages_reducer_checkpoint_age_seconds"); age < 0.3 {
		t.Errorf("checkpoint age %v, want at least 0.3s", age)
	}
	down.Store(false)
	testkit.Eventually(t, 10*time.Second, 20*time.Millisecond, func() error {
		if _, err := f.rm.Get(t.Context(), m.ID); err != nil {
			return err
		}
		return r.Stalled(300 * time.Millisecond)
	})
	testkit.Eventually(t, 5*time.Second, 20*time.Millisecond, func() error {
		if age := gauge(t, reg, "messages_reducer_checkpoint_age_seconds"); age != 0 {
			return errors.New("checkpoint age not back to 0")
		}
		return nil
	})
}
