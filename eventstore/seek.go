package eventstore

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// SequenceAt returns the sequence of the first event stored at or after t,
// or the next sequence to be used when every event is older.
func (s *Store) SequenceAt(ctx context.Context, t time.Time) (uint64, error) {
	info, err := s.stream.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("seek: %w", unavailable(err))
	}
	if info.State.Msgs == 0 || info.State.LastTime.Before(t) {
		return info.State.LastSeq + 1, nil
	}
	cons, err := s.stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{
		DeliverPolicy: jetstream.DeliverByStartTimePolicy,
		OptStartTime:  &t,
	})
	if err != nil {
		return 0, fmt.Errorf("seek %s: %w", t.Format(time.RFC3339), unavailable(err))
	}
	msg, err := cons.Next(jetstream.FetchMaxWait(5 * time.Second))
	if err != nil {
		return 0, fmt.Errorf("seek %s: %w", t.Format(time.RFC3339), unavailable(err))
	}
	meta, err := msg.Metadata()
	if err != nil {
		return 0, fmt.Errorf("seek: %w", err)
	}
	return meta.Sequence.Stream, nil
}
