package message_test

import (
	"strings"
	"testing"
	"time"

	"github.com/messages-io/messages/message"
)

func BenchmarkValidateText(b *testing.B) {
	for _, n := range []int{20, 1000} {
		text := strings.Repeat("é", n)
		b.Run(map[int]string{20: "short", 1000: "longest"}[n], func(b *testing.B) {
			b.SetBytes(int64(len(text)))
			for b.Loop() {
				if err := message.ValidateText(text); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkNormalizeTag(b *testing.B) {
	for b.Loop() {
		if _, err := message.NormalizeTag("#EventSourcing"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCreatedEvent(b *testing.B) {
	m := message.Message{ID: "01JX4PZG7BF0W276Y3HTT505N7", UserID: "alice", Text: "Hello, event sourcing!", Tag: "cqrs", CreatedAt: time.Now()}
	for b.Loop() {
		if _, err := message.CreatedEvent(m, "01JX4PZG7BF0W276Y3HTT505N8"); err != nil {
			b.Fatal(err)
		}
	}
}
