package message_test

import (
	"encoding/json"
	"errors"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/messages-io/messages/event"
	"github.com/messages-io/messages/message"
)

// testID is a canonical ULID, the id of messages and events in these tests.
const testID = "01HQ3Z5Y8K6J9M2N4P7R0S1T2V"

// assertInvalid fails the test unless err is a validation error: a reason
// fit for the caller, saying what field must be.
func assertInvalid(t *testing.T, err error, field string) {
	t.Helper()
	if err == nil {
		t.Fatal("err = nil, want a validation error")
	}
	if want := field + " must "; !strings.HasPrefix(err.Error(), want) {
		t.Fatalf("err = %q, want a reason for the caller that starts %q", err, want)
	}
}

func TestNormalizeTag(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    string
		invalid bool
	}{
		{name: "plain", in: "golang", want: "golang"},
		{name: "leading hash dropped", in: "#golang", want: "golang"},
		{name: "lower-cased", in: "GoLang", want: "golang"},
		{name: "hash and upper case", in: "#NEWS", want: "news"},
		{name: "every allowed class", in: "Az09_-", want: "az09_-"},
		{name: "one character", in: "x", want: "x"},
		{name: "digits only", in: "2024", want: "2024"},
		{name: "64 characters", in: strings.Repeat("A", 64), want: strings.Repeat("a", 64)},
		{name: "hash then 64 characters", in: "#" + strings.Repeat("b", 64), want: strings.Repeat("b", 64)},
		{name: "65 characters", in: strings.Repeat("a", 65), invalid: true},
		{name: "hash then 65 characters", in: "#" + strings.Repeat("a", 65), invalid: true},
		{name: "empty", in: "", invalid: true},
		{name: "hash alone", in: "#", invalid: true},
		{name: "two leading hashes", in: "##x", invalid: true},
		{name: "hash inside", in: "a#b", invalid: true},
		{name: "trailing hash", in: "ab#", invalid: true},
		{name: "space inside", in: "go lang", invalid: true},
		{name: "leading space", in: " golang", invalid: true},
		{name: "trailing space", in: "golang ", invalid: true},
		{name: "space after hash", in: "# golang", invalid: true},
		{name: "trailing newline", in: "golang\n", invalid: true},
		{name: "tab", in: "go\tlang", invalid: true},
		{name: "dot", in: "go.lang", invalid: true},
		{name: "slash", in: "go/lang", invalid: true},
		{name: "latin letter with accent", in: "café", invalid: true},
		{name: "cjk letters", in: "日本", invalid: true},
		{name: "cyrillic letters", in: "новости", invalid: true},
		{name: "kelvin sign lower-cases to k", in: "\u212A", invalid: true},
		{name: "fullwidth letters", in: "ｇｏ", invalid: true},
		{name: "emoji", in: "🎉", invalid: true},
		{name: "invalid utf-8", in: "go\xff", invalid: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := message.NormalizeTag(tt.in)
			if tt.invalid {
				assertInvalid(t, err, "tag")
				if got != "" {
					t.Errorf("NormalizeTag(%q) = %q with an error, want \"\"", tt.in, got)
				}
				return
			}
			if err != nil {
				t.Fatalf("NormalizeTag(%q): %v", tt.in, err)
			}
			if got != tt.want {
				t.Errorf("NormalizeTag(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestValidateText(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		invalid bool
	}{
		{name: "short", in: "hello"},
		{name: "one character", in: "x"},
		{name: "surrounding spaces kept", in: "  hi  "},
		{name: "newlines inside", in: "line one\nline two"},
		{name: "1000 ascii characters", in: strings.Repeat("a", 1000)},
		{name: "1000 two-byte characters", in: strings.Repeat("é", 1000)},
		{name: "1000 four-byte characters", in: strings.Repeat("😀", 1000)},
		{name: "999 characters and a space", in: strings.Repeat("a", 999) + " "},
		{name: "1001 ascii characters", in: strings.Repeat("a", 1001), invalid: true},
		{name: "1001 two-byte characters", in: strings.Repeat("é", 1001), invalid: true},
		{name: "1000 characters and a newline", in: strings.Repeat("a", 1000) + "\n", invalid: true},
		{name: "empty", in: "", invalid: true},
		{name: "spaces", in: "   ", invalid: true},
		{name: "ascii whitespace", in: " \t\n\r\v\f", invalid: true},
		{name: "no-break space, tab, newline", in: "\u00a0\t\n", invalid: true},
		{name: "ideographic and em spaces", in: "\u3000\u2003", invalid: true},
		{name: "line and paragraph separators", in: "\u2028\u2029", invalid: true},
		{name: "1001 spaces", in: strings.Repeat(" ", 1001), invalid: true},
		{name: "invalid byte", in: "hello \xff", invalid: true},
		{name: "truncated sequence", in: "caf\xc3", invalid: true},
		{name: "overlong encoding", in: "\xc0\xaf", invalid: true},
		{name: "surrogate half", in: "\xed\xa0\x80", invalid: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := message.ValidateText(tt.in)
			if tt.invalid {
				assertInvalid(t, err, "text")
				return
			}
			if err != nil {
				t.Errorf("ValidateText(%d bytes): %v", len(tt.in), err)
			}
		})
	}
}

func TestValidUserID(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want bool
	}{
		{name: "letters and digits", in: "alice42", want: true},
		{name: "email-like", in: "alice@example.com", want: true},
		{name: "every allowed class", in: "AZaz09._:@-", want: true},
		{name: "issuer and subject", in: "auth0:abc_123", want: true},
		{name: "one character", in: "a", want: true},
		{name: "128 characters", in: strings.Repeat("u", 128), want: true},
		{name: "129 characters", in: strings.Repeat("u", 129)},
		{name: "empty", in: ""},
		{name: "space", in: "alice smith"},
		{name: "slash", in: "alice/bob"},
		{name: "comma", in: "alice,bob"},
		{name: "plus", in: "alice+tag@example.com"},
		{name: "trailing newline", in: "alice\n"},
		{name: "non-ascii letter", in: "zoë"},
		{name: "invalid utf-8", in: "alice\xff"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := message.ValidUserID(tt.in); got != tt.want {
				t.Errorf("ValidUserID(%q) = %v, want %v", tt.in, got, tt.want)
			}
		})
	}
}

func TestValidID(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want bool
	}{
		{name: "canonical ulid", in: testID, want: true},
		{name: "smallest ulid", in: "00000000000000000000000000", want: true},
		{name: "largest ulid", in: "7ZZZZZZZZZZZZZZZZZZZZZZZZZ", want: true},
		{name: "lower case", in: strings.ToLower(testID)},
		{name: "25 characters", in: testID[:25]},
		{name: "27 characters", in: testID + "0"},
		{name: "empty", in: ""},
		{name: "letter U is not crockford base32", in: "01HQ3Z5Y8K6J9M2N4P7R0S1TUV"},
		{name: "letter I is not canonical", in: "01HQ3Z5Y8K6J9M2N4P7R0S1TIV"},
		{name: "timestamp overflow", in: "8ZZZZZZZZZZZZZZZZZZZZZZZZZ"},
		{name: "uuid", in: "0190b6c4-7d2e-7c3a-9f1e-2b3c4d5e6f70"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := message.ValidID(tt.in); got != tt.want {
				t.Errorf("ValidID(%q) = %v, want %v", tt.in, got, tt.want)
			}
		})
	}
}

func TestMessageJSON(t *testing.T) {
	plus2 := time.FixedZone("UTC+2", 2*60*60)
	minus5 := time.FixedZone("UTC-5", -5*60*60)
	tests := []struct {
		name      string
		createdAt time.Time
		want      string
	}{
		{name: "utc with nanoseconds", createdAt: time.Date(2024, 3, 1, 12, 30, 45, 123456789, time.UTC), want: "2024-03-01T12:30:45.123Z"},
		{name: "east of utc", createdAt: time.Date(2024, 3, 1, 14, 30, 45, 123000000, plus2), want: "2024-03-01T12:30:45.123Z"},
		{name: "west of utc crosses midnight", createdAt: time.Date(2024, 12, 31, 22, 0, 0, 5000000, minus5), want: "2025-01-01T03:00:00.005Z"},
		{name: "whole second keeps three digits", createdAt: time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC), want: "2024-03-01T12:00:00.000Z"},
		// Truncated, not rounded: createdAt stays in the millisecond of the
		// id's ULID timestamp.
		{name: "last nanosecond of a second", createdAt: time.Date(2024, 3, 1, 12, 0, 0, 999999999, time.UTC), want: "2024-03-01T12:00:00.999Z"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := message.Message{ID: testID, UserID: "alice", Text: `say "hi" <b>&`, Tag: "news", CreatedAt: tt.createdAt}
			b, err := json.Marshal(m)
			if err != nil {
				t.Fatalf("marshal: %v", err)
			}
			var got map[string]any
			if err := json.Unmarshal(b, &got); err != nil {
				t.Fatalf("unmarshal %s: %v", b, err)
			}
			want := map[string]any{
				"id":        testID,
				"userId":    "alice",
				"text":      `say "hi" <b>&`,
				"tag":       "news",
				"createdAt": tt.want,
			}
			if len(got) != len(want) {
				t.Errorf("JSON %s has %d fields, want %d", b, len(got), len(want))
			}
			for k, v := range want {
				if got[k] != v {
					t.Errorf("JSON %s: %s = %#v, want %#v", b, k, got[k], v)
				}
			}

			// A client decoding the JSON gets the message back, to the
			// millisecond.
			var back message.Message
			if err := json.Unmarshal(b, &back); err != nil {
				t.Fatalf("unmarshal %s into a Message: %v", b, err)
			}
			if back.ID != m.ID || back.UserID != m.UserID || back.Text != m.Text || back.Tag != m.Tag {
				t.Errorf("decoded %+v, want %+v", back, m)
			}
			if want := tt.createdAt.Truncate(time.Millisecond); !back.CreatedAt.Equal(want) {
				t.Errorf("decoded createdAt %s, want %s", back.CreatedAt, want.UTC())
			}
		})
	}
}

func TestMessageJSONCreatedAtFormat(t *testing.T) {
	// Whatever the zone and precision of the time, createdAt is RFC 3339 in
	// UTC with exactly three fractional digits.
	format := regexp.MustCompile(`^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$`)
	tokyo := time.FixedZone("JST", 9*60*60)
	for _, at := range []time.Time{
		time.Date(2030, 6, 15, 0, 0, 0, 1, tokyo),
		time.Date(1999, 1, 1, 23, 59, 59, 100000000, time.UTC),
		time.Unix(1700000000, 42).In(time.FixedZone("odd", -(3*60*60 + 30*60))),
	} {
		t.Run(at.String(), func(t *testing.T) {
			b, err := json.Marshal(message.Message{ID: testID, CreatedAt: at})
			if err != nil {
				t.Fatalf("marshal: %v", err)
			}
			var got struct{ CreatedAt string }
			if err := json.Unmarshal(b, &got); err != nil {
				t.Fatalf("unmarshal %s: %v", b, err)
			}
			if !format.MatchString(got.CreatedAt) {
				t.Fatalf("createdAt = %q, want UTC with three fractional digits", got.CreatedAt)
			}
			parsed, err := time.Parse(time.RFC3339Nano, got.CreatedAt)
			if err != nil {
				t.Fatalf("createdAt %q is not RFC 3339: %v", got.CreatedAt, err)
			}
			if want := at.Truncate(time.Millisecond); !parsed.Equal(want) {
				t.Errorf("createdAt = %s, want the instant %s", parsed, want.UTC())
			}
		})
	}
}

func TestCreatedEventRoundTrip(t *testing.T) {
	tests := []struct {
		name          string
		msg           message.Message
		correlationID string
	}{
		{
			name:          "utc",
			msg:           message.Message{ID: testID, UserID: "alice", Text: "hello", Tag: "golang", CreatedAt: time.Date(2024, 3, 1, 12, 30, 45, 123000000, time.UTC)},
			correlationID: "req-1",
		},
		{
			name:          "other zone becomes utc",
			msg:           message.Message{ID: "01ARZ3NDEKTSV4RRFFQ69G5FAV", UserID: "auth0:bob", Text: "héllo \"wörld\" 😀\n<tag>", Tag: "news-2024", CreatedAt: time.Date(2024, 3, 1, 14, 30, 45, 7000000, time.FixedZone("UTC+2", 2*60*60))},
			correlationID: "01ARZ3NDEKTSV4RRFFQ69G5FAW",
		},
		{
			name: "no correlation id",
			msg:  message.Message{ID: testID, UserID: "carol", Text: strings.Repeat("é", 1000), Tag: "x", CreatedAt: time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev, err := message.CreatedEvent(tt.msg, tt.correlationID)
			if err != nil {
				t.Fatalf("CreatedEvent: %v", err)
			}
			if ev.ID != tt.msg.ID || ev.Type != "message.created" || ev.Version != message.CreatedSchema ||
				ev.UserID != tt.msg.UserID || ev.CorrelationID != tt.correlationID {
				t.Errorf("event envelope = {id %q type %q version %d user %q correlation %q}, want {%q message.created %d %q %q}",
					ev.ID, ev.Type, ev.Version, ev.UserID, ev.CorrelationID, tt.msg.ID, message.CreatedSchema, tt.msg.UserID, tt.correlationID)
			}
			if !ev.OccurredAt.Equal(tt.msg.CreatedAt) || ev.OccurredAt.Location() != time.UTC {
				t.Errorf("OccurredAt = %s, want %s in UTC", ev.OccurredAt, tt.msg.CreatedAt.UTC())
			}
			var data struct {
				Content map[string]any `json:"content"`
				Tag     string         `json:"tag"`
			}
			if err := json.Unmarshal(ev.Data, &data); err != nil {
				t.Fatalf("event data %s: %v", ev.Data, err)
			}
			if len(data.Content) != 1 || data.Content["text"] != tt.msg.Text || data.Tag != tt.msg.Tag {
				t.Errorf("event data = %s, want content.text %q and tag %q", ev.Data, tt.msg.Text, tt.msg.Tag)
			}

			// Through the log's encoding and back, as a reducer reads it.
			b, err := event.Encode(ev)
			if err != nil {
				t.Fatalf("Encode: %v", err)
			}
			read, err := event.Decode(b)
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			got, err := message.FromCreated(read)
			if err != nil {
				t.Fatalf("FromCreated: %v", err)
			}
			if got.ID != tt.msg.ID || got.UserID != tt.msg.UserID || got.Text != tt.msg.Text || got.Tag != tt.msg.Tag {
				t.Errorf("FromCreated = %+v, want %+v", got, tt.msg)
			}
			if !got.CreatedAt.Equal(tt.msg.CreatedAt) || got.CreatedAt.Location() != time.UTC {
				t.Errorf("CreatedAt = %s, want %s in UTC", got.CreatedAt, tt.msg.CreatedAt.UTC())
			}
		})
	}
}

func TestFromCreatedRejects(t *testing.T) {
	valid := func() event.Event {
		return event.Event{
			ID:         testID,
			Type:       message.EventCreated,
			Version:    message.CreatedSchema,
			OccurredAt: time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC),
			UserID:     "alice",
			Data:       json.RawMessage(`{"content":{"text":"hello"},"tag":"golang"}`),
		}
	}
	// The unchanged event is accepted, so each case below fails only for the
	// field it changes.
	if _, err := message.FromCreated(valid()); err != nil {
		t.Fatalf("FromCreated(valid event): %v", err)
	}
	tests := []struct {
		name   string
		change func(*event.Event)
	}{
		{name: "another type", change: func(ev *event.Event) { ev.Type = "message.deleted" }},
		{name: "empty type", change: func(ev *event.Event) { ev.Type = "" }},
		{name: "type in other case", change: func(ev *event.Event) { ev.Type = "Message.Created" }},
		{name: "newer version", change: func(ev *event.Event) { ev.Version = message.CreatedSchema + 1 }},
		{name: "version zero", change: func(ev *event.Event) { ev.Version = 0 }},
		{name: "data not json", change: func(ev *event.Event) { ev.Data = json.RawMessage(`not json`) }},
		{name: "data empty", change: func(ev *event.Event) { ev.Data = nil }},
		{name: "data truncated", change: func(ev *event.Event) { ev.Data = json.RawMessage(`{"content":{"text":"hello"},"tag":`) }},
		{name: "data of wrong type", change: func(ev *event.Event) { ev.Data = json.RawMessage(`{"content":{"text":1},"tag":"golang"}`) }},
		{name: "data an array", change: func(ev *event.Event) { ev.Data = json.RawMessage(`["hello","golang"]`) }},
		{name: "data without tag", change: func(ev *event.Event) { ev.Data = json.RawMessage(`{"content":{"text":"hello"}}`) }},
		{name: "version 2 in the version 1 shape", change: func(ev *event.Event) { ev.Data = json.RawMessage(`{"text":"hello","tag":"golang"}`) }},
		{name: "version 1 without text", change: func(ev *event.Event) { ev.Version, ev.Data = 1, json.RawMessage(`{"tag":"golang"}`) }},
		{name: "version 1 text of wrong type", change: func(ev *event.Event) { ev.Version, ev.Data = 1, json.RawMessage(`{"text":1,"tag":"golang"}`) }},
		{name: "data null", change: func(ev *event.Event) { ev.Data = json.RawMessage(`null`) }},
		{name: "id not a ulid", change: func(ev *event.Event) { ev.ID = "not-a-ulid" }},
		{name: "id lower case", change: func(ev *event.Event) { ev.ID = strings.ToLower(testID) }},
		{name: "no id", change: func(ev *event.Event) { ev.ID = "" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev := valid()
			tt.change(&ev)
			got, err := message.FromCreated(ev)
			if !errors.Is(err, event.ErrMalformed) {
				t.Fatalf("FromCreated err = %v, want event.ErrMalformed", err)
			}
			if got != (message.Message{}) {
				t.Errorf("FromCreated = %+v with an error, want the zero message", got)
			}
		})
	}
}

// A version 1 event reads as the same message as its version 2 form.
func TestFromCreatedUpcastsVersion1(t *testing.T) {
	at := time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC)
	v1 := event.Event{ID: testID, Type: message.EventCreated, Version: 1, OccurredAt: at, UserID: "alice",
		Data: json.RawMessage(`{"text":"hello","tag":"golang"}`)}
	m, err := message.FromCreated(v1)
	if err != nil {
		t.Fatal(err)
	}
	want := message.Message{ID: testID, UserID: "alice", Text: "hello", Tag: "golang", CreatedAt: at}
	if m != want {
		t.Errorf("version 1 read as %+v, want %+v", m, want)
	}
	v2, err := message.CreatedEvent(want, "")
	if err != nil {
		t.Fatal(err)
	}
	if m2, err := message.FromCreated(v2); err != nil || m2 != m {
		t.Errorf("version 2 read as %+v (%v), want %+v", m2, err, m)
	}
}
