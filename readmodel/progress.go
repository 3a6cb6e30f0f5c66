package readmodel

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/messages-io/messages/message"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
)

// Progress is how far one generation has folded the log: the checkpoint of
// each partition read, and when it last moved. A partition with no
// checkpoint has folded nothing and is at 0.
type Progress struct {
	Generation int
	Folded     map[int]uint64
	MovedAt    map[int]time.Time
}

// Progress reads the checkpoints of the given partitions, or of every
// partition when none is given. One partition is one read by _id.
func (s *Store) Progress(ctx context.Context, partitions ...int) (Progress, error) {
	p := Progress{Generation: s.generation, Folded: map[int]uint64{}, MovedAt: map[int]time.Time{}}
	type checkpoint struct {
		ID        string    `bson:"_id"`
		Seq       int64     `bson:"seq"`
		UpdatedAt time.Time `bson:"updatedAt"`
	}
	var docs []checkpoint
	if len(partitions) == 1 {
		var d checkpoint
		err := s.checkpoints.FindOne(ctx, bson.M{"_id": checkpointID(partitions[0])}).Decode(&d)
		switch {
		case errors.Is(err, mongo.ErrNoDocuments):
		case err != nil:
			return Progress{}, fmt.Errorf("checkpoints: %w", unavailable(err))
		default:
			docs = append(docs, d)
		}
	} else {
		// The collection holds one small document per partition.
		cur, err := s.checkpoints.Find(ctx, bson.M{})
		if err != nil {
			return Progress{}, fmt.Errorf("checkpoints: %w", unavailable(err))
		}
		if err := cur.All(ctx, &docs); err != nil {
			return Progress{}, fmt.Errorf("checkpoints: %w", unavailable(err))
		}
	}
	want := map[int]bool{}
	for _, part := range partitions {
		want[part] = true
		p.Folded[part] = 0
	}
	for _, d := range docs {
		part, err := strconv.Atoi(d.ID[min(1, len(d.ID)):])
		if err != nil || len(partitions) > 0 && !want[part] {
			continue
		}
		p.Folded[part] = uint64(d.Seq)
		p.MovedAt[part] = d.UpdatedAt.UTC()
	}
	return p, nil
}

// Progress reads the checkpoints of the active generation.
func (l *Live) Progress(ctx context.Context, partitions ...int) (Progress, error) {
	return l.Current().Progress(ctx, partitions...)
}

// Stored returns the message with id and the sequence of the event that
// stored it: another event of the same id, such as a repeated import, was
// not folded into it.
func (s *Store) Stored(ctx context.Context, id string) (message.Message, uint64, error) {
	var d doc
	err := s.messages.FindOne(ctx, bson.M{"_id": id}).Decode(&d)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return message.Message{}, 0, fmt.Errorf("message %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return message.Message{}, 0, fmt.Errorf("message %s: %w", id, unavailable(err))
	}
	return d.message(), uint64(d.Seq), nil
}

// Stored reads a message of the active generation with its sequence.
func (l *Live) Stored(ctx context.Context, id string) (message.Message, uint64, error) {
	return l.Current().Stored(ctx, id)
}
