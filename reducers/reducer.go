package reducers

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/messages-io/messages/event"
	"github.com/messages-io/messages/eventstore"
	"github.com/messages-io/messages/internal/backoff"
	"github.com/messages-io/messages/message"
	"github.com/messages-io/messages/readmodel"
)

// Source delivers the events of one partition in log order.
type Source interface {
	Partition() int
	Next(ctx context.Context, after uint64, max int) (*eventstore.Batch, error)
	Catchup(ctx context.Context, after uint64, max int) (*eventstore.Batch, error)
	// More appends to a batch of Next up to max events: those delivered
	// since, and then those stored and not yet delivered.
	More(ctx context.Context, b *eventstore.Batch, max int) error
	// Acknowledged is the sequence through which every event of the
	// partition has been acknowledged.
	Acknowledged(ctx context.Context) (uint64, error)
	Close(ctx context.Context)
}

// Sink is the read model the events are folded into.
type Sink interface {
	Apply(ctx context.Context, partition int, changes []readmodel.Change, through uint64) error
	Checkpoint(ctx context.Context, partition int) (uint64, error)
}

// DefaultBatchSize is the most events folded in one write unless set. A
// batch of history spread over time changes about one slot per message and
// key when the batch is small beside the key's slots, and far fewer when it
// is large, so a backlog folds faster in large batches: folding 1,000,000
// messages of a year in random order, 6,233 events/s in batches of 4,000
// and 13,852 in batches of 16,000 (BenchmarkFold in package readmodel).
// A live trickle makes small batches whatever the size. The consumer's
// MaxAckPending, about four such batches, bounds what one fetch can
// deliver.
const DefaultBatchSize = 16000

// MaxBatchSize is the largest BatchSize taken.
const MaxBatchSize = 65536

// FirstPull is the most events a reducer pulls before its turn to write.
// Once its turn comes, it pulls the rest of its batch, up to the batch
// limit, from the events JetStream holds for it (see Source.More): reducers
// that take turns at one store, as on the embedded one, then hold a small
// pull each while they wait, rather than a whole batch each.
const FirstPull = 1000

// Config holds a reducer's options.
type Config struct {
	// BatchSize is the most events folded in one write. Default
	// DefaultBatchSize. A reducer starts there and writes fewer while the
	// store cannot take that many within StopTimeout.
	BatchSize int
	// RetryMin and RetryMax bound the backoff between attempts to write a
	// batch the read model refused or to get past an event that cannot be
	// folded. Defaults 100ms and 10s.
	RetryMin, RetryMax time.Duration
	// StopTimeout bounds each attempt to write a batch, from when it holds
	// a write slot, and how long a stopping reducer keeps trying to finish
	// the batch in hand. Keep it under the consumer's AckWait, so that a
	// batch is not delivered again while an attempt runs. Default 10s.
	StopTimeout time.Duration
	// MaxAttempts is how many times an event that cannot be folded is tried,
	// with backoff, before it is parked. Default 5.
	MaxAttempts int
	// Park stores an event that cannot be folded in the dead-letter stream,
	// so that its partition moves on. When nil, the partition halts at the
	// event instead, until it can be folded.
	Park func(ctx context.Context, rec eventstore.Record, reason string, cause error) error
	// Project turns an event into its change to the read model. Default
	// Project.
	Project func(eventstore.Record) (readmodel.Change, error)
	// Writes, when set, is shared by the reducers of a process, and its
	// capacity bounds how many of them write a batch at once. A store that
	// takes one writer at a time, as SQLite under the embedded FerretDB
	// does, answers sooner when its writers queue here than when they
	// contend for its lock. When nil, every partition writes at once. Time
	// spent waiting here does not count against an attempt's deadline.
	Writes chan struct{}
}

func (c *Config) setDefaults() {
	if c.BatchSize == 0 {
		c.BatchSize = DefaultBatchSize
	}
	if c.RetryMin == 0 {
		c.RetryMin = 100 * time.Millisecond
	}
	if c.RetryMax == 0 {
		c.RetryMax = 10 * time.Second
	}
	if c.StopTimeout == 0 {
		c.StopTimeout = 10 * time.Second
	}
	if c.MaxAttempts == 0 {
		c.MaxAttempts = 5
	}
	if c.Project == nil {
		c.Project = Project
	}
}

// DefaultConfig holds the options a zero Config takes.
func DefaultConfig() Config {
	var c Config
	c.setDefaults()
	return c
}

// DefaultAddr is the address a reducer process serves its health and
// metrics on unless told otherwise.
const DefaultAddr = ":8083"

// Validate reports the first option out of range.
func (c Config) Validate() error {
	switch {
	case c.BatchSize < 1 || c.BatchSize > MaxBatchSize:
		return fmt.Errorf("batch size %d: want 1-%d", c.BatchSize, MaxBatchSize)
	case c.RetryMin <= 0 || c.RetryMax < c.RetryMin:
		return errors.New("retry backoff: want 0 < min <= max")
	case c.MaxAttempts < 1:
		return fmt.Errorf("max attempts %d: want at least 1", c.MaxAttempts)
	}
	return nil
}

// Model returns the read model generation to fold into: the active one. A
// reducer asks before every batch and moves when the answer changes.
type Model func() Sink

// Reducer folds one partition.
type Reducer struct {
	src       Source
	model     Model
	sink      Sink
	log       *slog.Logger
	cfg       Config
	metrics   *Metrics
	partition string
	// checkpoint is the sequence of the last event applied to the read model.
	checkpoint uint64
	halted     atomic.Pointer[error]
	// poisonSeq is the event that last failed to fold, tried poisonTries
	// times.
	poisonSeq   uint64
	poisonTries int
	// progressAt is when the reducer last moved its checkpoint or found
	// nothing left to fold (unix nanoseconds); lag is the partition's last
	// known lag, and busy is set while a batch is in hand.
	progressAt atomic.Int64
	lag        atomic.Uint64
	busy       atomic.Bool
	// limit is the most events the reducer now writes at once: BatchSize,
	// or fewer while the store cannot take that many in time. failed is the
	// size of the last write that failed, and fast counts the full, fast
	// writes since. settle is set after a failed write, which the store may
	// still be running.
	limit, failed, fast int
	settle              bool
	// standingBy is set while another reducer holds the partition.
	standingBy bool
}

// New returns a reducer folding src into the read model generation that
// model names.
func New(src Source, model Model, log *slog.Logger, metrics *Metrics, cfg Config) (*Reducer, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	p := strconv.Itoa(src.Partition())
	r := &Reducer{
		src: src, model: model, cfg: cfg, metrics: metrics, partition: p,
		log: log.With("component", "reducer", "partition", src.Partition()),
	}
	r.progressAt.Store(time.Now().UnixNano())
	r.limit = cfg.BatchSize
	metrics.age.track(p, r.checkpointAge)
	return r, nil
}

// checkpointAge is how long the reducer has made no progress while it had
// events to fold: zero while it keeps up.
func (r *Reducer) checkpointAge() time.Duration {
	if r.lag.Load() == 0 && !r.busy.Load() && r.Halted() == nil {
		return 0
	}
	return time.Since(time.Unix(0, r.progressAt.Load()))
}

// Stalled returns why the partition is not moving: halted at an event, or
// events waiting and no progress for longer than after. Nil while it folds
// or has nothing to fold.
func (r *Reducer) Stalled(after time.Duration) error {
	if err := r.Halted(); err != nil {
		return err
	}
	if age := r.checkpointAge(); age > after {
		return fmt.Errorf("partition %s: no progress for %s with %d events waiting", r.partition, age.Round(time.Second), r.lag.Load())
	}
	return nil
}

// Halted returns why the partition cannot move on, nil while it folds.
func (r *Reducer) Halted() error {
	if err := r.halted.Load(); err != nil {
		return *err
	}
	return nil
}

// Run folds until ctx ends, then finishes the batch in hand, acknowledges what
// it applied and hands the partition back.
func (r *Reducer) Run(ctx context.Context) error {
	defer func() {
		stop, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.cfg.StopTimeout)
		defer cancel()
		r.src.Close(stop)
	}()
	if !r.moveTo(ctx, r.model()) {
		return nil // stopped before the read model answered
	}
	for {
		if m := r.model(); m != r.sink && !r.moveTo(ctx, m) {
			return nil
		}
		b, err := retry(ctx, r, "fetching events", func(ctx context.Context) (*eventstore.Batch, error) {
			for {
				b, err := r.src.Next(ctx, r.checkpoint, min(r.limit, FirstPull))
				if !errors.Is(err, eventstore.ErrNotHeld) {
					return b, err
				}
				r.standBy()
			}
		})
		if err != nil || ctx.Err() != nil {
			return nil
		}
		r.hold(ctx, b)
		r.setLag(b.Pending)
		r.busy.Store(true)
		r.fold(ctx, b)
		// The write took in the events delivered while it waited for its
		// turn: the lag is now what was pending after the last of them.
		r.setLag(b.Pending)
		r.busy.Store(false)
		if b.Pending == 0 && r.Halted() == nil {
			r.progressAt.Store(time.Now().UnixNano())
		}
	}
}

// setLag records the partition's lag: the events stored and not yet
// delivered, as of the last delivery.
func (r *Reducer) setLag(n uint64) {
	r.metrics.lag.WithLabelValues(r.partition).Set(float64(n))
	r.lag.Store(n)
}

// standBy stops reporting the partition as this reducer's once another
// holds it: its lag, checkpoint, checkpoint age, batch limit and halt are
// the holder's to report, and its counters start again from 0, as those of
// a reducer that never held it. Nor does the partition count as stalled or
// halted here any longer.
func (r *Reducer) standBy() {
	if r.standingBy {
		return
	}
	r.standingBy = true
	r.metrics.standBy(r.partition)
	r.lag.Store(0)
	r.halted.Store(nil)
	r.log.Info("another reducer holds the partition; standing by")
}

// hold reports the partition as this reducer's again once it is delivered
// events b after standing by. The reducer that held the partition meanwhile
// moved the checkpoint on: this one continues from there, and drops from b
// the events it folded, which Next read again from the log.
func (r *Reducer) hold(ctx context.Context, b *eventstore.Batch) {
	if !r.standingBy {
		return
	}
	r.standingBy = false
	r.metrics.age.track(r.partition, r.checkpointAge)
	r.setLimit(r.limit)
	cp, err := retry(ctx, r, "read checkpoint", func(ctx context.Context) (uint64, error) {
		return r.sink.Checkpoint(ctx, r.src.Partition())
	})
	if err == nil && cp > r.checkpoint {
		r.checkpoint = cp
		r.metrics.checkpoint.WithLabelValues(r.partition).Set(float64(cp))
		b.Records = slices.DeleteFunc(b.Records, func(rec eventstore.Record) bool { return rec.Sequence <= cp })
	}
	r.log.Info("holds the partition again", "checkpoint", r.checkpoint)
}

// moveTo makes sink the generation the reducer folds into: it continues from
// that generation's checkpoint and first catches up on the events the
// generation lacks, reading them from the log. It returns false when ctx
// ended first.
//
// At start, those are the events acknowledged beyond the checkpoint, which
// JetStream will not deliver again. A store that may lose its last commits
// in a power loss, as SQLite does with synchronous=NORMAL, keeps a prefix of
// what it was told, so its checkpoint can fall behind the acknowledgements;
// the events between are read again from the log here, and folded once, as
// any batch delivered again is.
func (r *Reducer) moveTo(ctx context.Context, sink Sink) bool {
	first := r.sink == nil
	// through is how far to read from the log; zero reads to its end. It
	// is read before the checkpoint, which is written before events are
	// acknowledged, so that a reducer folding the partition elsewhere
	// meanwhile cannot make the checkpoint look behind.
	var through uint64
	if first {
		var err error
		if through, err = retry(ctx, r, "read acknowledged", r.src.Acknowledged); err != nil {
			return false
		}
	}
	cp, err := retry(ctx, r, "read checkpoint", func(ctx context.Context) (uint64, error) {
		return sink.Checkpoint(ctx, r.src.Partition())
	})
	if err != nil {
		return false
	}
	if first {
		r.setLimit(r.limit)
	}
	r.sink, r.checkpoint = sink, cp
	r.metrics.checkpoint.WithLabelValues(r.partition).Set(float64(cp))
	r.log.Info("folding", "checkpoint", cp, "generation", generation(sink))
	if first && through <= cp {
		return true
	}
	if first {
		r.log.Warn("the read model lacks acknowledged events; reading them again", "checkpoint", cp, "acknowledged", through)
	}
	for ctx.Err() == nil && (through == 0 || r.checkpoint < through) {
		b, err := retry(ctx, r, "catch up", func(ctx context.Context) (*eventstore.Batch, error) {
			return r.src.Catchup(ctx, r.checkpoint, r.limit)
		})
		if err != nil || len(b.Records) == 0 {
			break
		}
		before := r.checkpoint
		r.fold(ctx, b)
		if r.checkpoint == before || r.model() != r.sink {
			// Stuck here or moved again: the main loop takes it from here,
			// and Next reads whatever is still missing from the log.
			break
		}
	}
	return ctx.Err() == nil
}

func generation(s Sink) any {
	if g, ok := s.(interface{ Generation() int }); ok {
		return g.Generation()
	}
	return nil
}

// fold applies one batch and acknowledges what it applied. An event that
// cannot be folded stops the batch there: the events before it are applied
// and acknowledged, it and the rest go back to JetStream, and it is tried
// again after a backoff. After MaxAttempts it is parked in the dead-letter
// stream and the partition moves on; without a place to park it, the
// partition halts. It is never acknowledged unapplied and unparked.
func (r *Reducer) fold(ctx context.Context, b *eventstore.Batch) {
	start := time.Now()
	changes, through, poison, cause := r.project(b.Records, r.checkpoint)
	r.metrics.redelivered.WithLabelValues(r.partition).Add(float64(b.Skipped))
	// The batch in hand is finished even when ctx ends meanwhile; each
	// write to finish it has a deadline of its own.
	work := context.WithoutCancel(ctx)
	if len(changes) > 0 {
		// Events delivered while the reducer waits for its turn to write
		// join the write, unless one before them cannot be folded.
		if !r.apply(ctx, work, b, poison == nil, changes, through) {
			r.ack(work, b)
			return
		}
		r.metrics.batch.Observe(time.Since(start).Seconds())
	}
	if poison != nil && r.tryPark(ctx, work, b, *poison, cause) {
		poison = nil
	}
	r.ack(work, b)
	if poison == nil {
		if r.halted.Swap(nil) != nil {
			r.metrics.halted.WithLabelValues(r.partition).Set(0)
			r.log.Info("partition moves on")
		}
		return
	}
	err := fmt.Errorf("event at sequence %d: %w", poison.Sequence, cause)
	r.metrics.failures.WithLabelValues(r.partition).Inc()
	r.metrics.halted.WithLabelValues(r.partition).Set(1)
	r.halted.Store(&err)
	r.log.Error("event cannot be folded", "err", err, "attempt", r.poisonTries)
	_ = backoff.Sleep(ctx, r.retryPolicy().Delay(r.poisonTries))
}

// project turns records into changes, up to the first that cannot be
// folded, which it returns with why; through is the sequence of the last
// change, or after when there is none.
func (r *Reducer) project(records []eventstore.Record, after uint64) (changes []readmodel.Change, through uint64, poison *eventstore.Record, cause error) {
	changes = make([]readmodel.Change, 0, len(records))
	through = after
	for i, rec := range records {
		c, err := r.cfg.Project(rec)
		if err != nil {
			return changes, through, &records[i], err
		}
		changes = append(changes, c)
		through = rec.Sequence
	}
	return changes, through, nil, nil
}

// topUp takes into a batch the events delivered since it was fetched, up to
// room, and returns their changes, through the last that can be folded. One
// that cannot, and those after it, are left out of the batch's write; the
// batch hands them back to JetStream, and they come again in the next. Once
// it leaves any out, or fails, again is false: a later top-up of the batch
// would append after them and leave a gap.
func (r *Reducer) topUp(ctx context.Context, b *eventstore.Batch, room int) (changes []readmodel.Change, through uint64, again bool) {
	from, skipped := len(b.Records), b.Skipped
	err := r.src.More(ctx, b, room)
	r.metrics.redelivered.WithLabelValues(r.partition).Add(float64(b.Skipped - skipped))
	if err != nil {
		r.log.Warn("taking events delivered meanwhile", "err", err)
	}
	changes, through, poison, _ := r.project(b.Records[from:], 0)
	left := err != nil || poison != nil
	if len(changes) > room {
		// Events read to fill a gap took it past room: the rest wait.
		changes, through, left = changes[:room], changes[room-1].Sequence, true
	}
	return changes, through, !left
}

// ack acknowledges the events of b applied so far and hands the rest back
// to JetStream.
func (r *Reducer) ack(ctx context.Context, b *eventstore.Batch) {
	actx, cancel := context.WithTimeout(ctx, r.cfg.StopTimeout)
	defer cancel()
	if err := b.Ack(actx, r.checkpoint); err != nil {
		// Applied but not acknowledged: the redelivery will be skipped.
		r.log.Warn("acknowledging", "err", err)
	}
	b.Release(r.checkpoint)
}

// apply writes changes through sequence through, in runs of at most the
// batch limit, until all are written or ctx ends; it returns whether all
// were. Changes nil writes the checkpoint alone. Once ctx ends it stops
// after the run in hand.
//
// The limit follows what the store achieves: a failed write halves it, and
// a full-sized write that took under a quarter of its deadline doubles it,
// up to BatchSize. A store too slow for a batch thus gets smaller ones until
// one fits in an attempt's deadline, and the partition moves on.
//
// When more is set, the last run takes in, once the reducer's turn to write
// has come, the events delivered meanwhile (see topUp), up to the limit: on
// a store whose partitions take turns, an event that arrives while its
// partition waits is written in that turn rather than the next.
func (r *Reducer) apply(ctx, work context.Context, b *eventstore.Batch, more bool, changes []readmodel.Change, through uint64) bool {
	failures := 0      // in a row
	var told time.Time // when JetStream last heard the batch is in hand
	for {
		if r.model() != r.sink {
			return false // the rest goes to the new generation
		}
		n := min(r.limit, len(changes))
		upTo := through
		if n < len(changes) {
			upTo = changes[n-1].Sequence
		}
		if time.Since(told) >= time.Second {
			// Once a second at most: a batch written in many small runs
			// would otherwise send one message per event and run.
			b.InProgress()
			told = time.Now()
		}
		took, err := r.write(ctx, work, func() ([]readmodel.Change, uint64) {
			if more && n == len(changes) && n < r.limit {
				extra, last, again := r.topUp(ctx, b, r.limit-n)
				more = again
				if len(extra) > 0 {
					changes = append(changes, extra...)
					n, upTo, through = len(changes), last, last
				}
			}
			return changes[:n], upTo
		})
		if err != nil {
			if n > 0 {
				r.failed, r.fast = n, 0
				r.setLimit(max(1, n/2))
			}
			// What the store still runs of the failed attempt gets half as
			// long again to finish, on a batch half its size.
			wait := max(r.retryPolicy().Delay(failures), took/2)
			failures++
			r.log.Warn("apply batch", "err", err, "events", n, "batch_limit", r.limit, "retry_in", wait)
			if backoff.Sleep(ctx, wait) != nil {
				return false
			}
			continue
		}
		failures = 0
		if n == r.limit && took <= r.cfg.StopTimeout/4 {
			r.grow()
		}
		r.checkpoint = upTo
		r.progressAt.Store(time.Now().UnixNano())
		r.metrics.applied.WithLabelValues(r.partition).Add(float64(n))
		r.metrics.checkpoint.WithLabelValues(r.partition).Set(float64(upTo))
		if changes = changes[n:]; len(changes) == 0 {
			return true
		}
		if ctx.Err() != nil {
			return false
		}
	}
}

// write makes one attempt at writing the changes through the sequence that
// run returns, once the reducer holds a write slot, and returns how long the
// store took over them. The attempt's deadline starts there. After a failed
// attempt, it first writes the checkpoint alone, and sends the changes only
// once the store has answered that.
func (r *Reducer) write(ctx, work context.Context, run func() ([]readmodel.Change, uint64)) (time.Duration, error) {
	release, err := r.slot(ctx)
	if err != nil {
		return 0, err
	}
	defer release()
	if r.settle {
		sctx, cancel := context.WithTimeout(work, r.cfg.StopTimeout)
		err := r.sink.Apply(sctx, r.src.Partition(), nil, r.checkpoint)
		cancel()
		if err != nil {
			return 0, fmt.Errorf("waiting for the store to finish the last write: %w", err)
		}
		r.settle = false
	}
	changes, through := run()
	start := time.Now()
	actx, cancel := context.WithTimeout(work, r.cfg.StopTimeout)
	defer cancel()
	err = r.sink.Apply(actx, r.src.Partition(), changes, through)
	if err != nil {
		r.settle = true
	}
	return time.Since(start), err
}

// slot waits for one of the process's write slots, when they are bounded,
// and returns the function that gives it back. Once ctx ends it waits
// StopTimeout more, for the batch in hand.
func (r *Reducer) slot(ctx context.Context) (func(), error) {
	if r.cfg.Writes == nil {
		return func() {}, nil
	}
	release := func() { <-r.cfg.Writes }
	select {
	case r.cfg.Writes <- struct{}{}:
		return release, nil
	case <-ctx.Done():
	}
	t := time.NewTimer(r.cfg.StopTimeout)
	defer t.Stop()
	select {
	case r.cfg.Writes <- struct{}{}:
		return release, nil
	case <-t.C:
		return nil, fmt.Errorf("no write slot: %w", ctx.Err())
	}
}

// grow doubles the batch limit after a full write done in a quarter of its
// deadline, up to BatchSize. Up to the size that last failed it grows at
// once; to that size or beyond only after growBackAfter such writes, so that
// a store that fails above some size is tried there seldom.
func (r *Reducer) grow() {
	r.fast++
	next := min(2*r.limit, r.cfg.BatchSize)
	if r.failed > 0 && next >= r.failed {
		if r.fast < growBackAfter {
			return
		}
		r.failed = 0
	}
	r.fast = 0
	r.setLimit(next)
}

// growBackAfter is how many full, fast writes a reducer makes before it
// tries again the batch size that last failed.
const growBackAfter = 16

func (r *Reducer) setLimit(n int) {
	r.limit = n
	r.metrics.batchLimit.WithLabelValues(r.partition).Set(float64(n))
}

// tryPark counts one more failed attempt at rec and, once they reach
// MaxAttempts, parks it and moves the checkpoint past it. It returns whether
// rec was parked.
func (r *Reducer) tryPark(ctx, work context.Context, b *eventstore.Batch, rec eventstore.Record, cause error) bool {
	if r.poisonSeq != rec.Sequence {
		r.poisonSeq, r.poisonTries = rec.Sequence, 0
	}
	r.poisonTries++
	if r.cfg.Park == nil || r.poisonTries < r.cfg.MaxAttempts {
		return false
	}
	_, err := retry(ctx, r, "park event", func(context.Context) (struct{}, error) {
		pctx, cancel := context.WithTimeout(work, r.cfg.StopTimeout)
		defer cancel()
		return struct{}{}, r.cfg.Park(pctx, rec, fmt.Sprintf("cannot be folded after %d attempts", r.poisonTries), cause)
	})
	if err != nil || !r.apply(ctx, work, b, false, nil, rec.Sequence) {
		return false
	}
	r.metrics.deadLetters.WithLabelValues(r.partition).Inc()
	r.log.Error("event parked in the dead-letter stream", "sequence", rec.Sequence, "err", cause)
	r.poisonSeq, r.poisonTries = 0, 0
	return true
}

// Project turns one logged event into the change it makes to the read model.
func Project(rec eventstore.Record) (readmodel.Change, error) {
	if rec.Err != nil {
		return readmodel.Change{}, rec.Err
	}
	switch rec.Type {
	case message.EventCreated:
		m, err := message.FromCreated(rec.Event)
		if err != nil {
			return readmodel.Change{}, err
		}
		return readmodel.Change{Message: m, Sequence: rec.Sequence}, nil
	}
	return readmodel.Change{}, fmt.Errorf("%w: unknown event type %q", event.ErrMalformed, rec.Type)
}

// retry calls f until it succeeds or ctx ends, backing off between attempts.
func retry[T any](ctx context.Context, r *Reducer, what string, f func(context.Context) (T, error)) (T, error) {
	return backoff.Retry(ctx, r.retryPolicy(), f, func(err error, wait time.Duration) {
		r.log.Warn(what, "err", err, "retry_in", wait)
	})
}

// retryPolicy is how long the reducer waits between attempts.
func (r *Reducer) retryPolicy() backoff.Policy {
	return backoff.Policy{Min: r.cfg.RetryMin, Max: r.cfg.RetryMax}
}
