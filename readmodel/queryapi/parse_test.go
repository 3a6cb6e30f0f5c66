package queryapi_test

import (
	"crypto/rand"
	"encoding/base64"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/messages-io/messages/readmodel"
	"github.com/messages-io/messages/readmodel/queryapi"
	"github.com/oklog/ulid/v2"
)

// utc is a UTC instant for expectations.
func utc(y int, mo time.Month, d, h, mi, s, ns int) time.Time {
	return time.Date(y, mo, d, h, mi, s, ns, time.UTC)
}

// day is midnight UTC of a day.
func day(y int, mo time.Month, d int) time.Time { return utc(y, mo, d, 0, 0, 0, 0) }

// page builds the Query a list request should parse to.
func page(f readmodel.Filter, limit int, before string) queryapi.Query {
	return queryapi.Query{Page: readmodel.Page{Filter: f, Before: before, Limit: limit}}
}

func sameTime(a, b readmodel.Bound) bool {
	at, aok := a.Time()
	bt, bok := b.Time()
	if !aok || !bok {
		return aok == bok
	}
	return at.Equal(bt) && at.Location() == time.UTC
}

func sameQuery(got, want queryapi.Query) bool {
	return got.Tag == want.Tag &&
		sameTime(got.From, want.From) &&
		sameTime(got.To, want.To) &&
		got.Before == want.Before &&
		got.Limit == want.Limit &&
		got.Count == want.Count
}

func TestParseQuery(t *testing.T) {
	cursorID := ulid.MustNew(ulid.Timestamp(utc(2026, 3, 4, 5, 6, 7, 8e6)), rand.Reader).String()
	cursor := queryapi.EncodeCursor(cursorID)
	tests := slices.Concat(tagAndDayCases(), instantCases(), edgeCases(), pageCases(cursorID, cursor))
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := url.ParseQuery(tt.query)
			if err != nil {
				t.Fatalf("test query %q: %v", tt.query, err)
			}
			got, err := queryapi.ParseQuery(v)
			if tt.wantErr != "" {
				if err == nil {
					t.Fatalf("ParseQuery(%q) = %+v, want an error about %s", tt.query, got, tt.wantErr)
				}
				if !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("ParseQuery(%q) error %q does not name %s", tt.query, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseQuery(%q): %v", tt.query, err)
			}
			if !sameQuery(got, tt.want) {
				t.Errorf("ParseQuery(%q)\n got  %+v\n want %+v (times in UTC)", tt.query, got, tt.want)
			}
		})
	}
}

// parseCase is a query string and what ParseQuery makes of it.
type parseCase struct {
	name  string
	query string // raw query string
	want  queryapi.Query
	// wantErr, when set, is a word the error must contain: the
	// parameter it is about.
	wantErr string
}

// tagAndDayCases are the defaults, tags, and dates as days.
func tagAndDayCases() []parseCase {
	tag64 := strings.Repeat("a", 64)
	return []parseCase{
		// Defaults.
		{name: "no parameters: first page of 100", query: "", want: page(readmodel.Filter{}, 100, "")},

		// tag
		{name: "tag", query: "tag=go", want: page(readmodel.Filter{Tag: "go"}, 100, "")},
		{name: "tag upper case is lower-cased", query: "tag=GoLang", want: page(readmodel.Filter{Tag: "golang"}, 100, "")},
		{name: "tag with leading #", query: "tag=%23Go", want: page(readmodel.Filter{Tag: "go"}, 100, "")},
		{name: "tag with every allowed kind of character", query: "tag=A-z_09", want: page(readmodel.Filter{Tag: "a-z_09"}, 100, "")},
		{name: "tag of 64 characters", query: "tag=" + tag64, want: page(readmodel.Filter{Tag: tag64}, 100, "")},
		{name: "tag empty", query: "tag=", wantErr: "tag"},
		{name: "tag without value", query: "tag", wantErr: "tag"},
		{name: "tag only #", query: "tag=%23", wantErr: "tag"},
		{name: "tag with two #", query: "tag=%23%23go", wantErr: "tag"},
		{name: "tag with space", query: "tag=go%20lang", wantErr: "tag"},
		{name: "tag with dot", query: "tag=go.lang", wantErr: "tag"},
		{name: "tag not ASCII", query: "tag=caf%C3%A9", wantErr: "tag"},
		{name: "tag of 65 characters", query: "tag=" + tag64 + "a", wantErr: "tag"},

		// The first years are bounds like any other, never "no bound".
		{name: "dateEnd in year 0 is a bound", query: "dateEnd=0000-12-31",
			want: page(readmodel.Filter{To: readmodel.At(time.Time{})}, 100, "")},
		{name: "dateEnd just after the zero time is a bound", query: "dateEnd=0001-01-01T00:00:00.001Z",
			want: page(readmodel.Filter{To: readmodel.At(time.Time{}.Add(time.Millisecond))}, 100, "")},
		{name: "dateStart after a dateEnd in year 0", query: "dateStart=2020-01-01&dateEnd=0000-12-31", wantErr: "after"},

		// dateStart / dateEnd as days
		{name: "dateStart day alone", query: "dateStart=2026-01-05",
			want: page(readmodel.Filter{From: readmodel.At(day(2026, 1, 5))}, 100, "")},
		{name: "dateEnd day alone includes its day", query: "dateEnd=2026-01-05",
			want: page(readmodel.Filter{To: readmodel.At(day(2026, 1, 6))}, 100, "")},
		{name: "dateEnd last day of year", query: "dateEnd=2026-12-31",
			want: page(readmodel.Filter{To: readmodel.At(day(2027, 1, 1))}, 100, "")},
		{name: "dateEnd Feb 28 of a leap year", query: "dateEnd=2028-02-28",
			want: page(readmodel.Filter{To: readmodel.At(day(2028, 2, 29))}, 100, "")},
		{name: "dateEnd Feb 29", query: "dateEnd=2028-02-29",
			want: page(readmodel.Filter{To: readmodel.At(day(2028, 3, 1))}, 100, "")},
		{name: "day range", query: "dateStart=2026-01-01&dateEnd=2026-01-31",
			want: page(readmodel.Filter{From: readmodel.At(day(2026, 1, 1)), To: readmodel.At(day(2026, 2, 1))}, 100, "")},
		{name: "same day both ends is that day", query: "dateStart=2026-01-01&dateEnd=2026-01-01",
			want: page(readmodel.Filter{From: readmodel.At(day(2026, 1, 1)), To: readmodel.At(day(2026, 1, 2))}, 100, "")},
		{name: "day start after day end", query: "dateStart=2026-01-02&dateEnd=2026-01-01", wantErr: "dateStart"},
	}
}

// instantCases are dates as RFC 3339 instants, mixed with days, and
// malformed.
func instantCases() []parseCase {
	return []parseCase{
		// dateStart / dateEnd as RFC 3339 instants
		{name: "dateStart instant", query: "dateStart=2026-01-05T10:20:30Z",
			want: page(readmodel.Filter{From: readmodel.At(utc(2026, 1, 5, 10, 20, 30, 0))}, 100, "")},
		{name: "dateEnd instant is exclusive, not moved", query: "dateEnd=2026-01-05T10:20:30Z",
			want: page(readmodel.Filter{To: readmodel.At(utc(2026, 1, 5, 10, 20, 30, 0))}, 100, "")},
		{name: "dateEnd instant at midnight stays at midnight", query: "dateEnd=2026-01-05T00:00:00Z",
			want: page(readmodel.Filter{To: readmodel.At(day(2026, 1, 5))}, 100, "")},
		{name: "positive offset converted to UTC", query: "dateStart=2026-01-05T01:00:00%2B02:00",
			want: page(readmodel.Filter{From: readmodel.At(utc(2026, 1, 4, 23, 0, 0, 0))}, 100, "")},
		{name: "negative offset converted to UTC", query: "dateEnd=2026-01-05T22:30:00-05:30",
			want: page(readmodel.Filter{To: readmodel.At(utc(2026, 1, 6, 4, 0, 0, 0))}, 100, "")},
		{name: "milliseconds", query: "dateStart=2026-01-05T10:20:30.123Z",
			want: page(readmodel.Filter{From: readmodel.At(utc(2026, 1, 5, 10, 20, 30, 123e6))}, 100, "")},
		{name: "nanoseconds", query: "dateEnd=2026-01-05T10:20:30.123456789Z",
			want: page(readmodel.Filter{To: readmodel.At(utc(2026, 1, 5, 10, 20, 30, 123456789))}, 100, "")},
		{name: "one-digit fraction", query: "dateStart=2026-01-05T10:20:30.5Z",
			want: page(readmodel.Filter{From: readmodel.At(utc(2026, 1, 5, 10, 20, 30, 5e8))}, 100, "")},
		{name: "instant range", query: "dateStart=2026-01-05T10:00:00Z&dateEnd=2026-01-05T11:00:00Z",
			want: page(readmodel.Filter{From: readmodel.At(utc(2026, 1, 5, 10, 0, 0, 0)), To: readmodel.At(utc(2026, 1, 5, 11, 0, 0, 0))}, 100, "")},
		{name: "equal instants: empty range, not an error", query: "dateStart=2026-01-05T10:00:00Z&dateEnd=2026-01-05T10:00:00Z",
			want: page(readmodel.Filter{From: readmodel.At(utc(2026, 1, 5, 10, 0, 0, 0)), To: readmodel.At(utc(2026, 1, 5, 10, 0, 0, 0))}, 100, "")},
		{name: "instant start after instant end by a nanosecond", query: "dateStart=2026-01-05T10:00:00.000000001Z&dateEnd=2026-01-05T10:00:00Z",
			wantErr: "dateStart"},
		{name: "same instant in different offsets is equal", query: "dateStart=2026-01-05T12:00:00%2B02:00&dateEnd=2026-01-05T10:00:00Z",
			want: page(readmodel.Filter{From: readmodel.At(utc(2026, 1, 5, 10, 0, 0, 0)), To: readmodel.At(utc(2026, 1, 5, 10, 0, 0, 0))}, 100, "")},
		{name: "offset makes start after end", query: "dateStart=2026-01-05T10:00:00-01:00&dateEnd=2026-01-05T10:30:00Z",
			wantErr: "dateStart"},

		// Mixed day and instant bounds
		{name: "instant start at the end of the day-end is after it", query: "dateStart=2026-01-02T00:00:00Z&dateEnd=2026-01-01",
			wantErr: "dateStart"},
		{name: "instant start in the last millisecond of day-end", query: "dateStart=2026-01-01T23:59:59.999Z&dateEnd=2026-01-01",
			want: page(readmodel.Filter{From: readmodel.At(utc(2026, 1, 1, 23, 59, 59, 999e6)), To: readmodel.At(day(2026, 1, 2))}, 100, "")},
		{name: "day start equal to instant end: empty range", query: "dateStart=2026-01-02&dateEnd=2026-01-02T00:00:00Z",
			want: page(readmodel.Filter{From: readmodel.At(day(2026, 1, 2)), To: readmodel.At(day(2026, 1, 2))}, 100, "")},
		{name: "day start after instant end", query: "dateStart=2026-01-02&dateEnd=2026-01-01T23:59:59.999Z",
			wantErr: "dateStart"},

		// Malformed dates
		{name: "month 13", query: "dateStart=2026-13-01", wantErr: "dateStart"},
		{name: "day 30 of February", query: "dateEnd=2026-02-30", wantErr: "dateEnd"},
		{name: "month and day without zeros", query: "dateStart=2026-1-1", wantErr: "dateStart"},
		{name: "word", query: "dateEnd=yesterday", wantErr: "dateEnd"},
		{name: "empty dateStart", query: "dateStart=", wantErr: "dateStart"},
		{name: "empty dateEnd", query: "dateEnd=", wantErr: "dateEnd"},
		{name: "slashes", query: "dateStart=2026/01/01", wantErr: "dateStart"},
		{name: "no dashes", query: "dateStart=20260101", wantErr: "dateStart"},
		{name: "instant without offset", query: "dateStart=2026-01-01T10:00:00", wantErr: "dateStart"},
		{name: "hour 25", query: "dateEnd=2026-01-01T25:00:00Z", wantErr: "dateEnd"},
		{name: "unix seconds", query: "dateEnd=1767225600", wantErr: "dateEnd"},
		{name: "unescaped + read as space", query: "dateStart=2026-01-05T01:00:00+02:00", wantErr: "dateStart"},
	}
}

// edgeCases are the edges of RFC 3339.
func edgeCases() []parseCase {
	return []parseCase{
		// RFC 3339 edges: the offset's ranges, the case of T and Z, leap
		// seconds, and what the grammar does not allow.
		{name: "offset +24:00", query: "dateStart=2026-01-05T10:20:30%2B24:00", wantErr: "dateStart"},
		{name: "offset -24:00", query: "dateEnd=2026-01-05T10:20:30-24:00", wantErr: "dateEnd"},
		{name: "offset +23:60", query: "dateStart=2026-01-05T10:20:30%2B23:60", wantErr: "dateStart"},
		{name: "offset +99:00", query: "dateStart=2026-01-05T10:20:30%2B99:00", wantErr: "dateStart"},
		{name: "offset +23:59, the largest", query: "dateStart=2026-01-05T10:20:30%2B23:59",
			want: page(readmodel.Filter{From: readmodel.At(utc(2026, 1, 4, 10, 21, 30, 0))}, 100, "")},
		{name: "offset -00:00", query: "dateStart=2026-01-05T10:20:30-00:00",
			want: page(readmodel.Filter{From: readmodel.At(utc(2026, 1, 5, 10, 20, 30, 0))}, 100, "")},
		{name: "lower-case t and z", query: "dateStart=2026-01-05t10:20:30z",
			want: page(readmodel.Filter{From: readmodel.At(utc(2026, 1, 5, 10, 20, 30, 0))}, 100, "")},
		{name: "lower-case t with an offset", query: "dateEnd=2026-01-05t10:20:30.25-01:00",
			want: page(readmodel.Filter{To: readmodel.At(utc(2026, 1, 5, 11, 20, 30, 25e7))}, 100, "")},
		{name: "lower-case z", query: "dateEnd=2026-01-05T10:20:30z",
			want: page(readmodel.Filter{To: readmodel.At(utc(2026, 1, 5, 10, 20, 30, 0))}, 100, "")},
		{name: "leap second", query: "dateEnd=2016-12-31T23:59:60Z", wantErr: "leap second"},
		{name: "leap second with a fraction and an offset", query: "dateStart=2016-12-31T18:59:60.5-05:00", wantErr: "leap second"},
		{name: "second 61", query: "dateStart=2016-12-31T23:59:61Z", wantErr: "dateStart"},
		{name: "minute 60", query: "dateStart=2026-01-05T10:60:00Z", wantErr: "dateStart"},
		{name: "hour 24", query: "dateStart=2026-01-05T24:00:00Z", wantErr: "dateStart"},
		{name: "comma before the fraction", query: "dateStart=2026-01-05T10:20:30,5Z", wantErr: "dateStart"},
		{name: "dot without a fraction", query: "dateStart=2026-01-05T10:20:30.Z", wantErr: "dateStart"},
		{name: "space for T", query: "dateStart=2026-01-05%2010:20:30Z", wantErr: "dateStart"},
		{name: "offset without a colon", query: "dateStart=2026-01-05T10:20:30%2B0200", wantErr: "dateStart"},
		{name: "offset of hours only", query: "dateStart=2026-01-05T10:20:30%2B02", wantErr: "dateStart"},
		{name: "no seconds", query: "dateStart=2026-01-05T10:20Z", wantErr: "dateStart"},
		{name: "day 32 in an instant", query: "dateStart=2026-01-32T10:20:30Z", wantErr: "dateStart"},
		{name: "lower-case letters besides t and z", query: "dateStart=2026-01-05t10:20:30x", wantErr: "dateStart"},
	}
}

// pageCases are count, limit and cursor, whose cursor encodes cursorID, and
// unknown and repeated parameters.
func pageCases(cursorID, cursor string) []parseCase {
	return []parseCase{
		// count
		{name: "count=0 is a list", query: "count=0", want: page(readmodel.Filter{}, 100, "")},
		{name: "count=1", query: "count=1", want: queryapi.Query{Page: readmodel.Page{Limit: 100}, Count: true}},
		{name: "count=1 with filters", query: "count=1&tag=Go&dateStart=2026-01-01&dateEnd=2026-01-01",
			want: queryapi.Query{Page: readmodel.Page{Filter: readmodel.Filter{Tag: "go", From: readmodel.At(day(2026, 1, 1)), To: readmodel.At(day(2026, 1, 2))}, Limit: 100}, Count: true}},
		{name: "count=0 with limit and cursor", query: "count=0&limit=5&cursor=" + cursor, want: page(readmodel.Filter{}, 5, cursorID)},
		{name: "count=2", query: "count=2", wantErr: "count"},
		{name: "count=-1", query: "count=-1", wantErr: "count"},
		{name: "count=true", query: "count=true", wantErr: "count"},
		{name: "count empty", query: "count=", wantErr: "count"},
		{name: "count=01", query: "count=01", wantErr: "count"},
		{name: "count=1 with limit", query: "count=1&limit=10", wantErr: "limit"},
		{name: "count=1 with cursor", query: "count=1&cursor=" + cursor, wantErr: "cursor"},

		// limit
		{name: "limit 1", query: "limit=1", want: page(readmodel.Filter{}, 1, "")},
		{name: "limit 1000", query: "limit=1000", want: page(readmodel.Filter{}, 1000, "")},
		{name: "limit 37", query: "limit=37", want: page(readmodel.Filter{}, 37, "")},
		{name: "limit 0", query: "limit=0", wantErr: "limit"},
		{name: "limit 1001", query: "limit=1001", wantErr: "limit"},
		{name: "limit negative", query: "limit=-5", wantErr: "limit"},
		{name: "limit not a number", query: "limit=abc", wantErr: "limit"},
		{name: "limit fraction", query: "limit=1.5", wantErr: "limit"},
		{name: "limit empty", query: "limit=", wantErr: "limit"},
		{name: "limit huge", query: "limit=99999999999999999999", wantErr: "limit"},
		{name: "limit with plus sign", query: "limit=%2B5", wantErr: "limit"},
		{name: "limit with space", query: "limit=%205", wantErr: "limit"},
		{name: "limit in hex", query: "limit=0x10", wantErr: "limit"},

		// cursor
		{name: "cursor", query: "cursor=" + cursor, want: page(readmodel.Filter{}, 100, cursorID)},
		{name: "cursor with filters and limit", query: "tag=go&dateEnd=2026-03-04&limit=10&cursor=" + cursor,
			want: page(readmodel.Filter{Tag: "go", To: readmodel.At(day(2026, 3, 5))}, 10, cursorID)},
		{name: "cursor garbage", query: "cursor=%21%21%21", wantErr: "cursor"},
		{name: "cursor empty", query: "cursor=", wantErr: "cursor"},
		{name: "cursor of wrong length", query: "cursor=" + base64.RawURLEncoding.EncodeToString(make([]byte, 15)), wantErr: "cursor"},
		{name: "cursor that is a bare message id", query: "cursor=" + cursorID, wantErr: "cursor"},

		// Unknown and repeated parameters
		{name: "unknown parameter", query: "page=2", wantErr: "page"},
		{name: "unknown parameter beside good ones", query: "tag=go&offset=10", wantErr: "offset"},
		{name: "parameter names are not case-folded", query: "Tag=go", wantErr: "Tag"},
		{name: "repeated tag", query: "tag=go&tag=rust", wantErr: "tag"},
		{name: "repeated identical tag", query: "tag=go&tag=go", wantErr: "tag"},
		{name: "repeated dateStart", query: "dateStart=2026-01-01&dateStart=2026-01-02", wantErr: "dateStart"},
		{name: "repeated count", query: "count=1&count=1", wantErr: "count"},
		{name: "repeated limit", query: "limit=10&limit=10", wantErr: "limit"},
		{name: "repeated cursor", query: "cursor=" + cursor + "&cursor=" + cursor, wantErr: "cursor"},
	}
}

func TestCursorRoundTrip(t *testing.T) {
	ids := []string{
		"00000000000000000000000000",
		"7ZZZZZZZZZZZZZZZZZZZZZZZZZ",
		ulid.MustNew(ulid.Timestamp(utc(2026, 1, 1, 0, 0, 0, 0)), rand.Reader).String(),
		ulid.MustNew(ulid.Timestamp(utc(2099, 12, 31, 23, 59, 59, 999e6)), rand.Reader).String(),
	}
	seen := map[string]string{}
	for _, id := range ids {
		t.Run(id, func(t *testing.T) {
			c := queryapi.EncodeCursor(id)
			if c == "" {
				t.Fatalf("EncodeCursor(%s) is empty", id)
			}
			if url.QueryEscape(c) != c {
				t.Errorf("cursor %q needs escaping in a URL", c)
			}
			if other, ok := seen[c]; ok {
				t.Errorf("ids %s and %s share cursor %q", other, id, c)
			}
			seen[c] = id
			got, err := queryapi.DecodeCursor(c)
			if err != nil {
				t.Fatalf("DecodeCursor(%q): %v", c, err)
			}
			if got != id {
				t.Errorf("DecodeCursor(EncodeCursor(%s)) = %s", id, got)
			}
			q, err := queryapi.ParseQuery(url.Values{"cursor": {c}})
			if err != nil {
				t.Fatalf("ParseQuery(cursor=%s): %v", c, err)
			}
			if q.Before != id {
				t.Errorf("ParseQuery(cursor=%s).Before = %q, want %s", c, q.Before, id)
			}
		})
	}
}

func TestDecodeCursorRejectsGarbage(t *testing.T) {
	for _, c := range []string{"", "!!!", "not a cursor", "AAAA", base64.RawURLEncoding.EncodeToString(make([]byte, 17)), "01ARZ3NDEKTSV4RRFFQ69G5FAV",
		// The cursor of 16 zero bytes is 22 'A's; a last 'B' sets only bits
		// a lenient decoder drops.
		strings.Repeat("A", 21) + "B"} {
		t.Run(c, func(t *testing.T) {
			if id, err := queryapi.DecodeCursor(c); err == nil {
				t.Errorf("DecodeCursor(%q) = %q, want an error", c, id)
			}
		})
	}
}
