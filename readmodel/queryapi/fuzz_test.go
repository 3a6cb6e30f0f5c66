package queryapi_test

import (
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/messages-io/messages/message"
	"github.com/messages-io/messages/readmodel"
	"github.com/messages-io/messages/readmodel/queryapi"
	"github.com/oklog/ulid/v2"
)

// The seed corpora are in testdata/fuzz/<target>; plain go test replays them.

var storedTag = regexp.MustCompile(`^[a-z0-9_-]{1,64}$`)

// FuzzParseQuery reads any query string as the handler does: one that
// url.ParseQuery refuses is answered 400 before ParseQuery sees it. What
// ParseQuery accepts must be a query the read model can serve as asked, and
// the next-page link built from it must parse to the same query.
func FuzzParseQuery(f *testing.F) {
	for _, s := range []string{
		"", "tag=go", "tag=%23Go&count=1", "dateStart=2026-01-01&dateEnd=2026-01-31&limit=5",
		"dateStart=2026-01-05T01:00:00%2B02:00", "count=0&limit=1000&cursor=AZ2wRxAAAAAAAAAAAAAAAA",
		"tag=go&tag=go", "page=2", "limit=0x10",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		v, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		q, err := queryapi.ParseQuery(v)
		if err != nil {
			if err.Error() == "" {
				t.Fatalf("ParseQuery(%q): an empty error", raw)
			}
			return
		}
		for name, vals := range v {
			switch name {
			case "tag", "dateStart", "dateEnd", "count", "limit", "cursor":
			default:
				t.Fatalf("ParseQuery(%q) accepted the unknown parameter %q", raw, name)
			}
			if len(vals) != 1 {
				t.Fatalf("ParseQuery(%q) accepted %s given %d times", raw, name, len(vals))
			}
		}
		checkQuery(t, raw, v, q)

		// The query survives encoding, as the next-page link encodes it.
		again, err := queryapi.ParseQuery(reparse(t, v.Encode()))
		if err != nil || !sameQuery(again, q) {
			t.Fatalf("ParseQuery(%q) = %+v, but the encoded %q gives %+v, %v", raw, q, v.Encode(), again, err)
		}
		if q.Count {
			return
		}
		// The next-page link keeps the filter and limit and moves the
		// cursor, as the handler builds it.
		last := ulid.MustNew(ulid.Timestamp(time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)), strings.NewReader(strings.Repeat("\x42", 16))).String()
		next := url.Values{}
		for k, vs := range v {
			next[k] = append([]string(nil), vs...)
		}
		next.Set("cursor", queryapi.EncodeCursor(last))
		nq, err := queryapi.ParseQuery(reparse(t, next.Encode()))
		if err != nil {
			t.Fatalf("the next page of %q, %q: %v", raw, next.Encode(), err)
		}
		want := q
		want.Before = last
		if !sameQuery(nq, want) {
			t.Fatalf("the next page of %q parses to %+v, want %+v", raw, nq, want)
		}
	})
}

// checkQuery checks what ParseQuery made of v against v itself.
func checkQuery(t *testing.T, raw string, v url.Values, q queryapi.Query) {
	t.Helper()
	if q.Limit < 1 || q.Limit > queryapi.MaxLimit || !v.Has("limit") && q.Limit != queryapi.DefaultLimit {
		t.Fatalf("ParseQuery(%q).Limit = %d", raw, q.Limit)
	}
	if v.Has("limit") {
		// Up to four decimal digits, leading zeros allowed ("0100" is 100);
		// no sign, space or other base.
		l := v.Get("limit")
		if n, err := strconv.Atoi(l); err != nil || n != q.Limit || len(l) > 4 || strings.Trim(l, "0123456789") != "" {
			t.Fatalf("ParseQuery(%q).Limit = %d from %q", raw, q.Limit, v.Get("limit"))
		}
	}
	if v.Has("tag") != (q.Tag != "") || q.Tag != "" && !storedTag.MatchString(q.Tag) {
		t.Fatalf("ParseQuery(%q).Tag = %q", raw, q.Tag)
	}
	if q.Tag != "" {
		if n, err := message.NormalizeTag(v.Get("tag")); err != nil || n != q.Tag {
			t.Fatalf("ParseQuery(%q).Tag = %q, NormalizeTag gives %q, %v", raw, q.Tag, n, err)
		}
	}
	for _, b := range []struct {
		name  string
		bound readmodel.Bound
	}{{"dateStart", q.From}, {"dateEnd", q.To}} {
		at, ok := b.bound.Time()
		if v.Has(b.name) != ok || ok && at.Location() != time.UTC {
			t.Fatalf("ParseQuery(%q): %s read as %v", raw, b.name, b.bound)
		}
	}
	from, hasFrom := q.From.Time()
	to, hasTo := q.To.Time()
	if hasFrom && hasTo && from.After(to) {
		t.Fatalf("ParseQuery(%q): start %v after end %v", raw, from, to)
	}
	if q.Count != (v.Get("count") == "1") || q.Count && (v.Has("limit") || v.Has("cursor")) {
		t.Fatalf("ParseQuery(%q).Count = %v", raw, q.Count)
	}
	if v.Has("cursor") != (q.Before != "") {
		t.Fatalf("ParseQuery(%q).Before = %q", raw, q.Before)
	}
	if q.Before != "" {
		if _, err := ulid.ParseStrict(q.Before); err != nil || queryapi.EncodeCursor(q.Before) != v.Get("cursor") {
			t.Fatalf("ParseQuery(%q).Before = %q, not the id of cursor %q", raw, q.Before, v.Get("cursor"))
		}
	}
}

func reparse(t *testing.T, raw string) url.Values {
	t.Helper()
	v, err := url.ParseQuery(raw)
	if err != nil {
		t.Fatalf("url.ParseQuery(%q), made by Values.Encode: %v", raw, err)
	}
	return v
}

// FuzzDateBound checks dateStart and dateEnd against a reading of RFC 3339
// written apart from parseBound: a bound is accepted exactly when it is a
// valid YYYY-MM-DD date, or an RFC 3339 date-time whose fields, offset
// included, are in range and whose second is not a leap second; T and Z in
// either case mean the same; an end date is the start of the next day.
func FuzzDateBound(f *testing.F) {
	for _, s := range []string{
		"2026-01-05", "2028-02-29", "2026-02-30", "2026-01-05T10:20:30Z", "2026-01-05t10:20:30z",
		"2026-01-05T10:20:30.123456789+23:59", "2026-01-05T10:20:30+24:00", "2026-01-05T10:20:30+23:60",
		"2016-12-31T23:59:60Z", "2026-01-05T10:20:30,5Z", "0000-01-01T00:00:00-00:00", "9999-12-31",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		start, serr := queryapi.ParseQuery(url.Values{"dateStart": {s}})
		end, eerr := queryapi.ParseQuery(url.Values{"dateEnd": {s}})
		if (serr == nil) != (eerr == nil) {
			t.Fatalf("%q: as dateStart %v, as dateEnd %v", s, serr, eerr)
		}
		want, kind := readBound(s)
		if serr != nil {
			if kind == date || kind == instant {
				t.Fatalf("%q is a valid bound (%v), refused: %v", s, want, serr)
			}
			if kind == leapSecond && !strings.Contains(serr.Error(), "leap second") {
				t.Fatalf("%q is a leap second; the error %q does not say so", s, serr)
			}
			return
		}
		switch kind {
		case invalid, leapSecond:
			t.Fatalf("%q is not a valid bound, accepted as %v", s, start.From)
		case date:
			if !boundIs(start.From, want) || !boundIs(end.To, want.AddDate(0, 0, 1)) {
				t.Fatalf("date %q read as [%v, %v), want [%v, next day)", s, start.From, end.To, want)
			}
		case instant:
			if !boundIs(start.From, want) || !boundIs(end.To, want) {
				t.Fatalf("instant %q read as %v and %v, want %v", s, start.From, end.To, want)
			}
			other, err := queryapi.ParseQuery(url.Values{"dateStart": {swapTZ(s)}})
			if err != nil || other.From.String() != start.From.String() {
				t.Fatalf("%q gives %v but %q gives %v, %v", s, start.From, swapTZ(s), other.From, err)
			}
			// What it is in UTC reads back to the same instant.
			from, _ := start.From.Time()
			back, err := queryapi.ParseQuery(url.Values{"dateStart": {from.Format(time.RFC3339Nano)}})
			if from.Year() >= 0 && from.Year() <= 9999 && (err != nil || !boundIs(back.From, from)) {
				t.Fatalf("%q is %v, which reads back as %v, %v", s, start.From, back.From, err)
			}
		}
		// The same bound at both ends is never a start after the end.
		if _, err := queryapi.ParseQuery(url.Values{"dateStart": {s}, "dateEnd": {s}}); err != nil {
			t.Fatalf("dateStart = dateEnd = %q: %v", s, err)
		}
	})
}

type boundKind int

const (
	invalid boundKind = iota
	date
	instant
	leapSecond
)

// readBound reads s by RFC 3339's grammar, field by field.
func readBound(s string) (time.Time, boundKind) {
	num := func(i, n int) (int, bool) {
		if i+n > len(s) {
			return 0, false
		}
		v := 0
		for _, c := range []byte(s[i : i+n]) {
			if c < '0' || c > '9' {
				return 0, false
			}
			v = v*10 + int(c-'0')
		}
		return v, true
	}
	y, ok1 := num(0, 4)
	mo, ok2 := num(5, 2)
	d, ok3 := num(8, 2)
	if !ok1 || !ok2 || !ok3 || len(s) < 10 || s[4] != '-' || s[7] != '-' || mo < 1 || mo > 12 || d < 1 ||
		d > time.Date(y, time.Month(mo)+1, 0, 0, 0, 0, 0, time.UTC).Day() {
		return time.Time{}, invalid
	}
	if len(s) == 10 {
		return time.Date(y, time.Month(mo), d, 0, 0, 0, 0, time.UTC), date
	}
	h, ok1 := num(11, 2)
	mi, ok2 := num(14, 2)
	sec, ok3 := num(17, 2)
	if !ok1 || !ok2 || !ok3 || s[10] != 'T' && s[10] != 't' || s[13] != ':' || s[16] != ':' || h > 23 || mi > 59 || sec > 60 {
		return time.Time{}, invalid
	}
	i, ns := 19, 0
	if i < len(s) && s[i] == '.' {
		i++
		digits := 0
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			if digits < 9 {
				ns = ns*10 + int(s[i]-'0')
			}
			digits++
			i++
		}
		if digits == 0 {
			return time.Time{}, invalid
		}
		for ; digits < 9; digits++ {
			ns *= 10
		}
	}
	offset := 0
	switch rest := s[i:]; {
	case rest == "Z" || rest == "z":
	case len(rest) == 6 && (rest[0] == '+' || rest[0] == '-') && rest[3] == ':':
		oh, ok1 := num(i+1, 2)
		om, ok2 := num(i+4, 2)
		if !ok1 || !ok2 || oh > 23 || om > 59 {
			return time.Time{}, invalid
		}
		offset = oh*3600 + om*60
		if rest[0] == '-' {
			offset = -offset
		}
	default:
		return time.Time{}, invalid
	}
	if sec == 60 {
		return time.Time{}, leapSecond
	}
	return time.Date(y, time.Month(mo), d, h, mi, sec, ns, time.UTC).Add(-time.Duration(offset) * time.Second), instant
}

// swapTZ changes the case of an instant's T and Z.
func swapTZ(s string) string {
	b := []byte(s)
	for i, c := range b {
		switch c {
		case 'T', 'Z':
			b[i] = c + 'a' - 'A'
		case 't', 'z':
			b[i] = c - 'a' + 'A'
		}
	}
	return string(b)
}

// FuzzCursor checks that a cursor and the message id it stands for map one
// to one: every id has one cursor, which decodes to it; a cursor that
// decodes is the one its id encodes to; anything else is refused.
func FuzzCursor(f *testing.F) {
	f.Add("AZ2wRxAAAAAAAAAAAAAAAA", "01KJ2D8W000000000000000000", []byte("0123456789abcdef"))
	f.Add("AZ2wRxAAAAAAAAAAAAAAAB", "01kj2d8w000000000000000000", []byte{})
	f.Add("!!!", "8ZZZZZZZZZZZZZZZZZZZZZZZZZ", []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, cursor, id string, raw []byte) {
		// Any cursor: refused, or the one of the id it decodes to.
		if got, err := queryapi.DecodeCursor(cursor); err == nil {
			if _, perr := ulid.ParseStrict(got); perr != nil || strings.ToUpper(got) != got {
				t.Fatalf("DecodeCursor(%q) = %q, not a canonical ULID", cursor, got)
			}
			if again := queryapi.EncodeCursor(got); again != cursor {
				t.Fatalf("DecodeCursor(%q) = %q, whose cursor is %q: two cursors for one id", cursor, got, again)
			}
			q, err := queryapi.ParseQuery(url.Values{"cursor": {cursor}})
			if err != nil || q.Before != got {
				t.Fatalf("ParseQuery(cursor=%q) = %q, %v; want %q", cursor, q.Before, err, got)
			}
		} else if _, err := queryapi.ParseQuery(url.Values{"cursor": {cursor}}); err == nil {
			t.Fatalf("ParseQuery accepted cursor %q, which DecodeCursor refuses", cursor)
		}

		// Any id: no cursor unless it is a ULID, and then one that decodes
		// to it in canonical form and needs no escaping.
		c := queryapi.EncodeCursor(id)
		u, perr := ulid.ParseStrict(id)
		if perr != nil {
			if c != "" {
				t.Fatalf("EncodeCursor(%q) = %q for an id that is not a ULID", id, c)
			}
		} else {
			got, err := queryapi.DecodeCursor(c)
			if err != nil || got != u.String() || url.QueryEscape(c) != c {
				t.Fatalf("EncodeCursor(%q) = %q, which decodes to %q, %v", id, c, got, err)
			}
		}

		// Any 16 bytes are an id whose cursor round-trips.
		if len(raw) >= 16 {
			var u ulid.ULID
			copy(u[:], raw)
			c := queryapi.EncodeCursor(u.String())
			if got, err := queryapi.DecodeCursor(c); err != nil || got != u.String() {
				t.Fatalf("id %s: cursor %q decodes to %q, %v", u, c, got, err)
			}
		}
	})
}

// boundIs reports whether b is the bound at t.
func boundIs(b readmodel.Bound, t time.Time) bool {
	at, ok := b.Time()
	return ok && at.Equal(t)
}
