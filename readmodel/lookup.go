package readmodel

import (
	"context"
	"errors"
	"fmt"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// SequenceOf returns the stream sequence of the event that stored the message
// with id.
func (s *Store) SequenceOf(ctx context.Context, id string) (uint64, error) {
	var d struct {
		Seq int64 `bson:"seq"`
	}
	err := s.messages.FindOne(ctx, bson.M{"_id": id}, options.FindOne().SetProjection(bson.M{"seq": 1})).Decode(&d)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return 0, fmt.Errorf("message %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return 0, fmt.Errorf("message %s: %w", id, unavailable(err))
	}
	return uint64(d.Seq), nil
}
