// Package position names places in the event log that clients carry: the
// consistency token of a write, and the position of a live stream. Both are
// opaque strings to a client; here they are a layout of the log (its stream
// and number of partitions) and sequences in it.
//
// Sequences are the stream's own: one counter across every partition, so
// that "after sequence s" means the same thing in each of them. A partition
// is folded in sequence order, so the checkpoint of a partition, the last
// sequence folded, says of every event of that partition at or before it
// that it is visible. A token names one event; a stream position names, per
// partition, the last event a stream has passed, which is what lets a stream
// of all tags, whose partitions become visible in no common order, resume
// with no gap and no duplicate.
//
// Neither names a generation of the read model: a rebuilt generation folds
// the same events at the same sequences, so a token or position taken before
// a switch means the same after it.
package position

import (
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"strings"
)

// Layout is what the places in a log are relative to: the stream that holds
// it and how many partitions it has.
type Layout struct {
	Stream     string
	Partitions int
}

// Partition returns the partition that holds every event of key, the same
// for every process that shares the layout.
func (l Layout) Partition(key string) int {
	return PartitionOf(key, l.Partitions)
}

// PartitionOf returns the partition, of n, that holds every event of key.
func PartitionOf(key string, n int) int {
	h := fnv.New32a()
	_, _ = h.Write([]byte(key))
	return int(h.Sum32() % uint32(n))
}

// Errors of parsing; callers test them with errors.Is.
var (
	// ErrMalformed means a string that is no token or position this service
	// gave out.
	ErrMalformed = errors.New("malformed")
	// ErrOtherLog means a token or position of another log: another stream,
	// or a partition layout this log does not have.
	ErrOtherLog = errors.New("of another log")
)

// Kinds, the first byte of every encoded form.
const (
	kindToken    = 't'
	kindPosition = 'p'
)

// maxPartitions bounds the partitions of a decoded layout, as the event
// store bounds them.
const maxPartitions = 1024

// Token is a consistency token: the place of one write in the log.
type Token struct {
	Layout
	Partition int
	Sequence  uint64
}

// String encodes the token.
func (t Token) String() string {
	b := appendHeader(make([]byte, 0, 16+len(t.Stream)), kindToken, t.Layout)
	b = binary.AppendUvarint(b, uint64(t.Partition))
	b = binary.AppendUvarint(b, t.Sequence)
	return base64.RawURLEncoding.EncodeToString(b)
}

// ParseToken decodes one token and checks that it names a place in a log
// laid out as want.
func ParseToken(s string, want Layout) (Token, error) {
	r, err := open(s, kindToken)
	if err != nil {
		return Token{}, err
	}
	t := Token{Layout: r.layout}
	p := r.uvarint()
	t.Sequence = r.uvarint()
	if err := r.end(); err != nil {
		return Token{}, err
	}
	if p >= uint64(t.Partitions) || t.Sequence == 0 {
		return Token{}, fmt.Errorf("token: %w", ErrMalformed)
	}
	t.Partition = int(p)
	if err := same(t.Layout, want); err != nil {
		return Token{}, fmt.Errorf("token: %w", err)
	}
	return t, nil
}

// MaxTokens is the most tokens one request may carry.
const MaxTokens = 64

// ParseTokens decodes a header value of comma-separated tokens, at most
// MaxTokens, and returns, per partition, the highest sequence they name.
func ParseTokens(values []string, want Layout) (map[int]uint64, error) {
	need := map[int]uint64{}
	n := 0
	for _, v := range values {
		for _, s := range strings.Split(v, ",") {
			s = strings.TrimSpace(s)
			if s == "" {
				continue
			}
			if n++; n > MaxTokens {
				return nil, fmt.Errorf("more than %d consistency tokens", MaxTokens)
			}
			t, err := ParseToken(s, want)
			if err != nil {
				return nil, err
			}
			need[t.Partition] = max(need[t.Partition], t.Sequence)
		}
	}
	if n == 0 {
		return nil, fmt.Errorf("token: %w: empty", ErrMalformed)
	}
	return need, nil
}

// Position is where a live stream stands: per partition, the sequence of the
// last event it has passed, sent or not. A stream resumed from a position
// sends exactly the visible events after it.
type Position struct {
	Layout
	After []uint64 // indexed by partition
}

// At returns the position after sequence seq in every partition: what a
// stream has passed when it has passed the whole log up to seq.
func At(l Layout, seq uint64) Position {
	p := Position{Layout: l, After: make([]uint64, l.Partitions)}
	for i := range p.After {
		p.After[i] = seq
	}
	return p
}

// Clone returns a copy that shares nothing with p.
func (p Position) Clone() Position {
	p.After = append([]uint64(nil), p.After...)
	return p
}

// String encodes the position: the least sequence, then each partition's
// distance from it, so that a position whose partitions stand close together
// stays short.
func (p Position) String() string {
	b, _ := p.AppendText(nil)
	return string(b)
}

// AppendText appends the position as String encodes it to b; it never
// fails. A stream writes one position per event, so it encodes into a
// buffer it keeps.
func (p Position) AppendText(b []byte) ([]byte, error) {
	var scratch [64]byte
	raw := appendHeader(scratch[:0], kindPosition, p.Layout)
	base := p.After[0]
	for _, s := range p.After {
		base = min(base, s)
	}
	raw = binary.AppendUvarint(raw, base)
	for _, s := range p.After {
		raw = binary.AppendUvarint(raw, s-base)
	}
	return base64.RawURLEncoding.AppendEncode(b, raw), nil
}

// ParsePosition decodes a stream position of a log laid out as want.
func ParsePosition(s string, want Layout) (Position, error) {
	r, err := open(s, kindPosition)
	if err != nil {
		return Position{}, err
	}
	p := Position{Layout: r.layout, After: make([]uint64, r.layout.Partitions)}
	base := r.uvarint()
	for i := range p.After {
		d := r.uvarint()
		if base+d < base {
			return Position{}, fmt.Errorf("position: %w", ErrMalformed)
		}
		p.After[i] = base + d
	}
	if err := r.end(); err != nil {
		return Position{}, err
	}
	if err := same(p.Layout, want); err != nil {
		return Position{}, fmt.Errorf("position: %w", err)
	}
	return p, nil
}

func appendHeader(b []byte, kind byte, l Layout) []byte {
	b = append(b, kind, byte(len(l.Stream)))
	b = append(b, l.Stream...)
	return binary.AppendUvarint(b, uint64(l.Partitions))
}

func same(have, want Layout) error {
	switch {
	case have.Stream != want.Stream:
		return fmt.Errorf("%w: stream %q, this service reads %q", ErrOtherLog, have.Stream, want.Stream)
	case have.Partitions != want.Partitions:
		return fmt.Errorf("%w: %d partitions, the log has %d", ErrOtherLog, have.Partitions, want.Partitions)
	}
	return nil
}

// reader decodes the fields of an encoded token or position; the first
// failure sticks.
type reader struct {
	b      []byte
	layout Layout
	err    error
}

func open(s string, kind byte) (*reader, error) {
	what := map[byte]string{kindToken: "token", kindPosition: "position"}[kind]
	b, err := base64.RawURLEncoding.Strict().DecodeString(s)
	if err != nil || len(b) < 2 || b[0] != kind || int(b[1]) > len(b)-2 {
		return nil, fmt.Errorf("%s: %w", what, ErrMalformed)
	}
	n := int(b[1])
	r := &reader{b: b[2+n:]}
	r.layout.Stream = string(b[2 : 2+n])
	parts := r.uvarint()
	if r.err != nil || parts < 1 || parts > maxPartitions || n == 0 {
		return nil, fmt.Errorf("%s: %w", what, ErrMalformed)
	}
	r.layout.Partitions = int(parts)
	return r, nil
}

func (r *reader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.err = ErrMalformed
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) end() error {
	if r.err != nil || len(r.b) != 0 {
		return ErrMalformed
	}
	return nil
}

// TokenHeader is the HTTP header that carries consistency tokens: set on a
// 201 to a write, sent back on reads that must reflect it.
const TokenHeader = "Consistency-Token"
