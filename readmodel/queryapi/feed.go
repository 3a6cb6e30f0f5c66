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
	"github.com/messages-io/messages/internal/backoff"
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
	// Folds calls fn with each notice of the reducers' fold published from
	// now on, until ctx ends.
	Folds(ctx context.Context, fn func(position.Folded)) error
}

// Visible is what a feed reads of the read model: how far it has folded
// the log, and a message with the sequence of the event that stored it.
type Visible interface {
	Progress
	Stored(ctx context.Context, id string) (message.Message, uint64, error)
	// Concerns reports whether a notice of the fold tells of the read
	// model that reads see.
	Concerns(position.Folded) bool
}

// FeedConfig holds a feed's options.
type FeedConfig struct {
	// Recent is how many of the last messages made visible the feed keeps.
	// Every stream reads them from there, so it is also how far a stream's
	// client may fall behind before it is disconnected, and a stream
	// resumed from no further back needs no reading of the log. Default
	// 4096.
	Recent int
	// Waiting is how many events of one partition wait to be folded at
	// most; past it they are forgotten and the streams that read the
	// partition resume from the log. Default 16384.
	Waiting int
	// PollInterval is how often the checkpoints are read while events wait
	// to become visible, for batches whose notice of the fold was lost.
	// Default 10ms.
	PollInterval time.Duration
	// Registerer takes the feed's metrics; nil registers them nowhere.
	Registerer prometheus.Registerer
}

func (c *FeedConfig) setDefaults() {
	if c.Recent == 0 {
		c.Recent = 4096
	}
	if c.PollInterval == 0 {
		c.PollInterval = 10 * time.Millisecond
	}
	if c.Waiting == 0 {
		c.Waiting = 16384
	}
	if c.Registerer == nil {
		c.Registerer = prometheus.NewRegistry()
	}
}

// item is a message made visible, as a stream sends it.
type item struct {
	n    uint64 // the feed's count of items made visible, this one included
	part int
	seq  uint64
	tag  string
	data []byte // the message's JSON, as GET answers it
}

// awaited is an event of the log not yet visible in the read model, with
// the message it creates.
type awaited struct {
	seq uint64
	msg message.Message
}

// maxNotices bounds the notices of the fold a feed keeps per partition for
// events it has not read yet; the events of a notice dropped are looked up
// in the read model instead.
const maxNotices = 256

// Feed is the live stream of the messages that become visible, shared by
// every stream a query instance serves. One reader follows the log, and each
// event it reads waits, in its partition, until the read model has folded
// it; then its message is kept among the last Recent made visible, from
// where every stream takes what it wants. No stream is ever waited for: one
// that falls further behind than the messages kept is dropped.
//
// The reducers tell, after each batch, which of its events stored their
// message (position.Folded), and the message is then the one the event
// created, as the read model holds it: a batch is handed on as soon as its
// checkpoint is written, without a read. A notice is sent at most once, so
// the feed also reads the checkpoints every PollInterval while events wait,
// and reads by id the messages of a batch whose notice it missed.
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
// past the floor of each partition it reads attaches at the oldest message
// kept, and from there reads every message kept and to come in the order
// they were made visible, skipping those at or before its position. A
// stream further back reads the log from its position first, waiting for
// each event to be folded, until it has passed the floors.
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
	made    uint64   // items made visible so far
	more    chan struct{}
	waiting [][]awaited
	// notices are the notices of the fold kept per partition, in the order
	// they came, until the feed has read the events they tell of.
	notices [][]position.Folded
	wake    chan struct{}
	streams map[*stream]struct{}
	users   map[string]int
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
		more:    make(chan struct{}),
		streams: map[*stream]struct{}{},
		users:   map[string]int{},
		metrics: newFeedMetrics(cfg.Registerer),
	}
}

// errFeedClosed ends the streams of a feed that stops.
var errFeedClosed = errors.New("the query instance is shutting down")

// errNotStarted: the feed has not reached the log yet.
var errNotStarted = errors.New("the event log is not reachable yet")

// Start reads where the log ends, so that streams are served from the
// first request on; Run does it too when Start was not called or failed.
func (f *Feed) Start(ctx context.Context) error {
	f.mu.Lock()
	started := f.started
	f.mu.Unlock()
	if started {
		return nil
	}
	start, err := f.log.LastSequence(ctx)
	if err != nil {
		return err
	}
	layout := f.log.Layout()
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.started {
		return nil
	}
	f.layout = layout
	f.head = start
	f.floor = make([]uint64, layout.Partitions)
	for p := range f.floor {
		f.floor[p] = start
	}
	f.waiting = make([][]awaited, layout.Partitions)
	f.notices = make([][]position.Folded, layout.Partitions)
	f.started = true
	f.logger.Info("live streams follow the event log", "from", start+1)
	return nil
}

// Run follows the log until ctx ends, then closes every stream.
func (f *Feed) Run(ctx context.Context) error {
	defer f.close()
	retry := backoff.Policy{Min: 100 * time.Millisecond, Max: 5 * time.Second}
	_, err := backoff.Retry(ctx, retry, func(ctx context.Context) (struct{}, error) {
		return struct{}{}, f.Start(ctx)
	}, func(err error, wait time.Duration) {
		f.logger.Warn("live streams wait for the event log", "err", err, "retry_in", wait)
	})
	if err != nil {
		return nil // ctx ended
	}

	var g errgroup.Group
	g.Go(func() error { f.reveal(ctx); return nil })
	g.Go(func() error { f.followFolds(ctx, retry); return nil })
	// Following ends only with an error or with ctx, so each retry waits.
	_, _ = backoff.Retry(ctx, retry, func(ctx context.Context) (struct{}, error) {
		err := f.log.Follow(ctx, f.headSeq()+1, "", func(rec eventstore.Record) error {
			f.read(rec)
			return nil
		})
		if ctx.Err() != nil {
			return struct{}{}, nil
		}
		return struct{}{}, fmt.Errorf("following the event log: %w", err)
	}, func(err error, wait time.Duration) {
		f.logger.Warn("following the event log", "err", err, "retry_in", wait)
	})
	return g.Wait()
}

func (f *Feed) headSeq() uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.head
}

// followFolds takes the reducers' notices of the fold until ctx ends.
func (f *Feed) followFolds(ctx context.Context, retry backoff.Policy) {
	_, _ = backoff.Retry(ctx, retry, func(ctx context.Context) (struct{}, error) {
		err := f.log.Folds(ctx, f.told)
		if ctx.Err() != nil {
			return struct{}{}, nil
		}
		return struct{}{}, err
	}, func(err error, wait time.Duration) {
		f.logger.Warn("following the fold", "err", err, "retry_in", wait)
	})
}

// told takes a notice of the fold: the events it decides are revealed
// without asking the read model, unless it tells of a generation that
// reads do not see.
func (f *Feed) told(n position.Folded) {
	if !f.rm.Concerns(n) {
		return
	}
	f.mu.Lock()
	if p := n.Partition; p < len(f.notices) && len(f.streams) > 0 {
		f.pruneNotices(p)
		if len(f.notices[p]) == maxNotices {
			f.notices[p] = slices.Delete(f.notices[p], 0, 1)
		}
		f.notices[p] = append(f.notices[p], n)
	}
	f.mu.Unlock()
	select {
	case f.wake <- struct{}{}:
	default:
	}
}

// read takes one event from the log: a message it creates waits to become
// visible.
//
// While no stream is open, nothing waits: the floors move past every event
// read, so that a stream opened later that starts before them reads the
// log instead.
func (f *Feed) read(rec eventstore.Record) {
	f.mu.Lock()
	if rec.Sequence > f.head {
		f.head = rec.Sequence
	}
	p := rec.Partition
	if len(f.streams) == 0 {
		if p >= 0 && p < len(f.floor) {
			f.floor[p] = max(f.floor[p], rec.Sequence)
		}
		f.mu.Unlock()
		return
	}
	f.mu.Unlock()
	m, ok := created(rec)
	f.mu.Lock()
	if ok && p >= 0 && p < len(f.waiting) {
		if len(f.waiting[p]) >= f.cfg.Waiting {
			f.forget(p)
		}
		f.waiting[p] = append(f.waiting[p], awaited{seq: rec.Sequence, msg: m})
	}
	f.mu.Unlock()
	if ok {
		select {
		case f.wake <- struct{}{}:
		default:
		}
	}
}

// forget drops the events of partition p that wait to be folded, when more
// wait than the feed keeps (the partition is halted, or its reducer far
// behind), and ends the streams that read p: they would miss those events.
// Their clients resume from their positions, reading the log, and so does
// any stream that starts before the last event forgotten. f.mu is held.
func (f *Feed) forget(p int) {
	w := f.waiting[p]
	f.logger.Warn("too many events wait to be folded; streams of their partition resume from the log",
		"partition", p, "events", len(w), "through", w[len(w)-1].seq)
	f.floor[p] = max(f.floor[p], w[len(w)-1].seq)
	f.waiting[p] = nil
	for st := range f.streams {
		if st.attached && (st.tag == "" || f.layout.Partition(st.tag) == p) {
			f.remove(st, errBehindFold)
		}
	}
}

// errBehindFold ends a stream whose partition's events the feed stopped
// waiting for.
var errBehindFold = errors.New("the read model is far behind; resume from the last event id")

// created returns the message an event creates; events of other types, or
// malformed, make nothing visible.
func created(rec eventstore.Record) (message.Message, bool) {
	if rec.Err != nil || rec.Type != message.EventCreated {
		return message.Message{}, false
	}
	m, err := message.FromCreated(rec.Event)
	return m, err == nil
}

// reveal hands on the events waiting to become visible as the read model
// folds them, until ctx ends. The reducers' notices of the fold tell it
// first, and what the messages are; a notice missed, the checkpoints read
// every PollInterval tell it, and the messages are read by id.
func (f *Feed) reveal(ctx context.Context) {
	poll := time.NewTicker(f.cfg.PollInterval)
	defer poll.Stop()
	var seen map[int]uint64 // the checkpoints the last poll read
	for {
		if !f.hasWaiting() {
			select {
			case <-ctx.Done():
				return
			case <-f.wake:
				continue
			}
		}
		if f.revealFolded(ctx, nil) {
			continue
		}
		select {
		case <-ctx.Done():
			return
		case <-f.wake:
			continue
		case <-poll.C:
		}
		// A checkpoint is taken from the poll before, so that the notice
		// of its batch, sent right after it was written, has time to come
		// and spare the reading of its messages.
		prog, err := f.rm.Progress(ctx)
		if ctx.Err() != nil {
			return
		}
		if err == nil {
			f.revealFolded(ctx, seen)
			seen = prog.Folded
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

// revealing is a waiting event about to be handed on.
type revealing struct {
	awaited
	part int
	// told is set when a notice of the fold decided the event; stored then
	// says whether it stored its message.
	told, stored bool
}

// revealFolded hands on the waiting events that the notices of the fold,
// or the checkpoints folded, say are folded, and reports whether there
// were any.
func (f *Feed) revealFolded(ctx context.Context, folded map[int]uint64) bool {
	batch := f.takeFolded(folded)
	if len(batch) == 0 {
		return false
	}
	items := make([]*item, len(batch))
	var g errgroup.Group
	g.SetLimit(8)
	for i, r := range batch {
		switch {
		case r.told && r.stored:
			items[i] = toldItem(r)
		case !r.told:
			g.Go(func() error {
				items[i] = f.lookup(ctx, r.part, r.awaited)
				return nil
			})
		}
	}
	_ = g.Wait()
	f.mu.Lock()
	defer f.mu.Unlock()
	n := f.made
	for _, it := range items {
		if it != nil {
			f.publish(it)
		}
	}
	if f.made > n {
		// Wake every stream, and drop those the ring has passed.
		close(f.more)
		f.more = make(chan struct{})
		for st := range f.streams {
			if st.attached && st.next < f.oldest() {
				f.metrics.dropped.Inc()
				f.remove(st, errSlowClient)
			}
		}
	}
	return true
}

// takeFolded takes from the waiting events those folded: of each
// partition, every event up to its checkpoint in folded or the last
// sequence a notice tells of, whichever is later. A partition's events are
// folded in sequence order, so an event before one that a notice tells of
// is folded too, though the notice may not decide it.
func (f *Feed) takeFolded(folded map[int]uint64) []revealing {
	f.mu.Lock()
	defer f.mu.Unlock()
	var batch []revealing
	for p, w := range f.waiting {
		through := folded[p]
		for _, n := range f.notices[p] {
			through = max(through, n.Through)
		}
		k := 0
		for ; k < len(w) && w[k].seq <= through; k++ {
			r := revealing{awaited: w[k], part: p}
			for _, n := range f.notices[p] {
				if r.told, r.stored = n.Decides(r.seq); r.told {
					break
				}
			}
			batch = append(batch, r)
		}
		f.waiting[p] = w[k:]
		f.pruneNotices(p)
	}
	return batch
}

// pruneNotices drops the notices of partition p whose events are all read
// and handed on. f.mu is held.
func (f *Feed) pruneNotices(p int) {
	next := f.head + 1
	if len(f.waiting[p]) > 0 {
		next = f.waiting[p][0].seq
	}
	f.notices[p] = slices.DeleteFunc(f.notices[p], func(n position.Folded) bool { return n.Through < next })
}

// toldItem is the message of an event that a notice of the fold says stored
// it: as the event creates it, which is as the read model holds it.
func toldItem(r revealing) *item {
	data, err := json.Marshal(r.msg)
	if err != nil {
		return nil
	}
	return &item{part: r.part, seq: r.seq, tag: r.msg.Tag, data: data}
}

// lookup reads the message of a folded event, retrying while the read model
// does not answer; nil when the event did not store it (another event of
// the same id did) or ctx ended.
func (f *Feed) lookup(ctx context.Context, part int, a awaited) *item {
	it, _ := backoff.Retry(ctx, backoff.Policy{Min: 10 * time.Millisecond, Max: time.Second}, func(ctx context.Context) (*item, error) {
		return f.visible(ctx, part, a.seq, a.msg.ID, true)
	}, func(err error, _ time.Duration) {
		f.logger.Warn("reading a message for live streams", "id", a.msg.ID, "err", err)
	})
	return it
}

// visible waits until the event at seq is folded, unless the caller has
// seen it folded, and reads the message it stored; nil when it stored none.
//
// A folded event that creates a message has its message stored, by itself
// or by an earlier event of the same id: the reducer writes messages
// before it moves the checkpoint. A message not found is one of a
// generation that a replay made active between the reading of the
// checkpoint and the reading of the message, and has not folded it yet: it
// is read again once that generation has.
func (f *Feed) visible(ctx context.Context, part int, seq uint64, id string, folded bool) (*item, error) {
	for tries := 0; ; tries++ {
		if tries > 0 || !folded {
			if _, err := f.folds.wait(ctx, map[int]uint64{part: seq}); err != nil {
				return nil, err
			}
		}
		it, err := visibleItem(ctx, f.rm, part, seq, id)
		if !errors.Is(err, readmodel.ErrNotFound) {
			return it, err
		}
		if tries == 100 {
			f.logger.Warn("a folded event's message is not in the read model; not streamed", "id", id, "sequence", seq)
			return nil, nil
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// visibleItem reads the message that the folded event at seq stored; nil
// when another event stored it.
func visibleItem(ctx context.Context, rm Visible, part int, seq uint64, id string) (*item, error) {
	m, stored, err := rm.Stored(ctx, id)
	switch {
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

// publish keeps it among the recent items, for the streams to take. f.mu
// is held.
func (f *Feed) publish(it *item) {
	f.made++
	it.n = f.made
	if len(f.recent) < f.cfg.Recent {
		f.recent = append(f.recent, it)
		return
	}
	old := f.recent[f.next]
	f.floor[old.part] = max(f.floor[old.part], old.seq)
	f.recent[f.next] = it
	f.next = (f.next + 1) % f.cfg.Recent
}

// oldest is the number of the oldest item kept. f.mu is held.
func (f *Feed) oldest() uint64 { return f.made - uint64(len(f.recent)) + 1 }

// take returns up to max items for s, in the order they were made visible,
// and a channel closed when more come. It fails when s has ended, or has
// fallen behind the items kept.
func (f *Feed) take(s *stream, max int) ([]*item, <-chan struct{}, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	select {
	case <-s.done:
		return nil, nil, s.err
	default:
	}
	if s.next < f.oldest() {
		f.metrics.dropped.Inc()
		f.remove(s, errSlowClient)
		return nil, nil, errSlowClient
	}
	var out []*item
	for ; s.next <= f.made && len(out) < max; s.next++ {
		it := f.recent[(f.next+int(s.next-f.oldest()))%len(f.recent)]
		if wants(s, it) && it.seq > s.from[it.part] {
			out = append(out, it)
		}
	}
	return out, f.more, nil
}

// errSlowClient ends a stream whose client does not take its messages as
// fast as they come.
var errSlowClient = errors.New("the client did not keep up")

// stream is one client's subscription.
type stream struct {
	tag  string // "" for all tags
	user string
	// attached is set once the stream reads the items kept: next is the
	// number of the next one it reads, and from, per partition, what it
	// had passed when it attached.
	attached bool
	next     uint64
	from     []uint64
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
	case len(f.streams) >= total:
		return nil, errTotalStreams
	}
	s := &stream{tag: tag, user: user, done: make(chan struct{})}
	f.users[user]++
	f.streams[s] = struct{}{}
	f.metrics.open.Inc()
	return s, nil
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

// attach makes s read the items kept, from the oldest, when pos is at or
// past the floor of each partition s reads; false when pos is further
// back.
func (f *Feed) attach(s *stream, pos position.Position) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return false, errFeedClosed
	}
	for _, p := range f.partitions(s.tag) {
		if pos.After[p] < f.floor[p] {
			return false, nil
		}
	}
	s.from = slices.Clone(pos.After)
	s.next = f.oldest()
	s.attached = true
	return true, nil
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

// dropSlow ends s, whose client took no write within the write timeout,
// unless it has ended already.
func (f *Feed) dropSlow(s *stream) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.streams[s]; ok {
		f.metrics.dropped.Inc()
		f.remove(s, errSlowClient)
	}
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
	delete(f.streams, s)
	if f.users[s.user]--; f.users[s.user] <= 0 {
		delete(f.users, s.user)
	}
	f.metrics.open.Dec()
}

// close ends every stream and refuses new ones.
func (f *Feed) close() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed = true
	for s := range f.streams {
		f.remove(s, errFeedClosed)
	}
}

// catchUp reads the log from pos for a stream too far back to attach,
// sending each visible message of s's partitions as the read model folds
// it, until it can attach. pos moves with every event passed.
func (f *Feed) catchUp(ctx context.Context, s *stream, pos *position.Position, send func(...*item) error) error {
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
			return ctx.Err()
		}
		var last uint64
		err := f.log.Read(ctx, from+1, func(rec eventstore.Record) error {
			last = rec.Sequence
			p := rec.Partition
			if !reads[p] || rec.Sequence <= pos.After[p] {
				return nil
			}
			if m, ok := created(rec); ok && (s.tag == "" || s.tag == m.Tag) {
				it, err := f.visible(ctx, p, rec.Sequence, m.ID, false)
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
			return err
		}
		if last == 0 {
			// Nothing after from was stored when Read began: the log ends
			// there.
			if last, err = f.log.LastSequence(ctx); err != nil {
				return err
			}
			last = min(last, from)
		}
		// Every event up to last is passed, in every partition s reads.
		for _, p := range parts {
			pos.After[p] = max(pos.After[p], last)
		}
		if ok, err := f.attach(s, *pos); err != nil || ok {
			return err
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
