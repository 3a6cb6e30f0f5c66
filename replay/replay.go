package replay

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/messages-io/messages/eventstore"
	"github.com/messages-io/messages/internal/backoff"
	"github.com/messages-io/messages/readmodel"
	"github.com/messages-io/messages/reducers"
)

// Log is the event log a replay reads.
type Log interface {
	Read(ctx context.Context, from uint64, fn func(eventstore.Record) error) error
	LastSequence(ctx context.Context) (uint64, error)
	Partitions() int
	Partition(key string) int
	Park(ctx context.Context, rec eventstore.Record, reason string, cause error) error
	Parked(ctx context.Context) (map[uint64]bool, error)
}

// Options tune a replay.
type Options struct {
	// From is the first sequence to fold; events before it are taken from
	// the active generation as they are. 0 or 1 folds the whole log.
	From uint64
	// DryRun builds and verifies the new generation without switching.
	DryRun bool
	// DropOld drops the replaced generation after the switch, once every
	// process had DropGrace to move off it.
	DropOld bool
	// DropGrace is how long the replaced generation stays after the switch
	// before DropOld drops it: processes follow a switch within a second,
	// and a reducer finishes the batch in hand first. Default 10s.
	DropGrace time.Duration
	// BatchSize is the most events written at once per partition. Default
	// DefaultBatchSize.
	BatchSize int
	// CatchUpRounds bounds the passes that chase live traffic before the
	// switch. Default 20.
	CatchUpRounds int
	// Verify checks the new generation against the log before the switch;
	// nil skips the check.
	Verify func(ctx context.Context, gen *readmodel.Store) error
	// Progress is told how far the replay is, now and then.
	Progress func(Progress)
}

// Progress is how far a replay is.
type Progress struct {
	Phase  string // copy, fold, catch up, verify, switch
	Done   uint64 // events folded
	Total  uint64 // events to fold, as known now
	PerSec float64
	ETA    time.Duration
}

// Result says what a replay did.
type Result struct {
	Generation  int           `json:"generation"`
	Replaced    int           `json:"replaced"`
	Events      uint64        `json:"events"`
	Parked      int           `json:"parked"`
	Through     uint64        `json:"through"`
	Switched    bool          `json:"switched"`
	DroppedOld  bool          `json:"droppedOld"`
	Elapsed     time.Duration `json:"elapsedNs"`
	EventsPerS  float64       `json:"eventsPerSecond"`
	CopiedFirst uint64        `json:"copied"`
}

func (o *Options) setDefaults() {
	if o.BatchSize == 0 {
		o.BatchSize = DefaultBatchSize
	}
	if o.CatchUpRounds == 0 {
		o.CatchUpRounds = 20
	}
	if o.Progress == nil {
		o.Progress = func(Progress) {}
	}
	if o.DropGrace == 0 {
		o.DropGrace = 10 * time.Second
	}
}

// DefaultBatchSize is the most events written at once per partition unless
// Options.BatchSize says otherwise: the reducers' own, since a replay is a
// backlog of the whole history, which folds faster in large batches.
const DefaultBatchSize = reducers.DefaultBatchSize

// catchUpPause is the pause between two passes that chase live traffic.
const catchUpPause = 100 * time.Millisecond

// replay is one run of Run.
type replay struct {
	events Log
	gens   *readmodel.Generations
	logger *slog.Logger
	opts   Options
	start  time.Time
	// active is the generation serving when the replay started, and
	// activeGen its number.
	active    *readmodel.Store
	activeGen int
}

// Run rebuilds the read model in gens from events into a new generation and,
// unless opts.DryRun, makes it the active one.
func Run(ctx context.Context, events Log, gens *readmodel.Generations, logger *slog.Logger, opts Options) (Result, error) {
	opts.setDefaults()
	r := &replay{events: events, gens: gens, logger: logger, opts: opts, start: time.Now()}
	var err error
	if r.activeGen, err = gens.Active(ctx); err != nil {
		return Result{}, err
	}
	if r.active, err = gens.Store(ctx, r.activeGen); err != nil {
		return Result{}, err
	}
	gen, res, err := r.build(ctx)
	if err != nil {
		return res, err
	}
	if err := r.verifyAndSwitch(ctx, gen, &res); err != nil || !res.Switched {
		return res, err
	}
	if opts.DropOld {
		if err := r.dropOld(ctx, res.Events); err != nil {
			return res, err
		}
		res.DroppedOld = true
	}
	return res, nil
}

// build creates the new generation, copies into it what comes before
// Options.From, and folds the log from there until it is at least as far as
// the active generation in every partition.
func (r *replay) build(ctx context.Context) (*readmodel.Store, Result, error) {
	note := "replay of the whole log"
	if r.opts.From > 1 {
		note = fmt.Sprintf("replay from sequence %d", r.opts.From)
	}
	gen, err := r.gens.Create(ctx, note)
	if err != nil {
		return nil, Result{}, err
	}
	res := Result{Generation: gen.Generation(), Replaced: r.activeGen}
	r.logger.Info("building generation", "generation", gen.Generation(), "replacing", r.activeGen, "note", note)

	from := max(r.opts.From, 1)
	if from > 1 {
		r.opts.Progress(Progress{Phase: "copy"})
		n, err := gen.CopyBefore(ctx, r.active, from, r.events.Partition)
		if err != nil {
			return gen, res, fmt.Errorf("copy the events before %d: %w", from, err)
		}
		res.CopiedFirst = n
	}
	parked, err := r.events.Parked(ctx)
	if err != nil {
		return gen, res, err
	}
	f := &folder{events: r.events, gen: gen, parked: parked, batch: r.opts.BatchSize, logger: r.logger,
		pending: make(map[int][]readmodel.Change), last: make(map[int]uint64)}
	through, err := r.foldUntilCaughtUp(ctx, f, gen, from)
	res.Events, res.Parked, res.Through = f.done, f.parkedNow, through
	res.Elapsed = time.Since(r.start)
	if s := res.Elapsed.Seconds(); s > 0 {
		res.EventsPerS = float64(f.done) / s
	}
	return gen, res, err
}

// foldUntilCaughtUp folds the log from sequence from into gen: the first
// pass folds the log as it stands; each next pass folds what live traffic
// added meanwhile, until the new generation is at least as far as the
// active one in every partition, or the passes run out. It returns the
// sequence folded through.
func (r *replay) foldUntilCaughtUp(ctx context.Context, f *folder, gen *readmodel.Store, from uint64) (uint64, error) {
	through := from - 1
	for round := 0; ; round++ {
		head, err := r.events.LastSequence(ctx)
		if err != nil {
			return through, err
		}
		if head > through {
			phase := "fold"
			if round > 0 {
				phase = "catch up"
			}
			if err := f.fold(ctx, through+1, head, phase, r.start, r.opts.Progress); err != nil {
				return through, err
			}
			through = head
		}
		if err := f.checkpointAll(ctx, through); err != nil {
			return through, err
		}
		ahead, err := caughtUp(ctx, gen, r.active, r.events.Partitions())
		if err != nil {
			return through, err
		}
		if ahead || round+1 >= r.opts.CatchUpRounds {
			return through, nil
		}
		if err := backoff.Sleep(ctx, catchUpPause); err != nil {
			return through, err
		}
	}
}

// verifyAndSwitch checks gen against the log, when Options.Verify is set,
// and, unless Options.DryRun, makes it the active generation.
func (r *replay) verifyAndSwitch(ctx context.Context, gen *readmodel.Store, res *Result) error {
	if r.opts.Verify != nil {
		r.opts.Progress(Progress{Phase: "verify", Done: res.Events, Total: res.Events})
		if err := r.opts.Verify(ctx, gen); err != nil {
			return fmt.Errorf("generation %d does not match the log, not switching: %w", gen.Generation(), err)
		}
	}
	if r.opts.DryRun {
		r.logger.Info("dry run: not switching", "generation", gen.Generation())
		return nil
	}
	r.opts.Progress(Progress{Phase: "switch", Done: res.Events, Total: res.Events})
	if err := r.gens.Activate(ctx, gen.Generation()); err != nil {
		return err
	}
	res.Switched = true
	r.logger.Info("switched", "from", r.activeGen, "to", gen.Generation())
	return nil
}

// dropOld drops the replaced generation once every process had DropGrace
// to move off it.
func (r *replay) dropOld(ctx context.Context, done uint64) error {
	r.opts.Progress(Progress{Phase: "drop old", Done: done, Total: done})
	if err := backoff.Sleep(ctx, r.opts.DropGrace); err != nil {
		return err
	}
	if err := r.gens.Drop(ctx, r.activeGen); err != nil {
		return fmt.Errorf("drop generation %d: %w", r.activeGen, err)
	}
	return nil
}

// caughtUp reports whether gen has folded, in every partition, at least as
// far as active.
func caughtUp(ctx context.Context, gen, active *readmodel.Store, partitions int) (bool, error) {
	mine, err := gen.Checkpoints(ctx)
	if err != nil {
		return false, err
	}
	theirs, err := active.Checkpoints(ctx)
	if err != nil {
		return false, err
	}
	for p := range partitions {
		if mine[p] < theirs[p] {
			return false, nil
		}
	}
	return true, nil
}

// folder folds events into a generation, per partition, in batches.
type folder struct {
	events    Log
	gen       *readmodel.Store
	parked    map[uint64]bool
	batch     int
	logger    *slog.Logger
	pending   map[int][]readmodel.Change
	last      map[int]uint64 // last sequence seen per partition
	done      uint64
	parkedNow int
}

// fold folds the events in [from, to].
func (f *folder) fold(ctx context.Context, from, to uint64, phase string, start time.Time, progress func(Progress)) error {
	total := to - from + 1
	var seen uint64
	tick := time.Now()
	err := f.events.Read(ctx, from, func(rec eventstore.Record) error {
		if rec.Sequence > to {
			return errStop
		}
		seen++
		c, err := reducers.Project(rec)
		switch {
		case err != nil && f.parked[rec.Sequence]:
			// Parked already: the live reducers skipped it too.
		case err != nil:
			if perr := f.events.Park(ctx, rec, "cannot be folded during replay", err); perr != nil {
				return perr
			}
			f.parkedNow++
			f.logger.Warn("event parked", "sequence", rec.Sequence, "err", err)
		default:
			f.pending[rec.Partition] = append(f.pending[rec.Partition], c)
			f.done++
		}
		f.last[rec.Partition] = rec.Sequence
		if len(f.pending[rec.Partition]) >= f.batch {
			if err := f.flush(ctx, rec.Partition); err != nil {
				return err
			}
		}
		if time.Since(tick) > 250*time.Millisecond {
			tick = time.Now()
			el := time.Since(start).Seconds()
			p := Progress{Phase: phase, Done: seen, Total: total, PerSec: float64(seen) / el}
			if p.PerSec > 0 {
				p.ETA = time.Duration(float64(total-seen) / p.PerSec * float64(time.Second))
			}
			progress(p)
		}
		return nil
	})
	if err != nil && !errors.Is(err, errStop) {
		return err
	}
	for p := range f.pending {
		if err := f.flush(ctx, p); err != nil {
			return err
		}
	}
	progress(Progress{Phase: phase, Done: total, Total: total})
	return nil
}

var errStop = errors.New("stop")

func (f *folder) flush(ctx context.Context, p int) error {
	changes := f.pending[p]
	if len(changes) == 0 {
		return nil
	}
	if err := f.gen.Apply(ctx, p, changes, f.last[p]); err != nil {
		return fmt.Errorf("partition %d: %w", p, err)
	}
	f.pending[p] = changes[:0]
	return nil
}

// checkpointAll records that every partition is folded through seq: each
// event up to seq was read, whatever its partition.
func (f *folder) checkpointAll(ctx context.Context, seq uint64) error {
	for p := range f.events.Partitions() {
		if err := f.gen.SetCheckpoint(ctx, p, seq); err != nil {
			return err
		}
	}
	return nil
}
