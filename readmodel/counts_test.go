package readmodel_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/messages-io/messages/internal/testkit"
	"github.com/messages-io/messages/message"
	"github.com/messages-io/messages/readmodel"
	"github.com/oklog/ulid/v2"
	"go.mongodb.org/mongo-driver/v2/event"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// crashingClient connects to uri and, once armed, cancels the context of
// an operation in flight when the n-th database command starts: a reducer
// dying at that point of a batch.
type crashingClient struct {
	client   *mongo.Client
	commands atomic.Int64
	crashAt  atomic.Int64
	crash    atomic.Pointer[context.CancelFunc]
}

func newCrashingClient(t *testing.T, uri string) *crashingClient {
	t.Helper()
	c := &crashingClient{}
	monitor := &event.CommandMonitor{Started: func(_ context.Context, e *event.CommandStartedEvent) {
		if n := c.commands.Add(1); n == c.crashAt.Load() {
			if cancel := c.crash.Load(); cancel != nil {
				(*cancel)()
			}
		}
	}}
	client, err := mongo.Connect(options.Client().ApplyURI(uri).SetMonitor(monitor))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = client.Disconnect(context.Background()) })
	c.client = client
	return c
}

// firstDay is the first day of batch: the last of a year, so that the
// counts span two years.
var firstDay = time.Date(2025, 12, 31, 0, 0, 0, 0, time.UTC)

// batch makes changes over two tags and three days, with one message logged
// twice (the second event must not count it again).
func batch() []readmodel.Change {
	start := firstDay.Add(22 * time.Hour)
	var out []readmodel.Change
	for i := range 12 {
		at := start.Add(time.Duration(i) * 3 * time.Hour)
		tag := []string{"go", "nats"}[i%2]
		out = append(out, readmodel.Change{Sequence: uint64(10 + 2*i), Message: message.Message{
			ID: ulid.MustNew(ulid.Timestamp(at), ulid.DefaultEntropy()).String(), UserID: "u",
			Text: fmt.Sprint(i), Tag: tag, CreatedAt: at,
		}})
	}
	dup := out[3]
	dup.Sequence = 40
	return append(out, dup)
}

// checkCounts compares the counts the model answers with counts of the
// messages themselves, for every tag, day and edge.
func checkCounts(t *testing.T, s *readmodel.Store, wantTotal int64) {
	t.Helper()
	ctx := t.Context()
	// d is the hour of the day-th day from firstDay on.
	d := func(day, hour int) time.Time {
		return firstDay.AddDate(0, 0, day-1).Add(time.Duration(hour) * time.Hour)
	}
	var filters []readmodel.Filter
	for _, tag := range []string{"", "go", "nats", "none"} {
		for _, r := range [][2]time.Time{
			{}, {d(1, 0), d(2, 0)}, {d(2, 0), d(3, 0)}, {d(1, 23), d(3, 2)}, {d(2, 0), {}},
			{{}, d(2, 1)}, {d(1, 0), d(5, 0)}, {d(2, 4), d(2, 5)}, {d(1, 22), d(1, 22)},
		} {
			filters = append(filters, readmodel.Filter{Tag: tag, From: bound(r[0]), To: bound(r[1])})
		}
	}
	for _, f := range filters {
		got, err := s.Count(ctx, f)
		if err != nil {
			t.Fatal(err)
		}
		want, err := s.CountByScan(ctx, f)
		if err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Errorf("count %+v = %d, messages say %d", f, got, want)
		}
		ids := listAll(t, s, f, 2)
		if int64(len(ids)) != want || !slices.IsSortedFunc(ids, func(a, b string) int { return strings.Compare(b, a) }) || len(slices.Compact(slices.Clone(ids))) != len(ids) {
			t.Errorf("list %+v = %v, messages say %d", f, ids, want)
		}
	}
	if n, _ := s.CountByScan(ctx, readmodel.Filter{}); n != wantTotal {
		t.Errorf("%d messages stored, want %d", n, wantTotal)
	}
}

// A reducer may die at any point of a batch: after some messages, after
// some slots or counts, in the middle of a slot's split, before the
// checkpoint. The batch is then delivered again, as
// a whole or cut differently. Every count must come out exactly right.
// The batch is cut once on a fresh model, and once after an earlier batch,
// whose writer then knows the documents it wrote and writes them unread.
func TestCountsAreExactlyOnceWhateverFails(t *testing.T) {
	changes := batch()
	const unique = 12
	// Slot and count writes go out together, or one command each, so that
	// the batch is also cut between any two of them.
	for _, bulk := range []int{0, 1} {
		name := map[int]string{0: "writes together", 1: "a command per write"}[bulk]
		t.Run(name+"/fresh", func(t *testing.T) {
			crashEverywhere(t, nil, changes, 40, unique, bulk)
		})
		t.Run(name+"/after a batch", func(t *testing.T) {
			crashEverywhere(t, changes[:6], changes[6:], 40, unique, bulk)
		})
	}
}

// crashEverywhere applies before, then cuts the apply of changes through
// through at each of its database commands in turn, each time on a model of
// its own, and delivers changes again: cut in two, then whole. A bulk above
// 0 bounds the writes sent in one command.
func crashEverywhere(t *testing.T, before, changes []readmodel.Change, through uint64, unique int64, bulk int) {
	uri := testkit.Mongo(t).URI()
	open := func(t *testing.T, c *crashingClient, name string) *readmodel.Store {
		s, err := readmodel.Open(t.Context(), c.client.Database(name))
		if err != nil {
			t.Fatal(err)
		}
		// Slots of three messages split within the batch, so that the
		// batch is cut in the middle of splits too; and its messages go
		// in several inserts, so that it is cut between them.
		readmodel.SetLeafCap(s, 3)
		readmodel.SetInsertChunk(s, 5)
		if bulk > 0 {
			readmodel.SetBulk(s, bulk)
		}
		if len(before) > 0 {
			if err := s.Apply(t.Context(), 0, before, before[len(before)-1].Sequence); err != nil {
				t.Fatal(err)
			}
		}
		return s
	}

	// How many commands does the batch take when nothing fails?
	probe := newCrashingClient(t, uri)
	s := open(t, probe, fmt.Sprintf("probe%d", time.Now().UnixNano()))
	start := probe.commands.Load()
	if err := s.Apply(t.Context(), 0, changes, through); err != nil {
		t.Fatal(err)
	}
	total := probe.commands.Load() - start
	if total < 4 {
		t.Fatalf("a batch took %d commands", total)
	}
	checkCounts(t, s, unique)

	half := len(changes) / 2
	for at := int64(1); at <= total; at++ {
		t.Run(fmt.Sprintf("crash at command %d of %d", at, total), func(t *testing.T) {
			c := newCrashingClient(t, uri)
			s := open(t, c, fmt.Sprintf("crash%d_%d", at, time.Now().UnixNano()))
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			c.crash.Store(&cancel)
			c.crashAt.Store(c.commands.Load() + at)
			if err := s.Apply(ctx, 0, changes, through); err == nil {
				t.Fatalf("the batch succeeded although it was cut at command %d", at)
			}
			// Redelivered cut differently, then once more whole.
			ctx = t.Context()
			if err := s.Apply(ctx, 0, changes[:half], changes[half-1].Sequence); err != nil {
				t.Fatal(err)
			}
			if err := s.Apply(ctx, 0, changes[half:], through); err != nil {
				t.Fatal(err)
			}
			if err := s.Apply(ctx, 0, changes, through); err != nil {
				t.Fatal(err)
			}
			checkCounts(t, s, unique)
			if cp, _ := s.Checkpoint(ctx, 0); cp != through {
				t.Errorf("checkpoint %d, want %d", cp, through)
			}
		})
	}
}

// Two writers of one partition take turns, as when a reducer loses its
// partition to another process and gets it back: each must count and
// place what the other wrote meanwhile, not only what it wrote itself.
func TestWritersTakingTurns(t *testing.T) {
	ctx := t.Context()
	db := testkit.Database(t)
	var writers [2]*readmodel.Store
	for i := range writers {
		s, err := readmodel.Open(ctx, db)
		if err != nil {
			t.Fatal(err)
		}
		readmodel.SetLeafCap(s, 3)
		writers[i] = s
	}
	changes := batch()
	for i, lo := 0, 0; lo < len(changes); i, lo = i+1, lo+2 {
		part := changes[lo:min(lo+2, len(changes))]
		if err := writers[i%2].Apply(ctx, 0, part, part[len(part)-1].Sequence); err != nil {
			t.Fatal(err)
		}
	}
	checkCounts(t, writers[0], 12)
}

// The counts of all tags add up every partition that folded any: here the
// tags of the batch live in partitions 1 and 3, each folded on its own.
func TestCountsOfAllTagsSpanPartitions(t *testing.T) {
	ctx := t.Context()
	s, err := readmodel.Open(ctx, testkit.Database(t))
	if err != nil {
		t.Fatal(err)
	}
	parts := map[string]int{"go": 1, "nats": 3}
	byPartition := map[int][]readmodel.Change{}
	for _, c := range batch() {
		p := parts[c.Message.Tag]
		byPartition[p] = append(byPartition[p], c)
	}
	for p, changes := range byPartition {
		if err := s.Apply(ctx, p, changes, changes[len(changes)-1].Sequence); err != nil {
			t.Fatal(err)
		}
	}
	checkCounts(t, s, 12)
}

// A batch delivered again after it was written, whole or in part, into a
// model of 100,000 messages costs about the database commands its first
// delivery did, however large the batch: never a command per message.
func TestRedeliveryCostsWhatTheFirstDeliveryDid(t *testing.T) {
	ctx := t.Context()
	c := newCrashingClient(t, testkit.Mongo(t).URI())
	s, err := readmodel.Open(ctx, c.client.Database(fmt.Sprintf("redeliver%d", time.Now().UnixNano())))
	if err != nil {
		t.Fatal(err)
	}
	// A redelivery reads each slot that the first delivery wrote; with one
	// command per slot write, both count the slots touched.
	readmodel.SetBulk(s, 1)
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	made := func(n int, seq uint64) []readmodel.Change {
		out := make([]readmodel.Change, n)
		for i := range out {
			at := start.Add(time.Duration(seq+uint64(i)) * 7 * time.Second)
			out[i] = readmodel.Change{Sequence: seq + uint64(i), Message: message.Message{
				ID: ulid.MustNew(ulid.Timestamp(at), ulid.DefaultEntropy()).String(), UserID: "u",
				Text: "x", Tag: fmt.Sprint("t", i%4), CreatedAt: at}}
		}
		return out
	}
	const stored, batch = 100_000, 1000
	for seq := uint64(1); seq <= stored; seq += 4000 {
		b := made(4000, seq)
		if err := s.Apply(ctx, 0, b, b[len(b)-1].Sequence); err != nil {
			t.Fatal(err)
		}
	}
	next := made(batch, stored+1)
	commands := func(f func() error) int64 {
		before := c.commands.Load()
		if err := f(); err != nil {
			t.Fatal(err)
		}
		return c.commands.Load() - before
	}
	first := commands(func() error { return s.Apply(ctx, 0, next, stored+batch) })
	again := commands(func() error { return s.Apply(ctx, 0, next, stored+batch) })
	// Cut after its messages and slots: the counts and the checkpoint lag.
	partly := commands(func() error {
		return s.Apply(ctx, 0, append(next[batch/2:], made(batch/2, stored+batch+1)...), stored+3*batch/2)
	})
	t.Logf("first delivery %d commands, again %d, half again %d", first, again, partly)
	for _, n := range []int64{again, partly} {
		if n > 2*first+10 || n >= batch/4 {
			t.Errorf("a redelivered batch of %d took %d commands; its first delivery took %d", batch, n, first)
		}
	}
	if n, err := s.Count(ctx, readmodel.Filter{}); err != nil || n != stored+3*batch/2 {
		t.Fatalf("count %d, %v; want %d", n, err, stored+3*batch/2)
	}
}

// Reducers of several partitions, each in a process of its own, fold their
// first batches at once, with messages of different years, so that they
// widen the span at once. Every partition and every year is then counted
// and listed, on a store whose updates read a document and write it back
// as two steps, as the embedded FerretDB's do.
func TestPartitionsStartingAtOnceAreAllCounted(t *testing.T) {
	uri := testkit.Mongo(t).URI()
	const partitions = 10
	for round := range 12 {
		t.Run(fmt.Sprint("round", round), func(t *testing.T) {
			ctx := t.Context()
			db := testkit.DatabaseOn(t, uri)
			var wg sync.WaitGroup
			errs := make(chan error, partitions)
			for p := range partitions {
				s := openIn(t, db)
				start := time.Date(2020+p%4, 6, 1, 0, 0, 0, 0, time.UTC)
				wg.Go(func() { errs <- s.Apply(ctx, p, changes(fmt.Sprint("t", p), start, 1, 1), 1) })
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				if err != nil {
					t.Fatal(err)
				}
			}
			s := openIn(t, db)
			if n := count(t, s, readmodel.Filter{}); n != partitions {
				t.Errorf("count of all tags = %d, want %d", n, partitions)
			}
			from := readmodel.At(time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC))
			if n := count(t, s, readmodel.Filter{From: from}); n != partitions {
				t.Errorf("count of all tags from 2020 = %d, want %d", n, partitions)
			}
			page, err := s.List(ctx, readmodel.Page{Limit: 100})
			if err != nil || len(page) != partitions {
				t.Errorf("list of all tags holds %d messages (%v), want %d", len(page), err, partitions)
			}
		})
	}
}

// A model folded when the span was one document, updated in place, goes on
// counting and listing every partition and year: read as it is, and after
// a writer of this version widened its span.
func TestSpanOfOneDocumentCarriesOver(t *testing.T) {
	ctx := t.Context()
	db := testkit.Database(t)
	s := openIn(t, db)
	for p, year := range []int{2024, 2025} {
		c := changes(fmt.Sprint("t", p), time.Date(year, 6, 1, 0, 0, 0, 0, time.UTC), 1, 1)
		if err := s.Apply(ctx, p, c, 1); err != nil {
			t.Fatal(err)
		}
	}
	// Rewrite the span as that version kept it.
	counts := db.Collection(fmt.Sprintf("g%d_counts", s.Generation()))
	if _, err := counts.DeleteMany(ctx, map[string]any{"_id": map[string]any{"$in": []string{"*span/1", "*span/2"}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := counts.InsertOne(ctx, map[string]any{"_id": "span", "first": 2024, "last": 2025, "partitions": 2}); err != nil {
		t.Fatal(err)
	}
	check := func(want int64) {
		t.Helper()
		s := openIn(t, db)
		if n := count(t, s, readmodel.Filter{}); n != want {
			t.Errorf("count of all tags = %d, want %d", n, want)
		}
		if n := count(t, s, readmodel.Filter{Tag: "t1"}); n != 1 {
			t.Errorf("count of t1 = %d, want 1", n)
		}
		page, err := s.List(ctx, readmodel.Page{Limit: 10})
		if err != nil || int64(len(page)) != want {
			t.Errorf("list of all tags holds %d messages (%v), want %d", len(page), err, want)
		}
	}
	check(2)
	next := openIn(t, db)
	c := changes("t0", time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC), 1, 2)
	if err := next.Apply(ctx, 0, c, 2); err != nil {
		t.Fatal(err)
	}
	check(3)
}

// openIn opens the active generation of the read model in db, as a process
// of its own would.
func openIn(t *testing.T, db *mongo.Database) *readmodel.Store {
	t.Helper()
	s, err := readmodel.Open(t.Context(), db)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
