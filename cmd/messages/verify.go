package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/messages-io/messages/audit"
	"github.com/messages-io/messages/eventstore"
	"github.com/messages-io/messages/internal/backoff"
	"github.com/messages-io/messages/readmodel"
	"github.com/schollz/progressbar/v3"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// verifyUsage is the usage of `messages verify`, with examples.
const verifyUsage = `messages verify [flags]

Folds the event log on its own and compares it with a read model generation:
every message present and equal, every count per tag per day. Prints each
difference on a line and exits 1 when there is any. The reducers may keep
running: events after each partition's checkpoint are not compared yet.

It also reads each partition's checkpoint and the events of the log after
it, before the comparison and again after it (at least --sample-interval
apart when any wait), and prints, for each partition with events not yet
folded, how many, how long the first of them has waited, and whether the
checkpoint moved in between. With --caught-up, an event waiting longer than
the grace period (10s, or as in --caught-up=1m) is a failure of its own:
exit 3. A difference (exit 1) wins over it.

Exit status: 0 in agreement (and caught up, with --caught-up), 1 on a
difference or an error, 2 on a usage error, 3 when behind.

Examples:
  messages verify                                  # the active generation
  messages verify --generation 3 --max-diffs 20
  messages verify --caught-up=30s                  # fail when folding lags
  messages verify --json | jq .diffCount`

// verifyFlags configure `messages verify`.
type verifyFlags struct {
	src      logSource
	store    storeFlags
	gen      int
	maxDiffs int
	json     bool
	caughtUp graceFlag
	interval time.Duration
}

func (f *verifyFlags) register(fs *flag.FlagSet) {
	f.src.register(fs)
	f.store.register(fs, true)
	fs.IntVar(&f.gen, "generation", 0, "read model generation to verify; the active one when 0")
	fs.IntVar(&f.maxDiffs, "max-diffs", 100, "most differences printed; the rest are counted")
	fs.BoolVar(&f.json, "json", false, "print the report as one JSON object")
	fs.Var(&f.caughtUp, "caught-up", "fail with exit status 3 when an event has waited longer than this to be folded: --caught-up (10s) or --caught-up=DURATION")
	fs.DurationVar(&f.interval, "sample-interval", 2*time.Second, "least time between the two readings of each partition's checkpoint that tell whether it moves")
}

// runVerify compares a read model generation with the event log.
func runVerify(ctx context.Context, args []string, e env) error {
	fs := flag.NewFlagSet("verify", flag.ContinueOnError)
	var f verifyFlags
	f.register(fs)
	if err := parse(fs, roleCommand("verify"), args, e); err != nil {
		return err
	}
	if f.maxDiffs < 1 {
		return fmt.Errorf("--max-diffs %d: want at least 1", f.maxDiffs)
	}
	if f.interval <= 0 {
		return fmt.Errorf("--sample-interval %v: want more than 0", f.interval)
	}
	events, closeLog, err := f.src.open(ctx, "verify")
	if err != nil {
		return err
	}
	defer closeLog()
	model, closeModel, err := openModel(ctx, f.store, f.gen, f.src.timeout)
	if err != nil {
		return err
	}
	defer closeModel()
	v, err := f.verify(ctx, events, model, e)
	if err != nil {
		return err
	}
	if err := v.print(e.stdout, &f); err != nil {
		return err
	}
	return v.verdict(f.caughtUp)
}

// verification is what verify found: the comparison, and the lag of each
// partition sampled before and after it.
type verification struct {
	stream, db  string
	gen         int
	rep         audit.Report
	first, last audit.LagSample
	behind      []audit.PartitionLag // with --caught-up
}

// verify samples the lag, compares model with the log, and samples the lag
// again at least the sample interval after the first, when any partition
// is behind.
func (f *verifyFlags) verify(ctx context.Context, events *eventstore.Store, model *readmodel.Store, e env) (verification, error) {
	v := verification{stream: events.Config().Stream, db: f.store.db, gen: model.Generation()}
	var err error
	if v.first, err = audit.SampleLag(ctx, events, model, nil); err != nil {
		return v, fmt.Errorf("lag: %w", err)
	}
	progress, done := progressBar(e.stderr, "verifying")
	v.rep, err = audit.Verify(ctx, events, model, audit.Options{MaxDiffs: f.maxDiffs, Progress: progress})
	done()
	if err != nil {
		return v, err
	}
	if v.first.Pending() > 0 {
		// Whether a partition behind moves needs time to tell.
		if err := backoff.Sleep(ctx, f.interval-time.Since(v.first.At)); err != nil {
			return v, err
		}
	}
	if v.last, err = audit.SampleLag(ctx, events, model, &v.first); err != nil {
		return v, fmt.Errorf("lag: %w", err)
	}
	if f.caughtUp.set {
		v.behind = v.last.Behind(f.caughtUp.grace)
	}
	return v, nil
}

// print writes the verification as f asks: one JSON object, or lines.
func (v verification) print(w io.Writer, f *verifyFlags) error {
	if f.json {
		out := struct {
			Stream     string `json:"stream"`
			Database   string `json:"database"`
			Generation int    `json:"generation"`
			OK         bool   `json:"ok"`
			audit.Report
			Lag []audit.PartitionLag `json:"lag"`
			// CaughtUp is set with --caught-up only.
			CaughtUp *bool `json:"caughtUp,omitempty"`
		}{v.stream, v.db, v.gen, v.rep.OK(), v.rep, v.last.Partitions, nil}
		if f.caughtUp.set {
			ok := len(v.behind) == 0
			out.CaughtUp = &ok
		}
		return json.NewEncoder(w).Encode(out)
	}
	for _, d := range v.rep.Diffs {
		fmt.Fprintln(w, d)
	}
	if more := v.rep.DiffCount - len(v.rep.Diffs); more > 0 {
		fmt.Fprintf(w, "… and %s more\n", plural(more, "difference"))
	}
	fmt.Fprintln(w, verifySummary(v.gen, v.rep))
	for _, p := range v.last.Partitions {
		if p.Pending > 0 {
			fmt.Fprintln(w, lagLine(p, v.last.At.Sub(v.first.At)))
		}
	}
	return nil
}

// verdict is the command's error: a difference, else partitions behind for
// longer than caughtUp allows.
func (v verification) verdict(caughtUp graceFlag) error {
	if !v.rep.OK() {
		return fmt.Errorf("read model drifted from the log: %w", v.rep.Err())
	}
	if len(v.behind) == 0 {
		return nil
	}
	var names []string
	for _, p := range v.behind {
		names = append(names, strconv.Itoa(p.Partition))
	}
	in := "partition "
	if len(names) > 1 {
		in = "partitions "
	}
	return fmt.Errorf("%w: %s not folded; in %s%s, events have waited over %v",
		errBehind, plural(int(v.last.Pending()), "event"), in, strings.Join(names, ", "), caughtUp.grace)
}

// errBehind means the read model has events waiting longer than
// --caught-up allows: exit status 3.
var errBehind = errors.New("read model behind the log")

// lagLine says in one line how far a partition is behind, and whether it
// moved during the time between the samples.
func lagLine(p audit.PartitionLag, between time.Duration) string {
	moving := fmt.Sprintf("not moving in %v", between.Round(100*time.Millisecond))
	if p.Moved > 0 {
		moving = fmt.Sprintf("moving: %s folded in %v", plural(int(p.Moved), "event"), between.Round(100*time.Millisecond))
	}
	return fmt.Sprintf("partition %d behind: %s after checkpoint %d (last %d), the first waiting %v; %s",
		p.Partition, plural(int(p.Pending), "event"), p.Checkpoint, p.Last, p.Waiting.Round(100*time.Millisecond), moving)
}

// graceFlag is --caught-up: a boolean flag that may take a duration.
type graceFlag struct {
	set   bool
	grace time.Duration
}

// defaultGrace is how long an event may wait to be folded under a bare
// --caught-up.
const defaultGrace = 10 * time.Second

func (g *graceFlag) String() string {
	if g == nil || !g.set {
		return ""
	}
	return g.grace.String()
}

func (g *graceFlag) Set(v string) error {
	switch v {
	case "true":
		g.set, g.grace = true, defaultGrace
		return nil
	case "false":
		g.set = false
		return nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		return errors.New("want a duration, 0 or more")
	}
	g.set, g.grace = true, d
	return nil
}

// IsBoolFlag lets --caught-up stand without a value.
func (g *graceFlag) IsBoolFlag() bool { return true }

// verifySummary says in one line what a verification compared and found.
func verifySummary(gen int, rep audit.Report) string {
	verdict := "agrees with"
	if !rep.OK() {
		verdict = "differs from"
	}
	s := fmt.Sprintf("generation %d %s the log: %s, %s compared", gen, verdict,
		plural(int(rep.Events), "event"), plural(int(rep.Messages), "message"))
	var notes []string
	if rep.Duplicates > 0 {
		notes = append(notes, fmt.Sprintf("%s repeating a message id", plural(int(rep.Duplicates), "event")))
	}
	if rep.Parked > 0 {
		notes = append(notes, fmt.Sprintf("%s parked as dead letters", plural(int(rep.Parked), "event")))
	}
	if rep.Pending > 0 || rep.InFlight > 0 {
		notes = append(notes, fmt.Sprintf("not yet folded, so not compared: %s and %s in flight",
			plural(int(rep.Pending), "event"), plural(int(rep.InFlight), "message")))
	}
	if rep.DiffCount > 0 {
		notes = append(notes, plural(rep.DiffCount, "difference"))
	}
	if len(notes) > 0 {
		s += "; " + strings.Join(notes, "; ")
	}
	return s
}

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return strconv.Itoa(n) + " " + noun + "s"
}

// openModel connects to the read model and returns generation gen, the
// active one when 0, and a function that disconnects. It refuses a database
// that holds no read model rather than start one there.
func openModel(ctx context.Context, sf storeFlags, gen int, timeout time.Duration) (*readmodel.Store, func(), error) {
	client, err := mongo.Connect(options.Client().ApplyURI(sf.uri).
		SetAppName("messages tools").
		SetServerSelectionTimeout(timeout))
	if err != nil {
		return nil, nil, fmt.Errorf("mongodb: %w", err)
	}
	disconnect := func() {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = client.Disconnect(dctx)
	}
	gens, err := readmodel.OpenExistingGenerations(ctx, client.Database(sf.db))
	var store *readmodel.Store
	if err == nil {
		store, err = gens.Find(ctx, gen)
	}
	if err != nil {
		disconnect()
		return nil, nil, err
	}
	return store, disconnect, nil
}

// progressBar returns a progress function drawing a bar on w while w is a
// terminal (nil otherwise), and a function that clears the bar.
func progressBar(w io.Writer, desc string) (func(done, total uint64), func()) {
	if !isTerminal(w) {
		return nil, func() {}
	}
	var bar *progressbar.ProgressBar
	var max uint64
	progress := func(done, total uint64) {
		if bar == nil {
			bar = progressbar.NewOptions64(int64(total),
				progressbar.OptionSetWriter(w),
				progressbar.OptionSetDescription(desc),
				progressbar.OptionShowCount(),
				progressbar.OptionSetPredictTime(true),
				progressbar.OptionThrottle(100*time.Millisecond),
				progressbar.OptionClearOnFinish(),
			)
			max = total
		}
		if total != max {
			bar.ChangeMax64(int64(total))
			max = total
		}
		_ = bar.Set64(int64(done))
	}
	return progress, func() {
		if bar != nil {
			_ = bar.Clear()
		}
	}
}
