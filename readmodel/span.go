package readmodel

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
)

// The span of the model is the years that hold counts and the partitions
// that folded any message: a count reads the documents of those years, and
// a list without a tag merges the slots of those partitions.
//
// It is kept as a chain of versions, each a document inserted once and
// never changed that holds the whole span: the version before it, widened.
// A writer that widens the span reads the newest version and inserts the
// next one; when another writer inserted it first, the store refuses the
// insert, and the writer reads that version and tries the one after. So no
// widening is lost, even on a store that runs an update as a read and then
// a write of the whole document, as the embedded FerretDB does: two
// partitions widening one shared document at once would each write back
// what it read, and one partition's messages would vanish from every list
// and count of all tags. A store remembers the newest version it saw, and
// a reader asks only for the one after it: while nothing widens, one read
// by _id that finds nothing.

// legacySpanID names the one span document of a model folded before the
// span was kept as versions. The first version carries its years and
// partitions over, and a reader of a model with no version reads it
// instead.
const legacySpanID = "span"

// spanVersionID names version n of the span. No count document is named
// so: a tag holds no '*'.
func spanVersionID(n int) string { return allTags + "span/" + strconv.Itoa(n) }

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

// spanVersion is one version of the span as stored.
type spanVersion struct {
	ID   string `bson:"_id"`
	Span span   `bson:",inline"`
}

// widenSpan makes the span include the years of changes in partition,
// unless the newest version this store saw does already.
func (s *Store) widenSpan(ctx context.Context, partition int, changes []Change) error {
	var want span
	for _, c := range changes {
		want = want.with(c.Message.CreatedAt.UTC().Year(), partition)
	}
	s.spanMu.Lock()
	done := s.spanned.union(want) == s.spanned
	s.spanMu.Unlock()
	if done {
		return nil
	}
	return s.widen(ctx, want)
}

// widen inserts the next version of the span, widened to hold want, unless
// the newest version holds it already.
func (s *Store) widen(ctx context.Context, want span) error {
	for {
		n, sp, err := s.newestSpan(ctx)
		if err != nil {
			return err
		}
		if n == 0 {
			legacy, err := s.readLegacySpan(ctx)
			if err != nil {
				return err
			}
			want = want.union(legacy)
		}
		next := sp.union(want)
		if next == sp {
			return nil
		}
		_, err = s.counts.InsertOne(ctx, spanVersion{ID: spanVersionID(n + 1), Span: next})
		if mongo.IsDuplicateKeyError(err) {
			continue // another writer widened it first
		}
		if err != nil {
			return fmt.Errorf("count span: %w", unavailable(err))
		}
		s.sawSpan(n+1, next)
		return nil
	}
}

// newestSpan returns the newest version of the span and its number, 0 when
// there is none, reading on from the newest this store saw.
func (s *Store) newestSpan(ctx context.Context) (int, span, error) {
	s.spanMu.Lock()
	n, sp := s.spanVersion, s.spanned
	s.spanMu.Unlock()
	for {
		var next span
		err := s.counts.FindOne(ctx, bson.M{"_id": spanVersionID(n + 1)}).Decode(&next)
		if errors.Is(err, mongo.ErrNoDocuments) {
			break
		}
		if err != nil {
			return 0, span{}, fmt.Errorf("count span: %w", unavailable(err))
		}
		n, sp = n+1, next
	}
	s.sawSpan(n, sp)
	return n, sp, nil
}

// sawSpan records that version n of the span is sp, unless the store saw a
// newer one.
func (s *Store) sawSpan(n int, sp span) {
	s.spanMu.Lock()
	defer s.spanMu.Unlock()
	if n > s.spanVersion {
		s.spanVersion, s.spanned = n, sp
	}
}

// readSpan returns the years and partitions that hold counts.
func (s *Store) readSpan(ctx context.Context) (span, error) {
	n, sp, err := s.newestSpan(ctx)
	if err != nil || n > 0 {
		return sp, err
	}
	return s.readLegacySpan(ctx)
}

// readLegacySpan returns the span of a model folded before the span was
// kept as versions, the zero span when there is none.
func (s *Store) readLegacySpan(ctx context.Context) (span, error) {
	var sp span
	err := s.counts.FindOne(ctx, bson.M{"_id": legacySpanID}).Decode(&sp)
	if err != nil && !errors.Is(err, mongo.ErrNoDocuments) {
		return span{}, fmt.Errorf("count span: %w", unavailable(err))
	}
	return sp, nil
}
