package audit

import (
	"hash/maphash"
	"math"
)

// bloom is a Bloom filter of message ids. Add says whether an id may have been
// added before; it is never wrong when it says no.
type bloom struct {
	bits   []uint64
	m      uint64 // number of bits
	k      int    // bits set per id
	s1, s2 maphash.Seed
}

// newBloom returns a filter for n ids that wrongly reports an id as seen
// with probability about falseRate once all n are added.
func newBloom(n uint64, falseRate float64) *bloom {
	n = max(n, 1)
	m := uint64(math.Ceil(-float64(n) * math.Log(falseRate) / (math.Ln2 * math.Ln2)))
	m = max(m, 64)
	k := int(math.Round(float64(m) / float64(n) * math.Ln2))
	k = min(max(k, 1), 24)
	return &bloom{bits: make([]uint64, (m+63)/64), m: m, k: k, s1: maphash.MakeSeed(), s2: maphash.MakeSeed()}
}

// add adds id and reports whether it may have been added before.
func (b *bloom) add(id string) bool {
	// Kirsch and Mitzenmacher: k positions from two hashes.
	h1, h2 := maphash.String(b.s1, id), maphash.String(b.s2, id)|1
	seen := true
	for i := range uint64(b.k) {
		bit := (h1 + i*h2) % b.m
		w, mask := bit/64, uint64(1)<<(bit%64)
		if b.bits[w]&mask == 0 {
			seen = false
			b.bits[w] |= mask
		}
	}
	return seen
}
