package queryapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/messages-io/messages/eventstore"
	"github.com/messages-io/messages/message"
	"github.com/messages-io/messages/position"
	"github.com/messages-io/messages/readmodel"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"
)

// Log is the event log a feed follows.
type Log interface {
	Layout() position.Layout
	LastSequence(ctx context.Context) (uint64, error)
	// Follow calls fn for every event from sequence from on, in log order,
	// as it is appended, until ctx ends or fn fails.
	Follow(ctx context.Context, from uint64, filter string, fn func(eventstore.Record) error) error
	// Read calls fn for every event from sequence from up to the last
	// stored when Read began, in log order.
	Read(ctx context.Context, from uint64, fn func(eventstore.Record) error) error
}

// Visible is what a feed reads of the read model: how far it has folded
// the log, and a message with the sequence of the event that stored it.
type Visible interface {
	Progress
	Stored(ctx context.Context, id string) (message.Message, uint64, error)
}

// FeedConfig holds a feed's options.
type FeedConfig struct {
	// Recent is how many of the last messages made visible the feed keeps,
	// so that a stream resumed from near the present needs no reading of
	// the log. Default 4096.
	Recent int
	// Buffer is how many messages wait for one stream's client to take
	// them; a client that falls further behind is disconnected. Default
	// 256.
	Buffer int
	// PollInterval is how often the checkpoints are read while events wait
	// to become visible. Default 10ms.
	PollInterval time.Duration
	// Registerer takes the feed's metrics; nil registers them nowhere.
	Registerer prometheus.Registerer
}

func (c *FeedConfig) setDefaults() {
	if c.Recent == 0 {
		c.Recent = 4096
	}
	if c.Buffer == 0 {
		c.Buffer = 256
	}
	if c.PollInterval == 0 {
		c.PollInterval = 10 * time.Millisecond
	}
	if c.Registerer == nil {
		c.Registerer = prometheus.NewRegistry()
	}
}

// item is a message made visible, as a stream sends it.
type item struct {
	part int
	seq  uint64
	tag  string
	data []byte // the message's JSON, as GET answers it
}

// awaited is an event of the log not yet visible in the read model.
type awaited struct {
	seq uint64
	id  string
	tag string
}

// Feed is the live stream of the messages that become visible, shared by
// every stream a query instance serves. One reader follows the log, and each
// event it reads waits, in its partition, until the read model has folded
// it; then its message is read once and handed to every stream that wants
// it. A stream is never waited for: one whose buffer is full is dropped.
//
// # No gap, no duplicate
//
// A stream's position holds, per partition, the sequence of the last event
// it has passed. Events of one partition become visible in sequence order
// and are handed on in that order, so a stream that has sent an event of a
// partition has sent every visible event of that partition before it, and
// resuming from the position sends exactly the visible events after it.
// Partitions need no common order. A position is made of log sequences
// only, so any instance can resume it, after a restart too.
//
// The feed keeps the last Recent messages it made visible: of each
// partition p, every one after floor[p]. A stream whose position is at or
// past the floor of each partition it reads takes the kept messages after
// its position and then the live ones, all under one lock, so nothing falls
// between. A stream further back reads the log from its position first,
// waiting for each event to be folded, until it has passed the floors.
type Feed struct {
	log    Log
	rm     Visible
	logger *slog.Logger
	cfg    FeedConfig
	folds  *watermarks

	mu      sync.Mutex
	layout  position.Layout
	started bool
	closed  bool
	head    uint64   // the last sequence read from the log
	floor   []uint64 // per partition; see the type's doc
	recent  []*item  // a ring of the last Recent items
	next    int      // where the ring's next item goes
	waiting [][]awaited
	wake    chan struct{}
	byTag   map[string]map[*stream]struct{}
	all     map[*stream]struct{}
	users   map[string]int
	streams int
	metrics *feedMetrics
}

// NewFeed returns a feed of the messages of log as rm makes them visible.
// Run makes it work.
func NewFeed(log Log, rm Visible, logger *slog.Logger, cfg FeedConfig) *Feed {
	cfg.setDefaults()
	return &Feed{
		log: log, rm: rm, logger: logger, cfg: cfg,
		folds:   newWatermarks(rm, cfg.PollInterval),
		wake:    make(chan struct{}, 1),
		byTag:   map[string]map[*stream]struct{}{},
		all:     map[*stream]struct{}{},
		users:   map[string]int{},
		metrics: newFeedMetrics(cfg.Registerer),
	}
}

// errFeedClosed ends the streams of a feed that stops.
var errFeedClosed = errors.New("the query instance is shutting down")

// errNotStarted: the feed has not reached the log yet.
var errNotStarted = errors.New("the event log is not reachable yet")

// Run follows the log until ctx ends, then closes every stream.
func (f *Feed) Run(ctx context.Context) error {
	defer f.close()
	var start uint64
	wait := 100 * time.Millisecond
	for {
		var err error
		if start, err = f.log.LastSequence(ctx); err == nil {
			break
		}
		if ctx.Err() != nil {
			return nil
		}
		f.logger.Warn("live streams wait for the event log", "err", err, "retry_in", wait)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
		wait = min(2*wait, 5*time.Second)
	}
	layout := f.log.Layout()
	f.mu.Lock()
	f.layout = layout
	f.head = start
	f.floor = make([]uint64, layout.Partitions)
	for p := range f.floor {
		f.floor[p] = start
	}
	f.waiting = make([][]awaited, layout.Partitions)
	f.started = true
	f.mu.Unlock()
	f.logger.Info("live streams follow the event log", "from", start+1)

	var g errgroup.Group
	g.Go(func() error { f.reveal(ctx); return nil })
	wait = 100 * time.Millisecond
	for ctx.Err() == nil {
		err := f.log.Follow(ctx, f.headSeq()+1, "", func(rec eventstore.Record) error {
			f.read(rec)
			return nil
		})
		if ctx.Err() != nil {
			break
		}
		f.logger.Warn("following the event log", "err", err, "retry_in", wait)
		select {
		case <-ctx.Done():
		case <-time.After(wait):
		}
		wait = min(2*wait, 5*time.Second)
	}
	return g.Wait()
}

func (f *Feed) headSeq() uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.head
}

// read takes one event from the log: a message it creates waits to become
// visible.
func (f *Feed) read(rec eventstore.Record) {
	id, tag, ok := created(rec)
	f.mu.Lock()
	if rec.Sequence > f.head {
		f.head = rec.Sequence
	}
	if ok && rec.Partition >= 0 && rec.Partition < len(f.waiting) {
		f.waiting[rec.Partition] = append(f.waiting[rec.Partition], awaited{seq: rec.Sequence, id: id, tag: tag})
	}
	f.mu.Unlock()
	if ok {
		select {
		case f.wake <- struct{}{}:
		default:
		}
	}
}

// created returns the message id and tag of an event that creates a
// message; events of other types, or malformed, make nothing visible.
func created(rec eventstore.Record) (id, tag string, ok bool) {
	if rec.Err != nil || rec.Type != message.EventCreated {
		return "", "", false
	}
	m, err := message.FromCreated(rec.Event)
	if err != nil {
		return "", "", false
	}
	return m.ID, m.Tag, true
}

// reveal hands on the events waiting to become visible as the read model
// folds them, until ctx ends.
func (f *Feed) reveal(ctx context.Context) {
	for {
		if !f.hasWaiting() {
			select {
			case <-ctx.Done():
				return
			case <-f.wake:
				continue
			}
		}
		prog, err := f.folds.wait(ctx, nil)
		if ctx.Err() != nil {
			return
		}
		if err == nil && f.revealFolded(ctx, prog) {
			continue
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(f.cfg.PollInterval):
		}
	}
}

func (f *Feed) hasWaiting() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, w := range f.waiting {
		if len(w) > 0 {
			return true
		}
	}
	return false
}

// revealFolded hands on the waiting events that prog says are folded, and
// reports whether there were any.
func (f *Feed) revealFolded(ctx context.Context, prog readmodel.Progress) bool {
	f.mu.Lock()
	var batch []awaited
	var parts []int
	for p, w := range f.waiting {
		n := 0
		for n < len(w) && w[n].seq <= prog.Folded[p] {
			n++
		}
		for _, a := range w[:n] {
			batch = append(batch, a)
			parts = append(parts, p)
		}
		f.waiting[p] = w[n:]
	}
	f.mu.Unlock()
	if len(batch) == 0 {
		return false
	}
	items := make([]*item, len(batch))
	var g errgroup.Group
	g.SetLimit(8)
	for i := range batch {
		g.Go(func() error {
			items[i] = f.lookup(ctx, parts[i], batch[i])
			return nil
		})
	}
	_ = g.Wait()
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, it := range items {
		if it != nil {
			f.publish(it)
		}
	}
	return true
}

// lookup reads the message of a folded event, retrying while the read model
// does not answer; nil when the event did not store it (another event of
// the same id did) or ctx ended.
func (f *Feed) lookup(ctx context.Context, part int, a awaited) *item {
	for wait := 10 * time.Millisecond; ; wait = min(2*wait, time.Second) {
		it, err := visibleItem(ctx, f.rm, part, a.seq, a.id)
		if err == nil || ctx.Err() != nil {
			return it
		}
		f.logger.Warn("reading a message for live streams", "id", a.id, "err", err)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
	}
}

// visibleItem reads the message that the folded event at seq stored; nil
// when it stored none.
func visibleItem(ctx context.Context, rm Visible, part int, seq uint64, id string) (*item, error) {
	m, stored, err := rm.Stored(ctx, id)
	switch {
	case errors.Is(err, readmodel.ErrNotFound):
		return nil, nil
	case err != nil:
		return nil, err
	case stored != seq:
		return nil, nil
	}
	data, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	return &item{part: part, seq: seq, tag: m.Tag, data: data}, nil
}

// publish keeps it among the recent items and offers it to every stream
// that wants it. f.mu is held.
func (f *Feed) publish(it *item) {
	if len(f.recent) < f.cfg.Recent {
		f.recent = append(f.recent, it)
	} else {
		old := f.recent[f.next]
		f.floor[old.part] = max(f.floor[old.part], old.seq)
		f.recent[f.next] = it
		f.next = (f.next + 1) % f.cfg.Recent
	}
	for s := range f.byTag[it.tag] {
		f.offer(s, it)
	}
	for s := range f.all {
		f.offer(s, it)
	}
}

// offer gives it to s unless s had passed it when it attached (a stream
// that read the log first may have sent it already), and drops s when its
// buffer is full. f.mu is held.
func (f *Feed) offer(s *stream, it *item) {
	if it.seq <= s.from[it.part] {
		return
	}
	select {
	case s.items <- it:
	default:
		f.metrics.dropped.Inc()
		f.remove(s, errSlowClient)
	}
}

// errSlowClient ends a stream whose client does not take its messages as
// fast as they come.
var errSlowClient = errors.New("the client did not keep up")

// stream is one client's subscription.
type stream struct {
	tag   string // "" for all tags
	user  string
	items chan *item
	// from is, per partition, what the stream had passed when it
	// attached.
	from []uint64
	// done is closed when the feed ends the stream, for err.
	done chan struct{}
	err  error
}

// Errors of subscribing.
var (
	errUserStreams  = errors.New("too many open streams for this user")
	errTotalStreams = errors.New("too many open streams")
)

// open registers a stream of tag for user, within the limits.
func (f *Feed) subscribe(tag, user string, perUser, total int) (*stream, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch {
	case f.closed:
		return nil, errFeedClosed
	case !f.started:
		return nil, errNotStarted
	case f.users[user] >= perUser:
		return nil, errUserStreams
	case f.streams >= total:
		return nil, errTotalStreams
	}
	f.users[user]++
	f.streams++
	f.metrics.open.Inc()
	return &stream{tag: tag, user: user, items: make(chan *item, f.cfg.Buffer), done: make(chan struct{})}, nil
}

// now is the position of the present: after every event read from the log.
func (f *Feed) now() position.Position {
	f.mu.Lock()
	defer f.mu.Unlock()
	return position.At(f.layout, f.head)
}

func (f *Feed) layoutOf() position.Layout {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.layout
}

// attach makes s live from pos when pos is at or past the floor of each
// partition s reads, and returns the kept items after pos that s must send
// first; false when pos is further back.
func (f *Feed) attach(s *stream, pos position.Position) ([]*item, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return nil, false, errFeedClosed
	}
	for _, p := range f.partitions(s.tag) {
		if pos.After[p] < f.floor[p] {
			return nil, false, nil
		}
	}
	var out []*item
	n := len(f.recent)
	for i := range n {
		it := f.recent[(f.next+i)%n]
		if wants(s, it) && it.seq > pos.After[it.part] {
			out = append(out, it)
		}
	}
	s.from = slices.Clone(pos.After)
	if s.tag == "" {
		f.all[s] = struct{}{}
	} else {
		if f.byTag[s.tag] == nil {
			f.byTag[s.tag] = map[*stream]struct{}{}
		}
		f.byTag[s.tag][s] = struct{}{}
	}
	return out, true, nil
}

func wants(s *stream, it *item) bool { return s.tag == "" || s.tag == it.tag }

// partitions are those whose events a stream of tag reads. f.mu is held.
func (f *Feed) partitions(tag string) []int {
	if tag != "" {
		return []int{f.layout.Partition(tag)}
	}
	out := make([]int, f.layout.Partitions)
	for p := range out {
		out[p] = p
	}
	return out
}

// closeStream ends s, as its client went away.
func (f *Feed) closeStream(s *stream) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.remove(s, nil)
}

// remove ends s for err, once. f.mu is held.
func (f *Feed) remove(s *stream, err error) {
	select {
	case <-s.done:
		return
	default:
	}
	s.err = err
	close(s.done)
	delete(f.all, s)
	if subs := f.byTag[s.tag]; subs != nil {
		delete(subs, s)
		if len(subs) == 0 {
			delete(f.byTag, s.tag)
		}
	}
	if f.users[s.user]--; f.users[s.user] <= 0 {
		delete(f.users, s.user)
	}
	f.streams--
	f.metrics.open.Dec()
}

// close ends every stream and refuses new ones.
func (f *Feed) close() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed = true
	for s := range f.all {
		f.remove(s, errFeedClosed)
	}
	for _, subs := range f.byTag {
		for s := range subs {
			f.remove(s, errFeedClosed)
		}
	}
}

// catchUp reads the log from pos for a stream too far back to attach,
// sending each visible message of s's partitions as the read model folds
// it, until it can attach; it returns the items to send first, as attach
// does. pos moves with every event passed.
func (f *Feed) catchUp(ctx context.Context, s *stream, pos *position.Position, send func(*item) error) ([]*item, error) {
	f.mu.Lock()
	parts := f.partitions(s.tag)
	f.mu.Unlock()
	reads := map[int]bool{}
	from := pos.After[parts[0]]
	for _, p := range parts {
		reads[p] = true
		from = min(from, pos.After[p])
	}
	for {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		var last uint64
		err := f.log.Read(ctx, from+1, func(rec eventstore.Record) error {
			last = rec.Sequence
			p := rec.Partition
			if !reads[p] || rec.Sequence <= pos.After[p] {
				return nil
			}
			if id, tag, ok := created(rec); ok && (s.tag == "" || s.tag == tag) {
				if _, err := f.folds.wait(ctx, map[int]uint64{p: rec.Sequence}); err != nil {
					return err
				}
				it, err := visibleItem(ctx, f.rm, p, rec.Sequence, id)
				if err != nil {
					return err
				}
				if it != nil {
					if err := send(it); err != nil {
						return err
					}
				}
			}
			pos.After[p] = rec.Sequence
			return nil
		})
		if err != nil {
			return nil, err
		}
		if last == 0 {
			// Nothing after from was stored when Read began: the log ends
			// there.
			if last, err = f.log.LastSequence(ctx); err != nil {
				return nil, err
			}
			last = min(last, from)
		}
		// Every event up to last is passed, in every partition s reads.
		for _, p := range parts {
			pos.After[p] = max(pos.After[p], last)
		}
		replay, ok, err := f.attach(s, *pos)
		if err != nil || ok {
			return replay, err
		}
		from = last
	}
}

// layoutError says why a position or token of another log is refused.
func layoutError(err error) string {
	switch {
	case errors.Is(err, position.ErrOtherLog):
		return err.Error()
	case errors.Is(err, position.ErrMalformed):
		return "not a position or token this service gave out"
	}
	return fmt.Sprint(err)
}
