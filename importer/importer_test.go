package importer_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/messages-io/messages/eventstore"
	"github.com/messages-io/messages/importer"
	"github.com/messages-io/messages/internal/testkit"
	"github.com/messages-io/messages/message"
	"github.com/nats-io/nats-server/v2/server"
)

var now = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// env is an event store and import ledger on one NATS server, reached through
// a connection of their own.
type env struct {
	store  *eventstore.Store
	ledger *importer.KVLedger
}

func connect(t testing.TB, ns *server.Server) env {
	t.Helper()
	_, js := testkit.JetStream(t, ns)
	ctx := t.Context()
	store, err := eventstore.Open(ctx, js, eventstore.Config{Stream: "EV", Partitions: 4})
	if err != nil {
		t.Fatal(err)
	}
	ledger, err := importer.OpenLedger(ctx, js, "EV_IMPORTS", 1)
	if err != nil {
		t.Fatal(err)
	}
	return env{store: store, ledger: ledger}
}

// batchLines is the range of lines of a batch in these tests: a few, so that
// every file spans several batches.
const batchLines = 4

func newImporter(t *testing.T, events importer.Log, ledger importer.Ledger, concurrency int) *importer.Importer {
	t.Helper()
	im, err := importer.New(events, ledger, importer.Config{
		Concurrency: concurrency, BatchLines: batchLines, Now: func() time.Time { return now }, MaxReported: 3})
	if err != nil {
		t.Fatal(err)
	}
	return im
}

func run(t *testing.T, im *importer.Importer, content string) (importer.Summary, error) {
	t.Helper()
	digest, err := importer.Digest(strings.NewReader(content))
	if err != nil {
		t.Fatal(err)
	}
	return im.Import(t.Context(), strings.NewReader(content), digest)
}

// line is one good import line for message i.
func line(i int) string {
	at := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(i) * 29 * time.Second)
	return fmt.Sprintf(`{"userId":"user%d","text":"message %d","tag":"#Tag%d","createdAt":%q}`, i%7, i, i%5, at.Format(time.RFC3339Nano))
}

func goodLines(n int) string {
	var b strings.Builder
	for i := range n {
		b.WriteString(line(i) + "\n")
	}
	return b.String()
}

// stored reads every event of the log.
func stored(t *testing.T, s *eventstore.Store) []eventstore.Record {
	t.Helper()
	var recs []eventstore.Record
	if err := s.Read(t.Context(), 0, func(r eventstore.Record) error {
		recs = append(recs, r)
		return r.Err
	}); err != nil {
		t.Fatal(err)
	}
	return recs
}

func lastSeq(t *testing.T, s *eventstore.Store) uint64 {
	t.Helper()
	seq, err := s.LastSequence(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return seq
}

func TestImportAppendsGoodLinesAndReportsBadOnes(t *testing.T) {
	ns := testkit.NATS(t)
	e := connect(t, ns)
	withID := `{"id":"01JGFJJZ00ABCDEFGHJKMNPQRS","userId":"carol","text":"kept id","tag":"go","createdAt":"2025-01-01T00:00:00Z"}`
	content := strings.Join([]string{
		line(0),
		`{"userId":"alice","text":"","tag":"go","createdAt":"2025-01-01T00:00:00Z"}`, // 2: blank text
		line(1),
		"",
		withID, // 5
		`not json`,
		line(2) + "\r", // a CRLF line ending
		`{"userId":"alice","text":"hi","tag":"go","createdAt":"2025-01-01T00:00:00Z","x":1}`, // 8
		`{"userId":"alice","text":"hi","tag":"go","createdAt":"tomorrow"}`,                   // 9: over the cap of 3
		`{"userId":"alice","text":"` + strings.Repeat("x", importer.MaxLineBytes) + `"}`,     // 10: too long
		line(3), // 11, without a final newline
	}, "\n")
	im := newImporter(t, e.store, e.ledger, 4)
	sum, err := run(t, im, content)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Lines != 11 || sum.Appended != 5 || sum.AlreadyImported != 0 || sum.Bad != 5 || sum.Blank != 1 {
		t.Errorf("summary = %+v, want 11 lines: 5 appended, 5 bad, 1 blank", sum)
	}
	want := []string{
		"line 2: text must not be empty or blank",
		"line 6: line is not a JSON object",
		`line 8: unknown field "x"; want userId, text, tag, createdAt and optionally id`,
	}
	if len(sum.BadLines) != len(want) {
		t.Fatalf("bad lines = %v, want %v", sum.BadLines, want)
	}
	for i, b := range sum.BadLines {
		if b.String() != want[i] {
			t.Errorf("bad line %d = %q, want %q", i, b, want[i])
		}
	}

	checkStoredLines(t, e, sum)

	// A re-run, over a fresh connection, appends nothing and reports the
	// same bad lines.
	before := lastSeq(t, e.store)
	e2 := connect(t, ns)
	again, err := run(t, newImporter(t, e2.store, e2.ledger, 4), content)
	if err != nil {
		t.Fatal(err)
	}
	if again.Appended != 0 || again.AlreadyImported != 5 || again.Bad != 5 || again.Lines != 11 {
		t.Errorf("re-run summary = %+v, want 0 appended, 5 already imported, 5 bad", again)
	}
	if after := lastSeq(t, e2.store); after != before {
		t.Errorf("re-run moved the log from %d to %d", before, after)
	}
}

// checkStoredLines checks the events an import of the lines of
// TestImportAppendsGoodLinesAndReportsBadOnes stored: the good lines, each
// once, as parsed, with its line in the correlation id, in its tag's
// partition.
func checkStoredLines(t *testing.T, e env, sum importer.Summary) {
	t.Helper()
	recs := stored(t, e.store)
	if len(recs) != 5 {
		t.Fatalf("%d events stored, want 5", len(recs))
	}
	byID := map[string]eventstore.Record{}
	for _, r := range recs {
		byID[r.ID] = r
	}
	for i, n := range map[int]int{0: 1, 1: 3, 2: 7, 3: 11} {
		m, err := importer.ParseLine([]byte(line(i)), now)
		if err != nil {
			t.Fatal(err)
		}
		r, ok := byID[m.ID]
		if !ok {
			t.Errorf("message of line %d (%s) not stored", n, m.ID)
			continue
		}
		got, err := message.FromCreated(r.Event)
		if err != nil {
			t.Fatal(err)
		}
		if got.UserID != m.UserID || got.Text != m.Text || got.Tag != m.Tag || !got.CreatedAt.Equal(m.CreatedAt) {
			t.Errorf("line %d stored as %+v, want %+v", n, got, m)
		}
		if want := fmt.Sprintf("import:%s:%d", sum.Digest[:12], n); r.CorrelationID != want {
			t.Errorf("line %d correlation id %q, want %q", n, r.CorrelationID, want)
		}
		if r.Partition != e.store.Partition(m.Tag) {
			t.Errorf("line %d in partition %d, want that of its tag, %d", n, r.Partition, e.store.Partition(m.Tag))
		}
	}
	kept, ok := byID["01JGFJJZ00ABCDEFGHJKMNPQRS"]
	if !ok || !kept.OccurredAt.Equal(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)) || kept.UserID != "carol" {
		t.Errorf("line with an id stored as %+v (found %v)", kept, ok)
	}
}

func TestReRunAfterTheDuplicateWindowAppendsNothing(t *testing.T) {
	ns := testkit.NATS(t)
	e := connect(t, ns)
	content := goodLines(500)
	sum, err := run(t, newImporter(t, e.store, e.ledger, 8), content)
	if err != nil || sum.Appended != 500 {
		t.Fatalf("first import: %+v, %v", sum, err)
	}
	// A log that would store every append again, as JetStream does once the
	// duplicate window has passed: only the ledger keeps the re-run out.
	forgetful := &countingLog{}
	again, err := run(t, newImporter(t, forgetful, e.ledger, 8), content)
	if err != nil {
		t.Fatal(err)
	}
	if forgetful.n != 0 || again.AlreadyImported != 500 || again.Appended != 0 {
		t.Errorf("re-run appended %d, summary %+v; want nothing appended", forgetful.n, again)
	}
	// The same lines in another file are another import, appended again;
	// their events carry the same message ids, which the read model folds
	// once.
	again, err = run(t, newImporter(t, e.store, e.ledger, 8), content+"\n")
	if err != nil {
		t.Fatal(err)
	}
	if again.Appended != 500 || again.Blank != 1 {
		t.Errorf("import of the same lines in another file = %+v, want all appended", again)
	}
	ids := map[string]int{}
	for _, r := range stored(t, e.store) {
		ids[r.ID]++
	}
	if len(ids) != 500 {
		t.Errorf("log holds %d message ids, want the 500 of the file", len(ids))
	}
}

// An import interrupted before it recorded its progress, run again within
// the duplicate window, resends its batches, and the event store keeps each
// once: also a range whose first lines the ledger counts as done.
func TestReRunWithinTheWindowStoresEachBatchOnce(t *testing.T) {
	e := connect(t, testkit.NATS(t))
	content := goodLines(10) + "not json\n" + goodLines(9) // 20 lines, the 11th bad
	sum, err := run(t, newImporter(t, e.store, &stuckLedger{}, 4), content)
	if err != nil || sum.Appended != 19 || sum.Bad != 1 {
		t.Fatalf("first import: %+v, %v", sum, err)
	}
	before := lastSeq(t, e.store)
	for _, done := range []int64{0, 6, 11} {
		again, err := run(t, newImporter(t, e.store, &stuckLedger{done: done}, 4), content)
		if err != nil {
			t.Fatal(err)
		}
		if again.Appended != 0 || again.AlreadyImported != 19 || again.Bad != 1 {
			t.Errorf("re-run from line %d = %+v, want the 19 good lines already imported", done, again)
		}
	}
	if after := lastSeq(t, e.store); after != before {
		t.Errorf("re-runs moved the log from %d to %d", before, after)
	}
}

// A line whose createdAt was in the future at the first run and is not at
// the second makes its range another batch: it is stored, never taken for
// part of the batch stored before.
func TestLineValidLaterIsStored(t *testing.T) {
	e := connect(t, testkit.NATS(t))
	later := `{"userId":"alice","text":"from the future","tag":"go","createdAt":"2026-03-01T13:00:00Z"}`
	// Ranges of 4 lines: the first holds the line in the future at first.
	content := strings.Join([]string{line(0), line(1), later, line(2), line(3), line(4)}, "\n")
	at := func(now time.Time) importer.Summary {
		t.Helper()
		im, err := importer.New(e.store, &stuckLedger{}, importer.Config{BatchLines: batchLines, Now: func() time.Time { return now }})
		if err != nil {
			t.Fatal(err)
		}
		sum, err := run(t, im, content)
		if err != nil {
			t.Fatal(err)
		}
		return sum
	}
	if sum := at(now); sum.Appended != 5 || sum.Bad != 1 {
		t.Fatalf("first import = %+v, want 5 appended and the future line bad", sum)
	}
	if sum := at(now.Add(2 * time.Hour)); sum.Appended != 4 || sum.AlreadyImported != 2 || sum.Bad != 0 {
		t.Errorf("import two hours later = %+v, want the first range (4 lines) appended again, the second (2) recognised", sum)
	}
	found := false
	for _, r := range stored(t, e.store) {
		m, err := message.FromCreated(r.Event)
		found = found || err == nil && m.Text == "from the future"
	}
	if !found {
		t.Error("the line valid at the second import is not in the log")
	}
}

// stuckLedger reports the first done lines of every file imported, and
// records nothing.
type stuckLedger struct{ done int64 }

func (l *stuckLedger) Imported(context.Context, string) (int64, error) { return l.done, nil }
func (l *stuckLedger) Record(context.Context, string, int64) error     { return nil }

func TestImportCarriesOnAfterAFailure(t *testing.T) {
	ns := testkit.NATS(t)
	e := connect(t, ns)
	content := goodLines(300)
	// The event store stops acknowledging at the 200th append.
	failing := &failingLog{Log: e.store, after: 200}
	sum, err := run(t, newImporter(t, failing, e.ledger, 8), content)
	if !errors.Is(err, eventstore.ErrUnavailable) {
		t.Fatalf("import with a failing log: err = %v, want ErrUnavailable", err)
	}
	if sum.Appended < 150 || sum.Appended > 200 {
		t.Errorf("appended %d before the failure, want about 200", sum.Appended)
	}
	digest, _ := importer.Digest(strings.NewReader(content))
	done, err := e.ledger.Imported(t.Context(), digest)
	if err != nil || done < 150 || done > sum.Appended {
		t.Errorf("ledger records %d lines done (%v), want a prefix of the %d appended", done, err, sum.Appended)
	}

	again, err := run(t, newImporter(t, e.store, e.ledger, 8), content)
	if err != nil {
		t.Fatal(err)
	}
	if again.AlreadyImported+again.Appended != 300 || again.AlreadyImported < done {
		t.Errorf("second run = %+v, want the 300 lines done, at least %d already", again, done)
	}
	recs := stored(t, e.store)
	ids := map[string]bool{}
	for _, r := range recs {
		ids[r.ID] = true
	}
	if len(recs) != 300 || len(ids) != 300 {
		t.Errorf("log holds %d events of %d messages, want 300 of 300", len(recs), len(ids))
	}
}

func TestImportStopsWithItsContext(t *testing.T) {
	e := connect(t, testkit.NATS(t))
	content := goodLines(2000)
	digest, _ := importer.Digest(strings.NewReader(content))
	ctx, cancel := context.WithCancel(t.Context())
	slow := &failingLog{Log: e.store, after: 1 << 30, onAppend: func(n int) {
		if n >= 100 {
			cancel()
		}
	}}
	sum, err := newImporter(t, slow, e.ledger, 4).Import(ctx, strings.NewReader(content), digest)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if sum.Appended < 100 || sum.Appended > 120 {
		t.Errorf("appended %d after canceling at the 100th, want no more than those in flight", sum.Appended)
	}
	done, _ := e.ledger.Imported(t.Context(), digest)
	if done < 90 || done > sum.Appended {
		t.Errorf("ledger records %d, want the prefix of the %d appended", done, sum.Appended)
	}
}

func TestConfigValidate(t *testing.T) {
	for _, cfg := range []importer.Config{{Concurrency: -1}, {Concurrency: 100000}, {MaxReported: -1}, {RecordEvery: -time.Second}} {
		if _, err := importer.New(&countingLog{}, nil, cfg); err == nil {
			t.Errorf("New(%+v) succeeded", cfg)
		}
	}
}

// countingLog stores nothing and counts the events appended.
type countingLog struct {
	mu sync.Mutex
	n  int
}

func (l *countingLog) AppendBatch(_ context.Context, _ string, batch []eventstore.Append) (eventstore.AppendedBatch, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.n += len(batch)
	return eventstore.AppendedBatch{Last: uint64(l.n)}, nil
}

// failingLog passes batches to Log until after events were appended, then
// fails every batch that would go past them as unavailable; onAppend sees
// how many events were asked for, with each batch.
type failingLog struct {
	importer.Log
	after    int
	onAppend func(n int)
	mu       sync.Mutex
	n        int
}

func (l *failingLog) AppendBatch(ctx context.Context, id string, batch []eventstore.Append) (eventstore.AppendedBatch, error) {
	l.mu.Lock()
	l.n += len(batch)
	n := l.n
	l.mu.Unlock()
	if l.onAppend != nil {
		l.onAppend(n)
	}
	if n > l.after {
		return eventstore.AppendedBatch{}, fmt.Errorf("append: %w", eventstore.ErrUnavailable)
	}
	return l.Log.AppendBatch(ctx, id, batch)
}
