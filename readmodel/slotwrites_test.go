package readmodel

import (
	"errors"
	"testing"

	"github.com/messages-io/messages/internal/testkit"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
)

// Once a send of slot writes failed, no later write of the batch is sent,
// though its context lives on: a parent gathered after children whose
// writes were lost must not be stored without them.
func TestSlotWritesStopAtTheFirstFailedSend(t *testing.T) {
	ctx := t.Context()
	s, err := Open(ctx, testkit.Database(t))
	if err != nil {
		t.Fatal(err)
	}
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
	err = s.slots.FindOne(ctx, bson.M{"_id": "go/parent"}).Err()
	if !errors.Is(err, mongo.ErrNoDocuments) {
		t.Fatalf("the parent was written after its child's write failed (find: %v)", err)
	}
}
