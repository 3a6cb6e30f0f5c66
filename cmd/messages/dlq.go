package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"strconv"
	"time"

	"github.com/messages-io/messages/eventstore"
)

// dlqCommands are the subcommands of `messages dlq`.
func dlqCommands() []command {
	return []command{
		{"list", "list the parked events", `messages dlq list [--json]

Examples:
  messages dlq list
  messages dlq list --json | jq '.[].originalSequence'`, runDLQList},
		{"show", "print one parked event with why it was parked", `messages dlq show [--json] SEQ

SEQ is the dead letter's sequence, as listed.

Examples:
  messages dlq show 3`, runDLQShow},
		{"retry", "append parked events to the log again, to be folded, and remove them", `messages dlq retry SEQ|--all

Retry once the event can be folded (for instance after an upgrade that reads
its version); an event that still cannot be folded is parked again.

Examples:
  messages dlq retry 3
  messages dlq retry --all`, runDLQRetry},
		{"discard", "remove parked events; they stay in the log, unfolded", `messages dlq discard SEQ|--all

Examples:
  messages dlq discard 3`, runDLQDiscard},
	}
}

func runDLQ(ctx context.Context, args []string, e env) error {
	return group{
		name:     "dlq",
		intro:    "Manage the events parked in the dead-letter stream because they could not be folded.",
		commands: dlqCommands(),
	}.run(ctx, args, e)
}

// dlqTool parses a dlq subcommand's flags, defined by define, and its
// positional arguments, and opens the log.
func dlqTool(ctx context.Context, name string, args []string, e env, define func(*flag.FlagSet)) (*eventstore.Store, []string, func(), error) {
	c := group{name: "dlq", commands: dlqCommands()}.command(name)
	var src logSource
	newFS := func() *flag.FlagSet {
		fs := flag.NewFlagSet(c.name, flag.ContinueOnError)
		src.register(fs)
		if define != nil {
			define(fs)
		}
		return fs
	}
	flagArgs, pos := splitArgs(args, newFS)
	if err := parse(newFS(), c, flagArgs, e); err != nil {
		return nil, nil, nil, err
	}
	store, closeLog, err := src.open(ctx, c.name)
	if err != nil {
		return nil, nil, nil, err
	}
	return store, pos, closeLog, nil
}

func runDLQList(ctx context.Context, args []string, e env) error {
	var asJSON *bool
	store, pos, done, err := dlqTool(ctx, "list", args, e, func(fs *flag.FlagSet) {
		asJSON = fs.Bool("json", false, "print the dead letters as a JSON array")
	})
	if err != nil {
		return err
	}
	defer done()
	if len(pos) > 0 {
		return fmt.Errorf("dlq list: unexpected argument %q", pos[0])
	}
	dls, err := store.DeadLetters(ctx)
	if err != nil {
		return err
	}
	if *asJSON {
		if dls == nil {
			dls = []eventstore.DeadLetter{}
		}
		return json.NewEncoder(e.stdout).Encode(dls)
	}
	for _, dl := range dls {
		fmt.Fprintf(e.stdout, "%d  event %d  partition %d  parked %s  %s: %s\n", dl.Sequence, dl.OriginalSequence,
			dl.Partition, dl.ParkedAt.UTC().Format(time.RFC3339), dl.Reason, dl.Error)
	}
	fmt.Fprintln(e.stdout, plural(len(dls), "parked event"))
	return nil
}

func runDLQShow(ctx context.Context, args []string, e env) error {
	var asJSON *bool
	store, pos, done, err := dlqTool(ctx, "show", args, e, func(fs *flag.FlagSet) {
		asJSON = fs.Bool("json", false, "print the dead letter as JSON")
	})
	if err != nil {
		return err
	}
	defer done()
	seq, err := oneSequence(pos)
	if err != nil {
		return err
	}
	dl, err := store.DeadLetter(ctx, seq)
	if errors.Is(err, eventstore.ErrNotFound) {
		return fmt.Errorf("no dead letter %d", seq)
	}
	if err != nil {
		return err
	}
	if *asJSON {
		return json.NewEncoder(e.stdout).Encode(dl)
	}
	fmt.Fprintf(e.stdout, "dead letter %d\n  event     %d on %s (partition %d)\n  parked    %s\n  reason    %s\n  error     %s\n  event     %s\n",
		dl.Sequence, dl.OriginalSequence, dl.Subject, dl.Partition, dl.ParkedAt.UTC().Format(time.RFC3339), dl.Reason, dl.Error, dl.Raw)
	return nil
}

// oneSequence reads the single SEQ argument.
func oneSequence(pos []string) (uint64, error) {
	if len(pos) != 1 {
		return 0, errors.New("give one dead letter sequence, as listed by 'messages dlq list'")
	}
	seq, err := strconv.ParseUint(pos[0], 10, 64)
	if err != nil || seq == 0 {
		return 0, fmt.Errorf("%q is not a dead letter sequence", pos[0])
	}
	return seq, nil
}

// targets returns the dead letters a retry or discard acts on: SEQ or --all.
func targets(ctx context.Context, store *eventstore.Store, pos []string, all bool) ([]uint64, error) {
	if all {
		if len(pos) > 0 {
			return nil, errors.New("give a sequence or --all, not both")
		}
		dls, err := store.DeadLetters(ctx)
		if err != nil {
			return nil, err
		}
		seqs := make([]uint64, len(dls))
		for i, dl := range dls {
			seqs[i] = dl.Sequence
		}
		return seqs, nil
	}
	seq, err := oneSequence(pos)
	if err != nil {
		return nil, err
	}
	return []uint64{seq}, nil
}

func runDLQRetry(ctx context.Context, args []string, e env) error {
	return eachDeadLetter(ctx, "retry", args, e, func(store *eventstore.Store, seq uint64) (string, error) {
		at, err := store.Retry(ctx, seq)
		return fmt.Sprintf("dead letter %d appended again as event %d", seq, at), err
	})
}

func runDLQDiscard(ctx context.Context, args []string, e env) error {
	return eachDeadLetter(ctx, "discard", args, e, func(store *eventstore.Store, seq uint64) (string, error) {
		return fmt.Sprintf("dead letter %d discarded", seq), store.Discard(ctx, seq)
	})
}

// eachDeadLetter runs a subcommand that acts on SEQ or --all: act, then
// print what it did.
func eachDeadLetter(ctx context.Context, name string, args []string, e env, act func(*eventstore.Store, uint64) (string, error)) error {
	var all *bool
	store, pos, done, err := dlqTool(ctx, name, args, e, func(fs *flag.FlagSet) {
		all = fs.Bool("all", false, "every parked event")
	})
	if err != nil {
		return err
	}
	defer done()
	seqs, err := targets(ctx, store, pos, *all)
	if err != nil {
		return err
	}
	for _, seq := range seqs {
		did, err := act(store, seq)
		if errors.Is(err, eventstore.ErrNotFound) {
			return fmt.Errorf("no dead letter %d", seq)
		}
		if err != nil {
			return err
		}
		fmt.Fprintln(e.stdout, did)
	}
	return nil
}
