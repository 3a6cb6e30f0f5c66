package reducers_test

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/messages-io/messages/event"
	"github.com/messages-io/messages/eventstore"
	"github.com/messages-io/messages/message"
	"github.com/messages-io/messages/reducers"
	"github.com/oklog/ulid/v2"
)

// BenchmarkProjectBatch folds one batch of 256 logged events (the default
// batch size) into the changes the reducer writes.
func BenchmarkProjectBatch(b *testing.B) {
	const n = 256
	recs := make([]eventstore.Record, n)
	at := time.Date(2025, 6, 7, 8, 9, 10, 0, time.UTC)
	for i := range recs {
		m := message.Message{
			ID:     ulid.MustNew(uint64(at.UnixMilli())+uint64(i), ulid.DefaultEntropy()).String(),
			UserID: "alice", Text: fmt.Sprintf("message %d", i), Tag: "cqrs", CreatedAt: at.Add(time.Duration(i) * time.Millisecond),
		}
		ev, err := message.CreatedEvent(m, "req")
		if err != nil {
			b.Fatal(err)
		}
		raw, _ := event.Encode(ev)
		var decoded event.Event
		if err := json.Unmarshal(raw, &decoded); err != nil {
			b.Fatal(err)
		}
		recs[i] = eventstore.Record{Event: decoded, Sequence: uint64(i + 1)}
	}
	b.ReportMetric(n, "events/op")
	for b.Loop() {
		for _, r := range recs {
			if _, err := reducers.Project(r); err != nil {
				b.Fatal(err)
			}
		}
	}
}
