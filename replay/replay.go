package replay

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/messages-io/messages/eventstore"
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
	// BatchSize is the most events written at once per partition. Default 1000.
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

// Run rebuilds the read model in gens from events into a new generation and,
// unless opts.DryRun, makes it the active one.
func Run(ctx context.Context, events Log, gens *readmodel.Generations, logger *slog.Logger, opts Options) (Result, error) {
	if opts.BatchSize == 0 {
		opts.BatchSize = 1000
	}
	if opts.CatchUpRounds == 0 {
		opts.CatchUpRounds = 20
	}
	if opts.Progress == nil {
		opts.Progress = func(Progress) {}
	}
	if opts.DropGrace == 0 {
		opts.DropGrace = 10 * time.Second
	}
	start := time.Now()
	activeGen, err := gens.Active(ctx)
	if err != nil {
		return Result{}, err
	}
	active, err := gens.Store(ctx, activeGen)
	if err != nil {
		return Result{}, err
	}
	note := "replay of the whole log"
	if opts.From > 1 {
		note = fmt.Sprintf("replay from sequence %d", opts.From)
	}
	gen, err := gens.Create(ctx, note)
	if err != nil {
		return Result{}, err
	}
	res := Result{Generation: gen.Generation(), Replaced: activeGen}
	logger.Info("building generation", "generation", gen.Generation(), "replacing", activeGen, "note", note)

	from := max(opts.From, 1)
	if from > 1 {
		opts.Progress(Progress{Phase: "copy"})
		n, err := gen.CopyBefore(ctx, active, from, events.Partition)
		if err != nil {
			return res, fmt.Errorf("copy the events before %d: %w", from, err)
		}
		res.CopiedFirst = n
	}
	parked, err := events.Parked(ctx)
	if err != nil {
		return res, err
	}
	f := &folder{events: events, gen: gen, parked: parked, batch: opts.BatchSize, logger: logger,
		pending: make(map[int][]readmodel.Change), last: make(map[int]uint64)}

	// The first pass folds the log as it stands; each next pass folds what
	// live traffic added meanwhile, until the new generation is at least as
	// far as the active one in every partition.
	through := from - 1
	for round := 0; ; round++ {
		head, err := events.LastSequence(ctx)
		if err != nil {
			return res, err
		}
		if head > through {
			phase := "fold"
			if round > 0 {
				phase = "catch up"
			}
			if err := f.fold(ctx, through+1, head, phase, start, opts.Progress); err != nil {
				return res, err
			}
			through = head
		}
		if err := f.checkpointAll(ctx, through); err != nil {
			return res, err
		}
		ahead, err := caughtUp(ctx, gen, active, events.Partitions())
		if err != nil {
			return res, err
		}
		if ahead || round+1 >= opts.CatchUpRounds {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	res.Events, res.Parked, res.Through = f.done, f.parkedNow, through
	res.Elapsed = time.Since(start)
	if s := res.Elapsed.Seconds(); s > 0 {
		res.EventsPerS = float64(f.done) / s
	}

	if opts.Verify != nil {
		opts.Progress(Progress{Phase: "verify", Done: f.done, Total: f.done})
		if err := opts.Verify(ctx, gen); err != nil {
			return res, fmt.Errorf("generation %d does not match the log, not switching: %w", gen.Generation(), err)
		}
	}
	if opts.DryRun {
		logger.Info("dry run: not switching", "generation", gen.Generation())
		return res, nil
	}
	opts.Progress(Progress{Phase: "switch", Done: f.done, Total: f.done})
	if err := gens.Activate(ctx, gen.Generation()); err != nil {
		return res, err
	}
	res.Switched = true
	logger.Info("switched", "from", activeGen, "to", gen.Generation())
	if opts.DropOld {
		opts.Progress(Progress{Phase: "drop old", Done: f.done, Total: f.done})
		select {
		case <-ctx.Done():
			return res, ctx.Err()
		case <-time.After(opts.DropGrace):
		}
		if err := gens.Drop(ctx, activeGen); err != nil {
			return res, fmt.Errorf("drop generation %d: %w", activeGen, err)
		}
		res.DroppedOld = true
	}
	return res, nil
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
