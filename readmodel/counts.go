package readmodel

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
)

// allTags is the count key of every tag; its documents are per partition.
const allTags = "*"

// countDoc is one year's day counts under one key.
type countDoc struct {
	ID   string    `bson:"_id"`
	Key  string    `bson:"k"`
	Year time.Time `bson:"y"`
	Seq  int64     `bson:"seq"`
	// Days maps the field of a day ("01-02") to its count.
	Days map[string]int64 `bson:",inline"`
}

// bucket is the count document an event adds to.
type bucket struct {
	id   string
	key  string
	year time.Time
}

func day(t time.Time) time.Time { return t.UTC().Truncate(24 * time.Hour) }

func yearOf(t time.Time) time.Time {
	return time.Date(t.UTC().Year(), time.January, 1, 0, 0, 0, 0, time.UTC)
}

// dayLayout names the field of a day in its year's document.
const dayLayout = "01-02"

// dayField is the field of t's day in its year's document.
func dayField(t time.Time) string { return t.UTC().Format(dayLayout) }

// fieldDay is the day a field of the document of year stands for, or false
// for a field that is not a day.
func fieldDay(year time.Time, field string) (time.Time, bool) {
	d, err := time.Parse(dayLayout, field)
	if err != nil {
		return time.Time{}, false
	}
	return time.Date(year.Year(), d.Month(), d.Day(), 0, 0, 0, 0, time.UTC), true
}

func tagID(tag string, year int) string { return tag + "/" + strconv.Itoa(year) }

func allID(partition, year int) string {
	return allTags + "/p" + strconv.Itoa(partition) + "/" + strconv.Itoa(year)
}

func tagBucket(tag string, t time.Time) bucket {
	y := yearOf(t)
	return bucket{id: tagID(tag, y.Year()), key: tag, year: y}
}

func allBucket(partition int, t time.Time) bucket {
	y := yearOf(t)
	return bucket{id: allID(partition, y.Year()), key: allTags, year: y}
}

// counted is one event as a count document sees it.
type counted struct {
	seq int64
	day string // field of its day
}

// addCounts adds each change, once, to the counts of its tag and of all tags
// for its day, in ordered bulk writes (see writeSlots): written at once as
// commands of their own, they would only contend for a store's one writer.
// k, when not nil, is what the partition's writer knows of them.
func (s *Store) addCounts(ctx context.Context, k *known, partition int, changes []Change) error {
	events := map[bucket][]counted{}
	var order []bucket
	for _, c := range changes {
		e := counted{seq: int64(c.Sequence), day: dayField(c.Message.CreatedAt)}
		for _, b := range []bucket{tagBucket(c.Message.Tag, c.Message.CreatedAt), allBucket(partition, c.Message.CreatedAt)} {
			if _, ok := events[b]; !ok {
				order = append(order, b)
			}
			events[b] = append(events[b], e)
		}
	}
	var reread map[string]bool // documents created meanwhile, read afresh
	for tries := 0; len(order) > 0; tries++ {
		var models []mongo.WriteModel
		var written []countDoc
		for _, b := range order {
			w, err := s.countWrite(ctx, k, b, events[b], reread[b.id])
			if err != nil {
				return err
			}
			if w == nil {
				continue
			}
			models = append(models, w.model)
			written = append(written, w.doc)
		}
		if len(models) == 0 {
			return nil
		}
		done, err := s.bulkWrite(ctx, s.counts, models)
		switch {
		case err == nil:
		case mongo.IsDuplicateKeyError(err) && tries < 3:
			// Created meanwhile: the writes before it landed; read it and
			// count again from there.
		default:
			return fmt.Errorf("counts: %w", unavailable(err))
		}
		for _, d := range written[:done] {
			k.setCount(d)
		}
		if done == len(models) {
			return nil
		}
		first := slices.IndexFunc(order, func(b bucket) bool { return b.id == written[done].ID })
		order = order[first:]
		reread = map[string]bool{written[done].ID: true}
	}
	return nil
}

// countWrite is one count document's write and the document it leaves.
type countWrite struct {
	model mongo.WriteModel
	doc   countDoc
}

// countWrite returns the write that adds to the document of b the events
// (in log order) that it has not counted yet, nil when it counted them all.
//
// A document's state only grows: at a later sequence no day has a smaller
// count. So the write raises each field to at least the new state ($max)
// instead of comparing and setting: a writer that read a stale state, such
// as a reducer that lost its partition while paused, can never lower a newer
// state, and two writers of the same batch write the same state. Both the
// read and the write filter on the _id alone, which every MongoDB-wire store
// serves as a point lookup. A document that k knows is not read, unless
// fresh: k holds it as this writer wrote it.
func (s *Store) countWrite(ctx context.Context, k *known, b bucket, events []counted, fresh bool) (*countWrite, error) {
	cur, isKnown := k.count(b.id)
	if !isKnown || fresh {
		cur = countDoc{}
		if err := s.counts.FindOne(ctx, bson.M{"_id": b.id}).Decode(&cur); err != nil && !errors.Is(err, mongo.ErrNoDocuments) {
			return nil, fmt.Errorf("read count %s: %w", b.id, unavailable(err))
		}
	}
	raise := bson.M{}
	for _, e := range events {
		if e.seq <= cur.Seq {
			continue
		}
		n, ok := raise[e.day].(int64)
		if !ok {
			n = cur.Days[e.day]
		}
		raise[e.day] = n + 1
	}
	if len(raise) == 0 {
		return nil, nil
	}
	raise["seq"] = events[len(events)-1].seq
	model := mongo.NewUpdateOneModel().SetFilter(bson.M{"_id": b.id}).
		SetUpdate(bson.M{"$max": raise, "$set": bson.M{"k": b.key, "y": b.year}}).SetUpsert(true)
	written := countDoc{ID: b.id, Key: b.key, Year: b.year, Seq: events[len(events)-1].seq, Days: maps.Clone(cur.Days)}
	if written.Days == nil {
		written.Days = map[string]int64{}
	}
	for field, n := range raise {
		if field != "seq" {
			written.Days[field] = max(written.Days[field], n.(int64))
		}
	}
	return &countWrite{model: model, doc: written}, nil
}

// Count returns how many messages the filter selects. A range of whole
// days is summed from the day counts; any other range from the slots, which
// count every child they hold: a count reads the slots on the way to each
// end of the range, per key.
func (s *Store) Count(ctx context.Context, f Filter) (int64, error) {
	if r := f.ids(); r.lo != "" && r.hi != "" && r.lo >= r.hi {
		return 0, nil
	}
	if wholeDay(f.From) && wholeDay(f.To) {
		return s.sumDays(ctx, f.Tag, f.From, f.To)
	}
	keys, err := s.keys(ctx, f.Tag)
	if err != nil {
		return 0, fmt.Errorf("count: %w", err)
	}
	n, err := s.countKeys(ctx, keys, f.ids())
	if err != nil {
		return 0, fmt.Errorf("count: %w", err)
	}
	return n, nil
}

// wholeDay reports whether b is open or the start of a UTC day.
func wholeDay(b Bound) bool {
	t, ok := b.Time()
	return !ok || t.Equal(day(t))
}

// sumDays adds up the day counts of tag (all tags when empty) over
// [from, to), both open or at the start of a day.
func (s *Store) sumDays(ctx context.Context, tag string, from, to Bound) (int64, error) {
	sp, err := s.readSpan(ctx)
	if err != nil || sp.Partitions == 0 {
		return 0, err // nothing counted yet
	}
	first, hasFirst := from.Time()
	end, hasEnd := to.Time()
	if hasFirst {
		sp.First = max(sp.First, first.Year())
	}
	if hasEnd {
		sp.Last = min(sp.Last, end.Add(-time.Nanosecond).Year())
	}
	var ids []string
	for y := sp.First; y <= sp.Last; y++ {
		if tag != "" {
			ids = append(ids, tagID(tag, y))
			continue
		}
		for p := range sp.Partitions {
			ids = append(ids, allID(p, y))
		}
	}
	var n int64
	for _, id := range ids {
		var doc countDoc
		err := s.counts.FindOne(ctx, bson.M{"_id": id}).Decode(&doc)
		if errors.Is(err, mongo.ErrNoDocuments) {
			continue
		}
		if err != nil {
			return 0, fmt.Errorf("counts: %w", unavailable(err))
		}
		doc.eachDay(func(d time.Time, k int64) {
			if (!hasFirst || !d.Before(first)) && (!hasEnd || d.Before(end)) {
				n += k
			}
		})
	}
	return n, nil
}

// eachDay calls fn with every day count of the document.
func (doc countDoc) eachDay(fn func(day time.Time, n int64)) {
	year := doc.Year.UTC()
	for f, k := range doc.Days {
		if d, ok := fieldDay(year, f); ok {
			fn(d, k)
		}
	}
}

// CountByScan counts the messages a filter selects from the messages
// themselves, without the day counts or the slots. It reads every message
// the filter selects, on a store that indexes the filter's fields, and every
// message stored on one that does not: the query API never asks it; tests
// and the bench hold the model's counts against it.
func (s *Store) CountByScan(ctx context.Context, f Filter) (int64, error) {
	n, err := s.messages.CountDocuments(ctx, f.bson())
	if err != nil {
		return 0, fmt.Errorf("count: %w", unavailable(err))
	}
	return n, nil
}
