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

// collect calls Next until n events after sequence after have arrived; Next
// returns what has arrived so far, which may take several calls.
func collect(t *testing.T, c *eventstore.PartitionConsumer, after uint64, n int) []*eventstore.Batch {
	t.Helper()
	var bs []*eventstore.Batch
	for got := 0; got < n; {
		b := next(t, c, after, n-got)
		bs = append(bs, b)
		got += len(b.Records)
		if len(b.Records) > 0 {
			after = b.Records[len(b.Records)-1].Sequence
		}
	}
	return bs
}

func seqs(bs []*eventstore.Batch) string {
	var all []uint64
	for _, b := range bs {
		for _, r := range b.Records {
			all = append(all, r.Sequence)
		}
	}
	return fmt.Sprint(all)
}

func next(t *testing.T, c *eventstore.PartitionConsumer, after uint64, max int) *eventstore.Batch {
	t.Helper()
	// The pull request Next leaves open ends with its context; ending it
	// on return, as a reducer never does, would lose what JetStream
	// delivered to it until the ack wait, so it ends with the test.
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	t.Cleanup(cancel)
	b, err := c.Next(ctx, after, max)
	if err != nil {
		t.Fatalf("next after %d: %v", after, err)
	}
	return b
}

// elsewhere returns a key whose events go to another partition than key's.
func elsewhere(s *eventstore.Store, key string) string {
	other := "b"
	for i := 0; s.Partition(other) == s.Partition(key); i++ {
		other = fmt.Sprint("b", i)
	}
	return other
}

func TestConsumerDeliversOnePartitionInOrder(t *testing.T) {
	_, js := testkit.JetStream(t, testkit.NATS(t))
	s := open(t, js, eventstore.Config{Stream: "EV", Partitions: 2})
	other := elsewhere(s, "a")
	var want []uint64
	for i := range 6 {
		want = append(want, appendN(t, s, "a", 1)...)
		if i%2 == 0 {
			appendN(t, s, other, 1)
		}
	}
	c, err := s.Consumer(t.Context(), s.Partition("a"), eventstore.ConsumerConfig{Name: "t"})
	if err != nil {
		t.Fatal(err)
	}
	var got []uint64
	var after uint64
	for len(got) < len(want) {
		b := next(t, c, after, 4)
		for _, r := range b.Records {
			if r.Err != nil || r.Partition != s.Partition("a") {
				t.Fatalf("record %+v", r)
			}
			got = append(got, r.Sequence)
			after = r.Sequence
		}
		if err := b.Ack(t.Context(), after); err != nil {
			t.Fatal(err)
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("delivered %v, want %v", got, want)
	}
}

// A reducer that took events and died without acknowledging them leaves them
// pending until their ack wait ends, while newer events are delivered at once
// to the reducer that takes over. The batch must still start at the first
// event after the checkpoint.
func TestConsumerFillsGapsLeftByADeadReducer(t *testing.T) {
	_, js := testkit.JetStream(t, testkit.NATS(t))
	s := open(t, js, eventstore.Config{Stream: "EV", Partitions: 1})
	cfg := eventstore.ConsumerConfig{Name: "t", AckWait: time.Minute, PinnedTTL: time.Second, FetchWait: 500 * time.Millisecond}
	appendN(t, s, "a", 3)
	dead, err := s.Consumer(t.Context(), 0, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if got := seqs(collect(t, dead, 0, 3)); got != "[1 2 3]" {
		t.Fatalf("first reducer got %s", got)
	}
	// It dies holding 1-3; 4-6 arrive.
	appendN(t, s, "a", 3)
	heir, err := s.Consumer(t.Context(), 0, cfg)
	if err != nil {
		t.Fatal(err)
	}
	var got []uint64
	var after uint64
	for after < 6 {
		b := next(t, heir, after, 10)
		for _, r := range b.Records {
			got = append(got, r.Sequence)
			after = r.Sequence
		}
	}
	if fmt.Sprint(got) != "[1 2 3 4 5 6]" {
		t.Errorf("heir folded %v, want 1..6 in order", got)
	}
}

func TestBatchAckAndRelease(t *testing.T) {
	_, js := testkit.JetStream(t, testkit.NATS(t))
	s := open(t, js, eventstore.Config{Stream: "EV", Partitions: 1})
	appendN(t, s, "a", 4)
	c, err := s.Consumer(t.Context(), 0, eventstore.ConsumerConfig{Name: "t", AckWait: time.Second, FetchWait: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	bs := collect(t, c, 0, 4)
	if seqs(bs) != "[1 2 3 4]" {
		t.Fatalf("got %s", seqs(bs))
	}
	// Acknowledge 1-2, release 3-4: only 3-4 come again.
	for _, b := range bs {
		if err := b.Ack(t.Context(), 2); err != nil {
			t.Fatal(err)
		}
		b.Release(2)
	}
	if got := seqs(collect(t, c, 2, 2)); got != "[3 4]" {
		t.Errorf("after release got %s, want [3 4]", got)
	}
	// Nothing is acknowledged past 2, so 3-4 come again once their ack wait
	// ends; 1-2 never.
	bs = collect(t, c, 2, 2)
	if got := seqs(bs); got != "[3 4]" {
		t.Errorf("redelivery got %s, want [3 4]", got)
	}
	for _, b := range bs {
		if b.Skipped != 0 {
			t.Errorf("skipped %d", b.Skipped)
		}
		if err := b.Ack(t.Context(), 4); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(t.Context(), 2500*time.Millisecond)
	defer cancel()
	if b, err := c.Next(ctx, 4, 4); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("after acking everything Next = %v, %v; want nothing until the deadline", b, err)
	}
}

func TestConsumerSkipsEventsAtOrBeforeTheCheckpoint(t *testing.T) {
	_, js := testkit.JetStream(t, testkit.NATS(t))
	s := open(t, js, eventstore.Config{Stream: "EV", Partitions: 1})
	appendN(t, s, "a", 5)
	c, err := s.Consumer(t.Context(), 0, eventstore.ConsumerConfig{Name: "t"})
	if err != nil {
		t.Fatal(err)
	}
	bs := collect(t, c, 3, 2)
	skipped := 0
	for _, b := range bs {
		skipped += b.Skipped
	}
	// Deliveries of 1-3 are skipped (some may not reach this consumer at
	// all while a pull request is replaced).
	if seqs(bs) != "[4 5]" || skipped == 0 || skipped > 3 {
		t.Errorf("after 3 got %s, skipped %d; want [4 5] and 1-3 skipped", seqs(bs), skipped)
	}
}
