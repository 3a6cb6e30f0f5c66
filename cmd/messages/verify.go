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

// runVerify compares a read model generation with the event log.
func runVerify(ctx context.Context, args []string, e env) error {
	c := roleCommand("verify")
	fs := flag.NewFlagSet("verify", flag.ContinueOnError)
	var src logSource
	src.register(fs)
	var sf storeFlags
	sf.register(fs, true)
	gen := fs.Int("generation", 0, "read model generation to verify; the active one when 0")
	maxDiffs := fs.Int("max-diffs", 100, "most differences printed; the rest are counted")
	asJSON := fs.Bool("json", false, "print the report as one JSON object")
	var caughtUp graceFlag
	fs.Var(&caughtUp, "caught-up", "fail with exit status 3 when an event has waited longer than this to be folded: --caught-up (10s) or --caught-up=DURATION")
	interval := fs.Duration("sample-interval", 2*time.Second, "least time between the two readings of each partition's checkpoint that tell whether it moves")
	if err := parse(fs, c, args, e); err != nil {
		return err
	}
	if *maxDiffs < 1 {
		return fmt.Errorf("--max-diffs %d: want at least 1", *maxDiffs)
	}
	if *interval <= 0 {
		return fmt.Errorf("--sample-interval %v: want more than 0", *interval)
	}
	events, closeLog, err := src.open(ctx, "verify")
	if err != nil {
		return err
	}
	defer closeLog()
	model, closeModel, err := openModel(ctx, sf, *gen, src.timeout)
	if err != nil {
		return err
	}
	defer closeModel()
	first, err := audit.SampleLag(ctx, events, model, nil)
	if err != nil {
		return fmt.Errorf("lag: %w", err)
	}

	progress, done := progressBar(e.stderr, "verifying")
	rep, err := audit.Verify(ctx, events, model, audit.Options{MaxDiffs: *maxDiffs, Progress: progress})
	done()
	if err != nil {
		return err
	}
	if first.Pending() > 0 {
		// Whether a partition behind moves needs time to tell.
		if err := backoff.Sleep(ctx, *interval-time.Since(first.At)); err != nil {
			return err
		}
	}
	lag, err := audit.SampleLag(ctx, events, model, &first)
	if err != nil {
		return fmt.Errorf("lag: %w", err)
	}
	var behind []audit.PartitionLag
	if caughtUp.set {
		behind = lag.Behind(caughtUp.grace)
	}
	if *asJSON {
		out := struct {
			Stream     string `json:"stream"`
			Database   string `json:"database"`
			Generation int    `json:"generation"`
			OK         bool   `json:"ok"`
			audit.Report
			Lag []audit.PartitionLag `json:"lag"`
			// CaughtUp is set with --caught-up only.
			CaughtUp *bool `json:"caughtUp,omitempty"`
		}{events.Config().Stream, sf.db, model.Generation(), rep.OK(), rep, lag.Partitions, nil}
		if caughtUp.set {
			ok := len(behind) == 0
			out.CaughtUp = &ok
		}
		if err := json.NewEncoder(e.stdout).Encode(out); err != nil {
			return err
		}
	} else {
		for _, d := range rep.Diffs {
			fmt.Fprintln(e.stdout, d)
		}
		if more := rep.DiffCount - len(rep.Diffs); more > 0 {
			fmt.Fprintf(e.stdout, "… and %s more\n", plural(more, "difference"))
		}
		fmt.Fprintln(e.stdout, verifySummary(model.Generation(), rep))
		for _, p := range lag.Partitions {
			if p.Pending > 0 {
				fmt.Fprintln(e.stdout, lagLine(p, lag.At.Sub(first.At)))
			}
		}
	}
	if !rep.OK() {
		return fmt.Errorf("read model drifted from the log: %w", rep.Err())
	}
	if len(behind) > 0 {
		var names []string
		for _, p := range behind {
			names = append(names, strconv.Itoa(p.Partition))
		}
		in := "partition "
		if len(names) > 1 {
			in = "partitions "
		}
		return fmt.Errorf("%w: %s not folded; in %s%s, events have waited over %v",
			errBehind, plural(int(lag.Pending()), "event"), in, strings.Join(names, ", "), caughtUp.grace)
	}
	return nil
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
