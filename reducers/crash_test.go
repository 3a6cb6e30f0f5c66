package reducers_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/messages-io/messages/eventstore"
	"github.com/messages-io/messages/internal/testkit"
	"github.com/messages-io/messages/readmodel"
	"github.com/messages-io/messages/reducers"
	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
)

// crashAfterApply writes a batch's messages and counts to the read model,
// but not its checkpoint, and then kills the reducer's connection to
// JetStream before it can acknowledge: a process dying between the writes of
// a batch and its ack.
type crashAfterApply struct {
	reducers.Sink
	nc      *nats.Conn
	crashed chan struct{}
}

func (c *crashAfterApply) Apply(ctx context.Context, p int, ch []readmodel.Change, through uint64) error {
	prev, err := c.Sink.Checkpoint(ctx, p)
	if err != nil {
		return err
	}
	if err := c.Sink.Apply(ctx, p, ch, prev); err != nil {
		return err
	}
	select {
	case <-c.crashed:
	default:
		c.nc.Close()
		close(c.crashed)
	}
	return errors.New("crashed")
}

// A batch folded and never acknowledged is delivered again to the reducer
// that takes over; every count still equals the count of the messages.
func TestCountsSurviveACrashBeforeTheAck(t *testing.T) {
	ns := testkit.NATS(t)
	rm, err := readmodel.Open(t.Context(), testkit.Database(t))
	if err != nil {
		t.Fatal(err)
	}
	ccfg := eventstore.ConsumerConfig{Name: "t", AckWait: time.Second, PinnedTTL: time.Second, FetchWait: 300 * time.Millisecond}
	start := func(sink func(*nats.Conn) reducers.Sink) (*eventstore.Store, context.CancelFunc, chan struct{}) {
		nc, js := testkit.JetStream(t, ns)
		events, err := eventstore.Open(t.Context(), js, eventstore.Config{Stream: "EV", Partitions: 1})
		if err != nil {
			t.Fatal(err)
		}
		src, err := events.Consumer(t.Context(), 0, ccfg)
		if err != nil {
			t.Fatal(err)
		}
		s := sink(nc)
		r, err := reducers.New(src, func() reducers.Sink { return s }, testkit.Logger(), reducers.NewMetrics(prometheus.NewRegistry()),
			reducers.Config{BatchSize: 64, RetryMax: 100 * time.Millisecond, StopTimeout: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { defer close(done); _ = r.Run(ctx) }()
		t.Cleanup(func() { cancel(); <-done })
		return events, cancel, done
	}

	crashed := make(chan struct{})
	_, stop, done := start(func(nc *nats.Conn) reducers.Sink {
		return &crashAfterApply{Sink: rm, nc: nc, crashed: crashed}
	})
	// Events are appended on a connection of their own, which the crash
	// leaves open.
	_, js := testkit.JetStream(t, ns)
	events, err := eventstore.Open(t.Context(), js, eventstore.Config{Stream: "EV", Partitions: 1})
	if err != nil {
		t.Fatal(err)
	}
	f := fixture{events: events, rm: rm}
	day := time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC)
	for i := range 40 {
		f.post(t, fmt.Sprint("tag", i%3), fmt.Sprint(i), day.Add(time.Duration(i)*2*time.Hour))
	}
	select {
	case <-crashed:
	case <-time.After(20 * time.Second):
		t.Fatal("no batch was applied")
	}
	stop()
	<-done

	// Another reducer takes over on a new connection.
	start(func(*nats.Conn) reducers.Sink { return rm })
	// Folded through the last event: messages, counts and checkpoint.
	testkit.Eventually(t, 30*time.Second, 20*time.Millisecond, func() error {
		if cp, err := rm.Checkpoint(t.Context(), 0); err != nil || cp != 40 {
			return fmt.Errorf("checkpoint %d (%v), want 40", cp, err)
		}
		return nil
	})
	if n, _ := rm.CountByScan(t.Context(), readmodel.Filter{}); n != 40 {
		t.Fatalf("%d messages, want 40", n)
	}
	checkCountsAgree(t, rm, day)
}

// checkCountsAgree checks that every count of every tag, and of all tags,
// over the five days from day, by days and by instants, agrees with the
// messages rm holds.
func checkCountsAgree(t *testing.T, rm *readmodel.Store, day time.Time) {
	t.Helper()
	ctx := t.Context()
	for _, tag := range []string{"", "tag0", "tag1", "tag2"} {
		for d := range 5 {
			for _, f := range []readmodel.Filter{
				{Tag: tag, From: readmodel.At(day.AddDate(0, 0, d)), To: readmodel.At(day.AddDate(0, 0, d+1))},
				{Tag: tag, From: readmodel.At(day.AddDate(0, 0, d).Add(5 * time.Hour)), To: readmodel.At(day.AddDate(0, 0, d+2))},
				{Tag: tag, From: readmodel.At(day.AddDate(0, 0, d))},
			} {
				got, err := rm.Count(ctx, f)
				if err != nil {
					t.Fatal(err)
				}
				if want, _ := rm.CountByScan(ctx, f); got != want {
					t.Errorf("count %+v = %d, messages say %d", f, got, want)
				}
			}
		}
	}
}
