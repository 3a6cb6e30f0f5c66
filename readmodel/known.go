package readmodel

import (
	"context"
	"maps"
	"sync"
)

// known is what the single writer of one partition knows of the slot and
// count documents it wrote, so that a batch changes them without reading
// them back first. A live batch of a few events otherwise reads, per key,
// every slot on the way to its leaf and the year document of its counts,
// only to learn what this writer itself wrote there a moment before.
//
// What it holds is trusted only while this writer is the partition's only
// one: Apply reads the partition's checkpoint first, and forgets everything
// unless the checkpoint is the one it wrote last. Another writer that
// folded a whole batch moved the checkpoint; one that died within a batch
// stored every message of it before it wrote any slot, so the batch comes
// back with its messages stored, and such a batch reads every slot it
// touches afresh. A count computed from what is known is exact even then:
// it is the state as of the known sequence plus the events of the batch,
// which is the state the dead writer was writing. Any failed attempt forgets
// everything too, since its commands may still land after it gave up.
type known struct {
	mu sync.Mutex
	// trusted says that through is the checkpoint this writer wrote last.
	trusted bool
	through uint64
	slots   map[string]slotState
	counts  map[string]countDoc
}

// slotState is a slot as its writer last wrote or read it.
type slotState struct {
	inner bool
	// kids is an inner slot's count of messages per child.
	kids map[string]int64
	// n is how many messages a leaf holds, runs how many runs; runs is
	// negative when unknown, as for a leaf first written without a read.
	n    int64
	runs int
}

// maxKnown bounds the documents known per partition; past it the writer
// forgets them all and reads what it touches again.
const maxKnown = 20_000

// maxRuns is the most runs a leaf whose runs are known holds: the next
// write reads it and rewrites it as one run, so that a leaf taking a live
// trickle of one message per write does not grow a field per message.
const maxRuns = 32

// knownOf returns what the store knows of partition.
func (s *Store) knownOf(partition int) *known {
	s.knownMu.Lock()
	defer s.knownMu.Unlock()
	k := s.known[partition]
	if k == nil {
		k = &known{}
		s.known[partition] = k
	}
	return k
}

// check reads the checkpoint of partition and forgets everything unless
// it is the one this writer wrote last. It returns the checkpoint.
func (k *known) check(ctx context.Context, s *Store, partition int) (uint64, error) {
	cp, err := s.Checkpoint(ctx, partition)
	if err != nil {
		k.forget()
		return 0, err
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if !k.trusted || k.through != cp {
		k.slots, k.counts, k.trusted = nil, nil, false
	}
	return cp, nil
}

// wrote records that this writer wrote checkpoint through, and that what
// it knows holds as of it.
func (k *known) wrote(through uint64) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.trusted, k.through = true, through
}

// forget drops everything known.
func (k *known) forget() {
	if k == nil {
		return
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	k.slots, k.counts, k.trusted = nil, nil, false
}

// slot returns the slot with id as known, and whether it is.
func (k *known) slot(id string) (slotState, bool) {
	if k == nil {
		return slotState{}, false
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	st, ok := k.slots[id]
	st.kids = maps.Clone(st.kids)
	return st, ok
}

// count returns the count document with id as known, and whether it is.
func (k *known) count(id string) (countDoc, bool) {
	if k == nil {
		return countDoc{}, false
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	doc, ok := k.counts[id]
	doc.Days = maps.Clone(doc.Days)
	return doc, ok
}

func (k *known) setSlot(id string, st slotState) {
	if k == nil {
		return
	}
	st.kids = maps.Clone(st.kids)
	k.mu.Lock()
	defer k.mu.Unlock()
	k.makeRoom()
	if k.slots == nil {
		k.slots = map[string]slotState{}
	}
	k.slots[id] = st
}

func (k *known) setCount(doc countDoc) {
	if k == nil {
		return
	}
	doc.Days = maps.Clone(doc.Days)
	k.mu.Lock()
	defer k.mu.Unlock()
	k.makeRoom()
	if k.counts == nil {
		k.counts = map[string]countDoc{}
	}
	k.counts[doc.ID] = doc
}

// makeRoom forgets every document once maxKnown are known. It runs with
// k.mu held.
func (k *known) makeRoom() {
	if len(k.slots)+len(k.counts) >= maxKnown {
		k.slots, k.counts = nil, nil
	}
}
