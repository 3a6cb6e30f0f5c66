package readmodel_test

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/messages-io/messages/internal/testkit"
	"github.com/messages-io/messages/message"
	"github.com/messages-io/messages/position"
	"github.com/messages-io/messages/readmodel"
	"github.com/oklog/ulid/v2"
)

func openStore(t *testing.T) *readmodel.Store {
	t.Helper()
	s, err := readmodel.Open(t.Context(), testkit.Database(t))
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	return s
}

// changes makes n messages under tag, one minute apart from start, with
// sequences from seq on.
func changes(tag string, start time.Time, n int, seq uint64) []readmodel.Change {
	var out []readmodel.Change
	for i := range n {
		at := start.Add(time.Duration(i) * time.Minute).UTC()
		out = append(out, readmodel.Change{
			Sequence: seq + uint64(i),
			Message: message.Message{
				ID:        ulid.MustNew(ulid.Timestamp(at), ulid.DefaultEntropy()).String(),
				UserID:    "u1",
				Text:      fmt.Sprintf("%s %d", tag, i),
				Tag:       tag,
				CreatedAt: at,
			},
		})
	}
	return out
}

func count(t *testing.T, s *readmodel.Store, f readmodel.Filter) int64 {
	t.Helper()
	n, err := s.Count(t.Context(), f)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// Folding is idempotent: a redelivered batch, a batch that overlaps one
// already applied, or a replay over the model leave each message once and
// every count unchanged.
func TestApplyTwiceLeavesOneMessage(t *testing.T) {
	s := openStore(t)
	ctx := t.Context()
	start := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	batch := changes("go", start, 6, 10)
	if err := s.Apply(ctx, 0, batch[:4], 13); err != nil {
		t.Fatal(err)
	}
	if err := s.Apply(ctx, 0, batch[:4], 13); err != nil {
		t.Fatalf("applying the same batch again: %v", err)
	}
	if n := count(t, s, readmodel.Filter{}); n != 4 {
		t.Fatalf("after a redelivered batch count = %d, want 4", n)
	}
	// Overlapping: 2 already there (written before a crash), 2 new.
	if err := s.Apply(ctx, 0, batch[2:], 15); err != nil {
		t.Fatal(err)
	}
	if n := count(t, s, readmodel.Filter{Tag: "go"}); n != 6 {
		t.Fatalf("after an overlapping batch count = %d, want 6", n)
	}
	for _, c := range batch {
		got, err := s.Get(ctx, c.Message.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got != c.Message {
			t.Errorf("stored %+v, want %+v", got, c.Message)
		}
	}
	if cp, _ := s.Checkpoint(ctx, 0); cp != 15 {
		t.Errorf("checkpoint = %d, want 15", cp)
	}
	// A late writer never moves a checkpoint back.
	if err := s.Apply(ctx, 0, batch[:1], 10); err != nil {
		t.Fatal(err)
	}
	if cp, _ := s.Checkpoint(ctx, 0); cp != 15 {
		t.Errorf("checkpoint after a stale batch = %d, want 15", cp)
	}
	if cp, _ := s.Checkpoint(ctx, 1); cp != 0 {
		t.Errorf("checkpoint of an untouched partition = %d, want 0", cp)
	}
}

func TestGetMissing(t *testing.T) {
	s := openStore(t)
	if _, err := s.Get(t.Context(), ulid.Make().String()); !errors.Is(err, readmodel.ErrNotFound) {
		t.Errorf("get missing: err = %v, want ErrNotFound", err)
	}
}

// Every filter's list and count agree with the same filter applied to the
// messages directly.
func TestListAndCountMatchTheMessages(t *testing.T) {
	s := openStore(t)
	ctx := t.Context()
	rng := rand.New(rand.NewPCG(1, 2))
	day0 := time.Date(2026, 1, 30, 0, 0, 0, 0, time.UTC)
	var all []message.Message
	var batch []readmodel.Change
	for i := range 120 {
		at := day0.Add(time.Duration(rng.IntN(4*24*3600*1000)) * time.Millisecond)
		if i%10 == 0 {
			at = day0.AddDate(0, 0, i%4) // exactly midnight
		}
		tag := []string{"go", "nats", "mongo"}[rng.IntN(3)]
		m := message.Message{ID: ulid.MustNew(ulid.Timestamp(at), ulid.DefaultEntropy()).String(), UserID: "u", Text: "x", Tag: tag, CreatedAt: at}
		all = append(all, m)
		batch = append(batch, readmodel.Change{Message: m, Sequence: uint64(i + 1)})
	}
	if err := s.Apply(ctx, 0, batch, 120); err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(all, func(a, b message.Message) int { return -cmpString(a.ID, b.ID) })
	bounds := []time.Time{{}, day0, day0.Add(36 * time.Hour), day0.AddDate(0, 0, 2), day0.Add(50*time.Hour + 1500*time.Microsecond), day0.AddDate(0, 0, 5)}
	for _, tag := range []string{"", "go", "nats", "unknown"} {
		for _, from := range bounds {
			for _, to := range bounds {
				checkFilter(t, s, all, tag, from, to, 7)
			}
		}
	}
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func TestIDFloor(t *testing.T) {
	at := time.Date(2026, 5, 6, 7, 8, 9, 0, time.UTC)
	id := func(t time.Time) string { return ulid.MustNew(ulid.Timestamp(t), ulid.DefaultEntropy()).String() }
	tests := []struct {
		name  string
		floor time.Time
		msg   time.Time
		in    bool // whether a message at msg is at or after floor
	}{
		{"same millisecond", at, at, true},
		{"a millisecond before", at, at.Add(-time.Millisecond), false},
		{"a millisecond after", at, at.Add(time.Millisecond), true},
		{"sub-millisecond floor rounds up", at.Add(500 * time.Microsecond), at, false},
		{"sub-millisecond floor keeps the next", at.Add(500 * time.Microsecond), at.Add(time.Millisecond), true},
		{"before 1970 is the start", time.Date(1960, 1, 1, 0, 0, 0, 0, time.UTC), time.UnixMilli(0), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := id(tt.msg) >= readmodel.IDFloor(tt.floor); got != tt.in {
				t.Errorf("message at %v >= floor %v: %v, want %v", tt.msg, tt.floor, got, tt.in)
			}
		})
	}
}

func TestUnreachableReadModel(t *testing.T) {
	m := testkit.Mongo(t)
	s, err := readmodel.Open(t.Context(), testkit.DatabaseOn(t, m.URI()))
	if err != nil {
		t.Fatal(err)
	}
	m.Close()
	ctx := t.Context()
	if err := s.Ping(ctx); !errors.Is(err, readmodel.ErrUnavailable) {
		t.Errorf("ping: %v, want ErrUnavailable", err)
	}
	if _, err := s.Count(ctx, readmodel.Filter{}); !errors.Is(err, readmodel.ErrUnavailable) {
		t.Errorf("count: %v, want ErrUnavailable", err)
	}
	if err := s.Apply(ctx, 0, changes("go", time.Now(), 1, 1), 1); !errors.Is(err, readmodel.ErrUnavailable) {
		t.Errorf("apply: %v, want ErrUnavailable", err)
	}
}

// A batch whose every message was logged before, by another event, stores
// and counts nothing, and moves the checkpoint.
func TestApplyOnlyRepeatedIDs(t *testing.T) {
	s := openStore(t)
	ctx := t.Context()
	first := changes("go", time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC), 2, 10)
	if err := s.Apply(ctx, 0, first, 11); err != nil {
		t.Fatal(err)
	}
	again := []readmodel.Change{{Message: first[0].Message, Sequence: 20}, {Message: first[1].Message, Sequence: 21}}
	if err := s.Apply(ctx, 0, again, 21); err != nil {
		t.Fatal(err)
	}
	if n := count(t, s, readmodel.Filter{Tag: "go"}); n != 2 {
		t.Errorf("count = %d, want 2", n)
	}
	if cp, err := s.Checkpoint(ctx, 0); err != nil || cp != 21 {
		t.Errorf("checkpoint = %d, %v; want 21", cp, err)
	}
}

// bound is the bound at t, open when t is the zero time.
func bound(t time.Time) readmodel.Bound {
	if t.IsZero() {
		return readmodel.Bound{}
	}
	return readmodel.At(t)
}

// A bound at the zero time, or in the first years, is a bound: nothing is
// older, so the range before it is empty, never the whole model.
func TestBoundsInTheFirstYears(t *testing.T) {
	s := openStore(t)
	ctx := t.Context()
	if err := s.Apply(ctx, 0, changes("go", time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC), 3, 1), 3); err != nil {
		t.Fatal(err)
	}
	for _, to := range []time.Time{{}, time.Time{}.Add(time.Millisecond), time.Date(1969, 12, 31, 0, 0, 0, 0, time.UTC)} {
		for _, tag := range []string{"", "go"} {
			f := readmodel.Filter{Tag: tag, To: readmodel.At(to)}
			if n := count(t, s, f); n != 0 {
				t.Errorf("count before %v, tag %q = %d, want 0", to, tag, n)
			}
			if got := listAll(t, s, f, 10); len(got) != 0 {
				t.Errorf("list before %v, tag %q = %d messages, want none", to, tag, len(got))
			}
		}
	}
	if n := count(t, s, readmodel.Filter{From: readmodel.At(time.Time{})}); n != 3 {
		t.Errorf("count from the zero time = %d, want 3", n)
	}
}

// checkFilter checks the count and every page, limit at a time, of the
// messages under tag in [from, to) (zero times open) against msgs, newest
// first.
func checkFilter(t *testing.T, s *readmodel.Store, msgs []message.Message, tag string, from, to time.Time, limit int) {
	t.Helper()
	f := readmodel.Filter{Tag: tag, From: bound(from), To: bound(to)}
	var want []string
	for _, m := range msgs {
		if (tag == "" || m.Tag == tag) && (from.IsZero() || !m.CreatedAt.Before(from)) && (to.IsZero() || m.CreatedAt.Before(to)) {
			want = append(want, m.ID)
		}
	}
	name := fmt.Sprintf("tag=%q from=%v to=%v", tag, from, to)
	if n := count(t, s, f); n != int64(len(want)) {
		t.Errorf("%s: count %d, want %d", name, n, len(want))
	}
	if got := listAll(t, s, f, limit); !slices.Equal(got, want) {
		t.Errorf("%s: listed %d messages, want %d in order", name, len(got), len(want))
	}
}

// Each Apply tells, once its checkpoint is written, which of its events
// stored their message: neither a second event of an id stored before,
// nor a second event of one id in the batch, nor a redelivered batch that
// stored them the first time round is told twice as stored.
func TestApplyTellsWhatItStored(t *testing.T) {
	s := openStore(t)
	ctx := t.Context()
	var told []position.Folded
	s.Notify(func(f position.Folded) { told = append(told, f) })
	first := changes("go", time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC), 3, 10)
	if err := s.Apply(ctx, 2, first, 14); err != nil {
		t.Fatal(err)
	}
	later := changes("go", time.Date(2026, 3, 2, 12, 0, 0, 0, time.UTC), 1, 21)
	batch := []readmodel.Change{{Message: first[1].Message, Sequence: 20}, later[0], {Message: later[0].Message, Sequence: 22}}
	if err := s.Apply(ctx, 2, batch, 22); err != nil {
		t.Fatal(err)
	}
	if err := s.Apply(ctx, 2, first, 14); err != nil { // delivered again
		t.Fatal(err)
	}
	if err := s.Apply(ctx, 2, nil, 30); err != nil {
		t.Fatal(err)
	}
	db := s.Database().Name()
	want := []position.Folded{
		{Database: db, Generation: 1, Partition: 2, From: 10, Through: 14, Stored: []uint64{10, 11, 12}},
		{Database: db, Generation: 1, Partition: 2, From: 20, Through: 22, Stored: []uint64{21}},
		{Database: db, Generation: 1, Partition: 2, From: 10, Through: 14, Stored: []uint64{10, 11, 12}},
		{Database: db, Generation: 1, Partition: 2, From: 31, Through: 30},
	}
	if len(told) != len(want) {
		t.Fatalf("told %d notices %+v, want %d", len(told), told, len(want))
	}
	for i := range want {
		if !reflect.DeepEqual(told[i], want[i]) {
			t.Errorf("notice %d: %+v, want %+v", i, told[i], want[i])
		}
		if !s.Concerns(told[i]) {
			t.Errorf("notice %d does not concern the store that told it", i)
		}
	}
	for _, seq := range []uint64{20, 22} {
		if decided, stored := told[1].Decides(seq); !decided || stored {
			t.Errorf("event %d: decided %v, stored %v; want decided, not stored", seq, decided, stored)
		}
	}
	if decided, _ := told[1].Decides(14); decided {
		t.Error("a notice decides an event before its batch")
	}
	s.Notify(nil)
	if err := s.Apply(ctx, 2, nil, 31); err != nil || len(told) != len(want) {
		t.Errorf("after Notify(nil): %v, %d notices", err, len(told))
	}
}
