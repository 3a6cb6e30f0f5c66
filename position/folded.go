package position

import (
	"encoding/json"
	"fmt"
	"slices"
)

// Folded is what a reducer tells, after each batch, of what it folded: that
// the read model in Database, generation Generation, holds partition
// Partition through sequence Through, and which of the batch's events stored
// a message.
//
// Of the events of the partition from From through Through, those that
// create a message and stored it are in Stored, in sequence order; any
// other there stored none: it was parked as unfoldable, or another event of
// the same id had stored its message. Nothing is said of events before
// From, nor of events after Through. From is past Through when the batch
// decided nothing but the checkpoint.
//
// It is sent after the checkpoint is written, so every message it names is
// visible to a read of that generation when it arrives. It is a hint for
// readers that wait on the fold, sent at most once: a reader that missed
// one reads the checkpoints and messages instead.
type Folded struct {
	Database   string   `json:"db"`
	Generation int      `json:"gen"`
	Partition  int      `json:"p"`
	From       uint64   `json:"from"`
	Through    uint64   `json:"through"`
	Stored     []uint64 `json:"stored,omitempty"`
}

// Encode returns f as it goes over the wire.
func (f Folded) Encode() []byte {
	b, _ := json.Marshal(f) // of numbers and a string only: never fails
	return b
}

// ParseFolded reads what Encode wrote, and refuses what it could not have.
func ParseFolded(b []byte) (Folded, error) {
	var f Folded
	if err := json.Unmarshal(b, &f); err != nil {
		return Folded{}, fmt.Errorf("%w fold notice: %v", ErrMalformed, err)
	}
	switch {
	case f.Partition < 0 || f.Generation < 1:
		return Folded{}, fmt.Errorf("%w fold notice: partition %d, generation %d", ErrMalformed, f.Partition, f.Generation)
	case !slices.IsSorted(f.Stored):
		return Folded{}, fmt.Errorf("%w fold notice: stored sequences out of order", ErrMalformed)
	case len(f.Stored) > 0 && (f.Stored[0] < f.From || f.Stored[len(f.Stored)-1] > f.Through):
		return Folded{}, fmt.Errorf("%w fold notice: stored sequences outside %d-%d", ErrMalformed, f.From, f.Through)
	}
	return f, nil
}

// Decides reports whether f tells of the event at seq whether it stored a
// message, and if so, whether it did.
func (f Folded) Decides(seq uint64) (decided, stored bool) {
	if seq < f.From || seq > f.Through {
		return false, false
	}
	_, stored = slices.BinarySearch(f.Stored, seq)
	return true, stored
}
