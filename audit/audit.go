package audit

import (
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/maphash"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/messages-io/messages/eventstore"
	"github.com/messages-io/messages/message"
	"github.com/messages-io/messages/readmodel"
	"github.com/messages-io/messages/reducers"
	"github.com/oklog/ulid/v2"
)

// Log is the event log, read in order.
type Log interface {
	Read(ctx context.Context, from uint64, fn func(eventstore.Record) error) error
}

// Model is one generation of the read model.
type Model interface {
	EachMessage(ctx context.Context, fn func(message.Message, uint64) error) error
	DayCounts(ctx context.Context) ([]readmodel.DayCount, error)
	Checkpoints(ctx context.Context) (map[int]uint64, error)
	EachSlotted(ctx context.Context, entry func(readmodel.SlotEntry) error, count func(readmodel.SlotCount)) error
}

// Options tune a comparison.
type Options struct {
	// Through compares only the events up to this sequence, in every
	// partition. When 0, each partition's checkpoint in the model decides.
	Through uint64
	// MaxDiffs is how many differences the report lists; the rest are
	// counted. Default 100.
	MaxDiffs int
	// MaxHeld is the most messages of the log held in memory at once while
	// finding the exact differences of the buckets that differ. Default
	// 262144.
	MaxHeld int
	// Parked holds the sequences of events parked in the dead-letter stream:
	// they cannot be folded, and are counted in Report.Parked instead of
	// reported as differences.
	Parked map[uint64]bool
	// Progress, when set, is told the work done and the work known so far,
	// in events and messages read. The total grows when another pass turns
	// out to be needed.
	Progress func(done, total uint64)
}

func (o *Options) setDefaults() {
	if o.MaxDiffs == 0 {
		o.MaxDiffs = 100
	}
	if o.MaxHeld == 0 {
		o.MaxHeld = 1 << 18
	}
}

// Validate reports the first option out of range.
func (o Options) Validate() error {
	switch {
	case o.MaxDiffs < 0:
		return fmt.Errorf("max diffs %d: want at least 0", o.MaxDiffs)
	case o.MaxHeld < 0:
		return fmt.Errorf("max held %d: want at least 0", o.MaxHeld)
	}
	return nil
}

// Kinds of difference.
const (
	KindMissing    = "missing"    // a message of the log is not in the model
	KindUnexpected = "unexpected" // a message of the model is not in the log
	KindDifferent  = "different"  // a message differs from the event that stores it
	KindCount      = "count"      // a stored day count differs from the fold
	KindUnfoldable = "unfoldable" // an event cannot be folded
	KindSlots      = "slots"      // the slots of a tag, or of all tags, hold other messages of a day than the log
	KindSlotCount  = "slot count" // an inner slot's number for a child differs from what the child holds
)

// AllTags is the Tag of a difference in a day's count of all tags.
const AllTags = "*"

// Diff is one difference between the model and the fold of the log.
type Diff struct {
	Kind string `json:"kind"`
	// ID is the message's id, or for an unfoldable event the event's id.
	ID  string `json:"id,omitempty"`
	Tag string `json:"tag,omitempty"`
	// Day is the UTC day, YYYY-MM-DD, of the message or the count.
	Day string `json:"day,omitempty"`
	// Seq is the sequence of the event that stores the message (as the log
	// says, or for an unexpected message as the model says), or of the
	// unfoldable event.
	Seq uint64 `json:"seq,omitempty"`
	// Want and Got are what the log says and what the model holds: the
	// fields that differ, or the counts. For an unfoldable event, Want says
	// why it cannot be folded.
	Want string `json:"want,omitempty"`
	Got  string `json:"got,omitempty"`
}

// String is the difference in one line, such as
// "missing 01J… tag=go day=2026-03-01 seq=12".
func (d Diff) String() string {
	var b strings.Builder
	b.WriteString(d.Kind)
	if d.Kind == KindUnfoldable {
		fmt.Fprintf(&b, " seq=%d", d.Seq)
		if d.ID != "" {
			fmt.Fprintf(&b, " id=%s", d.ID)
		}
		return b.String() + ": " + d.Want
	}
	if d.ID != "" {
		b.WriteString(" " + d.ID)
	}
	if d.Tag != "" {
		b.WriteString(" tag=" + d.Tag)
	}
	if d.Day != "" {
		b.WriteString(" day=" + d.Day)
	}
	if d.Seq != 0 {
		fmt.Fprintf(&b, " seq=%d", d.Seq)
	}
	if d.Want != "" || d.Got != "" {
		fmt.Fprintf(&b, ": want %s got %s", d.Want, d.Got)
	}
	return b.String()
}

// Report is the outcome of a comparison.
type Report struct {
	// Through is each partition's last sequence compared, when the model's
	// checkpoints decided it.
	Through map[int]uint64 `json:"through,omitempty"`
	// Events counts the events of the log compared.
	Events uint64 `json:"events"`
	// Duplicates counts those of them that log a message id logged before:
	// they change nothing.
	Duplicates uint64 `json:"duplicates"`
	// Messages counts the messages of the model compared.
	Messages uint64 `json:"messages"`
	// Pending counts the events of the log after the compared point: not
	// folded yet.
	Pending uint64 `json:"pending"`
	// InFlight counts the messages of the model stored by events after the
	// compared point.
	InFlight uint64 `json:"inFlight"`
	// Parked counts the events up to the compared point that cannot be
	// folded and are parked in the dead-letter stream.
	Parked uint64 `json:"parked"`
	// Diffs lists the first Options.MaxDiffs differences; DiffCount counts
	// them all.
	Diffs     []Diff `json:"diffs"`
	DiffCount int    `json:"diffCount"`
}

// OK reports whether the model agrees with the log.
func (r Report) OK() bool { return r.DiffCount == 0 }

// Compare folds events as the reducers do and compares the outcome with model:
// every message present and equal, every day count per tag and of all tags.
// It returns an error only when either side cannot be read; differences are
// in the report.
func Compare(ctx context.Context, events Log, model Model, opts Options) (Report, error) {
	opts.setDefaults()
	if err := opts.Validate(); err != nil {
		return Report{}, err
	}
	c := &comparison{
		events: events, model: model, opts: opts,
		rep:     Report{Diffs: []Diff{}},
		seed:    maphash.MakeSeed(),
		tags:    map[string]int{},
		buckets: map[bucketKey]*bucket{},
		repeats: map[uint64]struct{}{},
		prog:    progress{report: opts.Progress},
	}
	if err := c.run(ctx); err != nil {
		return Report{}, err
	}
	c.prog.finish()
	return c.rep, nil
}

// bucketKey names the messages of one tag on one UTC day.
type bucketKey struct {
	tag string
	day int64 // days since 1970-01-01
}

// bucket sums up the messages of one tag and day on both sides.
type bucket struct {
	logN, modelN     uint64
	logSum, modelSum uint64 // sums of message hashes
	inFlight         uint64 // model messages not compared
	// The ids of the log's messages compared, and the ids the slots of
	// the tag hold.
	logIDs, tagSlots sums
}

// sums is how many messages, and the sum of their hashes.
type sums struct{ n, sum uint64 }

type comparison struct {
	events Log
	model  Model
	opts   Options
	rep    Report
	seed   maphash.Seed
	buf    []byte
	// limits is each partition's last sequence compared, when the
	// checkpoints decide; through is the highest of them.
	limits  map[int]uint64
	through uint64
	// lastRead is the sequence of the last event in the log.
	lastRead uint64
	// tags is the partition of every tag in the log.
	tags    map[string]int
	buckets map[bucketKey]*bucket
	// repeats are the sequences of events of an id logged before.
	repeats map[uint64]struct{}
	prog    progress
}

func (c *comparison) run(ctx context.Context) error {
	if c.opts.Through > 0 {
		c.through = c.opts.Through
	} else {
		cps, err := c.model.Checkpoints(ctx)
		if err != nil {
			return err
		}
		c.limits, c.rep.Through = cps, maps.Clone(cps)
		for _, cp := range cps {
			c.through = max(c.through, cp)
		}
	}
	suspects, err := c.foldLog(ctx)
	if err != nil {
		return err
	}
	if len(suspects) > 0 {
		if err := c.dropRepeats(ctx, suspects); err != nil {
			return err
		}
	}
	// Counts before messages: every in-flight event they include has its
	// message stored by the time the messages are read.
	counts, err := c.model.DayCounts(ctx)
	if err != nil {
		return err
	}
	if err := c.foldModel(ctx); err != nil {
		return err
	}
	if err := c.drillDown(ctx); err != nil {
		return err
	}
	c.compareCounts(counts)
	all, err := c.foldSlots(ctx)
	if err != nil {
		return err
	}
	c.compareSlots(all)
	return nil
}

// foldSlots reads every message id the slots hold into the buckets, and
// checks every number of an inner slot against what its child holds. A
// number may be short of it while the batch that placed the child's newest
// message is in flight, written before its parent's number; otherwise it
// must agree. The slots of all tags are summed per partition and day.
func (c *comparison) foldSlots(ctx context.Context) (map[bucketKey]*sums, error) {
	c.prog.grow(2 * c.rep.Messages)
	all := map[bucketKey]*sums{}
	err := c.model.EachSlotted(ctx, func(e readmodel.SlotEntry) error {
		c.prog.add(1)
		if c.slotInFlight(e) {
			return nil
		}
		day := dayOf(idTime(e.ID))
		var s *sums
		if e.Tag != "" {
			s = &c.bucketAt(bucketKey{tag: e.Tag, day: day}).tagSlots
		} else {
			k := bucketKey{tag: partitionKey(e.Partition), day: day}
			if all[k] == nil {
				all[k] = &sums{}
			}
			s = all[k]
		}
		s.n++
		s.sum += c.idHash(e.ID)
		return nil
	}, func(sc readmodel.SlotCount) {
		if sc.Counted == sc.Held || sc.Counted < sc.Held && c.slotInFlight(sc.Newest) {
			return
		}
		c.diff(Diff{Kind: KindSlotCount, ID: sc.Slot, Want: strconv.FormatInt(sc.Held, 10), Got: strconv.FormatInt(sc.Counted, 10)})
	})
	if err != nil {
		return nil, fmt.Errorf("read the slots: %w", err)
	}
	c.prog.settle()
	return all, nil
}

// slotInFlight reports whether the event that placed a slot's message is
// after the compared point.
func (c *comparison) slotInFlight(e readmodel.SlotEntry) bool {
	if c.opts.Through > 0 {
		return e.Seq > c.opts.Through
	}
	p := e.Partition
	if e.Tag != "" {
		q, ok := c.tags[e.Tag]
		if !ok {
			return e.Seq > c.lastRead
		}
		p = q
	}
	return e.Seq > c.limits[p]
}

// partitionKey names the bucket of all tags of one partition.
func partitionKey(p int) string { return AllTags + "p" + strconv.Itoa(p) }

// compareSlots reports each tag and day whose message ids in the slots of
// the tag are not those the log folds to, and each partition and day whose
// ids in the slots of all tags are not.
func (c *comparison) compareSlots(all map[bucketKey]*sums) {
	want := map[bucketKey]sums{}
	for k, b := range c.buckets {
		pk := bucketKey{tag: partitionKey(c.tags[k.tag]), day: k.day}
		w := want[pk]
		w.n += b.logIDs.n
		w.sum += b.logIDs.sum
		want[pk] = w
		if all[pk] == nil {
			all[pk] = &sums{}
		}
	}
	var diffs []Diff
	check := func(k bucketKey, want, got sums, in string) {
		if got == want {
			return
		}
		g := fmt.Sprintf("%d in %s", got.n, in)
		if got.n == want.n {
			g += ", other ids"
		}
		diffs = append(diffs, Diff{Kind: KindSlots, Tag: k.tag, Day: dayString(k.day), Want: fmt.Sprintf("%d messages", want.n), Got: g})
	}
	for k, b := range c.buckets {
		check(k, b.logIDs, b.tagSlots, "the slots of "+k.tag)
	}
	for k, got := range all {
		check(k, want[k], *got, "the slots of all tags")
	}
	slices.SortFunc(diffs, func(a, b Diff) int { return cmp.Or(strings.Compare(a.Day, b.Day), strings.Compare(a.Tag, b.Tag)) })
	for _, d := range diffs {
		c.diff(d)
	}
}

// idTime is the creation time a message id carries.
func idTime(id string) time.Time {
	u, err := ulid.ParseStrict(id)
	if err != nil {
		return time.Time{}
	}
	return ulid.Time(u.Time()).UTC()
}

// idKey is the bucket of m's tag and the day its id carries, which the
// slots go by.
func (c *comparison) idKey(m message.Message) bucketKey {
	return bucketKey{tag: m.Tag, day: dayOf(idTime(m.ID))}
}

// idHash is a keyed hash of a message id.
func (c *comparison) idHash(id string) uint64 { return maphash.String(c.seed, id) }

// limit is the last sequence of partition compared.
func (c *comparison) limit(partition int) uint64 {
	if c.opts.Through > 0 {
		return c.opts.Through
	}
	return c.limits[partition]
}

// inFlight reports whether a message of the model stored by the event at
// seq is after the compared point.
func (c *comparison) inFlight(m message.Message, seq uint64) bool {
	if c.opts.Through > 0 {
		return seq > c.opts.Through
	}
	if p, ok := c.tags[m.Tag]; ok {
		return seq > c.limits[p]
	}
	// No event of the log has this tag: the message is in flight only if
	// stored by an event appended after the log was read.
	return seq > c.lastRead
}

// foldLog reads the whole log into the buckets and returns the ids that may
// have been logged more than once.
func (c *comparison) foldLog(ctx context.Context) (map[string]struct{}, error) {
	c.prog.grow(c.through)
	var seen *bloom
	if c.through > 0 {
		seen = newBloom(c.through, 0.001)
	}
	suspects := map[string]struct{}{}
	err := c.events.Read(ctx, 1, func(rec eventstore.Record) error {
		c.prog.add(1)
		c.lastRead = rec.Sequence
		if rec.Partition < 0 {
			return nil // outside every partition: no reducer reads it
		}
		ch, err := reducers.Project(rec)
		if err == nil {
			c.tags[ch.Message.Tag] = rec.Partition
		}
		if rec.Sequence > c.limit(rec.Partition) {
			c.rep.Pending++
			return nil
		}
		if err != nil && c.opts.Parked[rec.Sequence] {
			c.rep.Parked++
			return nil
		}
		if err != nil {
			c.diff(Diff{Kind: KindUnfoldable, ID: rec.ID, Seq: rec.Sequence, Want: err.Error()})
			return nil
		}
		c.rep.Events++
		m := ch.Message
		if seen.add(m.ID) {
			suspects[m.ID] = struct{}{}
		}
		b := c.bucket(m)
		b.logN++
		b.logSum += c.hash(m)
		ids := &c.bucketAt(c.idKey(m)).logIDs
		ids.n++
		ids.sum += c.idHash(m.ID)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read the log: %w", err)
	}
	c.prog.settle()
	return suspects, nil
}

// dropRepeats reads the log again for the ids that may have been logged more
// than once, and takes every event of such an id after its first out of the
// buckets: the model stores a message by its first event only.
func (c *comparison) dropRepeats(ctx context.Context, suspects map[string]struct{}) error {
	c.prog.grow(c.through)
	first := make(map[string]struct{}, len(suspects))
	err := c.readCompared(ctx, func(seq uint64, m message.Message) {
		if _, ok := suspects[m.ID]; !ok {
			return
		}
		if _, ok := first[m.ID]; !ok {
			first[m.ID] = struct{}{}
			return
		}
		c.repeats[seq] = struct{}{}
		c.rep.Duplicates++
		b := c.bucket(m)
		b.logN--
		b.logSum -= c.hash(m)
		ids := &c.bucketAt(c.idKey(m)).logIDs
		ids.n--
		ids.sum -= c.idHash(m.ID)
	})
	if err != nil {
		return fmt.Errorf("read the log: %w", err)
	}
	c.prog.settle()
	return nil
}

// errEnough stops a read of the log past the last sequence compared.
var errEnough = errors.New("read enough")

// readCompared calls fn, in log order, for each event compared that stores
// a message: up to its partition's limit, foldable, and not a repeat.
func (c *comparison) readCompared(ctx context.Context, fn func(seq uint64, m message.Message)) error {
	if c.through == 0 {
		return nil
	}
	err := c.events.Read(ctx, 1, func(rec eventstore.Record) error {
		c.prog.add(1)
		if rec.Partition >= 0 && rec.Sequence <= c.limit(rec.Partition) {
			if _, repeat := c.repeats[rec.Sequence]; !repeat {
				if ch, err := reducers.Project(rec); err == nil {
					fn(rec.Sequence, ch.Message)
				}
			}
		}
		if rec.Sequence >= c.through {
			return errEnough
		}
		return nil
	})
	if errors.Is(err, errEnough) {
		err = nil
	}
	return err
}

// foldModel reads every message of the model into the buckets.
func (c *comparison) foldModel(ctx context.Context) error {
	c.prog.grow(c.rep.Events - c.rep.Duplicates)
	err := c.model.EachMessage(ctx, func(m message.Message, seq uint64) error {
		c.prog.add(1)
		b := c.bucket(m)
		if c.inFlight(m, seq) {
			b.inFlight++
			c.rep.InFlight++
			return nil
		}
		c.rep.Messages++
		b.modelN++
		b.modelSum += c.hash(m)
		return nil
	})
	if err != nil {
		return fmt.Errorf("read the model: %w", err)
	}
	c.prog.settle()
	return nil
}

// logged is a message as the log says, with the event that stores it.
type logged struct {
	msg message.Message
	seq uint64
}

// drillDown finds the exact differences in the buckets whose count or
// digest differ, holding at most MaxHeld of the log's messages at a time.
func (c *comparison) drillDown(ctx context.Context) error {
	differ := map[bucketKey]bool{}
	var held uint64
	for k, b := range c.buckets {
		if b.logN != b.modelN || b.logSum != b.modelSum {
			differ[k] = true
			held += b.logN
		}
	}
	if len(differ) == 0 {
		return nil
	}
	rounds := max(1, (held+uint64(c.opts.MaxHeld)-1)/uint64(c.opts.MaxHeld))
	roundSeed := maphash.MakeSeed()
	round := func(id string) uint64 {
		if rounds == 1 {
			return 0
		}
		return maphash.String(roundSeed, id) % rounds
	}
	c.prog.grow(rounds * (c.through + c.rep.Messages + c.rep.InFlight))
	for r := range rounds {
		want := map[string]logged{}
		err := c.readCompared(ctx, func(seq uint64, m message.Message) {
			if differ[c.key(m)] && round(m.ID) == r {
				want[m.ID] = logged{msg: m, seq: seq}
			}
		})
		if err != nil {
			return fmt.Errorf("read the log: %w", err)
		}
		err = c.model.EachMessage(ctx, func(m message.Message, seq uint64) error {
			c.prog.add(1)
			if w, ok := want[m.ID]; ok {
				delete(want, m.ID)
				if wantF, gotF := fieldDiffs(w.msg, m); wantF != "" {
					c.diff(Diff{Kind: KindDifferent, ID: m.ID, Tag: w.msg.Tag, Day: dayString(dayOf(w.msg.CreatedAt)), Seq: w.seq, Want: wantF, Got: gotF})
				}
				return nil
			}
			if c.inFlight(m, seq) || !differ[c.key(m)] || round(m.ID) != r {
				return nil
			}
			c.diff(Diff{Kind: KindUnexpected, ID: m.ID, Tag: m.Tag, Day: dayString(dayOf(m.CreatedAt)), Seq: seq})
			return nil
		})
		if err != nil {
			return fmt.Errorf("read the model: %w", err)
		}
		for _, id := range slices.Sorted(maps.Keys(want)) {
			w := want[id]
			c.diff(Diff{Kind: KindMissing, ID: id, Tag: w.msg.Tag, Day: dayString(dayOf(w.msg.CreatedAt)), Seq: w.seq})
		}
	}
	c.prog.settle()
	return nil
}

// compareCounts checks the stored counts against the fold: each within the
// messages in flight of its bucket.
func (c *comparison) compareCounts(counts []readmodel.DayCount) {
	stored := map[bucketKey]int64{}
	for _, dc := range counts {
		tag := dc.Tag
		if tag == "" {
			tag = AllTags
		}
		stored[bucketKey{tag: tag, day: dayOf(dc.Day)}] += dc.N
	}
	type sum struct{ want, inFlight uint64 }
	days := map[int64]*sum{}
	var diffs []Diff
	check := func(k bucketKey, want, inFlight uint64) {
		got := stored[k]
		delete(stored, k)
		if got >= 0 && uint64(got) >= want && uint64(got) <= want+inFlight {
			return
		}
		w := strconv.FormatUint(want, 10)
		if inFlight > 0 {
			w += "-" + strconv.FormatUint(want+inFlight, 10)
		}
		diffs = append(diffs, Diff{Kind: KindCount, Tag: k.tag, Day: dayString(k.day), Want: w, Got: strconv.FormatInt(got, 10)})
	}
	for k, b := range c.buckets {
		check(k, b.logN, b.inFlight)
		s := days[k.day]
		if s == nil {
			s = &sum{}
			days[k.day] = s
		}
		s.want += b.logN
		s.inFlight += b.inFlight
	}
	for d, s := range days {
		check(bucketKey{tag: AllTags, day: d}, s.want, s.inFlight)
	}
	for k := range stored {
		check(k, 0, 0) // counted, but no message of the day is in the log
	}
	slices.SortFunc(diffs, func(a, b Diff) int {
		if a.Day != b.Day {
			return strings.Compare(a.Day, b.Day)
		}
		return strings.Compare(a.Tag, b.Tag)
	})
	for _, d := range diffs {
		c.diff(d)
	}
}

func (c *comparison) diff(d Diff) {
	c.rep.DiffCount++
	if len(c.rep.Diffs) < c.opts.MaxDiffs {
		c.rep.Diffs = append(c.rep.Diffs, d)
	}
}

func (c *comparison) key(m message.Message) bucketKey {
	return bucketKey{tag: m.Tag, day: dayOf(m.CreatedAt)}
}

func (c *comparison) bucket(m message.Message) *bucket { return c.bucketAt(c.key(m)) }

func (c *comparison) bucketAt(k bucketKey) *bucket {
	b := c.buckets[k]
	if b == nil {
		b = &bucket{}
		c.buckets[k] = b
	}
	return b
}

// hash is a keyed hash of everything the model stores of a message. The
// creation time counts to the millisecond, the precision of the model (and
// of the id).
func (c *comparison) hash(m message.Message) uint64 {
	b := c.buf[:0]
	for _, s := range []string{m.ID, m.UserID, m.Text, m.Tag} {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	b = binary.LittleEndian.AppendUint64(b, uint64(m.CreatedAt.UnixMilli()))
	c.buf = b
	return maphash.Bytes(c.seed, b)
}

// fieldDiffs returns the fields in which got differs from want, as each
// holds them; both empty when they agree.
func fieldDiffs(want, got message.Message) (w, g string) {
	var ws, gs []string
	add := func(name string, a, b string) {
		if a != b {
			ws = append(ws, name+"="+strconv.Quote(a))
			gs = append(gs, name+"="+strconv.Quote(b))
		}
	}
	add("userId", want.UserID, got.UserID)
	add("text", want.Text, got.Text)
	add("tag", want.Tag, got.Tag)
	if want.CreatedAt.UnixMilli() != got.CreatedAt.UnixMilli() {
		ws = append(ws, "createdAt="+want.CreatedAt.UTC().Format(message.TimeFormat))
		gs = append(gs, "createdAt="+got.CreatedAt.UTC().Format(message.TimeFormat))
	}
	return strings.Join(ws, " "), strings.Join(gs, " ")
}

// dayOf is the UTC day of t, counted from 1970-01-01: the day whose count
// the model adds a message to.
func dayOf(t time.Time) int64 {
	s := t.Unix()
	d := s / 86400
	if s%86400 < 0 {
		d--
	}
	return d
}

func dayString(d int64) string {
	return time.Unix(d*86400, 0).UTC().Format(time.DateOnly)
}

// progress tells Options.Progress how far a comparison has come.
type progress struct {
	report      func(done, total uint64)
	done, total uint64
	told        uint64
}

// grow adds n units of work expected.
func (p *progress) grow(n uint64) {
	p.total += n
	p.tell()
}

// add records n units of work done.
func (p *progress) add(n uint64) {
	p.done += n
	p.total = max(p.total, p.done)
	if p.done-p.told >= 1024 {
		p.tell()
	}
}

// settle makes the work expected of a finished pass the work it took.
func (p *progress) settle() {
	p.total = p.done
	p.tell()
}

func (p *progress) finish() { p.settle() }

func (p *progress) tell() {
	p.told = p.done
	if p.report != nil {
		p.report(p.done, p.total)
	}
}
