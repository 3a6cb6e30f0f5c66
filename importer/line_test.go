package importer

import (
	"fmt"
	"hash/fnv"
	"strings"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"
)

func TestParseLine(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	created := time.Date(2025, 6, 7, 8, 9, 10, 123456789, time.UTC)
	id := ulid.MustNew(uint64(created.UnixMilli()), ulid.DefaultEntropy()).String()
	otherID := ulid.MustNew(uint64(created.UnixMilli())+1, ulid.DefaultEntropy()).String()
	ok := `"userId":"alice","text":"hello","tag":"#Go","createdAt":"2025-06-07T08:09:10.123456789Z"`
	for _, tc := range []struct {
		name, line string
		want       string // reason fragment; empty for a good line
	}{
		{"good", `{` + ok + `}`, ""},
		{"good with id", `{"id":"` + id + `",` + ok + `}`, ""},
		{"good with lower-case id", `{"id":"` + strings.ToLower(id) + `",` + ok + `}`, ""},
		{"good with offset", `{"userId":"alice","text":"hello","tag":"go","createdAt":"2025-06-07T10:09:10.123+02:00"}`, ""},
		{"surrogate pair", `{"userId":"alice","text":"\ud83d\ude00","tag":"go","createdAt":"2025-06-07T08:09:10Z"}`, ""},
		{"not JSON", `hello`, "not a JSON object"},
		{"array", `[1]`, "not a JSON object"},
		{"truncated", `{"userId":"alice"`, "not a JSON object"},
		{"two values", `{` + ok + `}{}`, "more than one JSON value"},
		{"not UTF-8", "{\"userId\":\"alice\",\"text\":\"\xff\",\"tag\":\"go\",\"createdAt\":\"2025-06-07T08:09:10Z\"}", "not UTF-8"},
		{"unknown field", `{` + ok + `,"likes":3}`, `unknown field "likes"`},
		{"field case", `{"UserId":"alice","text":"hello","tag":"go","createdAt":"2025-06-07T08:09:10Z"}`, `unknown field "UserId"`},
		{"duplicate field", `{` + ok + `,"text":"again"}`, "text is given twice"},
		{"number text", `{"userId":"alice","text":5,"tag":"go","createdAt":"2025-06-07T08:09:10Z"}`, "text must be a string"},
		{"null tag", `{"userId":"alice","text":"hi","tag":null,"createdAt":"2025-06-07T08:09:10Z"}`, "tag must be a string"},
		{"number createdAt", `{"userId":"alice","text":"hi","tag":"go","createdAt":1717000000}`, "createdAt must be a string"},
		{"number id", `{"id":1,` + ok + `}`, "id must be a string"},
		{"lone surrogate", `{"userId":"alice","text":"\ud83d","tag":"go","createdAt":"2025-06-07T08:09:10Z"}`, "half of a surrogate pair"},
		{"object text", `{"userId":"alice","text":{"a":"b"},"tag":"go","createdAt":"2025-06-07T08:09:10Z"}`, "text must be a string"},
		{"escaped backslash", `{"userId":"alice","text":"a\\ud83d","tag":"go","createdAt":"2025-06-07T08:09:10Z"}`, ""},
		{"missing userId", `{"text":"hi","tag":"go","createdAt":"2025-06-07T08:09:10Z"}`, "userId is required"},
		{"missing text", `{"userId":"alice","tag":"go","createdAt":"2025-06-07T08:09:10Z"}`, "text is required"},
		{"missing tag", `{"userId":"alice","text":"hi","createdAt":"2025-06-07T08:09:10Z"}`, "tag is required"},
		{"missing createdAt", `{"userId":"alice","text":"hi","tag":"go"}`, "createdAt is required"},
		{"bad userId", `{"userId":"al ice","text":"hi","tag":"go","createdAt":"2025-06-07T08:09:10Z"}`, "userId must be"},
		{"empty userId", `{"userId":"","text":"hi","tag":"go","createdAt":"2025-06-07T08:09:10Z"}`, "userId must be"},
		{"long userId", `{"userId":"` + strings.Repeat("u", 129) + `","text":"hi","tag":"go","createdAt":"2025-06-07T08:09:10Z"}`, "userId must be"},
		{"blank text", `{"userId":"alice","text":"  \t","tag":"go","createdAt":"2025-06-07T08:09:10Z"}`, "text must not be empty or blank"},
		{"long text", `{"userId":"alice","text":"` + strings.Repeat("é", 1001) + `","tag":"go","createdAt":"2025-06-07T08:09:10Z"}`, "at most 1000 characters"},
		{"bad tag", `{"userId":"alice","text":"hi","tag":"no spaces","createdAt":"2025-06-07T08:09:10Z"}`, "tag must be"},
		{"two hashes", `{"userId":"alice","text":"hi","tag":"##go","createdAt":"2025-06-07T08:09:10Z"}`, "tag must be"},
		{"long tag", `{"userId":"alice","text":"hi","tag":"` + strings.Repeat("t", 65) + `","createdAt":"2025-06-07T08:09:10Z"}`, "tag must be"},
		{"date only", `{"userId":"alice","text":"hi","tag":"go","createdAt":"2025-06-07"}`, "not an RFC 3339 time"},
		{"no zone", `{"userId":"alice","text":"hi","tag":"go","createdAt":"2025-06-07T08:09:10"}`, "not an RFC 3339 time"},
		{"before 1970", `{"userId":"alice","text":"hi","tag":"go","createdAt":"1969-12-31T23:59:59Z"}`, "before 1970"},
		{"future", `{"userId":"alice","text":"hi","tag":"go","createdAt":"2026-03-01T12:05:00Z"}`, "in the future"},
		{"id not a ULID", `{"id":"42",` + ok + `}`, "not a ULID"},
		{"id of another time", `{"id":"` + otherID + `",` + ok + `}`, "carries the time"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := ParseLine([]byte(tc.line), now)
			if tc.want != "" {
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("err = %v, want one saying %q", err, tc.want)
				}
				return
			}
			if err != nil {
				t.Fatalf("err = %v", err)
			}
			u, perr := ulid.ParseStrict(m.ID)
			if perr != nil || u.String() != m.ID {
				t.Fatalf("id %q is not a canonical ULID", m.ID)
			}
			if int64(u.Time()) != m.CreatedAt.UnixMilli() || m.CreatedAt.Location() != time.UTC || m.CreatedAt.Nanosecond()%int(time.Millisecond) != 0 {
				t.Errorf("id time %d, createdAt %v: want equal, UTC, in milliseconds", u.Time(), m.CreatedAt)
			}
			if m.UserID != "alice" || m.Tag != "go" || m.Text == "" {
				t.Errorf("message = %+v", m)
			}
		})
	}
}

func TestParseLineKeepsFieldsAndTime(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	m, err := ParseLine([]byte(`{"userId":"bob","text":"Hi \u00e9","tag":"#CQRS","createdAt":"2025-06-07T10:09:10.123987+02:00"}`), now)
	if err != nil {
		t.Fatal(err)
	}
	want := time.Date(2025, 6, 7, 8, 9, 10, 123000000, time.UTC)
	if m.UserID != "bob" || m.Text != "Hi é" || m.Tag != "cqrs" || !m.CreatedAt.Equal(want) {
		t.Errorf("message = %+v, want bob, %q, cqrs, %v", m, "Hi é", want)
	}
}

func TestMessageIDIsDeterministic(t *testing.T) {
	at := time.Date(2025, 6, 7, 8, 9, 10, 123456789, time.UTC)
	a := MessageID("alice", "go", "hello", at)
	if a != MessageID("alice", "go", "hello", at.In(time.FixedZone("x", 3600))) {
		t.Error("the same instant in another zone gave another id")
	}
	seen := map[string]string{"same": a}
	for name, id := range map[string]string{
		"user":        MessageID("bob", "go", "hello", at),
		"tag":         MessageID("alice", "rust", "hello", at),
		"text":        MessageID("alice", "go", "hello!", at),
		"nanoseconds": MessageID("alice", "go", "hello", at.Add(time.Nanosecond)),
		"separators":  MessageID("alice\x00go", "", "hello", at),
	} {
		for other, prev := range seen {
			if id == prev {
				t.Errorf("ids for %s and %s collide: %s", name, other, id)
			}
		}
		seen[name] = id
	}
	u := ulid.MustParseStrict(a)
	if int64(u.Time()) != at.UnixMilli() {
		t.Errorf("id time %d, want %d", u.Time(), at.UnixMilli())
	}
	// The id is pinned: changing the derivation would make a re-run of an
	// old file append its messages again.
	if a != "01JX4PZG7BF0W276Y3HTT505N7" {
		t.Errorf("id = %s, want 01JX4PZG7BF0W276Y3HTT505N7", a)
	}
}

// A batch's deduplication id names its file, its range size, its range and
// the lines of the range that parsed, alone.
func TestBatchIDNamesItsFileAndRange(t *testing.T) {
	a := strings.Repeat("a", 64)
	b := strings.Repeat("a", 23) + "b" + strings.Repeat("a", 40)
	seen := map[string]string{}
	for _, tc := range []struct {
		digest string
		lines  int
		batch  int64
		valid  uint64
	}{{a, 500, 0, 1}, {a, 500, 1, 1}, {a, 500, 10, 1}, {a, 50, 1, 1}, {a, 5001, 0, 1}, {b, 500, 0, 1}, {a, 500, 0, 2},
		{a, 1000, 1 << 40, 1<<64 - 1}} {
		got := batchID(tc.digest, tc.lines, tc.batch, tc.valid)
		if got != batchID(tc.digest, tc.lines, tc.batch, tc.valid) {
			t.Errorf("batchID(%+v) = %q: unstable", tc, got)
		}
		if other, ok := seen[got]; ok {
			t.Errorf("batchID(%+v) = that of %s = %q", tc, other, got)
		}
		seen[got] = fmt.Sprint(tc)
	}
	sum := func(lines ...int64) uint64 {
		h := fnv.New64a()
		for _, n := range lines {
			addLine(h, n)
		}
		return h.Sum64()
	}
	if sum(1) == sum(2) || sum(1, 2) == sum(1) {
		t.Error("the hash of a range's valid lines does not tell them apart")
	}
}
