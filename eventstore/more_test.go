package eventstore_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/messages-io/messages/eventstore"
	"github.com/messages-io/messages/internal/testkit"
)

// More extends a batch of Next with the events of its partition delivered
// since, in log order and without a gap, and one acknowledgement takes them
// all; a batch of Catchup it leaves as it is.
func TestMoreTakesWhatWasDeliveredSince(t *testing.T) {
	_, js := testkit.JetStream(t, testkit.NATS(t))
	s := open(t, js, eventstore.Config{Stream: "EV", Partitions: 2})
	other := elsewhere(s, "a")
	p := s.Partition("a")
	c, err := s.Consumer(t.Context(), p, eventstore.ConsumerConfig{Name: "t", FetchWait: 20 * time.Second, PinnedTTL: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	want := appendN(t, s, "a", 1)
	// More takes from the pull request Next left open, which lives as long
	// as Next's context.
	b, err := c.Next(t.Context(), 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	if got := seqs([]*eventstore.Batch{b}); got != fmt.Sprint(want) {
		t.Fatalf("first batch %s, want %v", got, want)
	}
	for range 3 {
		appendN(t, s, other, 1)
		want = append(want, appendN(t, s, "a", 2)...)
	}
	testkit.Eventually(t, 20*time.Second, 10*time.Millisecond, func() error {
		if err := c.More(t.Context(), b, 100); err != nil {
			t.Fatal(err)
		}
		if len(b.Records) < len(want) {
			return fmt.Errorf("batch holds %s", seqs([]*eventstore.Batch{b}))
		}
		return nil
	})
	if got := seqs([]*eventstore.Batch{b}); got != fmt.Sprint(want) {
		t.Errorf("batch extended to %s, want %v", got, want)
	}
	last := want[len(want)-1]
	ackThrough(t, c, b, last)

	cb, err := c.Catchup(t.Context(), last, 100)
	if err != nil {
		t.Fatal(err)
	}
	later := appendN(t, s, "a", 1)
	cons, err := js.Consumer(t.Context(), "EV", fmt.Sprintf("t-p%d", p))
	if err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 20*time.Second, 10*time.Millisecond, func() error {
		info, err := cons.Info(t.Context())
		if err != nil {
			return err
		}
		if info.NumAckPending != 1 {
			return fmt.Errorf("%d delivered and unacknowledged, want 1", info.NumAckPending)
		}
		return nil
	})
	for range 3 {
		if err := c.More(t.Context(), cb, 100); err != nil {
			t.Fatal(err)
		}
	}
	if len(cb.Records) != 0 {
		t.Errorf("a batch of Catchup was extended to %s", seqs([]*eventstore.Batch{cb}))
	}
	// The delivery was there to take, for a batch of Next.
	testkit.Eventually(t, 20*time.Second, 10*time.Millisecond, func() error {
		if err := c.More(t.Context(), b, 100); err != nil {
			t.Fatal(err)
		}
		if n := len(b.Records); b.Records[n-1].Sequence != later[0] {
			return fmt.Errorf("batch ends at %d, want %d", b.Records[n-1].Sequence, later[0])
		}
		return nil
	})
}

// More fills a batch with the events JetStream holds for the partition,
// however few Next pulled, waiting for those alone, up to max; and one
// acknowledgement takes them all.
func TestMorePullsWhatIsStored(t *testing.T) {
	_, js := testkit.JetStream(t, testkit.NATS(t))
	s := open(t, js, eventstore.Config{Stream: "EV", Partitions: 2})
	c, err := s.Consumer(t.Context(), s.Partition("a"), eventstore.ConsumerConfig{Name: "t", FetchWait: 20 * time.Second, PinnedTTL: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	want := appendN(t, s, "a", 50)
	b, err := c.Next(t.Context(), 0, 5)
	if err != nil {
		t.Fatal(err)
	}
	first := len(b.Records)
	if first == 0 || first > 5 {
		t.Fatalf("Next returned %d events, want 1-5", first)
	}
	if err := c.More(t.Context(), b, 30); err != nil {
		t.Fatal(err)
	}
	if got := seqs([]*eventstore.Batch{b}); got != fmt.Sprint(want[:first+30]) {
		t.Fatalf("after More of 30, batch holds %s, want %v", got, want[:first+30])
	}
	if err := c.More(t.Context(), b, 100); err != nil {
		t.Fatal(err)
	}
	if got := seqs([]*eventstore.Batch{b}); got != fmt.Sprint(want) {
		t.Fatalf("after More of 100, batch holds %s, want %v", got, want)
	}
	if b.Pending != 0 {
		t.Errorf("batch says %d pending, want 0", b.Pending)
	}
	// Nothing is stored to wait for: More returns at once.
	if err := c.More(t.Context(), b, 100); err != nil {
		t.Fatal(err)
	}
	if len(b.Records) != len(want) {
		t.Errorf("batch grew to %d events with nothing stored", len(b.Records))
	}
	ackThrough(t, c, b, want[len(want)-1])
}

// ackThrough acknowledges b through sequence last and waits until the
// consumer says every event through it is acknowledged.
func ackThrough(t *testing.T, c *eventstore.PartitionConsumer, b *eventstore.Batch, last uint64) {
	t.Helper()
	if err := b.Ack(t.Context(), last); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 20*time.Second, 10*time.Millisecond, func() error {
		acked, err := c.Acknowledged(t.Context())
		if err != nil {
			return err
		}
		if acked != last {
			return fmt.Errorf("acknowledged through %d, want %d", acked, last)
		}
		return nil
	})
}
