package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/messages-io/messages/audit"
	"github.com/messages-io/messages/eventstore"
	"github.com/messages-io/messages/readmodel"
	"github.com/messages-io/messages/replay"
)

// replayUsage is the usage of `messages replay`, with examples.
const replayUsage = `messages replay [flags]

Rebuilds the read model from the event log into a new generation while the
active one keeps serving and updating, folds what live traffic adds
meanwhile, verifies the new generation against the log, and switches the
query API and the reducers to it in one write: no request sees a half-built
model and no process restarts. The replaced generation stays until dropped.

Examples:
  messages replay                               # rebuild everything, then switch
  messages replay --dry-run                     # build and verify, do not switch
  messages replay --from-seq 120000 --drop-old  # refold from a sequence on
  messages replay --since 2026-11-01T00:00:00Z --json`

// runReplay rebuilds the read model into a new generation.
func runReplay(ctx context.Context, args []string, e env) error {
	c := roleCommand("replay")
	fs := flag.NewFlagSet("replay", flag.ContinueOnError)
	var src logSource
	src.register(fs)
	var sf storeFlags
	sf.register(fs, true)
	fromSeq := fs.Uint64("from-seq", 0, "fold from this stream sequence; earlier messages are copied from the active generation")
	since := fs.String("since", "", "fold from the first event stored at or after this RFC 3339 time")
	dryRun := fs.Bool("dry-run", false, "build and verify the new generation without switching")
	dropOld := fs.Bool("drop-old", false, "drop the replaced generation after the switch")
	noVerify := fs.Bool("no-verify", false, "switch without comparing the new generation with the log")
	batch := fs.Int("batch-size", replay.DefaultBatchSize, "most events written at once per partition")
	asJSON := fs.Bool("json", false, "print the result as one JSON object")
	if err := parse(fs, c, args, e); err != nil {
		return err
	}
	if *fromSeq > 0 && *since != "" {
		return errors.New("--from-seq and --since: give one")
	}
	if *batch < 1 {
		return fmt.Errorf("--batch-size %d: want at least 1", *batch)
	}
	if *dryRun && *dropOld {
		return errors.New("--dry-run keeps the active generation; --drop-old would drop nothing")
	}
	events, closeLog, err := src.open(ctx, "replay")
	if err != nil {
		return err
	}
	defer closeLog()
	from := *fromSeq
	if *since != "" {
		t, err := time.Parse(time.RFC3339Nano, *since)
		if err != nil {
			return fmt.Errorf("--since %q: want an RFC 3339 time", *since)
		}
		if from, err = events.SequenceAt(ctx, t); err != nil {
			return err
		}
	}
	model, closeModel, err := openModel(ctx, sf, 0, src.timeout)
	if err != nil {
		return err
	}
	defer closeModel()
	gens, err := readmodel.OpenGenerations(ctx, model.Database())
	if err != nil {
		return err
	}
	opts := replay.Options{From: from, DryRun: *dryRun, DropOld: *dropOld, BatchSize: *batch, Progress: replayProgress(e.stderr)}
	if !*noVerify {
		opts.Verify = verifyGeneration(events, e.stderr)
	}
	log := slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	res, err := replay.Run(ctx, events, gens, log, opts)
	if err != nil {
		return err
	}
	if *asJSON {
		return json.NewEncoder(e.stdout).Encode(res)
	}
	printReplay(e.stdout, res, from)
	return nil
}

// verifyGeneration compares a generation with events before a switch: it
// prints the first differences on w, and fails on any.
func verifyGeneration(events *eventstore.Store, w io.Writer) func(context.Context, *readmodel.Store) error {
	return func(ctx context.Context, gen *readmodel.Store) error {
		rep, err := audit.Verify(ctx, events, gen, audit.Options{MaxDiffs: 20})
		if err != nil {
			return err
		}
		for _, d := range rep.Diffs {
			fmt.Fprintln(w, d)
		}
		return rep.Err()
	}
}

// printReplay says in one line what a replay from sequence from did.
func printReplay(w io.Writer, res replay.Result, from uint64) {
	verb := "switched to"
	if !res.Switched {
		verb = "built, not switched to,"
	}
	fmt.Fprintf(w, "%s generation %d (replacing %d): %s folded through sequence %d in %s (%.0f events/s)",
		verb, res.Generation, res.Replaced, plural(int(res.Events), "event"), res.Through,
		res.Elapsed.Round(time.Millisecond), res.EventsPerS)
	if res.CopiedFirst > 0 {
		fmt.Fprintf(w, ", %s copied from before sequence %d", plural(int(res.CopiedFirst), "message"), from)
	}
	if res.Parked > 0 {
		fmt.Fprintf(w, ", %s parked", plural(res.Parked, "event"))
	}
	if res.DroppedOld {
		fmt.Fprintf(w, "; generation %d dropped", res.Replaced)
	}
	fmt.Fprintln(w)
}

// replayProgress shows a replay's progress on a terminal: phase, events
// done, events/s and the time left.
func replayProgress(w io.Writer) func(replay.Progress) {
	if !isTerminal(w) {
		return nil
	}
	return func(p replay.Progress) {
		fmt.Fprintf(w, "\r\033[K%-9s %d/%d events  %.0f/s  ETA %s", p.Phase, p.Done, p.Total, p.PerSec, p.ETA.Round(time.Second))
		if p.Phase == "switch" || p.Phase == "verify" {
			fmt.Fprintln(w)
		}
	}
}
