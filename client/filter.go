package client

import (
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Filter selects messages for List and Count. The zero Filter selects every
// message.
type Filter struct {
	// Tag selects the messages under one tag, in any case, with or without
	// a leading #. An unknown tag selects nothing.
	Tag string
	// Since is the earliest time: a Day from its start, or an Instant,
	// inclusive.
	Since Bound
	// Until is the latest time: a Day includes that whole day; an Instant
	// is exclusive.
	Until Bound
	// PageSize is how many messages List asks for at once, 1-1000; 0 leaves
	// it to the service (100).
	PageSize int
}

func (f Filter) query() (url.Values, error) {
	q := url.Values{}
	if f.Tag != "" {
		q.Set("tag", f.Tag)
	}
	if !f.Since.IsZero() {
		q.Set("dateStart", f.Since.String())
	}
	if !f.Until.IsZero() {
		q.Set("dateEnd", f.Until.String())
	}
	switch {
	case f.PageSize < 0 || f.PageSize > 1000:
		return nil, fmt.Errorf("messages: page size %d: want 1-1000, or 0 for the service's default", f.PageSize)
	case f.PageSize > 0:
		q.Set("limit", strconv.Itoa(f.PageSize))
	}
	return q, nil
}

// Bound is one edge of a filter's time range: a whole UTC day or an
// instant. The zero Bound leaves that edge open.
type Bound struct {
	t   time.Time
	day bool
	set bool
}

// Day is the whole UTC day of year, month and day, normalised as time.Date
// does.
func Day(year int, month time.Month, day int) Bound {
	return Bound{t: time.Date(year, month, day, 0, 0, 0, 0, time.UTC), day: true, set: true}
}

// DayOf is the UTC day that holds t.
func DayOf(t time.Time) Bound {
	t = t.UTC()
	return Day(t.Year(), t.Month(), t.Day())
}

// Instant is the instant t.
func Instant(t time.Time) Bound { return Bound{t: t.UTC(), set: true} }

// ParseBound reads a day (2006-01-02) or an RFC 3339 instant
// (2006-01-02T15:04:05Z07:00, with any fraction of a second). The empty
// string is the zero Bound.
func ParseBound(s string) (Bound, error) {
	switch {
	case s == "":
		return Bound{}, nil
	case len(s) == len(time.DateOnly):
		t, err := time.Parse(time.DateOnly, s)
		if err != nil {
			return Bound{}, fmt.Errorf("%q is not a day YYYY-MM-DD", s)
		}
		return Day(t.Year(), t.Month(), t.Day()), nil
	}
	t, err := time.Parse(time.RFC3339Nano, strings.ToUpper(s))
	if err != nil {
		return Bound{}, errors.New("want a day YYYY-MM-DD or an RFC 3339 instant such as 2026-12-01T09:30:00Z, got " + strconv.Quote(s))
	}
	return Instant(t), nil
}

// IsZero tells whether b leaves its edge open.
func (b Bound) IsZero() bool { return !b.set }

// IsDay tells whether b is a whole day.
func (b Bound) IsDay() bool { return b.set && b.day }

// Time is the start of b's day, or b's instant, in UTC.
func (b Bound) Time() time.Time { return b.t }

// String is b as the API takes it: YYYY-MM-DD for a day, RFC 3339 in UTC for
// an instant, empty for the zero Bound.
func (b Bound) String() string {
	switch {
	case !b.set:
		return ""
	case b.day:
		return b.t.Format(time.DateOnly)
	}
	return b.t.Format(time.RFC3339Nano)
}
