package readmodel

import (
	"context"
	"fmt"
	"time"

	"github.com/messages-io/messages/message"
	"github.com/oklog/ulid/v2"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// Filter selects messages: under one tag, created in [From, To). Zero values
// leave that side open.
type Filter struct {
	Tag  string // stored (lower-case) form
	From time.Time
	To   time.Time
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
	if !f.From.IsZero() {
		ids["$gte"] = IDFloor(f.From)
	}
	if !f.To.IsZero() {
		ids["$lt"] = IDFloor(f.To)
	}
	if len(ids) > 0 {
		q["_id"] = ids
	}
	return q
}

// List returns one page of messages, newest first.
func (s *Store) List(ctx context.Context, p Page) ([]message.Message, error) {
	q := p.Filter.bson()
	if p.Before != "" {
		ids, _ := q["_id"].(bson.M)
		if ids == nil {
			ids = bson.M{}
		}
		if lt, ok := ids["$lt"].(string); !ok || p.Before < lt {
			ids["$lt"] = p.Before
		}
		q["_id"] = ids
	}
	cur, err := s.messages.Find(ctx, q, options.Find().
		SetSort(bson.D{{Key: "_id", Value: -1}}).
		SetLimit(int64(p.Limit)))
	if err != nil {
		return nil, fmt.Errorf("list: %w", unavailable(err))
	}
	var docs []doc
	if err := cur.All(ctx, &docs); err != nil {
		return nil, fmt.Errorf("list: %w", unavailable(err))
	}
	out := make([]message.Message, len(docs))
	for i, d := range docs {
		out[i] = d.message()
	}
	return out, nil
}
