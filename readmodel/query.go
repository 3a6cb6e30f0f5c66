package readmodel

import (
	"context"
	"fmt"
	"time"

	"github.com/messages-io/messages/message"
	"github.com/oklog/ulid/v2"
	"go.mongodb.org/mongo-driver/v2/bson"
)

// Filter selects messages: under one tag, created in [From, To). An open
// bound leaves that side open.
type Filter struct {
	Tag  string // stored (lower-case) form
	From Bound
	To   Bound
}

// Bound is one side of a time range: an instant, or open. Every instant is
// a bound, the zero time.Time among them; only the zero Bound is open.
type Bound struct {
	at  time.Time
	set bool
}

// At is the bound at t.
func At(t time.Time) Bound { return Bound{at: t.UTC(), set: true} }

// Time returns the bound's instant, false when it is open.
func (b Bound) Time() (time.Time, bool) { return b.at, b.set }

// String is the bound as RFC 3339, or "open".
func (b Bound) String() string {
	if !b.set {
		return "open"
	}
	return b.at.Format(time.RFC3339Nano)
}

// Page asks for the newest messages under a filter that are older than the
// message with id Before (all when empty), at most Limit of them.
type Page struct {
	Filter
	Before string
	Limit  int
}

// IDFloor returns the smallest message id whose time is at or after t. Message
// ids are ULIDs carrying their creation time in milliseconds, so a time range
// is an id range; t is rounded up to the next millisecond.
func IDFloor(t time.Time) string {
	ms := t.UnixMilli()
	if t.After(time.UnixMilli(ms)) {
		ms++
	}
	switch {
	case ms < 0:
		ms = 0
	case uint64(ms) > ulid.MaxTime():
		ms = int64(ulid.MaxTime())
	}
	var id ulid.ULID
	_ = id.SetTime(uint64(ms))
	return id.String()
}

func (f Filter) bson() bson.M {
	q := bson.M{}
	if f.Tag != "" {
		q["tag"] = f.Tag
	}
	ids := bson.M{}
	r := f.ids()
	if r.lo != "" {
		ids["$gte"] = r.lo
	}
	if r.hi != "" {
		ids["$lt"] = r.hi
	}
	if len(ids) > 0 {
		q["_id"] = ids
	}
	return q
}

// ids is the range of message ids the filter selects.
func (f Filter) ids() idRange {
	var r idRange
	if t, ok := f.From.Time(); ok {
		r.lo = IDFloor(t)
	}
	if t, ok := f.To.Time(); ok {
		r.hi = IDFloor(t)
	}
	return r
}

// keys returns the slot keys that hold the messages of tag: the tag's own,
// or with no tag that of all tags in every partition.
func (s *Store) keys(ctx context.Context, tag string) ([]string, error) {
	if tag != "" {
		return []string{tag}, nil
	}
	sp, err := s.readSpan(ctx)
	if err != nil {
		return nil, err
	}
	keys := make([]string, sp.Partitions)
	for p := range keys {
		keys[p] = allKey(p)
	}
	return keys, nil
}

// List returns one page of messages, newest first. It walks the slots of
// the filter's keys down from the cursor, so a page reads the slots on the
// way to its first message and those that hold its ids, wherever it starts
// and however many messages are stored, and then each message by its id.
func (s *Store) List(ctx context.Context, p Page) ([]message.Message, error) {
	r := p.Filter.ids()
	if p.Before != "" && (r.hi == "" || p.Before < r.hi) {
		r.hi = p.Before
	}
	keys, err := s.keys(ctx, p.Tag)
	if err != nil {
		return nil, fmt.Errorf("list: %w", err)
	}
	ids, err := s.newest(ctx, keys, r, p.Limit)
	if err != nil {
		return nil, fmt.Errorf("list: %w", err)
	}
	return s.getAll(ctx, ids)
}

// getAll returns the messages with ids, in their order, reading several at
// once. A message is stored before its id is placed in a slot, so each is
// there.
func (s *Store) getAll(ctx context.Context, ids []string) ([]message.Message, error) {
	out := make([]message.Message, len(ids))
	err := atOnce(ctx, len(ids), func(ctx context.Context, i int) (err error) {
		out[i], err = s.Get(ctx, ids[i])
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("list: %w", err)
	}
	return out, nil
}
