package readmodel

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"golang.org/x/sync/errgroup"
)

// The span of the model is the years that hold counts and the partitions
// that folded any message: a count reads the documents of those years, and
// a list without a tag merges the slots of those partitions.
//
// Each partition keeps its part in a document of its own, which only its
// writer updates. A document shared by all of them would lose updates on
// any store that runs an update as a read and a write of the whole
// document, as the embedded FerretDB does: two partitions widening it at
// once would each write back what it read, and one partition's messages
// would vanish from every list and count of all tags. A writer also makes
// sure that every partition below its own has a document, empty where that
// partition counted nothing yet, by inserting it, which a store refuses
// when the document exists. So the documents of the partitions that folded
// are those of 0, 1, 2, … up to the first that is missing.

// legacySpanID names the one span document of a model folded before each
// partition kept its own. A writer carries its years and partitions into
// the documents of its partitions, and a reader of a model that has none
// yet reads it instead.
const legacySpanID = "span"

// spanID names the span document of partition.
func spanID(partition int) string { return "span/p" + strconv.Itoa(partition) }

// span is the years that have counts, and how many partitions; the zero
// span holds none.
type span struct {
	First      int `bson:"first"`
	Last       int `bson:"last"`
	Partitions int `bson:"partitions"`
}

// union is the least span that holds both s and o.
func (s span) union(o span) span {
	switch {
	case s.Partitions == 0:
		return o
	case o.Partitions == 0:
		return s
	}
	return span{First: min(s.First, o.First), Last: max(s.Last, o.Last), Partitions: max(s.Partitions, o.Partitions)}
}

// with is s widened to hold a count of year in partition.
func (s span) with(year, partition int) span {
	return s.union(span{First: year, Last: year, Partitions: partition + 1})
}

// partitionSpan is the span document of one partition; a partition marked
// by a later one before it counted anything has no years.
type partitionSpan struct {
	First *int `bson:"first"`
	Last  *int `bson:"last"`
}

// widenSpan makes the span of partition include the years of changes,
// unless this store has done so already.
func (s *Store) widenSpan(ctx context.Context, partition int, changes []Change) error {
	var want span
	for _, c := range changes {
		want = want.with(c.Message.CreatedAt.UTC().Year(), partition)
	}
	if want.Partitions == 0 {
		return nil
	}
	s.spanMu.Lock()
	have := s.spanned[partition]
	done := have.union(want) == have && s.marked > partition
	s.spanMu.Unlock()
	if done {
		return nil
	}
	return s.widen(ctx, partition, want)
}

// widen makes the span document of partition include the years of want,
// and then marks the partitions below it.
func (s *Store) widen(ctx context.Context, partition int, want span) error {
	s.spanMu.Lock()
	first := s.marked == 0
	s.spanMu.Unlock()
	top := partition
	if first {
		legacy, err := s.readLegacySpan(ctx)
		if err != nil {
			return err
		}
		if legacy.Partitions > 0 {
			want.First, want.Last = min(want.First, legacy.First), max(want.Last, legacy.Last)
			top = max(top, legacy.Partitions-1)
		}
	}
	for {
		// $min and $max only widen: a writer that lost its partition
		// while paused cannot narrow what the next one wrote.
		_, err := s.counts.UpdateOne(ctx, bson.M{"_id": spanID(partition)},
			bson.M{"$min": bson.M{"first": want.First}, "$max": bson.M{"last": want.Last}},
			options.UpdateOne().SetUpsert(true))
		if mongo.IsDuplicateKeyError(err) {
			continue // marked meanwhile: widen what is there
		}
		if err != nil {
			return fmt.Errorf("count span: %w", unavailable(err))
		}
		break
	}
	if err := s.mark(ctx, partition, top); err != nil {
		return err
	}
	s.spanMu.Lock()
	defer s.spanMu.Unlock()
	s.spanned[partition] = s.spanned[partition].union(want)
	return nil
}

// mark makes sure that every partition through top but partition has a
// span document, inserting an empty one where none is, once per store.
func (s *Store) mark(ctx context.Context, partition, top int) error {
	s.spanMu.Lock()
	from := s.marked
	s.spanMu.Unlock()
	for p := from; p <= top; p++ {
		if p == partition {
			continue
		}
		_, err := s.counts.InsertOne(ctx, bson.M{"_id": spanID(p)})
		if err != nil && !mongo.IsDuplicateKeyError(err) {
			return fmt.Errorf("count span: %w", unavailable(err))
		}
	}
	s.spanMu.Lock()
	defer s.spanMu.Unlock()
	s.marked = max(s.marked, top+1)
	return nil
}

// spanWave is how many span documents a reader asks for at once.
const spanWave = 8

// readSpan returns the years and partitions that hold counts: it reads the
// span documents of the partitions, spanWave at once, up to the first that
// is missing.
func (s *Store) readSpan(ctx context.Context) (span, error) {
	var sp span
	years := false
	for from := 0; sp.Partitions == from; from += spanWave {
		docs, err := s.readSpans(ctx, from)
		if err != nil {
			return span{}, err
		}
		for i, doc := range docs {
			if doc == nil {
				break
			}
			sp.Partitions = from + i + 1
			switch {
			case doc.First == nil || doc.Last == nil:
			case !years:
				sp.First, sp.Last, years = *doc.First, *doc.Last, true
			default:
				sp.First, sp.Last = min(sp.First, *doc.First), max(sp.Last, *doc.Last)
			}
		}
	}
	if sp.Partitions > 0 {
		return sp, nil
	}
	return s.readLegacySpan(ctx)
}

// readSpans reads the span documents of the spanWave partitions from on,
// at once; a missing one is nil.
func (s *Store) readSpans(ctx context.Context, from int) ([]*partitionSpan, error) {
	docs := make([]*partitionSpan, spanWave)
	g, ctx := errgroup.WithContext(ctx)
	for i := range docs {
		g.Go(func() error {
			var doc partitionSpan
			err := s.counts.FindOne(ctx, bson.M{"_id": spanID(from + i)}).Decode(&doc)
			switch {
			case errors.Is(err, mongo.ErrNoDocuments):
				return nil
			case err != nil:
				return fmt.Errorf("count span: %w", unavailable(err))
			}
			docs[i] = &doc
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return docs, nil
}

// readLegacySpan returns the span of a model folded before each partition
// kept its own, the zero span when there is none.
func (s *Store) readLegacySpan(ctx context.Context) (span, error) {
	var sp span
	err := s.counts.FindOne(ctx, bson.M{"_id": legacySpanID}).Decode(&sp)
	if err != nil && !errors.Is(err, mongo.ErrNoDocuments) {
		return span{}, fmt.Errorf("count span: %w", unavailable(err))
	}
	return sp, nil
}
