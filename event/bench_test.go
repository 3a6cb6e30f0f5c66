package event_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/messages-io/messages/event"
)

func benchEvent() event.Event {
	data, _ := json.Marshal(map[string]string{"text": "Hello, event sourcing!", "tag": "cqrs"})
	return event.Event{
		ID: "01JX4PZG7BF0W276Y3HTT505N7", Type: "message.created", Version: 1,
		OccurredAt: time.Date(2025, 6, 7, 8, 9, 10, 123e6, time.UTC), UserID: "alice",
		CorrelationID: "01JX4PZG7BF0W276Y3HTT505N8", Data: data,
	}
}

func BenchmarkEncode(b *testing.B) {
	ev := benchEvent()
	for b.Loop() {
		if _, err := event.Encode(ev); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecode(b *testing.B) {
	raw, err := event.Encode(benchEvent())
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(raw)))
	for b.Loop() {
		if _, err := event.Decode(raw); err != nil {
			b.Fatal(err)
		}
	}
}
