package importer

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/messages-io/messages/message"
	"github.com/oklog/ulid/v2"
)

// storedTagRE is the grammar of a tag as stored: lower case, no '#'.
var storedTagRE = regexp.MustCompile(`^[a-z0-9_-]{1,64}$`)

// FuzzParseLine feeds lines of an import file to ParseLine. A line it accepts
// gives a message the write API would have accepted, whose id is a ULID of its
// creation time, no later than the clock allows; parsing is deterministic; and
// the message written back as a line parses to itself.
func FuzzParseLine(f *testing.F) {
	for _, line := range []string{
		`{"userId":"alice","text":"hello","tag":"#Go","createdAt":"2025-06-07T08:09:10.123456789Z"}`,
		`{"id":"01JXA4W7QVZ1E4M0A5V3TJ0K3Q","userId":"bob","text":"hi","tag":"go","createdAt":"2025-06-07T08:09:10.123Z"}`,
		`{"userId":"u","text":"x","tag":"go","createdAt":"2025-06-07T10:09:10+02:00"}`,
		`{"userId":"u","text":"x","tag":"go","createdAt":"1969-12-31T23:59:59Z"}`,
		`{"userId":"u","text":"x","tag":"go","createdAt":"2999-01-01T00:00:00Z"}`,
		`{"userId":"u","text":"x","tag":"go","createdAt":"yesterday"}`,
		`{"userId":"u u","text":"x","tag":"go","createdAt":"2025-06-07T08:09:10Z"}`,
		`{"userId":"u","text":"\ud800","tag":"go","createdAt":"2025-06-07T08:09:10Z"}`,
		`{"userId":"u","text":"x","tag":"go","createdAt":"2025-06-07T08:09:10Z","extra":"1"}`,
		`{"userId":"u","text":"x","tag":"go"}`,
		`{"id":"not-a-ulid","userId":"u","text":"x","tag":"go","createdAt":"2025-06-07T08:09:10Z"}`,
		`[]`,
		``,
	} {
		f.Add([]byte(line))
	}
	now := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, line []byte) {
		m, err := ParseLine(line, now)
		if err != nil {
			if err.Error() == "" {
				t.Fatalf("refused %q without a reason", line)
			}
			return
		}
		switch {
		case !message.ValidID(m.ID):
			t.Fatalf("%q: id %q is not a canonical ULID", line, m.ID)
		case !message.ValidUserID(m.UserID):
			t.Fatalf("%q: userId %q is not valid", line, m.UserID)
		case message.ValidateText(m.Text) != nil:
			t.Fatalf("%q: text %q is not valid: %v", line, m.Text, message.ValidateText(m.Text))
		case !storedTagRE.MatchString(m.Tag):
			t.Fatalf("%q: tag %q is not in stored form", line, m.Tag)
		case m.CreatedAt.Location() != time.UTC || !m.CreatedAt.Equal(m.CreatedAt.Truncate(time.Millisecond)):
			t.Fatalf("%q: createdAt %v is not UTC milliseconds", line, m.CreatedAt)
		case m.CreatedAt.Before(time.UnixMilli(0)) || m.CreatedAt.After(now.Add(maxFutureSkew)):
			t.Fatalf("%q: createdAt %v is out of range", line, m.CreatedAt)
		case int64(ulid.MustParse(m.ID).Time()) != m.CreatedAt.UnixMilli():
			t.Fatalf("%q: id %s does not carry createdAt %v", line, m.ID, m.CreatedAt)
		}
		if strings.ContainsRune(m.Text, utf8.RuneError) &&
			!strings.Contains(strings.ToLower(string(line)), "\\ufffd") && !strings.ContainsRune(string(line), utf8.RuneError) {
			t.Fatalf("%q: text %q holds a replacement character the line does not", line, m.Text)
		}
		if again, err := ParseLine(line, now); err != nil || !same(again, m) {
			t.Fatalf("%q parses to %+v, then to %+v, %v", line, m, again, err)
		}
		back, err := json.Marshal(map[string]string{
			"id": m.ID, "userId": m.UserID, "text": m.Text, "tag": m.Tag, "createdAt": m.CreatedAt.Format(time.RFC3339Nano),
		})
		if err != nil {
			t.Fatal(err)
		}
		if got, err := ParseLine(back, now); err != nil || !same(got, m) {
			t.Fatalf("%+v written as %s parses to %+v, %v", m, back, got, err)
		}
	})
}

// same reports whether two messages are equal, their times as instants.
func same(a, b message.Message) bool {
	return a.ID == b.ID && a.UserID == b.UserID && a.Text == b.Text && a.Tag == b.Tag && a.CreatedAt.Equal(b.CreatedAt)
}
