package audit_test

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/messages-io/messages/audit"
	"github.com/messages-io/messages/event"
	"github.com/messages-io/messages/eventstore"
	"github.com/oklog/ulid/v2"
)

// Verify reads the parked events from the log itself: an event parked in
// the dead-letter stream is no difference, and Err says how many there are.
func TestVerifyReadsParkedEvents(t *testing.T) {
	f := newFixture(t)
	f.logMessages(t, 8)
	ctx := t.Context()
	bad := event.Event{ID: ulid.Make().String(), Type: "message.edited", Version: 1, OccurredAt: time.Now().UTC(), UserID: "u", Data: json.RawMessage(`{}`)}
	if _, err := f.events.Append(ctx, eventstore.Append{Event: bad, PartitionKey: "go"}); err != nil {
		t.Fatal(err)
	}
	s := f.model(t, 0)
	rep, err := audit.Verify(ctx, f.events, s, audit.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if rep.DiffCount != 1 || rep.Err() == nil || rep.Err().Error() != "1 difference" {
		t.Fatalf("before parking: %d differences, Err %v; want 1, \"1 difference\"", rep.DiffCount, rep.Err())
	}
	var rec eventstore.Record
	if err := f.events.Read(ctx, 1, func(r eventstore.Record) error {
		if r.ID == bad.ID {
			rec = r
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := f.events.Park(ctx, rec, "test", nil); err != nil {
		t.Fatal(err)
	}
	rep, err = audit.Verify(ctx, f.events, s, audit.Options{})
	if err != nil || !rep.OK() || rep.Parked != 1 || rep.Err() != nil {
		t.Errorf("with the event parked: %+v, %v; want no difference, 1 parked", rep, err)
	}
}

func TestReportErr(t *testing.T) {
	for _, tc := range []struct {
		n    int
		want string
	}{{0, "<nil>"}, {1, "1 difference"}, {3, "3 differences"}} {
		if got := fmt.Sprint(audit.Report{DiffCount: tc.n}.Err()); got != tc.want {
			t.Errorf("Err with %d differences = %s, want %s", tc.n, got, tc.want)
		}
	}
}
