package audit

import (
	"context"
	"fmt"
)

// ParkedLog is the event log with its dead-letter stream.
type ParkedLog interface {
	Log
	Parked(ctx context.Context) (map[uint64]bool, error)
}

// Verify compares model with the log as Compare does, with the events
// parked in the dead-letter stream, read first, as Options.Parked.
func Verify(ctx context.Context, events ParkedLog, model Model, opts Options) (Report, error) {
	parked, err := events.Parked(ctx)
	if err != nil {
		return Report{}, err
	}
	opts.Parked = parked
	return Compare(ctx, events, model, opts)
}

// Err is nil when the model agrees with the log, and otherwise an error
// that says how many differences there are.
func (r Report) Err() error {
	switch r.DiffCount {
	case 0:
		return nil
	case 1:
		return fmt.Errorf("1 difference")
	}
	return fmt.Errorf("%d differences", r.DiffCount)
}
