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
	"text/tabwriter"
	"time"

	"github.com/messages-io/messages/event"
	"github.com/messages-io/messages/eventstore"
	"github.com/messages-io/messages/message"
	"github.com/messages-io/messages/readmodel"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// logSource names the event log a tool reads. A tool takes the layout of the
// log (partitions, subjects) from the stream itself and never changes it.
type logSource struct {
	natsURL string
	stream  string
	timeout time.Duration
}

func (l *logSource) register(fs *flag.FlagSet) {
	registerNATSURL(fs, &l.natsURL)
	registerStream(fs, &l.stream)
	fs.DurationVar(&l.timeout, "connect-timeout", 10*time.Second, "how long to wait for the servers to answer at start")
}

// open connects to NATS and returns the existing log, and a function that
// closes the connection.
func (l logSource) open(ctx context.Context, tool string) (*eventstore.Store, func(), error) {
	nc, js, err := dialJetStream(l.natsURL, tool, nats.Timeout(l.timeout))
	if err != nil {
		return nil, nil, err
	}
	octx, cancel := context.WithTimeout(ctx, l.timeout)
	defer cancel()
	store, err := eventstore.OpenExisting(octx, js, l.stream)
	if errors.Is(err, eventstore.ErrNoStream) {
		nc.Close()
		return nil, nil, fmt.Errorf("no stream %s at %s: nothing was appended yet, or --stream names another", l.stream, l.natsURL)
	}
	if err != nil {
		nc.Close()
		return nil, nil, err
	}
	return store, nc.Close, nil
}

// dialJetStream connects to the NATS servers at url, comma-separated, as
// `messages name`, with opts added, and returns the connection and its
// JetStream.
func dialJetStream(url, name string, opts ...nats.Option) (*nats.Conn, jetstream.JetStream, error) {
	nc, err := nats.Connect(url, append([]nats.Option{nats.Name("messages " + name)}, opts...)...)
	if err != nil {
		return nil, nil, fmt.Errorf("nats %s: %w", url, err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, nil, fmt.Errorf("jetstream: %w", err)
	}
	return nc, js, nil
}

// eventsCommands are the subcommands of `messages events`.
func eventsCommands() []command {
	return []command{
		{"tail", "follow the event log live, optionally filtered", `messages events tail [--tag T] [--user U] [--type T] [--from-seq N | --last N] [--json]

Prints one line per event: sequence, time, partition, type, user, tag, text.
Without --from-seq or --last it starts with the next event appended. It runs
until interrupted.

Examples:
  messages events tail                          # new events as they come
  messages events tail --tag go --last 20       # the last 20 events of the log, those tagged go
  messages events tail --user alice --from-seq 1 --json`, runEventsTail},
		{"get", "print one event, by stream sequence or message id", `messages events get [flags] SEQ|MESSAGE_ID

A message id is looked up in the read model for the sequence of its event;
when the read model does not know it, the log is scanned.

Examples:
  messages events get 1234
  messages events get 01JDQ8X2Z6MZQ1F6R7SS2VQ4ZB --json`, runEventsGet},
		{"stats", "events per partition, first and last sequence, each consumer's lag", `messages events stats [--json]

Examples:
  messages events stats
  messages events stats --nats-url nats://n1:4222 --json | jq '.consumers[] | {name, lag}'`, runEventsStats},
	}
}

func eventsGroup() group {
	return group{
		name:  "events",
		intro: "Inspect the event log.",
		examples: `  messages events tail --tag go
  messages events get 1234
  messages events stats --json`,
		commands: eventsCommands(),
	}
}

// runEvents runs one of the subcommands that inspect the event log.
func runEvents(ctx context.Context, args []string, e env) error {
	return eventsGroup().run(ctx, args, e)
}

func eventsCommand(name string) command { return eventsGroup().command(name) }

func runEventsTail(ctx context.Context, args []string, e env) error {
	c := eventsCommand("tail")
	fs := flag.NewFlagSet(c.name, flag.ContinueOnError)
	var src logSource
	src.register(fs)
	tag := fs.String("tag", "", "only events of this tag (case-insensitive, a leading # allowed)")
	user := fs.String("user", "", "only events of this user id")
	eventType := fs.String("type", "", "only events of this type, such as "+message.EventCreated)
	fromSeq := fs.Uint64("from-seq", 0, "start at this stream sequence")
	last := fs.Uint64("last", 0, "start this many events back from the end of the log (counted before filtering)")
	asJSON := fs.Bool("json", false, "print each event as one JSON object, with its sequence")
	if err := parse(fs, c, args, e); err != nil {
		return err
	}
	if *fromSeq > 0 && *last > 0 {
		fmt.Fprintln(e.stderr, "messages events tail: --from-seq and --last exclude each other")
		return errUsage
	}
	if *tag != "" {
		t, err := message.NormalizeTag(*tag)
		if err != nil {
			return fmt.Errorf("--tag %q: %v", *tag, err)
		}
		*tag = t
	}
	store, closeLog, err := src.open(ctx, "events tail")
	if err != nil {
		return err
	}
	defer closeLog()
	partition := -1
	if *tag != "" {
		partition = store.Partition(*tag)
	}
	from := *fromSeq
	if *last > 0 {
		end, err := store.LastSequence(ctx)
		if err != nil {
			return err
		}
		if end > 0 {
			from = 1
			if end > *last {
				from = end - *last + 1
			}
		}
	}
	enc := json.NewEncoder(e.stdout)
	err = store.Follow(ctx, from, store.EventFilter(partition, *eventType), func(rec eventstore.Record) error {
		m, ok := messageOf(rec)
		switch {
		case *tag != "" && (!ok || m.Tag != *tag),
			*user != "" && rec.UserID != *user,
			*eventType != "" && rec.Type != *eventType:
			return nil
		case *asJSON:
			return enc.Encode(eventJSONOf(rec))
		}
		_, err := fmt.Fprintln(e.stdout, eventLine(rec))
		return err
	})
	if ctx.Err() != nil {
		return nil // interrupted: the normal end of a tail
	}
	return err
}

func runEventsGet(ctx context.Context, args []string, e env) error {
	c := eventsCommand("get")
	newFlags := func() (*flag.FlagSet, *logSource, *storeFlags, *int, *bool) {
		fs := flag.NewFlagSet(c.name, flag.ContinueOnError)
		var src logSource
		src.register(fs)
		var sf storeFlags
		sf.register(fs, true)
		gen := fs.Int("generation", 0, "read model generation to look a message id up in; the active one when 0")
		asJSON := fs.Bool("json", false, "print the event as one JSON object, with its sequence")
		return fs, &src, &sf, gen, asJSON
	}
	flagArgs, pos := splitArgs(args, func() *flag.FlagSet { fs, _, _, _, _ := newFlags(); return fs })
	fs, src, sf, gen, asJSON := newFlags()
	if err := parse(fs, c, flagArgs, e); err != nil {
		return err
	}
	if len(pos) != 1 {
		fmt.Fprintf(e.stderr, "messages events get: want one SEQ or MESSAGE_ID, got %d\n", len(pos))
		return errUsage
	}
	seq, err := strconv.ParseUint(pos[0], 10, 64)
	id := strings.ToUpper(pos[0])
	switch {
	case err == nil && seq > 0:
		id = ""
	case message.ValidID(id):
		seq = 0
	default:
		fmt.Fprintf(e.stderr, "messages events get: %q is neither a stream sequence nor a message id\n", pos[0])
		return errUsage
	}
	store, closeLog, err := src.open(ctx, "events get")
	if err != nil {
		return err
	}
	defer closeLog()

	var rec eventstore.Record
	if id == "" {
		rec, err = store.Get(ctx, seq)
		if errors.Is(err, eventstore.ErrNotFound) {
			return fmt.Errorf("no event at sequence %d", seq)
		}
		if err != nil && rec.Sequence == 0 {
			return err
		}
	} else {
		rec, err = findMessageEvent(ctx, store, *sf, *gen, src.timeout, id, e)
		if err != nil {
			return err
		}
	}
	if *asJSON {
		return json.NewEncoder(e.stdout).Encode(eventJSONOf(rec))
	}
	return printEvent(e.stdout, rec)
}

// findMessageEvent returns the first event of the message with id: at the
// sequence the read model gives, or else found by scanning the log.
func findMessageEvent(ctx context.Context, store *eventstore.Store, sf storeFlags, gen int, timeout time.Duration, id string, e env) (eventstore.Record, error) {
	seq, err := sequenceInModel(ctx, sf, gen, timeout, id)
	if err != nil && !errors.Is(err, readmodel.ErrNotFound) {
		fmt.Fprintf(e.stderr, "messages events get: read model: %v; scanning the log\n", err)
	}
	progress, done := progressBar(e.stderr, "scanning the log")
	defer done()
	rec, err := store.FindMessage(ctx, id, seq, progress)
	if errors.Is(err, eventstore.ErrNotFound) {
		return rec, fmt.Errorf("no event of message %s in the log", id)
	}
	return rec, err
}

// sequenceInModel asks the read model for the sequence of the event that
// stored the message with id.
func sequenceInModel(ctx context.Context, sf storeFlags, gen int, timeout time.Duration, id string) (uint64, error) {
	model, closeModel, err := openModel(ctx, sf, gen, timeout)
	if err != nil {
		return 0, err
	}
	defer closeModel()
	return model.SequenceOf(ctx, id)
}

func runEventsStats(ctx context.Context, args []string, e env) error {
	c := eventsCommand("stats")
	fs := flag.NewFlagSet(c.name, flag.ContinueOnError)
	var src logSource
	src.register(fs)
	asJSON := fs.Bool("json", false, "print the statistics as one JSON object")
	if err := parse(fs, c, args, e); err != nil {
		return err
	}
	store, closeLog, err := src.open(ctx, "events stats")
	if err != nil {
		return err
	}
	defer closeLog()
	st, err := store.Stats(ctx)
	if err != nil {
		return err
	}
	if *asJSON {
		return json.NewEncoder(e.stdout).Encode(st)
	}
	fmt.Fprintf(e.stdout, "stream %s: %d events, %d bytes", st.Stream, st.Events, st.Bytes)
	if st.Events > 0 {
		fmt.Fprintf(e.stdout, ", sequences %d-%d", st.First, st.Last)
	}
	fmt.Fprint(e.stdout, "\n\n")
	tw := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "PARTITION\tEVENTS\tFIRST\tLAST")
	for _, p := range st.Partitions {
		fmt.Fprintf(tw, "%d\t%d\t%s\t%s\n", p.Partition, p.Events, seqOrDash(p.First), seqOrDash(p.Last))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(e.stdout)
	if len(st.Consumers) == 0 {
		_, err := fmt.Fprintln(e.stdout, "no durable consumers")
		return err
	}
	fmt.Fprintln(tw, "CONSUMER\tPARTITION\tPENDING\tACK PENDING\tACK FLOOR\tDELIVERED\tREDELIVERED\tLAG")
	for _, c := range st.Consumers {
		p := "-"
		if c.Partition >= 0 {
			p = strconv.Itoa(c.Partition)
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\t%d\t%d\n", c.Name, p, c.Pending, c.AckPending, c.AckFloor, c.Delivered, c.Redelivered, c.Lag)
	}
	return tw.Flush()
}

func seqOrDash(seq uint64) string {
	if seq == 0 {
		return "-"
	}
	return strconv.FormatUint(seq, 10)
}

// messageOf returns the message an event creates, if it is a readable
// message.created event.
func messageOf(rec eventstore.Record) (message.Message, bool) {
	if rec.Err != nil || rec.Type != message.EventCreated {
		return message.Message{}, false
	}
	m, err := message.FromCreated(rec.Event)
	return m, err == nil
}

// eventLine is an event in one line: sequence, time, partition, type, user,
// tag, text.
func eventLine(rec eventstore.Record) string {
	if rec.Err != nil {
		return fmt.Sprintf("%d %s p%d malformed: %v", rec.Sequence, rec.StoredAt.UTC().Format(message.TimeFormat), rec.Partition, rec.Err)
	}
	tag, text := "-", "-"
	if m, ok := messageOf(rec); ok {
		tag, text = m.Tag, strconv.Quote(m.Text)
	} else if rec.Type == message.EventCreated {
		_, err := message.FromCreated(rec.Event)
		text = fmt.Sprintf("(unreadable: %v)", err)
	}
	return fmt.Sprintf("%d %s p%d %s %s %s %s", rec.Sequence, rec.OccurredAt.UTC().Format(message.TimeFormat),
		rec.Partition, rec.Type, orDash(rec.UserID), tag, text)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// eventJSON is an event as tools print it: the event as stored, with its
// place in the log.
type eventJSON struct {
	Sequence  uint64    `json:"sequence"`
	Partition int       `json:"partition"`
	Subject   string    `json:"subject"`
	StoredAt  time.Time `json:"storedAt"`
	*event.Event
	// Error and Raw are set for an entry that is not a well-formed event.
	Error string `json:"error,omitempty"`
	Raw   string `json:"raw,omitempty"`
}

func eventJSONOf(rec eventstore.Record) eventJSON {
	out := eventJSON{Sequence: rec.Sequence, Partition: rec.Partition, Subject: rec.Subject, StoredAt: rec.StoredAt.UTC()}
	if rec.Err != nil {
		out.Error, out.Raw = rec.Err.Error(), string(rec.Raw)
	} else {
		out.Event = &rec.Event
	}
	return out
}

// printEvent writes one event for a person to read.
func printEvent(w io.Writer, rec eventstore.Record) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	row := func(k, v string) { fmt.Fprintf(tw, "%s\t%s\n", k, v) }
	row("sequence", strconv.FormatUint(rec.Sequence, 10))
	row("partition", strconv.Itoa(rec.Partition))
	row("subject", rec.Subject)
	row("stored", rec.StoredAt.UTC().Format(message.TimeFormat))
	if rec.Err != nil {
		row("error", rec.Err.Error())
		row("raw", string(rec.Raw))
		return tw.Flush()
	}
	row("id", rec.ID)
	row("type", fmt.Sprintf("%s (version %d)", rec.Type, rec.Version))
	row("occurred", rec.OccurredAt.UTC().Format(message.TimeFormat))
	row("user", rec.UserID)
	row("correlation", orDash(rec.CorrelationID))
	row("data", string(rec.Data))
	if m, ok := messageOf(rec); ok {
		row("tag", m.Tag)
		row("text", strconv.Quote(m.Text))
	}
	return tw.Flush()
}
