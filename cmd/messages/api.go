package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/messages-io/messages/client"
)

// The commands that call the HTTP API with the Go client: post, list and
// count.

// apiFlags say where and as whom a command calls the API, and how it prints.
type apiFlags struct {
	url     string
	user    string
	token   string
	timeout time.Duration
	json    bool
}

func (f *apiFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.url, "url", "", "base URL of the API (default http://localhost:8080, or with --token the gateway at http://localhost:8000)")
	fs.StringVar(&f.user, "user", "", "user id sent as X-User-ID, to call the services directly (as `messages dev` allows)")
	fs.StringVar(&f.token, "token", "", "bearer token, to call the gateway (e.g. from `messages token --user alice`)")
	fs.DurationVar(&f.timeout, "timeout", 30*time.Second, "how long one request may take")
	fs.BoolVar(&f.json, "json", false, "print JSON Lines instead of a table")
}

// client returns a client of the API the flags name.
func (f *apiFlags) client() (*client.Client, error) {
	if f.user == "" && f.token == "" {
		return nil, errors.New("say who calls: --user ID for the services directly, or --token T for the gateway")
	}
	base := f.url
	if base == "" {
		base = "http://localhost:8080"
		if f.token != "" {
			base = "http://localhost:8000"
		}
	}
	opts := []client.Option{
		client.WithHTTPClient(&http.Client{Timeout: f.timeout}),
		client.WithUserAgent("messages-cli/1"),
	}
	if f.user != "" {
		opts = append(opts, client.WithUserID(f.user))
	}
	if f.token != "" {
		opts = append(opts, client.WithToken(f.token))
	}
	return client.New(base, opts...)
}

// boundFlag is a time bound: a day YYYY-MM-DD or an RFC 3339 instant.
type boundFlag struct{ b client.Bound }

func (f *boundFlag) String() string { return f.b.String() }

func (f *boundFlag) Set(s string) error {
	b, err := client.ParseBound(s)
	if err != nil {
		return err
	}
	f.b = b
	return nil
}

// printer writes messages as a table or as JSON Lines.
type printer struct {
	json bool
	out  io.Writer
	tw   *tabwriter.Writer
	rows int
	// stream prints each message at once, as a watch does.
	stream bool
}

func newPrinter(w io.Writer, asJSON bool) *printer {
	p := &printer{json: asJSON, out: w}
	if !asJSON {
		p.tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	}
	return p
}

// jsonMessage is a message as the API writes it: createdAt with
// milliseconds.
type jsonMessage struct {
	ID        string `json:"id"`
	UserID    string `json:"userId"`
	Text      string `json:"text"`
	Tag       string `json:"tag"`
	CreatedAt string `json:"createdAt"`
}

const createdLayout = "2006-01-02T15:04:05.000Z07:00"

// streamRow is the format of a row printed as it comes.
const streamRow = "%-26s  %-24s  %-12s  %-12s  %s\n"

func (p *printer) print(m client.Message) error {
	created := m.CreatedAt.UTC().Format(createdLayout)
	if p.json {
		b, err := json.Marshal(jsonMessage{m.ID, m.UserID, m.Text, m.Tag, created})
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(p.out, "%s\n", b)
		return err
	}
	if p.stream {
		// Rows come one at a time: columns of a fixed width.
		if p.rows == 0 {
			fmt.Fprintf(p.out, streamRow, "ID", "CREATED", "USER", "TAG", "TEXT")
		}
		p.rows++
		_, err := fmt.Fprintf(p.out, streamRow, m.ID, created, m.UserID, m.Tag, oneLine(m.Text))
		return err
	}
	if p.rows == 0 {
		fmt.Fprintln(p.tw, "ID\tCREATED\tUSER\tTAG\tTEXT")
	}
	p.rows++
	fmt.Fprintf(p.tw, "%s\t%s\t%s\t%s\t%s\n", m.ID, created, m.UserID, m.Tag, oneLine(m.Text))
	// A long listing comes out as it goes, each block aligned.
	if p.rows%100 == 0 {
		return p.tw.Flush()
	}
	return nil
}

func (p *printer) flush() error {
	if p.tw == nil {
		return nil
	}
	return p.tw.Flush()
}

// oneLine keeps a text on its table row: line breaks and tabs are shown
// escaped.
func oneLine(s string) string {
	return strings.NewReplacer("\\", `\\`, "\n", `\n`, "\r", `\r`, "\t", `\t`).Replace(s)
}

func runPost(ctx context.Context, args []string, e env) error {
	c := roleCommand("post")
	newFlags := func() (*flag.FlagSet, *apiFlags, *string, *string, *bool) {
		fs := flag.NewFlagSet("post", flag.ContinueOnError)
		var f apiFlags
		f.register(fs)
		tag := fs.String("tag", "", "the message's tag: 1-64 of A-Z a-z 0-9 _ - (one leading # allowed) (required)")
		key := fs.String("idempotency-key", "", "the post's Idempotency-Key; a post repeated with it within the duplicate window stores nothing new (default: one generated)")
		wait := fs.Bool("wait", true, "return once reads show the message (a read with its consistency token), so that a list or count after it shows it")
		return fs, &f, tag, key, wait
	}
	flagArgs, words := splitArgs(args, func() *flag.FlagSet { fs, _, _, _, _ := newFlags(); return fs })
	fs, f, tag, key, wait := newFlags()
	if err := parse(fs, c, flagArgs, e); err != nil {
		return err
	}
	if len(words) == 0 || *tag == "" {
		fmt.Fprintf(e.stderr, "messages post: want --tag and the text, e.g. messages post --user alice --tag go 'Hello'\n")
		return errUsage
	}
	cl, err := f.client()
	if err != nil {
		return fmt.Errorf("post: %w", err)
	}
	var token string
	opts := []client.CallOption{client.ConsistencyToken(&token)}
	if *key != "" {
		opts = append(opts, client.IdempotencyKey(*key))
	}
	m, err := cl.Post(ctx, client.NewMessage{Text: strings.Join(words, " "), Tag: *tag}, opts...)
	if err != nil {
		return fmt.Errorf("post: %w", err)
	}
	p := newPrinter(e.stdout, f.json)
	if err := p.print(m); err != nil {
		return err
	}
	if err := p.flush(); err != nil {
		return err
	}
	if *wait {
		if _, err := cl.Get(ctx, m.ID, client.ReadAfter(token)); err != nil {
			return fmt.Errorf("post: stored as %s, but reads do not show it yet: %w", m.ID, err)
		}
	}
	return nil
}

// filterFlags select messages for list and count.
type filterFlags struct {
	tag          string
	since, until boundFlag
}

func (f *filterFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.tag, "tag", "", "only messages under this tag, in any case")
	fs.Var(&f.since, "since", "only messages from this time on: a day YYYY-MM-DD from its start, or an RFC 3339 instant")
	fs.Var(&f.until, "until", "only messages up to this time: a day YYYY-MM-DD including that day, or an RFC 3339 instant, exclusive")
}

func (f *filterFlags) filter() client.Filter {
	return client.Filter{Tag: f.tag, Since: f.since.b, Until: f.until.b}
}

func runList(ctx context.Context, args []string, e env) error {
	c := roleCommand("list")
	fs := flag.NewFlagSet("list", flag.ContinueOnError)
	var f apiFlags
	f.register(fs)
	var ff filterFlags
	ff.register(fs)
	limit := fs.Int("limit", 0, "the most messages printed, newest first (default 100); with --all, how many each request asks for (default 1000)")
	all := fs.Bool("all", false, "print every matching message, following the pages to the end")
	if err := parse(fs, c, args, e); err != nil {
		return err
	}
	if *limit < 0 || *all && *limit > 1000 {
		return fmt.Errorf("list: --limit %d: want 1 or more, and at most 1000 with --all", *limit)
	}
	cl, err := f.client()
	if err != nil {
		return fmt.Errorf("list: %w", err)
	}
	filter := ff.filter()
	most := *limit
	switch {
	case *all:
		filter.PageSize = *limit
		if filter.PageSize == 0 {
			filter.PageSize = 1000
		}
		most = -1
	case most == 0:
		most = 100
		filter.PageSize = most
	default:
		filter.PageSize = min(most, 1000)
	}
	p := newPrinter(e.stdout, f.json)
	printed := 0
	for m, err := range cl.List(ctx, filter) {
		if err != nil {
			_ = p.flush()
			return fmt.Errorf("list: %w", err)
		}
		if err := p.print(m); err != nil {
			return err
		}
		if printed++; printed == most {
			break
		}
	}
	return p.flush()
}

func runCount(ctx context.Context, args []string, e env) error {
	c := roleCommand("count")
	fs := flag.NewFlagSet("count", flag.ContinueOnError)
	var f apiFlags
	f.register(fs)
	var ff filterFlags
	ff.register(fs)
	if err := parse(fs, c, args, e); err != nil {
		return err
	}
	cl, err := f.client()
	if err != nil {
		return fmt.Errorf("count: %w", err)
	}
	n, err := cl.Count(ctx, ff.filter())
	if err != nil {
		return fmt.Errorf("count: %w", err)
	}
	if f.json {
		_, err = fmt.Fprintf(e.stdout, "{\"count\":%d}\n", n)
	} else {
		_, err = fmt.Fprintln(e.stdout, n)
	}
	return err
}

func runWatch(ctx context.Context, args []string, e env) error {
	c := roleCommand("watch")
	fs := flag.NewFlagSet("watch", flag.ContinueOnError)
	var f apiFlags
	f.register(fs)
	tag := fs.String("tag", "", "only messages under this tag, in any case")
	after := fs.String("after", "", "start after this position (the id of an event received before) or a post's consistency token, instead of now")
	if err := parse(fs, c, args, e); err != nil {
		return err
	}
	cl, err := f.client()
	if err != nil {
		return fmt.Errorf("watch: %w", err)
	}
	var opts []client.CallOption
	if *after != "" {
		opts = append(opts, client.ResumeAfter(*after))
	}
	p := newPrinter(e.stdout, f.json)
	p.stream = true
	for ev, err := range cl.Subscribe(ctx, *tag, opts...) {
		if err != nil {
			return fmt.Errorf("watch: %w", err)
		}
		if err := p.print(ev.Message); err != nil {
			return err
		}
	}
	// Interrupted: the end of a watch.
	return nil
}
