package eventstore

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/messages-io/messages/event"
	"github.com/nats-io/nats.go/jetstream"
)

// ConsumerConfig configures the durable consumers that fold partitions.
type ConsumerConfig struct {
	// Name prefixes the durable consumer names: <Name>-p<partition>.
	// Default "reducer".
	Name string
	// AckWait is how long a delivered event may stay unacknowledged before
	// JetStream delivers it again. Default 30s.
	AckWait time.Duration
	// MaxAckPending bounds the events delivered and not yet acknowledged.
	// Default 65536: about four reducer batches, so that a reducer taking over
	// from one that died holding a whole batch is still delivered the
	// events after it while that batch waits out AckWait.
	MaxAckPending int
	// FetchWait is how long one pull request waits for events. Default 2s.
	FetchWait time.Duration
	// PinnedTTL is how long a silent reducer keeps its partition before
	// another takes it over: a reducer restarted after a crash waits this
	// long for its dead predecessor's hold to lapse. A live reducer renews
	// it with every pull request, at least every FetchWait while idle, but
	// not while it writes a batch, so a shorter one lets a waiting reducer
	// take over a partition whose writes are slow; folding the same events
	// twice is harmless, only wasted work. Default DefaultPinnedTTL; it must
	// exceed FetchWait.
	PinnedTTL time.Duration
}

// DefaultPinnedTTL is the default ConsumerConfig.PinnedTTL: over twice the
// default FetchWait, so that an idle reducer keeps its partition through a
// lost pull request, and short enough that a restarted one resumes soon.
const DefaultPinnedTTL = 5 * time.Second

func (c *ConsumerConfig) setDefaults() {
	if c.Name == "" {
		c.Name = "reducer"
	}
	if c.AckWait == 0 {
		c.AckWait = 30 * time.Second
	}
	if c.MaxAckPending == 0 {
		c.MaxAckPending = 65536
	}
	if c.FetchWait == 0 {
		c.FetchWait = 2 * time.Second
	}
	if c.PinnedTTL == 0 {
		c.PinnedTTL = DefaultPinnedTTL
	}
}

// DefaultConsumerConfig holds the options a zero ConsumerConfig takes.
func DefaultConsumerConfig() ConsumerConfig {
	var c ConsumerConfig
	c.setDefaults()
	return c
}

// Validate reports the first option out of range.
func (c ConsumerConfig) Validate() error {
	switch {
	case c.AckWait < time.Second:
		return fmt.Errorf("ack wait %v: want at least 1s", c.AckWait)
	case c.FetchWait <= 0:
		return fmt.Errorf("fetch wait %v: want more than 0", c.FetchWait)
	case c.PinnedTTL <= c.FetchWait:
		return fmt.Errorf("takeover after %v: want more than the fetch wait, %v", c.PinnedTTL, c.FetchWait)
	}
	return nil
}

// ErrNotHeld is what Next returns once when the consumer has lost its
// partition: its pin lapsed or went to another reducer. It stands by from
// then on, and Next delivers again once it holds the partition.
var ErrNotHeld = errors.New("the partition is held by another reducer")

// pinIDHeader carries the pin of the consumer a message was delivered to.
const pinIDHeader = "Nats-Pin-Id"

// priorityGroup is the pull group whose single pinned member folds a
// partition: JetStream delivers a partition's events to one reducer at a time
// and hands it to another when that one falls silent.
const priorityGroup = "fold"

// PartitionConsumer delivers the events of one partition, in log order, to the
// one reducer that holds the partition.
type PartitionConsumer struct {
	store     *Store
	cons      jetstream.Consumer
	partition int
	cfg       ConsumerConfig
	pending   jetstream.MessageBatch
	// endFetch releases the pending pull request's context.
	endFetch context.CancelFunc
	// owed is how many events the pending pull request may still deliver.
	owed int
	// pinned is set by a delivery to this consumer as the partition's
	// pinned member, and cleared when JetStream refuses its pin.
	pinned bool
}

// Consumer makes sure the durable consumer of partition exists and returns it.
func (s *Store) Consumer(ctx context.Context, partition int, cfg ConsumerConfig) (*PartitionConsumer, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if partition < 0 || partition >= s.cfg.Partitions {
		return nil, fmt.Errorf("partition %d: want 0-%d", partition, s.cfg.Partitions-1)
	}
	// Replicas is left zero: the consumer has as many as the stream, now and
	// after the stream is scaled.
	cons, err := s.stream.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{
		Durable:        fmt.Sprintf("%s-p%d", cfg.Name, partition),
		Description:    fmt.Sprintf("folds partition %d", partition),
		FilterSubject:  s.PartitionFilter(partition),
		DeliverPolicy:  jetstream.DeliverAllPolicy,
		AckPolicy:      jetstream.AckAllPolicy,
		AckWait:        cfg.AckWait,
		MaxDeliver:     -1,
		MaxAckPending:  cfg.MaxAckPending,
		PriorityPolicy: jetstream.PriorityPolicyPinned,
		PriorityGroups: []string{priorityGroup},
		PinnedTTL:      cfg.PinnedTTL,
	})
	if err != nil {
		return nil, fmt.Errorf("consumer for partition %d: %w", partition, unavailable(err))
	}
	return &PartitionConsumer{store: s, cons: cons, partition: partition, cfg: cfg}, nil
}

// Acknowledged returns the sequence through which every event of the
// partition has been acknowledged: the consumer's ack floor.
func (c *PartitionConsumer) Acknowledged(ctx context.Context) (uint64, error) {
	info, err := c.cons.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("partition %d: %w", c.partition, unavailable(err))
	}
	return info.AckFloor.Stream, nil
}

// Partition is the partition the consumer delivers.
func (c *PartitionConsumer) Partition() int { return c.partition }

// Batch is a run of consecutive events of one partition: every event of the
// partition after the sequence Next was given, up to the last record, with
// none missing.
type Batch struct {
	Records []Record
	// Pending is how many events of the partition were stored after the
	// delivered ones and not yet delivered: the consumer's lag.
	Pending uint64
	// Skipped counts deliveries of events at or before the sequence Next was
	// given, or already read to fill a gap: redeliveries that need no work.
	Skipped int
	// msgs are the deliveries the batch came from, to acknowledge.
	msgs []delivery
	// last is the sequence of the last event in Records, or the one Next
	// was given; prev the consumer sequence of the last delivery; check
	// says the next delivery must be checked for a gap before it.
	last, prev uint64
	check      bool
	// delivered is set on a batch of Next, which More may extend until it
	// fails.
	delivered bool
}

type delivery struct {
	msg jetstream.Msg
	seq uint64 // stream sequence of the event
	// consumerSeq is the delivery's place among the consumer's deliveries;
	// a redelivery gets a new one.
	consumerSeq uint64
}

// Next waits until events after sequence after are available or ctx ends,
// then returns those that have arrived, about max, in log order.
//
// Order does not rest on delivery order: JetStream redelivers an event whose
// acknowledgement timed out after newer ones, for instance when a reducer
// holding it died, and may deliver an event to a pull request that is gone.
// Whenever a delivery may not follow the one before it (the first of a batch,
// a redelivery, or a gap in the consumer's delivery sequence) Next reads any
// events of the partition it skipped straight from the stream, so a batch
// never has a gap.
func (c *PartitionConsumer) Next(ctx context.Context, after uint64, max int) (*Batch, error) {
	msgs, err := c.receive(ctx, max)
	if err != nil {
		return nil, err
	}
	b := &Batch{msgs: make([]delivery, 0, len(msgs)), last: after, check: true, delivered: true}
	if err := c.add(ctx, b, msgs); err != nil {
		b.Release(after)
		return nil, err
	}
	return b, nil
}

// More appends to b, after its last event, up to max events more (an event
// read to fill a gap may take it past max): the events delivered since Next
// returned it, to the pull request Next left open, and then, while
// JetStream says events of the partition are stored and not yet delivered,
// those too, in pull requests of its own. It waits only for events
// JetStream holds: a reducer that waited for its turn to write takes what
// arrived meanwhile into the same write, and one catching up a backlog
// fills its write however few events Next pulled, so reducers that take
// turns hold only what Next pulled while they wait. On an error, b keeps
// the events appended before it, which follow its others without a gap,
// Release hands back the delivery that failed, and More extends b no
// further. Nor does it extend a batch of Catchup.
func (c *PartitionConsumer) More(ctx context.Context, b *Batch, max int) error {
	if !b.delivered {
		return nil
	}
	from := len(b.Records)
	pulled := false // the pull request in hand is one of More
	for len(b.Records)-from < max {
		if c.pending != nil && c.owed == 0 {
			c.done() // it delivered all it asked for
		}
		if c.pending == nil {
			if b.Pending == 0 {
				return nil
			}
			if err := c.pull(ctx, int(min(uint64(max-(len(b.Records)-from)), b.Pending))); err != nil {
				return err
			}
			pulled = true
		}
		m, ok, err := c.take(ctx, pulled || b.Pending > 0)
		switch {
		case err != nil:
			return err
		case m == nil && ok:
			return nil // nothing delivered, and nothing stored to wait for
		case !ok && !pulled:
			return nil // the next receive sees why Next's pull request ended
		case !ok:
			c.done()
			return nil // it ended short: JetStream has no more for now
		}
		if err := c.add(ctx, b, []jetstream.Msg{m}); err != nil {
			b.delivered = false
			return err
		}
	}
	return nil
}

// take returns the next delivery of the pull request in hand, and false
// once it ended. Unless wait is set it returns nil and true when none has
// come yet.
func (c *PartitionConsumer) take(ctx context.Context, wait bool) (jetstream.Msg, bool, error) {
	ch := c.pending.Messages()
	var m jetstream.Msg
	var ok bool
	select {
	case m, ok = <-ch:
	default:
		if !wait {
			return nil, true, nil
		}
		select {
		case m, ok = <-ch:
		case <-ctx.Done():
			return nil, false, ctx.Err()
		}
	}
	if ok {
		c.owed--
	}
	return m, ok, nil
}

// pull sends a pull request for n events, to take the events JetStream says
// are stored and not yet delivered; it expires after FetchWait, as Next's do.
func (c *PartitionConsumer) pull(ctx context.Context, n int) error {
	fctx, cancel := context.WithTimeout(ctx, c.cfg.FetchWait)
	pr, err := c.cons.Fetch(n, jetstream.FetchPriorityGroup(priorityGroup), jetstream.FetchContext(fctx))
	if err != nil {
		cancel()
		return fmt.Errorf("fetch partition %d: %w", c.partition, unavailable(err))
	}
	c.pending, c.endFetch, c.owed = pr, cancel, n
	return nil
}

// add appends deliveries msgs to b: the events after b's last one, with
// any that JetStream delivered elsewhere read from the stream to fill the
// gap, and the redeliveries at or before it counted as skipped.
func (c *PartitionConsumer) add(ctx context.Context, b *Batch, msgs []jetstream.Msg) error {
	for _, m := range msgs {
		meta, err := m.Metadata()
		if err != nil {
			return fmt.Errorf("partition %d: %w: %v", c.partition, event.ErrMalformed, err)
		}
		seq := meta.Sequence.Stream
		b.msgs = append(b.msgs, delivery{msg: m, seq: seq, consumerSeq: meta.Sequence.Consumer})
		b.Pending = meta.NumPending
		// A delivery that does not directly follow the previous one went
		// elsewhere in between: to a pull request this reducer gave up, for
		// instance, during a change of leader.
		consecutive := b.prev != 0 && meta.Sequence.Consumer == b.prev+1
		b.prev = meta.Sequence.Consumer
		if seq <= b.last {
			b.Skipped++
			continue // applied already, or read while filling a gap
		}
		redelivered := meta.NumDelivered > 1
		if b.check || redelivered || !consecutive {
			if b.last, err = c.fill(ctx, b, b.last, seq); err != nil {
				return err
			}
		}
		b.Records = append(b.Records, c.store.record(m.Subject(), seq, meta.Timestamp, m.Data()))
		b.last, b.check = seq, redelivered
	}
	return nil
}

// fill appends to b the events of the partition after sequence last and before
// sequence before, read from the stream, and returns the last one appended.
func (c *PartitionConsumer) fill(ctx context.Context, b *Batch, last, before uint64) (uint64, error) {
	for {
		// A request sent while the stream changes leader goes unanswered;
		// bound it well under JetStream's default so that it is retried.
		gctx, cancel := context.WithTimeout(ctx, c.cfg.FetchWait)
		raw, err := c.store.stream.GetMsg(gctx, last+1, jetstream.WithGetMsgSubject(c.store.PartitionFilter(c.partition)))
		cancel()
		if err != nil {
			return last, fmt.Errorf("partition %d after %d: %w", c.partition, last, unavailable(err))
		}
		if raw.Sequence >= before {
			return last, nil
		}
		b.Records = append(b.Records, c.store.record(raw.Subject, raw.Sequence, raw.Time, raw.Data))
		last = raw.Sequence
	}
}

// Catchup reads up to max events of the partition after sequence after
// straight from the stream, not from deliveries: a reducer that moved to a
// read model generation with an older checkpoint gets there without waiting
// for the next delivery. An empty batch means no later event is stored.
// Acknowledging the batch does nothing.
func (c *PartitionConsumer) Catchup(ctx context.Context, after uint64, max int) (*Batch, error) {
	b := &Batch{}
	for len(b.Records) < max {
		gctx, cancel := context.WithTimeout(ctx, c.cfg.FetchWait)
		raw, err := c.store.stream.GetMsg(gctx, after+1, jetstream.WithGetMsgSubject(c.store.PartitionFilter(c.partition)))
		cancel()
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("partition %d after %d: %w", c.partition, after, unavailable(err))
		}
		b.Records = append(b.Records, c.store.record(raw.Subject, raw.Sequence, raw.Time, raw.Data))
		after = raw.Sequence
	}
	return b, nil
}

// receive waits for at least one delivery, then takes those already arrived.
func (c *PartitionConsumer) receive(ctx context.Context, max int) ([]jetstream.Msg, error) {
	var msgs []jetstream.Msg
	for len(msgs) == 0 {
		if c.pending == nil {
			fctx, cancel := context.WithTimeout(ctx, c.cfg.FetchWait)
			b, err := c.cons.Fetch(max,
				jetstream.FetchPriorityGroup(priorityGroup),
				jetstream.FetchContext(fctx))
			if err != nil {
				cancel()
				if dl, ok := ctx.Deadline(); ok && time.Until(dl) < time.Second {
					// Too close to the caller's deadline to pull at all.
					<-ctx.Done()
				}
				if ctx.Err() != nil {
					return nil, ctx.Err()
				}
				return nil, fmt.Errorf("fetch partition %d: %w", c.partition, unavailable(err))
			}
			c.pending, c.endFetch, c.owed = b, cancel, max
		}
		select {
		case m, ok := <-c.pending.Messages():
			if !ok {
				err := c.pending.Error()
				c.done()
				if ctx.Err() != nil {
					return nil, ctx.Err()
				}
				// A pull request ends when it expires, when another
				// reducer holds the partition, or with the context of the
				// call that made it; then the next one is sent.
				if errors.Is(err, jetstream.ErrPinIDMismatch) && c.pinned {
					c.pinned = false
					return nil, ErrNotHeld
				}
				if err != nil && !errors.Is(err, jetstream.ErrNoMessages) && !errors.Is(err, jetstream.ErrPinIDMismatch) &&
					!errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
					return nil, fmt.Errorf("fetch partition %d: %w", c.partition, unavailable(err))
				}
				continue
			}
			c.pinned = c.pinned || m.Headers().Get(pinIDHeader) != ""
			c.owed--
			msgs = append(msgs, m)
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	ch := c.pending.Messages()
	for len(msgs) < max {
		select {
		case m, ok := <-ch:
			if !ok {
				c.done()
				return msgs, nil
			}
			c.owed--
			msgs = append(msgs, m)
		default:
			return msgs, nil
		}
	}
	return msgs, nil
}

func (c *PartitionConsumer) done() {
	c.pending = nil
	c.endFetch()
}

// Ack acknowledges the deliveries of the events up to sequence through, as
// far as it can without acknowledging a delivery that Release will hand
// back; JetStream delivers the others again, and Next skips them.
//
// The consumer acknowledges all: one acknowledgement takes every event up to
// its stream sequence off the pending list, and moves the consumer's floor
// of delivery sequences up to its own. JetStream ignores a negative
// acknowledgement under that floor, so the event waits out the whole
// AckWait before it is delivered again. Redeliveries may come out of log
// order (after a change of pinned reducer, for one): acknowledging event 2
// delivered after event 3 would make the release of event 3 void. Ack
// therefore acknowledges the latest delivery at or before through that
// precedes every delivery after through.
func (b *Batch) Ack(ctx context.Context, through uint64) error {
	floor := uint64(math.MaxUint64) // the first delivery Release hands back
	for _, d := range b.msgs {
		if d.seq > through {
			floor = min(floor, d.consumerSeq)
		}
	}
	var last *delivery
	for i, d := range b.msgs {
		if d.seq <= through && d.consumerSeq < floor && (last == nil || d.consumerSeq > last.consumerSeq) {
			last = &b.msgs[i]
		}
	}
	if last == nil {
		return nil
	}
	if err := last.msg.DoubleAck(ctx); err != nil {
		return fmt.Errorf("ack %d: %w", last.seq, unavailable(err))
	}
	return nil
}

// Release hands the deliveries after sequence through back to JetStream, to
// be delivered again, without acknowledging them.
func (b *Batch) Release(through uint64) {
	for _, d := range b.msgs {
		if d.seq > through {
			_ = d.msg.Nak()
		}
	}
}

// InProgress tells JetStream the batch is still being worked on, so that it is
// not delivered again while a slow write is retried.
func (b *Batch) InProgress() {
	for _, d := range b.msgs {
		_ = d.msg.InProgress()
	}
}

// Close hands the partition back: events delivered to this consumer and not
// yet returned by Next are released for immediate redelivery, and the pin is
// lifted so that another reducer may take over at once.
func (c *PartitionConsumer) Close(ctx context.Context) {
	if c.pending != nil {
		c.endFetch()
		for m := range c.pending.Messages() {
			_ = m.Nak()
		}
		c.pending = nil
	}
	_ = c.store.stream.UnpinConsumer(ctx, c.cons.CachedInfo().Name, priorityGroup)
}

// Read calls fn for every event from sequence from (1 for the start) up to
// the newest event stored when Read began, in log order. It stops at the first
// error fn returns.
func (s *Store) Read(ctx context.Context, from uint64, fn func(Record) error) error {
	last, err := s.LastSequence(ctx)
	if err != nil {
		return err
	}
	if from == 0 {
		from = 1
	}
	if last < from {
		return nil
	}
	cons, err := s.stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{
		DeliverPolicy: jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:   from,
	})
	if err != nil {
		return fmt.Errorf("read from %d: %w", from, unavailable(err))
	}
	return s.consume(ctx, cons, "read", last, fn)
}

// consume calls fn for each event cons delivers until fn fails, ctx ends, or
// the event at sequence until (0: never) was handled.
func (s *Store) consume(ctx context.Context, cons jetstream.Consumer, what string, until uint64, fn func(Record) error) error {
	it, err := cons.Messages(jetstream.PullMaxMessages(512))
	if err != nil {
		return fmt.Errorf("%s: %w", what, unavailable(err))
	}
	defer it.Stop()
	stop := context.AfterFunc(ctx, it.Stop)
	defer stop()
	for {
		m, err := it.Next()
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("%s: %w", what, unavailable(err))
		}
		meta, err := m.Metadata()
		if err != nil {
			return fmt.Errorf("%s: %w: %v", what, event.ErrMalformed, err)
		}
		if err := fn(s.record(m.Subject(), meta.Sequence.Stream, meta.Timestamp, m.Data())); err != nil {
			return err
		}
		if until > 0 && meta.Sequence.Stream >= until {
			return nil
		}
	}
}
