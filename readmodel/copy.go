package readmodel

import (
	"context"
	"fmt"

	"github.com/messages-io/messages/message"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// CopyBefore fills s, a new generation, with the messages of from that were
// stored by events before sequence seq, and places and counts them afresh, so that a
// partial replay can fold the log from seq on. partition maps a tag to its
// partition. It returns how many messages it copied.
func (s *Store) CopyBefore(ctx context.Context, from *Store, seq uint64, partition func(tag string) int) (uint64, error) {
	counts := map[string]countDoc{}
	var sp span
	var batch []Change
	var copied uint64
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		fresh, new, err := s.insert(ctx, batch)
		if err != nil {
			return fmt.Errorf("copy messages: %w", err)
		}
		byPartition := map[int][]Change{}
		for _, c := range fresh {
			p := partition(c.Message.Tag)
			byPartition[p] = append(byPartition[p], c)
		}
		for p, changes := range byPartition {
			if err := s.addSlots(ctx, nil, p, changes, new); err != nil {
				return fmt.Errorf("copy slots: %w", err)
			}
		}
		batch = batch[:0]
		return nil
	}
	err := from.EachMessage(ctx, func(m message.Message, stored uint64) error {
		if stored >= seq {
			return nil
		}
		batch = append(batch, Change{Message: m, Sequence: stored})
		copied++
		for _, b := range []bucket{tagBucket(m.Tag, m.CreatedAt), allBucket(partition(m.Tag), m.CreatedAt)} {
			c, ok := counts[b.id]
			if !ok {
				c = countDoc{ID: b.id, Key: b.key, Year: b.year, Days: map[string]int64{}}
				counts[b.id] = c
			}
			c.Days[dayField(m.CreatedAt)]++
		}
		sp = sp.with(m.CreatedAt.UTC().Year(), partition(m.Tag))
		if len(batch) >= 1000 {
			return flush()
		}
		return nil
	})
	if err != nil {
		return copied, err
	}
	if err := flush(); err != nil {
		return copied, err
	}
	if sp.Partitions > 0 {
		if err := s.widen(ctx, sp); err != nil {
			return copied, err
		}
	}
	// Every copied message is counted as of the event before seq, so that
	// folding from seq on counts each later event once.
	for _, c := range counts {
		c.Seq = int64(seq - 1)
		if _, err := s.counts.ReplaceOne(ctx, bson.M{"_id": c.ID}, c, options.Replace().SetUpsert(true)); err != nil {
			return copied, fmt.Errorf("copy counts: %w", unavailable(err))
		}
	}
	return copied, nil
}
