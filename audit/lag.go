package audit

import (
	"context"
	"encoding/json"
	"time"

	"github.com/messages-io/messages/eventstore"
)

// Backlogs is the log as SampleLag reads it.
type Backlogs interface {
	Partitions() int
	BacklogAfter(ctx context.Context, partition int, after uint64) (eventstore.Backlog, error)
}

// Checkpoints is the read model as SampleLag reads it.
type Checkpoints interface {
	Checkpoints(ctx context.Context) (map[int]uint64, error)
}

// PartitionLag is how far a read model generation is behind the log in one
// partition.
type PartitionLag struct {
	Partition int `json:"partition"`
	// Last is the sequence of the partition's last event; Checkpoint that
	// of the last one folded.
	Last       uint64 `json:"lastSequence"`
	Checkpoint uint64 `json:"checkpoint"`
	// Pending counts the partition's events after the checkpoint, and
	// Waiting is how long the first of them has been in the log.
	Pending uint64        `json:"pending"`
	Waiting time.Duration `json:"-"`
	// Moved is how far the checkpoint moved since the previous sample.
	Moved uint64 `json:"moved"`
}

// Moving tells whether the partition's checkpoint moved since the previous
// sample, or it has nothing to fold.
func (p PartitionLag) Moving() bool { return p.Pending == 0 || p.Moved > 0 }

// MarshalJSON writes Waiting in seconds, and whether the partition is
// Moving.
func (p PartitionLag) MarshalJSON() ([]byte, error) {
	type fields PartitionLag
	return json.Marshal(struct {
		fields
		WaitingSeconds float64 `json:"waitingSeconds"`
		Moving         bool    `json:"moving"`
	}{fields(p), p.Waiting.Seconds(), p.Moving()})
}

// LagSample is the lag of every partition at one time.
type LagSample struct {
	At         time.Time
	Partitions []PartitionLag
}

// SampleLag reads each partition's checkpoint in model and the events of
// the log after it, from events. Moved is set from prev, when given: a sample taken a
// little earlier.
func SampleLag(ctx context.Context, events Backlogs, model Checkpoints, prev *LagSample) (LagSample, error) {
	s := LagSample{At: time.Now()}
	cps, err := model.Checkpoints(ctx)
	if err != nil {
		return s, err
	}
	for p := range events.Partitions() {
		b, err := events.BacklogAfter(ctx, p, cps[p])
		if err != nil {
			return s, err
		}
		l := PartitionLag{Partition: p, Last: b.Last, Checkpoint: cps[p], Pending: b.Events}
		if b.Events > 0 {
			l.Waiting = max(s.At.Sub(b.Oldest), 0)
		}
		if prev != nil && p < len(prev.Partitions) && l.Checkpoint > prev.Partitions[p].Checkpoint {
			l.Moved = l.Checkpoint - prev.Partitions[p].Checkpoint
		}
		s.Partitions = append(s.Partitions, l)
	}
	return s, nil
}

// Pending counts the events not yet folded in every partition.
func (s LagSample) Pending() uint64 {
	var n uint64
	for _, p := range s.Partitions {
		n += p.Pending
	}
	return n
}

// Behind returns the partitions whose first unfolded event has been in the
// log longer than grace.
func (s LagSample) Behind(grace time.Duration) []PartitionLag {
	var out []PartitionLag
	for _, p := range s.Partitions {
		if p.Pending > 0 && p.Waiting > grace {
			out = append(out, p)
		}
	}
	return out
}
