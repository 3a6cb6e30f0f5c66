package event_test

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/messages-io/messages/event"
)

// FuzzDecode feeds log entries to Decode. An entry it accepts is an event with
// an id, a type, a version of at least 1 and data; encoding it gives an entry
// that decodes to the same event, and encoding that again gives the same
// bytes.
func FuzzDecode(f *testing.F) {
	for _, entry := range []string{
		`{"id":"01JXA4W7QVZ1E4M0A5V3TJ0K3Q","type":"message.created","version":2,"occurredAt":"2025-06-07T08:09:10.123Z","userId":"alice","correlationId":"req-1","data":{"content":{"text":"hi"},"tag":"go"}}`,
		`{"id":"01JXA4W7QVZ1E4M0A5V3TJ0K3Q","type":"message.created","version":1,"occurredAt":"2025-06-07T08:09:10.123Z","userId":"alice","data":{"text":"hi","tag":"go"}}`,
		`{"id":"x","type":"t","version":0,"data":{}}`,
		`{"id":"x","type":"t","version":1}`,
		`{"id":"x","type":"t","version":1,"data":null}`,
		`{"id":"x","type":"t","version":1,"data":"s","occurredAt":"2025-06-07T10:09:10+02:00"}`,
		`{"id":"x","type":"t","version":1.5,"data":1}`,
		`{"id":"","type":"t","version":1,"data":1}`,
		`[]`,
		``,
	} {
		f.Add([]byte(entry))
	}
	f.Fuzz(func(t *testing.T, entry []byte) {
		ev, err := event.Decode(entry)
		if err != nil {
			return
		}
		if ev.ID == "" || ev.Type == "" || ev.Version < 1 || len(ev.Data) == 0 || !json.Valid(ev.Data) {
			t.Fatalf("%q decodes to %+v, which lacks an id, type, version or data", entry, ev)
		}
		enc, err := event.Encode(ev)
		if err != nil {
			t.Fatalf("%q decodes to %+v, which does not encode: %v", entry, ev, err)
		}
		back, err := event.Decode(enc)
		if err != nil {
			t.Fatalf("%+v encodes to %s, which does not decode: %v", ev, enc, err)
		}
		var data bytes.Buffer
		if err := json.Compact(&data, ev.Data); err != nil {
			t.Fatal(err)
		}
		if back.ID != ev.ID || back.Type != ev.Type || back.Version != ev.Version || !back.OccurredAt.Equal(ev.OccurredAt) ||
			back.UserID != ev.UserID || back.CorrelationID != ev.CorrelationID || !bytes.Equal(back.Data, data.Bytes()) {
			t.Fatalf("%+v encodes to %s, which decodes to %+v", ev, enc, back)
		}
		if again, err := event.Encode(back); err != nil || !bytes.Equal(again, enc) {
			t.Fatalf("encoding is not stable: %s, then %s (%v)", enc, again, err)
		}
	})
}
