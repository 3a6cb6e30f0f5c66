package eventstore

import (
	"context"
	"errors"
	"fmt"
)

// errFound stops a scan of the log at the event looked for.
var errFound = errors.New("found")

// FindMessage returns the first event of the message with id: the one at
// sequence hint when that is it, else the first found by reading the log
// from its start. Progress, when set, is told now and then how far the
// scan is, in sequences of the log's last. A message with no event in the
// log is ErrNotFound.
func (s *Store) FindMessage(ctx context.Context, id string, hint uint64, progress func(done, total uint64)) (Record, error) {
	if hint > 0 {
		rec, err := s.Get(ctx, hint)
		if rec.ID == id {
			return rec, nil
		}
		if err != nil && !errors.Is(err, ErrNotFound) && rec.Sequence == 0 {
			return Record{}, err
		}
	}
	end, err := s.LastSequence(ctx)
	if err != nil {
		return Record{}, err
	}
	var found Record
	err = s.Read(ctx, 1, func(rec Record) error {
		if progress != nil && rec.Sequence%256 == 0 {
			progress(rec.Sequence, end)
		}
		if rec.ID == id {
			found = rec
			return errFound
		}
		return nil
	})
	switch {
	case errors.Is(err, errFound):
		return found, nil
	case err != nil:
		return Record{}, err
	}
	return Record{}, fmt.Errorf("no event of message %s in the log: %w", id, ErrNotFound)
}
