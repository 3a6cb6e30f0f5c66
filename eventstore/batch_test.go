package eventstore_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/messages-io/messages/eventstore"
	"github.com/messages-io/messages/internal/testkit"
	"github.com/nats-io/nats.go/jetstream"
)

func batchOf(t *testing.T, n int, keys ...string) []eventstore.Append {
	t.Helper()
	batch := make([]eventstore.Append, n)
	for i := range batch {
		batch[i] = eventstore.Append{Event: newEvent(t, fmt.Sprint("b", i)), PartitionKey: keys[i%len(keys)]}
	}
	return batch
}

func TestAppendBatchStoresEveryEventInOrderOnce(t *testing.T) {
	_, js := testkit.JetStream(t, testkit.NATS(t))
	s := open(t, js, eventstore.Config{Stream: "EV", Partitions: 4})
	ctx := t.Context()
	appendN(t, s, "before", 2)
	batch := batchOf(t, 300, "a", "b", "c")
	res, err := s.AppendBatch(ctx, "batch-1", batch)
	if err != nil || res.Duplicate || res.Last != 302 {
		t.Fatalf("append batch = %+v, %v; want the last of 300 events at 302", res, err)
	}
	for i, a := range batch {
		rec, err := s.Get(ctx, uint64(3+i))
		if err != nil {
			t.Fatal(err)
		}
		if rec.ID != a.Event.ID || rec.Partition != s.Partition(a.PartitionKey) {
			t.Fatalf("event %d of the batch stored as %s in partition %d, want %s in %d",
				i, rec.ID, rec.Partition, a.Event.ID, s.Partition(a.PartitionKey))
		}
	}

	// The same id again stores nothing, whatever the batch holds.
	again, err := s.AppendBatch(ctx, "batch-1", batchOf(t, 5, "a"))
	if err != nil || !again.Duplicate {
		t.Fatalf("repeated batch = %+v, %v; want a duplicate", again, err)
	}
	if last, _ := s.LastSequence(ctx); last != 302 {
		t.Errorf("last sequence after a repeated batch = %d, want 302", last)
	}

	// A batch of one is its own commit.
	one, err := s.AppendBatch(ctx, "batch-2", batchOf(t, 1, "a"))
	if err != nil || one.Last != 303 {
		t.Errorf("batch of one = %+v, %v; want it at 303", one, err)
	}
}

func TestAppendBatchRefusesWhatItCannotSend(t *testing.T) {
	_, js := testkit.JetStream(t, testkit.NATS(t))
	s := open(t, js, eventstore.Config{Stream: "EV"})
	ctx := t.Context()
	for _, tc := range []struct {
		name  string
		id    string
		batch []eventstore.Append
	}{
		{"empty", "x", nil},
		{"too large", "x", batchOf(t, eventstore.MaxBatch+1, "a")},
		{"no id", "", batchOf(t, 2, "a")},
	} {
		if _, err := s.AppendBatch(ctx, tc.id, tc.batch); err == nil {
			t.Errorf("%s: append batch succeeded", tc.name)
		}
	}
	if last, _ := s.LastSequence(ctx); last != 0 {
		t.Errorf("refused batches stored up to %d", last)
	}
}

// A stream made before batches were taken is given them at the next Open.
func TestOpenAllowsBatchesOnAnOlderStream(t *testing.T) {
	_, js := testkit.JetStream(t, testkit.NATS(t))
	ctx := t.Context()
	_, err := js.CreateStream(ctx, jetstream.StreamConfig{
		Name: "EV", Subjects: []string{"messages.events.>"}, Storage: jetstream.FileStorage,
		DenyDelete: true, DenyPurge: true, Duplicates: time.Minute,
		Metadata: map[string]string{"messages.partitions": "8"},
	})
	if err != nil {
		t.Fatal(err)
	}
	s := open(t, js, eventstore.Config{Stream: "EV"})
	if _, err := s.AppendBatch(ctx, "b", batchOf(t, 3, "a")); err != nil {
		t.Fatalf("append batch on a reopened older stream: %v", err)
	}
}

// A batch sent while the server is down is never committed, so it stored
// nothing.
func TestAppendBatchWhenServerIsDown(t *testing.T) {
	s := storeOfStoppedServer(t)
	ctx, cancel := context.WithTimeout(t.Context(), time.Second)
	defer cancel()
	_, err := s.AppendBatch(ctx, "b", batchOf(t, 3, "a"))
	if !errors.Is(err, eventstore.ErrUnavailable) || errors.Is(err, eventstore.ErrOutcomeUnknown) {
		t.Errorf("append batch with the server down: err = %v, want ErrUnavailable and a known outcome", err)
	}
}
