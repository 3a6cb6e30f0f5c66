package message_test

import (
	"encoding/json"
	"testing"

	"github.com/messages-io/messages/event"
	"github.com/messages-io/messages/message"
)

// FuzzFromCreated feeds log entries through Decode, the upcasters and
// FromCreated. An event the upcasters accept comes out in the current
// version with its envelope untouched; a message read from an event has a
// canonical id, a tag and its event's time; and the event that records it
// now reads back as the same message.
func FuzzFromCreated(f *testing.F) {
	for _, entry := range []string{
		`{"id":"01JXA4W7QVZ1E4M0A5V3TJ0K3Q","type":"message.created","version":2,"occurredAt":"2025-06-07T08:09:10.123Z","userId":"alice","data":{"content":{"text":"hi"},"tag":"go"}}`,
		`{"id":"01JXA4W7QVZ1E4M0A5V3TJ0K3Q","type":"message.created","version":1,"occurredAt":"2025-06-07T08:09:10.123Z","userId":"alice","data":{"text":"hi","tag":"go"}}`,
		`{"id":"01JXA4W7QVZ1E4M0A5V3TJ0K3Q","type":"message.created","version":1,"occurredAt":"2025-06-07T10:09:10.123+02:00","userId":"u","data":{"text":null,"tag":"go"}}`,
		`{"id":"01JXA4W7QVZ1E4M0A5V3TJ0K3Q","type":"message.created","version":3,"occurredAt":"2025-06-07T08:09:10Z","userId":"u","data":{"content":{"text":"hi"},"tag":"go"}}`,
		`{"id":"01jxa4w7qvz1e4m0a5v3tj0k3q","type":"message.created","version":2,"occurredAt":"2025-06-07T08:09:10Z","userId":"u","data":{"content":{"text":"hi"},"tag":"go"}}`,
		`{"id":"01JXA4W7QVZ1E4M0A5V3TJ0K3Q","type":"message.created","version":2,"occurredAt":"2025-06-07T08:09:10Z","userId":"u","data":{"content":{},"tag":"go"}}`,
		`{"id":"01JXA4W7QVZ1E4M0A5V3TJ0K3Q","type":"message.deleted","version":1,"occurredAt":"2025-06-07T08:09:10Z","userId":"u","data":{}}`,
		`{"id":"01JXA4W7QVZ1E4M0A5V3TJ0K3Q","type":"message.created","version":1,"userId":"u","data":[1,2]}`,
	} {
		f.Add([]byte(entry))
	}
	f.Fuzz(func(t *testing.T, entry []byte) {
		ev, err := event.Decode(entry)
		if err != nil {
			return
		}
		up, uperr := message.Upcasters().Upcast(ev)
		if uperr == nil {
			if up.Version != message.CreatedSchema {
				t.Fatalf("%q upcasts to version %d, want %d", entry, up.Version, message.CreatedSchema)
			}
			if up.ID != ev.ID || up.Type != ev.Type || !up.OccurredAt.Equal(ev.OccurredAt) || up.UserID != ev.UserID || up.CorrelationID != ev.CorrelationID {
				t.Fatalf("%q upcasts to %+v, another envelope", entry, up)
			}
			if !json.Valid(up.Data) {
				t.Fatalf("%q upcasts to data %q, not JSON", entry, up.Data)
			}
		}
		m, err := message.FromCreated(ev)
		if err != nil {
			return
		}
		switch {
		case uperr != nil:
			t.Fatalf("%q reads as %+v, though it does not upcast: %v", entry, m, uperr)
		case !message.ValidID(m.ID) || m.ID != ev.ID:
			t.Fatalf("%q reads as id %q, not the event's canonical id", entry, m.ID)
		case m.Tag == "":
			t.Fatalf("%q reads without a tag", entry)
		case m.UserID != ev.UserID || !m.CreatedAt.Equal(ev.OccurredAt) || m.CreatedAt.Location() != ev.OccurredAt.UTC().Location():
			t.Fatalf("%q reads as %+v, not the event's user and UTC time", entry, m)
		}
		now, err := message.CreatedEvent(m, ev.CorrelationID)
		if err != nil {
			t.Fatalf("%+v: %v", m, err)
		}
		if now.Version != message.CreatedSchema {
			t.Fatalf("a new event has version %d, want %d", now.Version, message.CreatedSchema)
		}
		again, err := message.FromCreated(now)
		if err != nil || again.ID != m.ID || again.UserID != m.UserID || again.Text != m.Text || again.Tag != m.Tag || !again.CreatedAt.Equal(m.CreatedAt) {
			t.Fatalf("%+v recorded anew reads as %+v, %v", m, again, err)
		}
	})
}
