package readmodel

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// Counts are kept per UTC day, under one tag and across all tags, so that a
// count over any range reads one small document per day, however many
// messages the days hold. Only the partial days at the edges of an RFC 3339
// range are counted from the messages themselves.
//
// A count document is changed by one partition only: a tag lives in one
// partition, and the all-tags count of a day is kept per partition and summed
// when read. Each document records the sequence of the last event it counted;
// since a partition is folded in log order, an event at or before that
// sequence was counted already. That makes counting exactly-once without
// transactions, whatever failed between the writes of a batch.

// allTags is the count key of every tag; its documents are per partition.
const allTags = "*"

// countDoc is one day's count under one key.
type countDoc struct {
	ID  string    `bson:"_id"`
	Key string    `bson:"k"`
	Day time.Time `bson:"day"`
	N   int64     `bson:"n"`
	Seq int64     `bson:"seq"`
}

// bucket is the count document an event adds to.
type bucket struct {
	id  string
	key string
	day time.Time
}

func day(t time.Time) time.Time { return t.UTC().Truncate(24 * time.Hour) }

func tagBucket(tag string, t time.Time) bucket {
	d := day(t)
	return bucket{id: tag + "/" + d.Format(time.DateOnly), key: tag, day: d}
}

func allBucket(partition int, t time.Time) bucket {
	d := day(t)
	return bucket{id: allTags + "/p" + strconv.Itoa(partition) + "/" + d.Format(time.DateOnly), key: allTags, day: d}
}

// addCounts adds each change, once, to the counts of its tag and of all tags
// for its day.
func (s *Store) addCounts(ctx context.Context, partition int, changes []Change) error {
	seqs := map[bucket][]int64{}
	var order []bucket
	for _, c := range changes {
		for _, b := range []bucket{tagBucket(c.Message.Tag, c.Message.CreatedAt), allBucket(partition, c.Message.CreatedAt)} {
			if _, ok := seqs[b]; !ok {
				order = append(order, b)
			}
			seqs[b] = append(seqs[b], int64(c.Sequence))
		}
	}
	// One read for every bucket of the batch: a store that scans on every
	// lookup (FerretDB) pays for one scan instead of one per bucket.
	ids := make([]string, len(order))
	for i, b := range order {
		ids[i] = b.id
	}
	cur, err := s.counts.Find(ctx, bson.M{"_id": bson.M{"$in": ids}})
	if err != nil {
		return fmt.Errorf("read counts: %w", unavailable(err))
	}
	var docs []countDoc
	if err := cur.All(ctx, &docs); err != nil {
		return fmt.Errorf("read counts: %w", unavailable(err))
	}
	have := make(map[string]countDoc, len(docs))
	for _, d := range docs {
		have[d.ID] = d
	}
	for _, b := range order {
		if err := s.addCount(ctx, b, have[b.id], seqs[b]); err != nil {
			return err
		}
	}
	return nil
}

// addCount adds to bucket b, read as cur, the events of seqs (increasing)
// that it has not counted yet.
//
// A bucket's state only grows: a later sequence never has a smaller count.
// So the write raises both fields to at least the new state ($max) instead
// of comparing and setting: a writer that read a stale state, such as a
// reducer that lost its partition while paused, can never lower a newer
// state, and two writers of the same batch write the same state. The filter
// is the _id alone, which every MongoDB-wire store serves as a point update.
func (s *Store) addCount(ctx context.Context, b bucket, cur countDoc, seqs []int64) error {
	for {
		n := 0
		for _, seq := range seqs {
			if seq > cur.Seq {
				n++
			}
		}
		if n == 0 {
			return nil
		}
		_, err := s.counts.UpdateOne(ctx,
			bson.M{"_id": b.id},
			bson.M{"$max": bson.M{"n": cur.N + int64(n), "seq": seqs[len(seqs)-1]}, "$set": bson.M{"k": b.key, "day": b.day}},
			options.UpdateOne().SetUpsert(true))
		switch {
		case mongo.IsDuplicateKeyError(err):
			// Created meanwhile: read it and count again.
			cur = countDoc{}
			if err := s.counts.FindOne(ctx, bson.M{"_id": b.id}).Decode(&cur); err != nil && !errors.Is(err, mongo.ErrNoDocuments) {
				return fmt.Errorf("read count %s: %w", b.id, unavailable(err))
			}
			continue
		case err != nil:
			return fmt.Errorf("count %s: %w", b.id, unavailable(err))
		}
		return nil
	}
}

// Count returns how many messages the filter selects: whole days from the
// counts, the partial days at the edges from the messages.
func (s *Store) Count(ctx context.Context, f Filter) (int64, error) {
	first, end := f.From, f.To // whole days are [first, end)
	if !first.IsZero() {
		if first = day(f.From); first.Before(f.From) {
			first = first.Add(24 * time.Hour)
		}
	}
	if !end.IsZero() {
		end = day(f.To)
	}
	if !first.IsZero() && !end.IsZero() && !first.Before(end) {
		return s.CountByScan(ctx, f) // no whole day inside
	}
	n, err := s.sumDays(ctx, f.Tag, first, end)
	if err != nil {
		return 0, err
	}
	for _, edge := range []Filter{{Tag: f.Tag, From: f.From, To: first}, {Tag: f.Tag, From: end, To: f.To}} {
		if edge.From.IsZero() || edge.To.IsZero() || !edge.From.Before(edge.To) {
			continue
		}
		m, err := s.CountByScan(ctx, edge)
		if err != nil {
			return 0, err
		}
		n += m
	}
	return n, nil
}

// sumDays adds up the day counts of tag (all tags when empty) over
// [first, end); a zero bound leaves that side open.
func (s *Store) sumDays(ctx context.Context, tag string, first, end time.Time) (int64, error) {
	key := tag
	if key == "" {
		key = allTags
	}
	match := bson.M{"k": key}
	days := bson.M{}
	if !first.IsZero() {
		days["$gte"] = first
	}
	if !end.IsZero() {
		days["$lt"] = end
	}
	if len(days) > 0 {
		match["day"] = days
	}
	cur, err := s.counts.Aggregate(ctx, mongo.Pipeline{
		{{Key: "$match", Value: match}},
		{{Key: "$group", Value: bson.M{"_id": nil, "n": bson.M{"$sum": "$n"}}}},
	})
	if err != nil {
		return 0, fmt.Errorf("sum counts: %w", unavailable(err))
	}
	var out []struct {
		N int64 `bson:"n"`
	}
	if err := cur.All(ctx, &out); err != nil {
		return 0, fmt.Errorf("sum counts: %w", unavailable(err))
	}
	if len(out) == 0 {
		return 0, nil
	}
	return out[0].N, nil
}

// CountByScan counts the messages a filter selects from the messages
// themselves, without the day counts.
func (s *Store) CountByScan(ctx context.Context, f Filter) (int64, error) {
	n, err := s.messages.CountDocuments(ctx, f.bson())
	if err != nil {
		return 0, fmt.Errorf("count: %w", unavailable(err))
	}
	return n, nil
}
