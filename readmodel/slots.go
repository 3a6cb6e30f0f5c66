package readmodel

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"golang.org/x/sync/errgroup"
)

// LeafCap is the most messages one slot holds before it splits. A slot
// holds a message's id and the sequence of the event that placed it, about
// 32 bytes whatever the message, so a full slot is about 64 KB. History
// folded in random order touches about one leaf per message and key in
// each batch once leaves are small beside the history, so large leaves
// fold it several times faster; a query reads a leaf or two.
const LeafCap = 2048

// idLen is the length of a message id, a ULID in canonical form.
const idLen = 26

// Bounds of the Crockford base32 alphabet of ULIDs: every id sorts between
// a prefix padded with minChar and the same prefix padded with maxChar.
const (
	minChar = '0'
	maxChar = 'Z'
)

// rootSpan is how many characters of an id name the children of a key's
// root slot: four characters of a ULID cover about 12 days, so the root of a
// key that split lists a few dozen children a year.
const rootSpan = 4

// slotID names the slot of key that holds the ids beginning with prefix.
func slotID(key, prefix string) string { return key + "/" + prefix }

// allKey is the slot key of every tag in one partition.
func allKey(partition int) string { return allTags + "p" + strconv.Itoa(partition) }

// childPrefix is the prefix of the child of the slot at prefix that holds id.
func childPrefix(prefix, id string) string {
	if prefix == "" {
		return id[:rootSpan]
	}
	return id[:len(prefix)+1]
}

// slot is one stored slot: a leaf holds message ids, an inner slot the
// number of messages under each of its children.
type slot struct {
	ID    string `bson:"_id"`
	Inner bool   `bson:"i,omitempty"`
	// Runs holds a leaf's messages packed (see pack), one string per write
	// that added some, under a name of that write (see runName).
	Runs map[string]string `bson:"r,omitempty"`
	// Kids maps the characters that follow Prefix in a child's prefix to
	// the number of messages under that child.
	Kids map[string]int64 `bson:"c,omitempty"`
	// Msgs is the messages of the leaf's runs, under their ids.
	Msgs map[string]entry `bson:"-"`
}

// entry is a message as a slot holds it, under its id: the sequence of the
// event that placed it. The message itself is read by its id.
type entry struct {
	Seq int64
}

func entryOf(c Change) entry { return entry{Seq: int64(c.Sequence)} }

// pack writes entries as one string, each as its id, its sequence in base
// 36 and a comma, in id order. A store that converts a document field by
// field, as FerretDB does, reads and rewrites a leaf of one string several
// times faster than one of a field per message.
func pack(entries map[string]entry) string {
	var b strings.Builder
	b.Grow(len(entries) * (idLen + 6))
	for _, id := range slices.Sorted(maps.Keys(entries)) {
		b.WriteString(id)
		b.WriteString(strconv.FormatInt(entries[id].Seq, 36))
		b.WriteByte(',')
	}
	return b.String()
}

// unpack adds the entries packed in run to into.
func unpack(run string, into map[string]entry) error {
	for run != "" {
		item, rest, ok := strings.Cut(run, ",")
		if !ok || len(item) <= idLen {
			return fmt.Errorf("malformed slot entry %q", item)
		}
		seq, err := strconv.ParseInt(item[idLen:], 36, 64)
		if err != nil {
			return fmt.Errorf("malformed slot entry %q: %w", item, err)
		}
		id := item[:idLen]
		if e, ok := into[id]; !ok || seq < e.Seq {
			into[id] = entry{Seq: seq}
		}
		run = rest
	}
	return nil
}

// runName names the run of entries: by the least sequence among them. A
// message is placed by one event, and a run adds messages no other run of
// the leaf holds, so two runs of one leaf never share a name; a run
// written again keeps its name and changes nothing.
func runName(entries map[string]entry) string {
	least := int64(-1)
	for _, e := range entries {
		if least < 0 || e.Seq < least {
			least = e.Seq
		}
	}
	return strconv.FormatInt(least, 36)
}

// leaf is the stored form of a leaf holding entries: one run.
func leaf(id string, entries map[string]entry) slot {
	return slot{ID: id, Runs: map[string]string{runName(entries): pack(entries)}}
}

// total is how many messages the slot holds, under its children or itself.
func (s slot) total() int64 {
	if !s.Inner {
		return int64(len(s.Msgs))
	}
	var n int64
	for _, k := range s.Kids {
		n += k
	}
	return n
}

// readSlot returns the slot of key at prefix; a slot not stored is an empty
// leaf.
func (s *Store) readSlot(ctx context.Context, key, prefix string) (slot, error) {
	sl := slot{ID: slotID(key, prefix)}
	err := s.slots.FindOne(ctx, bson.M{"_id": sl.ID}).Decode(&sl)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return sl, nil
	}
	if err != nil {
		return slot{}, fmt.Errorf("slot %s: %w", sl.ID, unavailable(err))
	}
	if sl.Inner {
		return sl, nil
	}
	sl.Msgs = map[string]entry{}
	for _, run := range sl.Runs {
		if err := unpack(run, sl.Msgs); err != nil {
			return slot{}, fmt.Errorf("slot %s: %w", sl.ID, err)
		}
	}
	return sl, nil
}

// addSlots places the messages of fresh changes in the slots of their tag
// and of all tags in partition. When new, none of them was stored before
// this attempt, so none is in any slot yet. The keys are placed at once. k,
// when not nil, is what the partition's writer knows of its slots.
func (s *Store) addSlots(ctx context.Context, k *known, partition int, fresh []Change, new bool) error {
	byKey := map[string]map[string]entry{}
	add := func(key, id string, e entry) {
		if byKey[key] == nil {
			byKey[key] = map[string]entry{}
		}
		byKey[key][id] = e
	}
	for _, c := range fresh {
		e := entryOf(c)
		add(c.Message.Tag, c.Message.ID, e)
		add(allKey(partition), c.Message.ID, e)
	}
	g, gctx := errgroup.WithContext(ctx)
	w := &slotWrites{s: s, ctx: gctx}
	for key, entries := range byKey {
		g.Go(func() error {
			_, err := s.place(gctx, k, w, key, "", entries, new, -1)
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	w.ctx = ctx
	return w.flush()
}

// place adds entries, all under prefix, to the slots of key, and returns how
// many messages the slot at prefix then holds. Children are written before
// their parent, so a reader, who walks down from the root, meets a slot only
// once everything under it is stored; and every number written is a count
// of what is stored, never an increment, so writing the same entries again
// changes nothing. The children of one slot are placed at once.
//
// When new, no entry is in any slot yet, and held, unless negative, is the
// number of messages the slot holds as its parent counts it; that number
// is exact then (see the package doc), and it also tells a leaf, which
// never holds more than leafCap, from an inner slot, which always does. A
// leaf that the entries do not fill then gets them as one more run,
// without being read. When new, a slot that k knows is not read either;
// otherwise every slot on the way is read, and k learns it.
func (s *Store) place(ctx context.Context, k *known, w *slotWrites, key, prefix string, entries map[string]entry, new bool, held int64) (int64, error) {
	id := slotID(key, prefix)
	var st slotState
	var isKnown bool
	if new {
		st, isKnown = k.slot(id)
	}
	if isKnown && !st.inner {
		held = st.n
	}
	runs := -1 // the leaf's runs once one more is added; -1 when unknown
	switch {
	case held == 0:
		runs = 1
	case isKnown && st.runs >= 0:
		runs = st.runs + 1
	}
	leafToFill := new && !st.inner && held >= 0 && held+int64(len(entries)) <= int64(s.leafCap)
	if leafToFill && runs <= maxRuns {
		if err := w.update(id, bson.M{"$set": bson.M{"r." + runName(entries): pack(entries)}}); err != nil {
			return 0, err
		}
		k.setSlot(id, slotState{n: held + int64(len(entries)), runs: runs})
		return held + int64(len(entries)), nil
	}
	if isKnown && st.inner {
		return s.placeUnder(ctx, k, w, key, prefix, slot{ID: id, Inner: true, Kids: st.kids}, entries, new)
	}
	var sl slot
	err := s.foldOp(ctx, func() (err error) {
		sl, err = s.readSlot(ctx, key, prefix)
		return err
	})
	if err != nil {
		return 0, err
	}
	if !sl.Inner {
		return s.mergeLeaf(ctx, k, w, key, prefix, sl, entries)
	}
	return s.placeUnder(ctx, k, w, key, prefix, sl, entries, new)
}

// mergeLeaf adds entries to sl, the leaf of key at prefix as read, and
// rewrites it as one run, or splits it once it holds more than leafCap. It
// returns how many messages it then holds.
func (s *Store) mergeLeaf(ctx context.Context, k *known, w *slotWrites, key, prefix string, sl slot, entries map[string]entry) (int64, error) {
	merged := maps.Clone(sl.Msgs)
	if merged == nil {
		merged = make(map[string]entry, len(entries))
	}
	added := false
	for id, e := range entries {
		if _, ok := merged[id]; !ok {
			merged[id], added = e, true
		}
	}
	if len(merged) > s.leafCap {
		return s.split(ctx, k, w, key, prefix, merged)
	}
	if added || len(sl.Runs) > maxRuns {
		if err := w.replace(leaf(sl.ID, merged)); err != nil {
			return 0, err
		}
		k.setSlot(sl.ID, slotState{n: int64(len(merged)), runs: 1})
	} else {
		k.setSlot(sl.ID, slotState{n: int64(len(merged)), runs: len(sl.Runs)})
	}
	return int64(len(merged)), nil
}

// placeUnder places entries under the children of sl, the inner slot of
// key at prefix, at once, then raises its counts of them. It returns how
// many messages sl then holds.
func (s *Store) placeUnder(ctx context.Context, k *known, w *slotWrites, key, prefix string, sl slot, entries map[string]entry, new bool) (int64, error) {
	if sl.Kids == nil {
		sl.Kids = map[string]int64{}
	}
	groups := groupByChild(prefix, entries)
	placed := make(map[string]int64, len(groups))
	var mu sync.Mutex
	g, gctx := errgroup.WithContext(ctx)
	for q, group := range groups {
		suffix := q[len(prefix):]
		g.Go(func() error {
			n, err := s.place(gctx, k, w, key, q, group, new, sl.Kids[suffix])
			mu.Lock()
			placed[suffix] = n
			mu.Unlock()
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return 0, err
	}
	raise := bson.M{}
	for suffix, n := range placed {
		if n > sl.Kids[suffix] {
			sl.Kids[suffix] = n
			raise["c."+suffix] = n
		}
	}
	// A count only grows: $max keeps a writer that read an older state from
	// lowering a newer one. A batch delivered again changes none.
	if len(raise) > 0 {
		if err := w.update(sl.ID, bson.M{"$max": raise, "$set": bson.M{"i": true}}); err != nil {
			return 0, err
		}
	}
	k.setSlot(sl.ID, slotState{inner: true, kids: sl.Kids})
	return sl.total(), nil
}

// placed records in seqs, for each of ids placed in the slots of key under
// prefix, the sequence of the event that placed it. It reads each slot on
// the way to the ids once.
func (s *Store) placed(ctx context.Context, key, prefix string, ids []string, seqs map[string]int64) error {
	sl, err := s.readSlot(ctx, key, prefix)
	if err != nil {
		return err
	}
	if !sl.Inner {
		for _, id := range ids {
			if e, ok := sl.Msgs[id]; ok {
				seqs[id] = e.Seq
			}
		}
		return nil
	}
	groups := map[string][]string{}
	for _, id := range ids {
		q := childPrefix(prefix, id)
		groups[q] = append(groups[q], id)
	}
	for q, group := range groups {
		if sl.Kids[q[len(prefix):]] == 0 {
			continue
		}
		if err := s.placed(ctx, key, q, group, seqs); err != nil {
			return err
		}
	}
	return nil
}

// split stores entries, too many for one slot, under the children of the
// slot at prefix, at once, then makes that slot an inner one counting them.
func (s *Store) split(ctx context.Context, k *known, w *slotWrites, key, prefix string, entries map[string]entry) (int64, error) {
	groups := groupByChild(prefix, entries)
	kids := make(map[string]int64, len(groups))
	g, gctx := errgroup.WithContext(ctx)
	for q, group := range groups {
		kids[q[len(prefix):]] = int64(len(group))
		g.Go(func() error {
			if len(group) > s.leafCap {
				_, err := s.split(gctx, k, w, key, q, group)
				return err
			}
			id := slotID(key, q)
			if err := w.replace(leaf(id, group)); err != nil {
				return err
			}
			k.setSlot(id, slotState{n: int64(len(group)), runs: 1})
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return 0, err
	}
	inner := slot{ID: slotID(key, prefix), Inner: true, Kids: kids}
	if err := w.replace(inner); err != nil {
		return 0, err
	}
	k.setSlot(inner.ID, slotState{inner: true, kids: kids})
	return int64(len(entries)), nil
}

func groupByChild(prefix string, entries map[string]entry) map[string]map[string]entry {
	groups := map[string]map[string]entry{}
	for id, e := range entries {
		q := childPrefix(prefix, id)
		if groups[q] == nil {
			groups[q] = map[string]entry{}
		}
		groups[q][id] = e
	}
	return groups
}

// maxFoldOps bounds the slot reads and writes of folding that run at once,
// over every partition of a store: enough to keep a store that converts
// documents on several cores busy, few enough not to crowd out queries.
const maxFoldOps = 4

// foldOp runs op, one slot read or write of folding, once fewer than
// maxFoldOps others run.
func (s *Store) foldOp(ctx context.Context, op func() error) error {
	select {
	case s.foldOps <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-s.foldOps }()
	return op()
}

// slotWrites gathers the slot writes of one batch in the order they are
// made, and sends them in as few commands as the store takes (see
// writeSlots). A parent is written once its children are placed, so it
// comes after them. Once a command's worth is gathered they are sent, so
// that a batch that rewrites many leaves holds few of them at once.
type slotWrites struct {
	s   *Store
	ctx context.Context
	// sending is held while writes go out, so that they go out in the
	// order they were gathered; failed, under it, is the error of the first
	// send that failed.
	sending sync.Mutex
	failed  error
	mu      sync.Mutex // guards models
	models  []mongo.WriteModel
}

// update upserts the slot with id by update.
func (w *slotWrites) update(id string, update bson.M) error {
	return w.add(mongo.NewUpdateOneModel().SetFilter(bson.M{"_id": id}).SetUpdate(update).SetUpsert(true))
}

// replace upserts sl whole.
func (w *slotWrites) replace(sl slot) error {
	return w.add(mongo.NewReplaceOneModel().SetFilter(bson.M{"_id": sl.ID}).SetReplacement(sl).SetUpsert(true))
}

func (w *slotWrites) add(m mongo.WriteModel) error {
	w.mu.Lock()
	w.models = append(w.models, m)
	full := len(w.models) >= w.s.bulk
	w.mu.Unlock()
	if full {
		return w.flush()
	}
	return nil
}

// flush sends the writes gathered so far. Once a send failed, nothing more
// is sent: a parent gathered after children whose writes were lost must
// not be written without them.
func (w *slotWrites) flush() error {
	w.sending.Lock()
	defer w.sending.Unlock()
	w.mu.Lock()
	models := w.models
	w.models = nil
	w.mu.Unlock()
	if w.failed == nil {
		w.failed = w.s.writeSlots(w.ctx, models)
	}
	return w.failed
}

// maxBulk bounds the writes sent in one command. FerretDB 1.24 holds one of
// its 100 SQLite connections for each update of an existing document until
// the command ends, so a command of 100 such updates waits for a connection
// forever, and the store with it: a bulk write of 101 updates of existing
// documents was measured to hang, one of 99 to finish. Far below that,
// connections remain for the queries and for other writers.
const maxBulk = 16

// writeSlots sends models, a batch's slot writes, in order, in ordered bulk
// writes: the store applies them one after another and stops at the first
// that fails, so every slot is still written after its children, and a cut
// leaves a prefix of them written, as one command per write would. A live
// batch then costs a command or two for its slots, where one per slot cost
// a round trip and a command each.
//
// A store that runs an upsert as a read and then an insert refuses the
// insert when the slot was created in between, as by a write of an
// attempt that gave up but still landed; the writes are then sent again
// from that one, which finds the slot and updates it.
func (s *Store) writeSlots(ctx context.Context, models []mongo.WriteModel) error {
	for refused := 0; ; refused++ {
		var done int
		err := s.foldOp(ctx, func() (err error) {
			done, err = s.bulkWrite(ctx, s.slots, models)
			return err
		})
		switch {
		case err == nil:
			return nil
		case mongo.IsDuplicateKeyError(err) && refused < 2:
			models = models[done:]
		default:
			return fmt.Errorf("slots: %w", unavailable(err))
		}
	}
}

// bulkWrite sends models to coll in order, as ordered bulk writes of at
// most s.bulk each, and returns how many the store applied before the first
// that failed.
func (s *Store) bulkWrite(ctx context.Context, coll *mongo.Collection, models []mongo.WriteModel) (int, error) {
	done := 0
	for done < len(models) {
		n := min(len(models)-done, s.bulk)
		_, err := coll.BulkWrite(ctx, models[done:done+n], options.BulkWrite().SetOrdered(true))
		var bwe mongo.BulkWriteException
		switch {
		case err == nil:
			done += n
		case errors.As(err, &bwe) && len(bwe.WriteErrors) > 0:
			return done + bwe.WriteErrors[0].Index, err
		default:
			return done, err
		}
	}
	return done, nil
}

// idRange is a range of message ids [lo, hi); an empty lo or hi leaves that
// side open.
type idRange struct{ lo, hi string }

func (r idRange) has(id string) bool {
	return (r.lo == "" || id >= r.lo) && (r.hi == "" || id < r.hi)
}

// meets reports whether some id beginning with prefix lies in the range.
func (r idRange) meets(prefix string) bool {
	least := prefix + strings.Repeat(string(rune(minChar)), idLen-len(prefix))
	most := prefix + strings.Repeat(string(rune(maxChar)), idLen-len(prefix))
	return (r.hi == "" || least < r.hi) && (r.lo == "" || most >= r.lo)
}

// countBelow returns how many messages of key under the slot at prefix
// have an id below id. It reads the slots on the way from there to id's
// place: whole children before it are counted from their parent.
func (s *Store) countBelow(ctx context.Context, key, prefix, id string) (int64, error) {
	var n int64
	for {
		sl, err := s.readSlot(ctx, key, prefix)
		if err != nil {
			return 0, err
		}
		if !sl.Inner {
			return n + sl.countIn(idRange{hi: id}), nil
		}
		next := ""
		for suffix, k := range sl.Kids {
			q := prefix + suffix
			switch {
			case strings.HasPrefix(id, q):
				next = q
			case q < id:
				n += k
			}
		}
		if next == "" {
			return n, nil
		}
		prefix = next
	}
}

// countIn is how many ids of a leaf lie in r.
func (s slot) countIn(r idRange) int64 {
	var n int64
	for id := range s.Msgs {
		if r.has(id) {
			n++
		}
	}
	return n
}

// countKeys counts the messages of keys with ids in r, reading the keys at
// once.
func (s *Store) countKeys(ctx context.Context, keys []string, r idRange) (int64, error) {
	counts := make([]int64, len(keys))
	err := atOnce(ctx, len(keys), func(ctx context.Context, i int) (err error) {
		counts[i], err = s.countRange(ctx, keys[i], r)
		return err
	})
	if err != nil {
		return 0, err
	}
	var n int64
	for _, k := range counts {
		n += k
	}
	return n, nil
}

// countRange counts the messages of key with ids in r. It walks down from
// the root while both ends of the range lie under one child, reading each
// slot of that shared path once; from where they part, it counts the
// children between the ends from their parent's numbers and goes on down
// each end's path alone.
func (s *Store) countRange(ctx context.Context, key string, r idRange) (int64, error) {
	prefix := ""
	for {
		sl, err := s.readSlot(ctx, key, prefix)
		if err != nil {
			return 0, err
		}
		if !sl.Inner {
			return sl.countIn(r), nil
		}
		var n int64
		var loKid, hiKid string
		for suffix, k := range sl.Kids {
			q := prefix + suffix
			hasLo := r.lo != "" && strings.HasPrefix(r.lo, q)
			hasHi := r.hi != "" && strings.HasPrefix(r.hi, q)
			switch {
			case hasLo:
				loKid = q
			case hasHi:
				hiKid = q
			case (r.lo == "" || q > r.lo) && (r.hi == "" || q < r.hi):
				n += k // wholly inside
			}
			if hasLo && hasHi {
				hiKid = q
			}
		}
		if loKid != "" && loKid == hiKid {
			prefix = loKid // both ends under one child
			continue
		}
		if loKid != "" {
			below, err := s.countBelow(ctx, key, loKid, r.lo)
			if err != nil {
				return 0, err
			}
			n += sl.Kids[loKid[len(prefix):]] - below
		}
		if hiKid != "" {
			below, err := s.countBelow(ctx, key, hiKid, r.hi)
			if err != nil {
				return 0, err
			}
			n += below
		}
		return n, nil
	}
}

// walk yields the ids of one key's messages in a range, newest first,
// reading a slot only when the walk reaches it.
type walk struct {
	s     *Store
	key   string
	r     idRange
	stack [][]string // prefixes of slots still to read, last first
	ready []string   // ids read and not taken, oldest first
	err   error
}

func (s *Store) newWalk(key string, r idRange) *walk {
	return &walk{s: s, key: key, r: r, stack: [][]string{{""}}}
}

// peek returns the next id of the walk without taking it, false when there
// is none.
func (w *walk) peek(ctx context.Context) (string, bool) {
	for len(w.ready) == 0 && w.err == nil && len(w.stack) > 0 {
		top := w.stack[len(w.stack)-1]
		if len(top) == 0 {
			w.stack = w.stack[:len(w.stack)-1]
			continue
		}
		prefix := top[0]
		w.stack[len(w.stack)-1] = top[1:]
		sl, err := w.s.readSlot(ctx, w.key, prefix)
		if err != nil {
			w.err = err
			break
		}
		if !sl.Inner {
			for id := range sl.Msgs {
				if w.r.has(id) {
					w.ready = append(w.ready, id)
				}
			}
			// Oldest first, so that the newest is taken from the end.
			slices.Sort(w.ready)
			continue
		}
		var kids []string
		for suffix, k := range sl.Kids {
			if q := prefix + suffix; k > 0 && w.r.meets(q) {
				kids = append(kids, q)
			}
		}
		slices.Sort(kids)
		slices.Reverse(kids)
		w.stack = append(w.stack, kids)
	}
	if len(w.ready) == 0 {
		return "", false
	}
	return w.ready[len(w.ready)-1], true
}

func (w *walk) take() { w.ready = w.ready[:len(w.ready)-1] }

// newest returns up to limit message ids in r, newest first, from the slots
// of keys merged.
func (s *Store) newest(ctx context.Context, keys []string, r idRange, limit int) ([]string, error) {
	walks := make([]*walk, len(keys))
	for i, k := range keys {
		walks[i] = s.newWalk(k, r)
	}
	// The walks of several keys first reach their newest message at once.
	err := atOnce(ctx, len(walks), func(ctx context.Context, i int) error {
		walks[i].peek(ctx)
		return walks[i].err
	})
	if err != nil {
		return nil, err
	}
	var out []string
	for len(out) < limit {
		best := -1
		var top string
		for i, w := range walks {
			id, ok := w.peek(ctx)
			if w.err != nil {
				return nil, w.err
			}
			if ok && (best < 0 || id > top) {
				best, top = i, id
			}
		}
		if best < 0 {
			break
		}
		walks[best].take()
		out = append(out, top)
	}
	return out, nil
}

// Unslotted reports whether the generation holds counts but no slots: it
// was folded by a version that kept no slots, and lists nothing until a
// replay rebuilds it. It reads the span and each partition's root slot.
func (s *Store) Unslotted(ctx context.Context) (bool, error) {
	sp, err := s.readSpan(ctx)
	if err != nil || sp.Partitions == 0 {
		return false, err
	}
	for p := range sp.Partitions {
		sl, err := s.readSlot(ctx, allKey(p), "")
		if err != nil {
			return false, err
		}
		if sl.Inner || len(sl.Msgs) > 0 {
			return false, nil
		}
	}
	return true, nil
}

// SlotEntry is a message as the slots of one key hold it.
type SlotEntry struct {
	// Tag is the tag whose slots hold the message; empty for the slots of
	// all tags in Partition.
	Tag       string
	Partition int
	ID        string
	// Seq is the sequence of the event that placed the message.
	Seq uint64
}

// SlotCount is the number an inner slot keeps for one child beside the
// messages the child holds.
type SlotCount struct {
	Slot          string
	Counted, Held int64
	// Newest is the message placed by the latest event under the child.
	Newest SlotEntry
}

// EachSlotted walks the slots of every key, each slot once: it calls entry
// with every message a leaf holds and count with every number an inner slot
// keeps for a child. It holds one slot per level of a tree at a time.
func (s *Store) EachSlotted(ctx context.Context, entry func(SlotEntry) error, count func(SlotCount)) error {
	keys, err := s.slotKeys(ctx)
	if err != nil {
		return err
	}
	for _, key := range keys {
		holder := SlotEntry{Tag: key, Partition: -1}
		if p, ok := strings.CutPrefix(key, allTags+"p"); ok {
			holder.Tag = ""
			if holder.Partition, err = strconv.Atoi(p); err != nil {
				return fmt.Errorf("slot key %q: %w", key, err)
			}
		}
		if _, _, err := s.visit(ctx, key, "", holder, entry, count); err != nil {
			return err
		}
	}
	return nil
}

// slotKeys returns every key that may have slots: the tags that have day
// counts, and all tags in each partition.
func (s *Store) slotKeys(ctx context.Context) ([]string, error) {
	cur, err := s.counts.Find(ctx, bson.M{}, options.Find().SetProjection(bson.M{"k": 1}))
	if err != nil {
		return nil, fmt.Errorf("slot keys: %w", unavailable(err))
	}
	var docs []struct {
		Key string `bson:"k"`
	}
	if err := cur.All(ctx, &docs); err != nil {
		return nil, fmt.Errorf("slot keys: %w", unavailable(err))
	}
	seen := map[string]bool{}
	for _, d := range docs {
		if d.Key != "" && d.Key != allTags {
			seen[d.Key] = true
		}
	}
	sp, err := s.readSpan(ctx)
	if err != nil {
		return nil, err
	}
	for p := range sp.Partitions {
		seen[allKey(p)] = true
	}
	return slices.Sorted(maps.Keys(seen)), nil
}

// visit walks the slot of key at prefix and those under it, and returns how
// many messages they hold and the newest placed. holder says whose slots
// they are.
func (s *Store) visit(ctx context.Context, key, prefix string, holder SlotEntry, entry func(SlotEntry) error, count func(SlotCount)) (int64, SlotEntry, error) {
	sl, err := s.readSlot(ctx, key, prefix)
	if err != nil {
		return 0, SlotEntry{}, err
	}
	var newest SlotEntry
	if !sl.Inner {
		for id, e := range sl.Msgs {
			se := holder
			se.ID, se.Seq = id, uint64(e.Seq)
			if err := entry(se); err != nil {
				return 0, SlotEntry{}, err
			}
			if se.Seq >= newest.Seq {
				newest = se
			}
		}
		return int64(len(sl.Msgs)), newest, nil
	}
	var held int64
	for _, suffix := range slices.Sorted(maps.Keys(sl.Kids)) {
		q := prefix + suffix
		n, last, err := s.visit(ctx, key, q, holder, entry, count)
		if err != nil {
			return 0, SlotEntry{}, err
		}
		count(SlotCount{Slot: slotID(key, q), Counted: sl.Kids[suffix], Held: n, Newest: last})
		held += n
		if last.Seq >= newest.Seq {
			newest = last
		}
	}
	return held, newest, nil
}
