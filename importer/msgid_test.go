package importer

import (
	"encoding/base64"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"
)

// An import's deduplication ids fit JetStream's allocations of 24 bytes, one
// per message for the whole duplicate window, and name their message alone.
func TestMsgIDIsShortAndNamesItsMessage(t *testing.T) {
	at := time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)
	ids := []string{"00000000000000000000000000", "7ZZZZZZZZZZZZZZZZZZZZZZZZZ", "01JGFJJZ00ABCDEFGHJKMNPQRS",
		MessageID("alice", "go", "hi", at), MessageID("alice", "go", "hi!", at)}
	seen := map[string]string{}
	for _, id := range ids {
		got := msgID(id)
		if len(got) > 24 || got[0] != 'i' {
			t.Errorf("msgID(%s) = %q, %d bytes; want i and at most 23 more", id, got, len(got))
		}
		raw, err := base64.RawURLEncoding.DecodeString(got[1:])
		if err != nil || len(raw) != 16 || ulid.ULID(raw).String() != id {
			t.Errorf("msgID(%s) = %q does not name its id (%x, %v)", id, got, raw, err)
		}
		if other, ok := seen[got]; ok {
			t.Errorf("msgID(%s) = msgID(%s) = %q", id, other, got)
		}
		seen[got] = id
	}
}
