package readmodel_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/messages-io/messages/internal/testkit"
	"github.com/messages-io/messages/message"
	"github.com/messages-io/messages/readmodel"
	"github.com/oklog/ulid/v2"
	"go.mongodb.org/mongo-driver/v2/bson"
)

// slotHistory makes messages under two tags that reach every shape of the
// slots: a burst of many messages within one millisecond (split down to the
// random characters of their ids), messages on exact slot boundaries (times
// that are multiples of 2^10 and 2^30 ms, where an id's leading characters
// roll over), and a stretch of years with no message at all.
func slotHistory(rng *rand.Rand, entropy *rand.ChaCha8) []message.Message {
	var times []time.Time
	burst := time.Date(2026, 5, 17, 10, 11, 12, 345e6, time.UTC)
	for range 40 {
		times = append(times, burst)
	}
	boundary := time.UnixMilli(1780000000000 &^ (1<<30 - 1)).UTC()
	for i := range 12 {
		times = append(times, boundary.Add(time.Duration(i-6)*1024*time.Millisecond))
	}
	for range 30 {
		times = append(times, time.Date(2026, 5, 17, 0, 0, 0, 0, time.UTC).Add(time.Duration(rng.IntN(48*3600*1000))*time.Millisecond))
	}
	for range 6 {
		times = append(times, time.Date(2019, 3, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(rng.IntN(3600*1000))*time.Millisecond))
	}
	out := make([]message.Message, len(times))
	for i, at := range times {
		out[i] = message.Message{
			ID:     ulid.MustNew(ulid.Timestamp(at), entropy).String(),
			UserID: "u", Text: fmt.Sprint("m", i), Tag: []string{"go", "nats"}[i%2], CreatedAt: at,
		}
	}
	return out
}

// bounds returns the instants a filter's edges are put at: open, every
// slot boundary near the history, each message's own instant and the
// millisecond after it.
func bounds(msgs []message.Message) []time.Time {
	out := []time.Time{{}}
	for _, m := range msgs[:len(msgs):len(msgs)] {
		out = append(out, m.CreatedAt, m.CreatedAt.Add(time.Millisecond))
	}
	boundary := time.UnixMilli(1780000000000 &^ (1<<30 - 1)).UTC()
	out = append(out, boundary, boundary.Add(-time.Millisecond), time.Date(2026, 5, 17, 0, 0, 0, 0, time.UTC), time.Date(2026, 5, 18, 0, 0, 0, 0, time.UTC))
	return out
}

// Slots split when they fill, down to the random characters of ids made in
// one millisecond; every list, walked page by page across slot boundaries
// and empty years, and every count, with edges on and around the
// boundaries, answers exactly what the messages say.
func TestSlotsAnswerEveryShape(t *testing.T) {
	ctx := t.Context()
	s := openStore(t)
	readmodel.SetLeafCap(s, 3)
	entropy := rand.NewChaCha8([32]byte{3})
	rng := rand.New(entropy)
	msgs := slotHistory(rng, entropy)
	// Folded in random order, in batches of several sizes, two partitions.
	order := rng.Perm(len(msgs))
	for start, seq := 0, uint64(1); start < len(order); {
		n := min(1+rng.IntN(20), len(order)-start)
		byPartition := map[int][]readmodel.Change{}
		for _, i := range order[start : start+n] {
			p := map[string]int{"go": 0, "nats": 1}[msgs[i].Tag]
			byPartition[p] = append(byPartition[p], readmodel.Change{Message: msgs[i], Sequence: seq})
			seq++
		}
		for p, changes := range byPartition {
			if err := s.Apply(ctx, p, changes, changes[len(changes)-1].Sequence); err != nil {
				t.Fatal(err)
			}
		}
		start += n
	}
	slices.SortFunc(msgs, func(a, b message.Message) int { return strings.Compare(b.ID, a.ID) })
	edges := bounds(msgs)
	checked := 0
	for _, tag := range []string{"", "go", "nats", "none"} {
		for i := 0; i < len(edges); i += 13 {
			for j := 1; j < len(edges); j += 17 {
				from, to := edges[i], edges[j]
				if !from.IsZero() && !to.IsZero() && to.Before(from) {
					continue
				}
				checkFilter(t, s, msgs, tag, from, to, 4)
				checked++
			}
		}
	}
	if checked < 100 {
		t.Fatalf("only %d filters checked", checked)
	}
	depth := 0
	eachSlot(t, s, func(d bson.M) {
		_, prefix, _ := strings.Cut(d["_id"].(string), "/")
		depth = max(depth, len(prefix))
	})
	if depth <= 10 {
		t.Errorf("deepest slot prefix has %d characters; the burst should split past the 10 of a millisecond", depth)
	}
}

// listAll pages through every message a filter selects, limit at a time.
func listAll(t *testing.T, s *readmodel.Store, f readmodel.Filter, limit int) []string {
	t.Helper()
	var got []string
	before := ""
	for range 10000 {
		page, err := s.List(t.Context(), readmodel.Page{Filter: f, Before: before, Limit: limit})
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range page {
			got = append(got, m.ID)
		}
		if len(page) < limit {
			return got
		}
		before = page[len(page)-1].ID
	}
	t.Fatal("paging did not end")
	return nil
}

// eachSlot calls fn with every stored slot document of s.
func eachSlot(t *testing.T, s *readmodel.Store, fn func(bson.M)) {
	t.Helper()
	ctx := t.Context()
	c := s.Database().Collection(fmt.Sprintf("g%d_slots", s.Generation()))
	cur, err := c.Find(ctx, bson.M{})
	if err != nil {
		t.Fatal(err)
	}
	var docs []bson.M
	if err := cur.All(ctx, &docs); err != nil {
		t.Fatal(err)
	}
	if len(docs) == 0 {
		t.Fatal("no slots stored")
	}
	for _, d := range docs {
		fn(d)
	}
}

// A slot never grows past about 64 KB, far below MongoDB's 16 MB limit
// for a document, even when it holds the largest messages there are:
// LeafCap of them, each of 1000 four-byte characters, and then one more,
// which splits it.
func TestFullSlotStaysSmall(t *testing.T) {
	ctx := t.Context()
	s := openStore(t)
	at := time.Date(2026, 7, 1, 0, 0, 0, 0, time.UTC)
	text := strings.Repeat("😀", 1000)
	user := strings.Repeat("u", 128)
	tag := strings.Repeat("t", 64)
	var changes []readmodel.Change
	for i := range readmodel.LeafCap + 1 {
		m := message.Message{ID: ulid.MustNew(ulid.Timestamp(at.Add(time.Duration(i)*time.Second)), ulid.DefaultEntropy()).String(),
			UserID: user, Text: text, Tag: tag, CreatedAt: at.Add(time.Duration(i) * time.Second)}
		changes = append(changes, readmodel.Change{Message: m, Sequence: uint64(i + 1)})
	}
	full := changes[:readmodel.LeafCap]
	if err := s.Apply(ctx, 0, full, uint64(len(full))); err != nil {
		t.Fatal(err)
	}
	largest := func() int {
		n := 0
		eachSlot(t, s, func(d bson.M) {
			b, err := bson.Marshal(d)
			if err != nil {
				t.Fatal(err)
			}
			n = max(n, len(b))
		})
		return n
	}
	n := largest()
	t.Logf("a full slot of %d ids has %d bytes", readmodel.LeafCap, n)
	if n >= readmodel.LeafCap*40 || n < readmodel.LeafCap*26 {
		t.Fatalf("the full slot has %d bytes; want at least the %d of its ids and under %d", n, readmodel.LeafCap*26, readmodel.LeafCap*40)
	}
	if err := s.Apply(ctx, 0, changes, uint64(len(changes))); err != nil {
		t.Fatal(err)
	}
	if n := largest(); n >= readmodel.LeafCap*40 {
		t.Fatalf("after a split the largest slot has %d bytes", n)
	}
	if got := listAll(t, s, readmodel.Filter{Tag: tag}, 1000); len(got) != len(changes) {
		t.Fatalf("listed %d, want %d", len(got), len(changes))
	}
}

// A live trickle, one message per batch, adds a run to a leaf per batch;
// its writer rewrites the leaf as one run before it holds more than 33, so
// that a leaf stays a few fields whatever the rate.
func TestTrickleKeepsLeavesCompact(t *testing.T) {
	ctx := t.Context()
	s := openStore(t)
	at := time.Date(2026, 7, 1, 0, 0, 0, 0, time.UTC)
	const n = 100
	for i := range n {
		m := message.Message{ID: ulid.MustNew(ulid.Timestamp(at.Add(time.Duration(i)*time.Second)), ulid.DefaultEntropy()).String(),
			UserID: "u", Text: "x", Tag: "live", CreatedAt: at.Add(time.Duration(i) * time.Second)}
		if err := s.Apply(ctx, 0, []readmodel.Change{{Message: m, Sequence: uint64(i + 1)}}, uint64(i+1)); err != nil {
			t.Fatal(err)
		}
	}
	most := 0
	eachSlot(t, s, func(d bson.M) {
		if runs, ok := d["r"].(bson.D); ok {
			most = max(most, len(runs))
		}
	})
	if most == 0 || most > 33 {
		t.Errorf("a leaf holds %d runs after %d batches of one message; want 1 to 33", most, n)
	}
	if got := listAll(t, s, readmodel.Filter{Tag: "live"}, 7); len(got) != n {
		t.Fatalf("listed %d, want %d", len(got), n)
	}
	if got, err := s.Count(ctx, readmodel.Filter{Tag: "live", From: readmodel.At(at.Add(10 * time.Second)), To: readmodel.At(at.Add(90 * time.Second))}); err != nil || got != 80 {
		t.Fatalf("count %d, %v; want 80", got, err)
	}
}

// A generation with counts but no slots, as a version without slots left
// it, is told apart from one that has both.
func TestUnslotted(t *testing.T) {
	ctx := t.Context()
	s := openStore(t)
	if old, err := s.Unslotted(ctx); err != nil || old {
		t.Fatalf("an empty model: unslotted %v, %v", old, err)
	}
	if err := s.Apply(ctx, 0, changes("go", time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC), 5, 1), 5); err != nil {
		t.Fatal(err)
	}
	if old, err := s.Unslotted(ctx); err != nil || old {
		t.Fatalf("a model with slots: unslotted %v, %v", old, err)
	}
	if err := s.Database().Collection(fmt.Sprintf("g%d_slots", s.Generation())).Drop(ctx); err != nil {
		t.Fatal(err)
	}
	if old, err := s.Unslotted(ctx); err != nil || !old {
		t.Fatalf("a model whose slots are gone: unslotted %v, %v", old, err)
	}
}

// A batch that rewrites hundreds of existing slots, as one folded by a
// writer that knows none of them (after a restart, in a backlog), finishes:
// the embedded FerretDB never ends a single command that updates 100
// existing documents or more, so the writes go out in smaller bulks.
func TestBatchRewritingManySlotsFinishes(t *testing.T) {
	db := testkit.Database(t)
	first := openIn(t, db)
	readmodel.SetLeafCap(first, 3)
	start := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	// An hour apart, each message ends in a leaf of its own.
	hourly := func(offset time.Duration, seq uint64) []readmodel.Change {
		out := make([]readmodel.Change, 600)
		for i := range out {
			at := start.Add(time.Duration(i)*time.Hour + offset)
			out[i] = readmodel.Change{Sequence: seq + uint64(i), Message: message.Message{
				ID: ulid.MustNew(ulid.Timestamp(at), ulid.DefaultEntropy()).String(), UserID: "u",
				Text: fmt.Sprint("m", seq+uint64(i)), Tag: "go", CreatedAt: at}}
		}
		return out
	}
	if err := first.Apply(t.Context(), 0, hourly(0, 1), 600); err != nil {
		t.Fatal(err)
	}
	// A second of each first message, so each goes to its leaf, which a
	// new writer reads and rewrites.
	restarted := openIn(t, db)
	readmodel.SetLeafCap(restarted, 3)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	if err := restarted.Apply(ctx, 0, hourly(time.Second, 601), 1200); err != nil {
		t.Fatalf("a batch rewriting 1200 slots: %v", err)
	}
	if n := count(t, restarted, readmodel.Filter{Tag: "go", From: readmodel.At(start.Add(30 * time.Minute))}); n != 1198 {
		t.Errorf("count from half an hour in = %d, want 1198", n)
	}
	if got := listAll(t, restarted, readmodel.Filter{}, 500); len(got) != 1200 {
		t.Errorf("listed %d, want 1200", len(got))
	}
}
