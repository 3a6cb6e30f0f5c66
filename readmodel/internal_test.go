package readmodel

import (
	"errors"
	"testing"
	"time"

	"github.com/messages-io/messages/internal/testkit"
	"github.com/messages-io/messages/message"
	"github.com/oklog/ulid/v2"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
)

// An attempt that died after storing scattered messages of a large batch
// (FerretDB inserts an ordered batch in chunks and goes on after a chunk's
// first duplicate) is followed by the whole batch: every message is stored
// once and counted once.
func TestApplyAfterScatteredPartialInsert(t *testing.T) {
	ctx := t.Context()
	s := openTestStore(t)
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

// Once a send of slot writes failed, no later write of the batch is sent,
// though its context lives on: a parent gathered after children whose
// writes were lost must not be stored without them.
func TestSlotWritesStopAtTheFirstFailedSend(t *testing.T) {
	ctx := t.Context()
	s := openTestStore(t)
	s.bulk = 1
	w := &slotWrites{s: s, ctx: ctx}
	// The store refuses an update with an operator it does not know.
	if err := w.update("go/child", bson.M{"$nosuchoperator": bson.M{"x": 1}}); err == nil {
		t.Fatal("the refused write reported no error")
	}
	parent := w.update("go/parent", bson.M{"$max": bson.M{"c.1": 1}})
	final := w.flush()
	if parent == nil || final == nil {
		t.Fatalf("after a failed send, a later write returned %v and the last flush %v; want the failure", parent, final)
	}
	err := s.slots.FindOne(ctx, bson.M{"_id": "go/parent"}).Err()
	if !errors.Is(err, mongo.ErrNoDocuments) {
		t.Fatalf("the parent was written after its child's write failed (find: %v)", err)
	}
}

// openTestStore opens the read model in a database of the test's own.
func openTestStore(t *testing.T) *Store {
	t.Helper()
	s, err := Open(t.Context(), testkit.Database(t))
	if err != nil {
		t.Fatal(err)
	}
	return s
}
