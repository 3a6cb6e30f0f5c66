package readmodel

import (
	"testing"
	"time"

	"github.com/messages-io/messages/internal/testkit"
	"github.com/messages-io/messages/message"
	"github.com/oklog/ulid/v2"
)

// An attempt that died after storing scattered messages of a large batch
// (FerretDB inserts an ordered batch in chunks and goes on after a chunk's
// first duplicate) is followed by the whole batch: every message is stored
// once and counted once.
func TestApplyAfterScatteredPartialInsert(t *testing.T) {
	ctx := t.Context()
	s, err := Open(ctx, testkit.Database(t))
	if err != nil {
		t.Fatal(err)
	}
	start := time.Date(2026, 8, 1, 0, 0, 0, 0, time.UTC)
	var all, some []Change
	for i := range 300 {
		at := start.Add(time.Duration(i) * time.Minute)
		c := Change{Sequence: uint64(i + 1), Message: message.Message{
			ID: ulid.MustNew(ulid.Timestamp(at), ulid.DefaultEntropy()).String(), UserID: "u", Text: "x", Tag: "go", CreatedAt: at}}
		all = append(all, c)
		if i%3 == 0 {
			some = append(some, c)
		}
	}
	if _, _, err := s.insert(ctx, some); err != nil {
		t.Fatal(err)
	}
	if err := s.Apply(ctx, 0, all, 300); err != nil {
		t.Fatal(err)
	}
	if n, _ := s.CountByScan(ctx, Filter{}); n != 300 {
		t.Errorf("%d messages, want 300", n)
	}
	if n, _ := s.Count(ctx, Filter{}); n != 300 {
		t.Errorf("count %d, want 300", n)
	}
}
