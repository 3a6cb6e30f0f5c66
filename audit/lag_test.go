package audit_test

import (
	"context"
	"testing"
	"time"

	"github.com/messages-io/messages/audit"
	"github.com/messages-io/messages/eventstore"
)

// fakeLog holds the sequences of each partition's events and when each was
// stored.
type fakeLog struct {
	seqs   [][]uint64
	stored map[uint64]time.Time
}

func (l fakeLog) Partitions() int { return len(l.seqs) }

func (l fakeLog) BacklogAfter(_ context.Context, p int, after uint64) (eventstore.Backlog, error) {
	var b eventstore.Backlog
	for _, seq := range l.seqs[p] {
		b.Last = seq
		if seq > after {
			if b.Events == 0 {
				b.Oldest = l.stored[seq]
			}
			b.Events++
		}
	}
	return b, nil
}

type fakeModel map[int]uint64

func (m fakeModel) Checkpoints(context.Context) (map[int]uint64, error) { return m, nil }

// A partition with events after its checkpoint is behind by those, waiting
// since the first was stored, and moving only if its checkpoint moved since
// the previous sample.
func TestSampleLag(t *testing.T) {
	now := time.Now()
	events := fakeLog{
		seqs:   [][]uint64{{1, 3, 5, 7}, {2, 4, 6}, {8}},
		stored: map[uint64]time.Time{3: now.Add(-time.Minute), 5: now.Add(-30 * time.Second), 8: now.Add(-time.Second)},
	}
	ctx := t.Context()
	first, err := audit.SampleLag(ctx, events, fakeModel{0: 1, 1: 6}, nil)
	if err != nil {
		t.Fatal(err)
	}
	second, err := audit.SampleLag(ctx, events, fakeModel{0: 3, 1: 6}, &first)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		p                         int
		last, checkpoint, pending uint64
		moved                     uint64
		moving                    bool
		minWaiting, maxWaiting    time.Duration
	}{
		{p: 0, last: 7, checkpoint: 3, pending: 2, moved: 2, moving: true, minWaiting: 30 * time.Second, maxWaiting: 40 * time.Second},
		{p: 1, last: 6, checkpoint: 6, pending: 0, moving: true},
		{p: 2, last: 8, checkpoint: 0, pending: 1, moving: false, minWaiting: time.Second, maxWaiting: 10 * time.Second},
	} {
		got := second.Partitions[tc.p]
		if got.Last != tc.last || got.Checkpoint != tc.checkpoint || got.Pending != tc.pending || got.Moved != tc.moved ||
			got.Moving() != tc.moving || got.Waiting < tc.minWaiting || got.Waiting > tc.maxWaiting {
			t.Errorf("partition %d: %+v moving %v, want %+v", tc.p, got, got.Moving(), tc)
		}
	}
	if n := second.Pending(); n != 3 {
		t.Errorf("pending %d, want 3", n)
	}
	behind := second.Behind(10 * time.Second)
	if len(behind) != 1 || behind[0].Partition != 0 {
		t.Errorf("behind over 10s: %+v, want partition 0", behind)
	}
	if behind := second.Behind(0); len(behind) != 2 {
		t.Errorf("behind over 0s: %+v, want partitions 0 and 2", behind)
	}
}
