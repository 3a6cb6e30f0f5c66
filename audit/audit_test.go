package audit_test

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/messages-io/messages/audit"
	"github.com/messages-io/messages/event"
	"github.com/messages-io/messages/eventstore"
	"github.com/messages-io/messages/internal/testkit"
	"github.com/messages-io/messages/message"
	"github.com/messages-io/messages/readmodel"
	"github.com/messages-io/messages/reducers"
	"github.com/oklog/ulid/v2"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
)

// fixture is a log and the database of a read model beside it.
type fixture struct {
	events *eventstore.Store
	db     *mongo.Database
	gens   *readmodel.Generations
	// msgs are the messages logged, in log order of their first event, and
	// seq the sequence of that event.
	msgs []message.Message
	seq  map[string]uint64
}

var tags = []string{"go", "nats", "rust", "sql"}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	_, js := testkit.JetStream(t, testkit.NATS(t))
	ctx := t.Context()
	events, err := eventstore.Open(ctx, js, eventstore.Config{Stream: "EV", Partitions: 4})
	if err != nil {
		t.Fatal(err)
	}
	db := testkit.Database(t)
	gens, err := readmodel.OpenGenerations(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{events: events, db: db, gens: gens, seq: map[string]uint64{}}
}

// logMessages appends n messages over four tags and about three days, then
// three events repeating ids already logged: the same event again, one with
// another text, one on another day. The model keeps the first of each.
func (f *fixture) logMessages(t *testing.T, n int) {
	t.Helper()
	start := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	for i := range n {
		at := start.Add(time.Duration(i) * 107 * time.Minute)
		m := message.Message{
			ID: ulid.MustNew(ulid.Timestamp(at), ulid.DefaultEntropy()).String(), UserID: fmt.Sprint("u", i%3),
			Text: fmt.Sprint("message ", i), Tag: tags[i%len(tags)], CreatedAt: at,
		}
		f.msgs = append(f.msgs, m)
		f.seq[m.ID] = f.append(t, m, "")
	}
	again := f.msgs[0]
	f.append(t, again, "again-0")
	otherText := f.msgs[1]
	otherText.Text = "not the first text"
	f.append(t, otherText, "again-1")
	otherDay := f.msgs[2]
	otherDay.CreatedAt = otherDay.CreatedAt.Add(48 * time.Hour)
	f.append(t, otherDay, "again-2")
}

func (f *fixture) append(t *testing.T, m message.Message, msgID string) uint64 {
	t.Helper()
	ev, err := message.CreatedEvent(m, "")
	if err != nil {
		t.Fatal(err)
	}
	res, err := f.events.Append(t.Context(), eventstore.Append{Event: ev, PartitionKey: m.Tag, MsgID: msgID})
	if err != nil || res.Duplicate {
		t.Fatalf("append: %+v, %v", res, err)
	}
	return res.Sequence
}

// model folds the log into a new generation as the reducers do: per
// partition, in log order, each partition's checkpoint at its last event.
// Events after through are left out; unfoldable events are passed over.
func (f *fixture) model(t *testing.T, through uint64) *readmodel.Store {
	t.Helper()
	ctx := t.Context()
	s, err := f.gens.Create(ctx, t.Name())
	if err != nil {
		t.Fatal(err)
	}
	f.fold(t, s, 0, through, true)
	return s
}

// fold applies the events in (after, through] to s; with checkpoint false
// it writes their messages and counts but leaves the checkpoints behind
// them, as a reducer does in the middle of a batch.
func (f *fixture) fold(t *testing.T, s *readmodel.Store, after, through uint64, checkpoint bool) {
	t.Helper()
	ctx := t.Context()
	changes := map[int][]readmodel.Change{}
	last := map[int]uint64{}
	err := f.events.Read(ctx, after+1, func(rec eventstore.Record) error {
		if through > 0 && rec.Sequence > through {
			return nil
		}
		last[rec.Partition] = rec.Sequence
		if c, err := reducers.Project(rec); err == nil {
			changes[rec.Partition] = append(changes[rec.Partition], c)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for p, seq := range last {
		if !checkpoint {
			seq = 0
		}
		if err := s.Apply(ctx, p, changes[p], seq); err != nil {
			t.Fatal(err)
		}
	}
}

func (f *fixture) collection(s *readmodel.Store, name string) *mongo.Collection {
	return f.db.Collection(fmt.Sprintf("g%d_%s", s.Generation(), name))
}

func compare(t *testing.T, f *fixture, s *readmodel.Store, opts audit.Options) audit.Report {
	t.Helper()
	rep, err := audit.Compare(t.Context(), f.events, s, opts)
	if err != nil {
		t.Fatalf("compare: %v", err)
	}
	return rep
}

func day(m message.Message) string { return m.CreatedAt.UTC().Format(time.DateOnly) }

// dayCount is how many of the logged messages have tag (any when empty)
// on day.
func (f *fixture) dayCount(tag, d string) int {
	n := 0
	for _, m := range f.msgs {
		if (tag == "" || m.Tag == tag) && day(m) == d {
			n++
		}
	}
	return n
}

// corruption is a change to a model built from the fixture's log, and what
// a comparison should report of it.
type corruption struct {
	name    string
	corrupt func(t *testing.T, s *readmodel.Store)
	opts    audit.Options
	want    []audit.Diff
	count   int // DiffCount, when more than listed
}

// corruptionCase is what the corruptions are made of: the fixture, its
// messages and counts.
type corruptionCase struct {
	f                *fixture
	m5, m6, m7, m1   message.Message
	stray            message.Message
	goDay, allKey    string
	goInP, nGo, nAll int
}

func newCorruptionCase(f *fixture) corruptionCase {
	c := corruptionCase{f: f}
	c.m5, c.m6, c.m7, c.m1 = f.msgs[5], f.msgs[6], f.msgs[7], f.msgs[1]
	c.stray = message.Message{ID: ulid.MustNew(ulid.Timestamp(c.m5.CreatedAt), ulid.DefaultEntropy()).String(), UserID: "x", Text: "never logged", Tag: "go", CreatedAt: c.m5.CreatedAt}
	c.goDay = day(f.msgs[0]) // f.msgs[0] is under go
	c.allKey = fmt.Sprintf("*/p%d", f.events.Partition("go"))
	for _, m := range f.msgs { // messages of goDay in go's partition, all tags
		if day(m) == c.goDay && f.events.Partition(m.Tag) == f.events.Partition("go") {
			c.goInP++
		}
	}
	c.nGo, c.nAll = f.dayCount("go", c.goDay), f.dayCount("", c.goDay)
	return c
}

// inPartition is how many unique messages of m's day are in m's partition.
func (c corruptionCase) inPartition(m message.Message) int {
	n := 0
	for _, o := range c.f.msgs {
		if day(o) == day(m) && c.f.events.Partition(o.Tag) == c.f.events.Partition(m.Tag) {
			n++
		}
	}
	return n
}

// messageCorruptions change messages.
func (c corruptionCase) messageCorruptions() []corruption {
	f, m5, m6, m7, m1, stray := c.f, c.m5, c.m6, c.m7, c.m1, c.stray
	return []corruption{
		{name: "clean"},
		{
			name: "message deleted",
			corrupt: func(t *testing.T, s *readmodel.Store) {
				deleteOne(t, f.collection(s, "messages"), m5.ID)
			},
			want: []audit.Diff{{Kind: audit.KindMissing, ID: m5.ID, Tag: m5.Tag, Day: day(m5), Seq: f.seq[m5.ID]}},
		},
		{
			name: "text altered",
			corrupt: func(t *testing.T, s *readmodel.Store) {
				set(t, f.collection(s, "messages"), m6.ID, bson.M{"text": "altered"})
			},
			want: []audit.Diff{{Kind: audit.KindDifferent, ID: m6.ID, Tag: m6.Tag, Day: day(m6), Seq: f.seq[m6.ID],
				Want: fmt.Sprintf("text=%q", m6.Text), Got: `text="altered"`}},
		},
		{
			name: "tag and user altered",
			corrupt: func(t *testing.T, s *readmodel.Store) {
				set(t, f.collection(s, "messages"), m7.ID, bson.M{"tag": "elsewhere", "userId": "mallory"})
			},
			want: []audit.Diff{{Kind: audit.KindDifferent, ID: m7.ID, Tag: m7.Tag, Day: day(m7), Seq: f.seq[m7.ID],
				Want: fmt.Sprintf("userId=%q tag=%q", m7.UserID, m7.Tag), Got: `userId="mallory" tag="elsewhere"`}},
		},
		{
			name: "the first of a repeated id altered to the repeat",
			corrupt: func(t *testing.T, s *readmodel.Store) {
				set(t, f.collection(s, "messages"), m1.ID, bson.M{"text": "not the first text"})
			},
			want: []audit.Diff{{Kind: audit.KindDifferent, ID: m1.ID, Tag: m1.Tag, Day: day(m1), Seq: f.seq[m1.ID],
				Want: fmt.Sprintf("text=%q", m1.Text), Got: `text="not the first text"`}},
		},
		{
			name: "unexpected message",
			corrupt: func(t *testing.T, s *readmodel.Store) {
				insert(t, f.collection(s, "messages"), stray, 3)
			},
			want: []audit.Diff{{Kind: audit.KindUnexpected, ID: stray.ID, Tag: "go", Day: day(stray), Seq: 3}},
		},
	}
}

// countCorruptions change counts and slots.
func (c corruptionCase) countCorruptions(ctx context.Context) []corruption {
	f, m5, m6, goDay, allKey, nGo, nAll, goInP := c.f, c.m5, c.m6, c.goDay, c.allKey, c.nGo, c.nAll, c.goInP
	inPartition := c.inPartition
	return []corruption{
		{
			name: "tag count deleted",
			corrupt: func(t *testing.T, s *readmodel.Store) {
				unsetCount(t, f.collection(s, "counts"), "go", goDay)
			},
			want: []audit.Diff{{Kind: audit.KindCount, Tag: "go", Day: goDay, Want: fmt.Sprint(nGo), Got: "0"}},
		},
		{
			name: "tag count altered",
			corrupt: func(t *testing.T, s *readmodel.Store) {
				id, field := countField("go", goDay)
				set(t, f.collection(s, "counts"), id, bson.M{field: nGo + 2})
			},
			want: []audit.Diff{{Kind: audit.KindCount, Tag: "go", Day: goDay, Want: fmt.Sprint(nGo), Got: fmt.Sprint(nGo + 2)}},
		},
		{
			name: "count of all tags deleted in one partition",
			corrupt: func(t *testing.T, s *readmodel.Store) {
				unsetCount(t, f.collection(s, "counts"), allKey, goDay)
			},
			want: []audit.Diff{{Kind: audit.KindCount, Tag: audit.AllTags, Day: goDay, Want: fmt.Sprint(nAll), Got: fmt.Sprint(nAll - goInP)}},
		},
		{
			name: "count of a day without messages",
			corrupt: func(t *testing.T, s *readmodel.Store) {
				_, err := f.collection(s, "counts").InsertOne(ctx, bson.M{"_id": "go/2020", "k": "go",
					"y": time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC), "01-01": int64(4), "seq": int64(1)})
				if err != nil {
					t.Fatal(err)
				}
			},
			want: []audit.Diff{{Kind: audit.KindCount, Tag: "go", Day: "2020-01-01", Want: "0", Got: "4"}},
		},
		{
			name: "message and its counts deleted",
			corrupt: func(t *testing.T, s *readmodel.Store) {
				deleteOne(t, f.collection(s, "messages"), f.msgs[0].ID)
				unsetCount(t, f.collection(s, "counts"), "go", goDay)
			},
			want: []audit.Diff{
				{Kind: audit.KindMissing, ID: f.msgs[0].ID, Tag: "go", Day: goDay, Seq: f.seq[f.msgs[0].ID]},
				{Kind: audit.KindCount, Tag: "go", Day: goDay, Want: fmt.Sprint(nGo), Got: "0"},
			},
		},
		{
			name: "message missing from the slots of its tag",
			corrupt: func(t *testing.T, s *readmodel.Store) {
				unsetSlotted(t, f.collection(s, "slots"), m6.Tag+"/", m6.ID)
			},
			want: []audit.Diff{{Kind: audit.KindSlots, Tag: m6.Tag, Day: day(m6), Want: fmt.Sprintf("%d messages", f.dayCount(m6.Tag, day(m6))),
				Got: fmt.Sprintf("%d in the slots of %s", f.dayCount(m6.Tag, day(m6))-1, m6.Tag)}},
		},
		{
			name: "message missing from the slots of all tags",
			corrupt: func(t *testing.T, s *readmodel.Store) {
				unsetSlotted(t, f.collection(s, "slots"), fmt.Sprintf("*p%d/", f.events.Partition(m5.Tag)), m5.ID)
			},
			want: []audit.Diff{{Kind: audit.KindSlots, Tag: fmt.Sprintf("*p%d", f.events.Partition(m5.Tag)), Day: day(m5),
				Want: fmt.Sprintf("%d messages", inPartition(m5)), Got: fmt.Sprintf("%d in the slots of all tags", inPartition(m5)-1)}},
		},
		{
			name: "more differences than listed, found in rounds",
			corrupt: func(t *testing.T, s *readmodel.Store) {
				for _, m := range f.msgs[10:20] {
					deleteOne(t, f.collection(s, "messages"), m.ID)
				}
			},
			opts:  audit.Options{MaxDiffs: 3, MaxHeld: 4},
			count: 10,
		},
	}
}

func TestCompareFindsEveryCorruption(t *testing.T) {
	f := newFixture(t)
	f.logMessages(t, 40)
	c := newCorruptionCase(f)
	for _, tc := range append(c.messageCorruptions(), c.countCorruptions(t.Context())...) {
		t.Run(tc.name, func(t *testing.T) {
			checkCorruption(t, f, tc)
		})
	}
}

// checkCorruption builds a model from f's log, corrupts it as tc says and
// checks that a comparison reports what tc wants.
func checkCorruption(t *testing.T, f *fixture, tc corruption) {
	t.Helper()
	const events, unique = 43, 40
	s := f.model(t, 0)
	if tc.corrupt != nil {
		tc.corrupt(t, s)
	}
	rep := compare(t, f, s, tc.opts)
	if rep.Events != events || rep.Duplicates != events-unique || rep.Pending != 0 || rep.InFlight != 0 {
		t.Errorf("report = %+v, want %d events, %d duplicates, none pending or in flight", rep, events, events-unique)
	}
	if tc.count > 0 {
		if rep.DiffCount != tc.count || len(rep.Diffs) != tc.opts.MaxDiffs {
			t.Fatalf("%d differences, %d listed; want %d, %d listed", rep.DiffCount, len(rep.Diffs), tc.count, tc.opts.MaxDiffs)
		}
		for _, d := range rep.Diffs {
			if d.Kind != audit.KindMissing || f.seq[d.ID] == 0 {
				t.Errorf("listed %v, want a missing message", d)
			}
		}
		return
	}
	if tc.want == nil {
		tc.want = []audit.Diff{}
	}
	if !reflect.DeepEqual(rep.Diffs, tc.want) || rep.DiffCount != len(tc.want) || rep.OK() != (len(tc.want) == 0) {
		t.Errorf("differences (%d):\n%s\nwant:\n%s", rep.DiffCount, lines(rep.Diffs), lines(tc.want))
	}
	wantMessages := uint64(unique)
	for _, d := range tc.want {
		switch d.Kind {
		case audit.KindMissing:
			wantMessages--
		case audit.KindUnexpected:
			wantMessages++
		}
	}
	if rep.Messages != wantMessages {
		t.Errorf("compared %d messages of the model, want %d", rep.Messages, wantMessages)
	}
}

func TestCompareIgnoresWhatIsInFlight(t *testing.T) {
	f := newFixture(t)
	f.logMessages(t, 24)
	s := f.model(t, 0)
	before, err := f.events.LastSequence(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	// More events: some written to the model with their counts, but their
	// partitions' checkpoints not yet moved; the rest not folded at all.
	start := time.Date(2026, 3, 2, 12, 0, 0, 0, time.UTC)
	for i := range 12 {
		at := start.Add(time.Duration(i) * time.Minute)
		m := message.Message{ID: ulid.MustNew(ulid.Timestamp(at), ulid.DefaultEntropy()).String(), UserID: "late", Text: "late", Tag: tags[i%4], CreatedAt: at}
		f.append(t, m, "")
	}
	f.fold(t, s, before, before+8, false)

	rep := compare(t, f, s, audit.Options{})
	if !rep.OK() || rep.InFlight != 8 || rep.Pending != 12 || rep.Messages != 24 || rep.Events != before {
		t.Errorf("report %+v; want no difference, 8 messages in flight, 12 events pending, 24 messages and %d events compared:\n%s", rep, before, lines(rep.Diffs))
	}
	cps, err := s.Checkpoints(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Through) == 0 || len(rep.Through) != len(cps) {
		t.Errorf("compared %d partitions (%v), the model has checkpoints of %d (%v)", len(rep.Through), rep.Through, len(cps), cps)
	}
	for p, cp := range rep.Through {
		if want := cps[p]; cp != want {
			t.Errorf("compared partition %d through %d, its checkpoint is %d", p, cp, want)
		}
	}

	// A count wrong by more than its bucket's messages in flight is still
	// found.
	lateDay := start.Format(time.DateOnly)
	id, field := countField("go", lateDay)
	set(t, f.collection(s, "counts"), id, bson.M{field: 50})
	rep = compare(t, f, s, audit.Options{})
	nGo := f.dayCount("go", lateDay)
	want := []audit.Diff{{Kind: audit.KindCount, Tag: "go", Day: lateDay, Want: fmt.Sprintf("%d-%d", nGo, nGo+2), Got: "50"}}
	if !reflect.DeepEqual(rep.Diffs, want) {
		t.Errorf("differences:\n%s\nwant:\n%s", lines(rep.Diffs), lines(want))
	}

	// Through a given sequence: later messages of the model are in flight.
	full := f.model(t, 0)
	rep = compare(t, f, full, audit.Options{Through: 10})
	if !rep.OK() || rep.Events != 10 || rep.InFlight != uint64(24+12-10) || rep.Through != nil {
		t.Errorf("through 10: %+v\n%s", rep, lines(rep.Diffs))
	}
	// A model folded only through 10 lacks nothing up to 10, but lacks the
	// rest compared with the whole log.
	part := f.model(t, 10)
	if rep := compare(t, f, part, audit.Options{Through: 10}); !rep.OK() {
		t.Errorf("model through 10, compared through 10:\n%s", lines(rep.Diffs))
	}
	if rep := compare(t, f, part, audit.Options{Through: before}); rep.OK() || rep.DiffCount < 14 {
		t.Errorf("model through 10, compared through %d: %d differences, want at least 14", before, rep.DiffCount)
	}
}

func TestCompareReportsUnfoldableEvents(t *testing.T) {
	f := newFixture(t)
	f.logMessages(t, 8)
	ctx := t.Context()
	bad := event.Event{ID: ulid.Make().String(), Type: "message.edited", Version: 1, OccurredAt: time.Now().UTC(), UserID: "u", Data: json.RawMessage(`{}`)}
	res, err := f.events.Append(ctx, eventstore.Append{Event: bad, PartitionKey: "go"})
	if err != nil {
		t.Fatal(err)
	}
	s := f.model(t, 0)
	rep := compare(t, f, s, audit.Options{})
	if rep.DiffCount != 1 || rep.Diffs[0].Kind != audit.KindUnfoldable || rep.Diffs[0].Seq != res.Sequence || rep.Diffs[0].ID != bad.ID ||
		!strings.Contains(rep.Diffs[0].Want, `unknown event type "message.edited"`) {
		t.Errorf("differences:\n%s\nwant the unfoldable event %d", lines(rep.Diffs), res.Sequence)
	}
	// Parked in the dead-letter stream, it is no difference.
	rep = compare(t, f, s, audit.Options{Parked: map[uint64]bool{res.Sequence: true}})
	if !rep.OK() || rep.Parked != 1 {
		t.Errorf("with the event parked: %+v", rep)
	}
}

func TestCompareAnEmptyModel(t *testing.T) {
	f := newFixture(t)
	f.logMessages(t, 6)
	s, err := f.gens.Create(t.Context(), "empty")
	if err != nil {
		t.Fatal(err)
	}
	// Without checkpoints, nothing is due yet.
	if rep := compare(t, f, s, audit.Options{}); !rep.OK() || rep.Events != 0 || rep.Pending != 9 {
		t.Errorf("no checkpoints: %+v", rep)
	}
	rep := compare(t, f, s, audit.Options{Through: 100})
	kinds := map[string]int{}
	for _, d := range rep.Diffs {
		kinds[d.Kind]++
	}
	// Six messages missing; their counts, per tag and of all tags, short;
	// and the slots of their tags and of all tags hold none of their days.
	if kinds[audit.KindMissing] != 6 || kinds[audit.KindSlots] < 2 || kinds[audit.KindCount] != rep.DiffCount-6-kinds[audit.KindSlots] || kinds[audit.KindCount] < 2 {
		t.Errorf("differences:\n%s", lines(rep.Diffs))
	}
}

func TestCompareTellsProgress(t *testing.T) {
	f := newFixture(t)
	f.logMessages(t, 10)
	s := f.model(t, 0)
	deleteOne(t, f.collection(s, "messages"), f.msgs[3].ID)
	var calls int
	var last [2]uint64
	rep := compare(t, f, s, audit.Options{Progress: func(done, total uint64) {
		calls++
		if done > total || done < last[0] {
			t.Errorf("progress %d of %d after %d of %d", done, total, last[0], last[1])
		}
		last = [2]uint64{done, total}
	}})
	if rep.DiffCount != 1 || calls == 0 || last[0] != last[1] || last[0] < 2*13 {
		t.Errorf("%d progress calls, last %v; report %+v", calls, last, rep)
	}
}

func TestDiffString(t *testing.T) {
	for _, tc := range []struct {
		d    audit.Diff
		want string
	}{
		{audit.Diff{Kind: audit.KindMissing, ID: "01J", Tag: "go", Day: "2026-03-01", Seq: 12}, "missing 01J tag=go day=2026-03-01 seq=12"},
		{audit.Diff{Kind: audit.KindDifferent, ID: "01J", Tag: "go", Day: "2026-03-01", Seq: 3, Want: `text="a"`, Got: `text="b"`},
			`different 01J tag=go day=2026-03-01 seq=3: want text="a" got text="b"`},
		{audit.Diff{Kind: audit.KindCount, Tag: "*", Day: "2026-03-01", Want: "5", Got: "4"}, "count tag=* day=2026-03-01: want 5 got 4"},
		{audit.Diff{Kind: audit.KindUnfoldable, Seq: 7, ID: "01J", Want: "malformed"}, "unfoldable seq=7 id=01J: malformed"},
	} {
		if got := tc.d.String(); got != tc.want {
			t.Errorf("%#v.String() = %q, want %q", tc.d, got, tc.want)
		}
	}
}

func deleteOne(t *testing.T, c *mongo.Collection, id string) {
	t.Helper()
	res, err := c.DeleteOne(t.Context(), bson.M{"_id": id})
	if err != nil || res.DeletedCount != 1 {
		t.Fatalf("delete %s from %s: %v, %+v", id, c.Name(), err, res)
	}
}

// countField names where the model keeps the count of key on day (a date):
// the document of its year, and the day's field in it.
func countField(key, day string) (id, field string) {
	return key + "/" + day[:len("2006")], day[len("2006-"):]
}

// unsetCount removes the count of key on day.
func unsetCount(t *testing.T, c *mongo.Collection, key, day string) {
	t.Helper()
	id, field := countField(key, day)
	res, err := c.UpdateOne(t.Context(), bson.M{"_id": id}, bson.M{"$unset": bson.M{field: ""}})
	if err != nil || res.ModifiedCount != 1 {
		t.Fatalf("unset %s of %s in %s: %v, %+v", field, id, c.Name(), err, res)
	}
}

// unsetSlotted takes message id out of the slot named slot: out of the run
// of the leaf that holds it, where each message is its id, its sequence and
// a comma.
func unsetSlotted(t *testing.T, c *mongo.Collection, slot, id string) {
	t.Helper()
	var leaf struct {
		Runs map[string]string `bson:"r"`
	}
	if err := c.FindOne(t.Context(), bson.M{"_id": slot}).Decode(&leaf); err != nil {
		t.Fatalf("read %s: %v", slot, err)
	}
	for name, run := range leaf.Runs {
		at := strings.Index(run, id)
		if at < 0 {
			continue
		}
		end := at + strings.Index(run[at:], ",") + 1
		res, err := c.UpdateOne(t.Context(), bson.M{"_id": slot}, bson.M{"$set": bson.M{"r." + name: run[:at] + run[end:]}})
		if err != nil || res.ModifiedCount != 1 {
			t.Fatalf("unset %s in %s: %v, %+v", id, slot, err, res)
		}
		return
	}
	t.Fatalf("slot %s does not hold %s", slot, id)
}

func set(t *testing.T, c *mongo.Collection, id string, fields bson.M) {
	t.Helper()
	res, err := c.UpdateOne(t.Context(), bson.M{"_id": id}, bson.M{"$set": fields})
	if err != nil || res.MatchedCount != 1 {
		t.Fatalf("update %s in %s: %v, %+v", id, c.Name(), err, res)
	}
}

func insert(t *testing.T, c *mongo.Collection, m message.Message, seq int64) {
	t.Helper()
	_, err := c.InsertOne(t.Context(), bson.M{"_id": m.ID, "userId": m.UserID, "text": m.Text, "tag": m.Tag, "createdAt": m.CreatedAt, "seq": seq})
	if err != nil {
		t.Fatal(err)
	}
}

func lines(ds []audit.Diff) string {
	var b strings.Builder
	for _, d := range ds {
		b.WriteString("  " + d.String() + "\n")
	}
	return b.String()
}
