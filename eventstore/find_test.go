package eventstore_test

import (
	"errors"
	"testing"

	"github.com/messages-io/messages/eventstore"
	"github.com/messages-io/messages/internal/testkit"
)

func TestFindMessage(t *testing.T) {
	_, js := testkit.JetStream(t, testkit.NATS(t))
	s := open(t, js, eventstore.Config{Partitions: 2})
	ctx := t.Context()
	var ids []string
	for i := range 300 {
		key := []string{"a", "b"}[i%2]
		res, err := s.Append(ctx, eventstore.Append{Event: newEvent(t, key), PartitionKey: key})
		if err != nil {
			t.Fatal(err)
		}
		if res.Sequence != uint64(i+1) {
			t.Fatalf("append %d at sequence %d", i, res.Sequence)
		}
	}
	if err := s.Read(ctx, 1, func(rec eventstore.Record) error {
		ids = append(ids, rec.ID)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		seq  uint64 // of the event looked for
		hint uint64
	}{
		{"at the hint", 7, 7},
		{"no hint", 280, 0},
		{"a wrong hint", 3, 200},
		{"a hint past the end", 290, 1000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var calls int
			rec, err := s.FindMessage(ctx, ids[tc.seq-1], tc.hint, func(done, total uint64) {
				calls++
				if done > total || total != 300 {
					t.Errorf("progress %d of %d, want of 300", done, total)
				}
			})
			if err != nil || rec.Sequence != tc.seq || rec.ID != ids[tc.seq-1] {
				t.Errorf("found sequence %d, id %s (%v); want %d, %s", rec.Sequence, rec.ID, err, tc.seq, ids[tc.seq-1])
			}
			if scanned := tc.seq >= 256 && tc.hint != tc.seq; scanned != (calls > 0) {
				t.Errorf("%d progress calls; want some only when the log was scanned past 256", calls)
			}
		})
	}
	if _, err := s.FindMessage(ctx, "01JDQ8X2Z6MZQ1F6R7SS2VQ4ZB", 5, nil); !errors.Is(err, eventstore.ErrNotFound) {
		t.Errorf("an unknown message: %v, want %v", err, eventstore.ErrNotFound)
	}
}
