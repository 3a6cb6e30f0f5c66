package reducers_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/messages-io/messages/eventstore"
	"github.com/messages-io/messages/internal/testkit"
	"github.com/messages-io/messages/readmodel"
	"github.com/messages-io/messages/reducers"
)

// A read model that lost its last commits, as SQLite with synchronous=NORMAL
// may in a power loss, holds a prefix of what it was told: its checkpoint
// is behind events JetStream holds acknowledged and never delivers again.
// A reducer that starts on it reads those events again from the log and
// folds each once, without waiting for a new event to arrive.
func TestReducerRefoldsAcknowledgedEventsTheModelLost(t *testing.T) {
	f := setup(t, 1)
	ctx := t.Context()
	day := time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC)
	const total, kept = 30, 12
	for i := range total {
		f.post(t, fmt.Sprint("tag", i%3), fmt.Sprint(i), day.Add(time.Duration(i)*time.Hour))
	}
	stop, _ := f.run(t)
	f.waitCount(t, total)
	src, err := f.events.Consumer(ctx, 0, eventstore.ConsumerConfig{Name: "t"})
	if err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 20*time.Second, 20*time.Millisecond, func() error {
		if n, err := src.Acknowledged(ctx); err != nil || n != total {
			return fmt.Errorf("acknowledged through %d (%v), want %d", n, err, total)
		}
		return nil
	})
	stop()

	// The model as the lost commits left it: the first events only.
	lost, err := readmodel.Open(ctx, testkit.Database(t))
	if err != nil {
		t.Fatal(err)
	}
	var changes []readmodel.Change
	err = f.events.Read(ctx, 1, func(rec eventstore.Record) error {
		if len(changes) < kept {
			c, err := reducers.Project(rec)
			changes = append(changes, c)
			return err
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := lost.Apply(ctx, 0, changes, changes[kept-1].Sequence); err != nil {
		t.Fatal(err)
	}

	f.rm = lost
	f.run(t)
	f.waitCount(t, total)
	testkit.Eventually(t, 20*time.Second, 20*time.Millisecond, func() error {
		if cp, err := lost.Checkpoint(ctx, 0); err != nil || cp != total {
			return fmt.Errorf("checkpoint %d (%v), want %d", cp, err, total)
		}
		return nil
	})
	for _, filter := range []readmodel.Filter{{}, {Tag: "tag1"}, {From: readmodel.At(day.Add(5*time.Hour + time.Minute))}} {
		want, err := lost.CountByScan(ctx, filter)
		if err != nil {
			t.Fatal(err)
		}
		got, err := lost.Count(ctx, filter)
		if err != nil || got != want {
			t.Errorf("count %+v = %d (%v), the messages say %d", filter, got, err, want)
		}
		page, err := lost.List(ctx, readmodel.Page{Filter: filter, Limit: total + 1})
		if err != nil || int64(len(page)) != want {
			t.Errorf("list %+v has %d (%v), want %d", filter, len(page), err, want)
		}
	}
}
