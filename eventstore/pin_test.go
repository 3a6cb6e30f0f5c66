package eventstore_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/messages-io/messages/eventstore"
	"github.com/messages-io/messages/internal/testkit"
)

// A reducer whose pin lapsed while it held a batch (a write slower than
// PinnedTTL) is pinned again and sent the events it released, in an order
// of JetStream's choosing. Acknowledging the events it has folded must not
// void the release of a later one: that event would wait out the whole
// AckWait, here an hour, before it came again.
func TestReleasedEventComesAgainAfterThePinLapsed(t *testing.T) {
	_, js := testkit.JetStream(t, testkit.NATS(t))
	ctx := testkit.Context(t)
	s := open(t, js, eventstore.Config{Stream: "EV", Partitions: 1})
	appendN(t, s, "a", 3)
	c, err := s.Consumer(ctx, 0, eventstore.ConsumerConfig{Name: "t", AckWait: time.Hour,
		FetchWait: 300 * time.Millisecond, PinnedTTL: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	bs := collect(t, c, 0, 3)
	// Hold the batch until JetStream has unpinned the reducer.
	cons, err := js.Consumer(ctx, "EV", "t-p0")
	if err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 30*time.Second, 50*time.Millisecond, func() error {
		info, err := cons.Info(ctx)
		if err != nil {
			return err
		}
		for _, g := range info.PriorityGroups {
			if g.PinnedClientID != "" {
				return fmt.Errorf("group %s still pinned to %s", g.Group, g.PinnedClientID)
			}
		}
		return nil
	})
	// Event 1 folded, event 2 fails; then event 2 fails again; then it is
	// parked, and event 3 is released once more.
	settle := func(bs []*eventstore.Batch, through uint64) {
		t.Helper()
		for _, b := range bs {
			if err := b.Ack(ctx, through); err != nil {
				t.Fatal(err)
			}
			b.Release(through)
		}
	}
	settle(bs, 1)
	// The first pull after the lapse carries the old pin: JetStream refuses
	// it, and Next says the partition was lost, once; the pull after it is
	// pinned again.
	nctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	_, err = c.Next(nctx, 1, 2)
	cancel()
	if !errors.Is(err, eventstore.ErrNotHeld) {
		t.Fatalf("next after the pin lapsed: %v, want %v", err, eventstore.ErrNotHeld)
	}
	settle(collect(t, c, 1, 2), 1)
	settle(collect(t, c, 1, 2), 2)
	if got := seqs(collect(t, c, 2, 1)); got != "[3]" {
		t.Errorf("after event 2 got %s, want [3]", got)
	}
}
