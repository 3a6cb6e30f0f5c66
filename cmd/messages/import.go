package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/messages-io/messages/eventstore"
	"github.com/messages-io/messages/importer"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"
)

// importFlags configure `messages import`.
type importFlags struct {
	log         logFlags
	stream      streamFlags
	concurrency int
	json        bool
	quiet       bool
	timeout     time.Duration
}

func (f *importFlags) register(fs *flag.FlagSet) {
	f.log.register(fs)
	f.stream.register(fs, true)
	fs.IntVar(&f.concurrency, "concurrency", importer.DefaultConfig().Concurrency, "batches of lines waiting for the event store at once")
	fs.BoolVar(&f.json, "json", false, "print the summary as one JSON object")
	fs.BoolVar(&f.quiet, "quiet", false, "print no progress bar and no summary; bad lines and errors still go to standard error")
	fs.DurationVar(&f.timeout, "connect-timeout", 10*time.Second, "how long to wait for NATS and the stream")
}

// maxPrintedBadLines is how many bad lines an import prints; the rest are
// counted.
const maxPrintedBadLines = 100

// runImport appends the messages of a JSON Lines file (or standard input) to
// the event log.
func runImport(ctx context.Context, args []string, e env) error {
	f, file, log, err := parseImport(args, e)
	if err != nil {
		return err
	}
	src, size, digest, cleanup, err := openImport(file)
	if err != nil {
		return err
	}
	defer cleanup()
	// While disconnected, a batch fails at once, and is sent again whole,
	// instead of waiting in a client buffer to be sent after it was given up.
	nc, js, err := dialJetStream(f.stream.natsURL, "import", nats.Timeout(f.timeout), nats.ReconnectBufSize(-1))
	if err != nil {
		return err
	}
	defer nc.Close()
	im, stream, err := f.importer(ctx, js, e)
	if err != nil {
		return err
	}
	in, finish := importProgress(src, size, !f.quiet && isTerminal(e.stderr), e.stderr)
	log.Debug("importing", "file", file, "sha256", digest, "stream", stream)
	sum, err := im.Import(ctx, in, digest)
	finish()
	return f.report(e, file, sum, err)
}

// parseImport reads the flags of `messages import` and its one FILE, and
// returns them with the logger the flags ask for.
func parseImport(args []string, e env) (*importFlags, string, *slog.Logger, error) {
	newFlags := func() (*flag.FlagSet, *importFlags) {
		fs := flag.NewFlagSet("import", flag.ContinueOnError)
		var f importFlags
		f.register(fs)
		return fs, &f
	}
	flagArgs, files := splitArgs(args, func() *flag.FlagSet { fs, _ := newFlags(); return fs })
	fs, f := newFlags()
	if err := parse(fs, roleCommand("import"), flagArgs, e); err != nil {
		return nil, "", nil, err
	}
	if len(files) != 1 {
		fmt.Fprintf(e.stderr, "messages import: want one FILE (or - for standard input), got %d\n", len(files))
		return nil, "", nil, errUsage
	}
	log, err := f.log.logger(e.stderr)
	if err != nil {
		return nil, "", nil, err
	}
	if f.concurrency < 1 || f.concurrency > importer.MaxConcurrency {
		return nil, "", nil, fmt.Errorf("--concurrency %d: want 1-%d", f.concurrency, importer.MaxConcurrency)
	}
	return f, files[0], log, nil
}

// importer opens the event log and the import ledger beside it, and returns
// an importer appending to them and the name of the log's stream.
func (f *importFlags) importer(ctx context.Context, js jetstream.JetStream, e env) (*importer.Importer, string, error) {
	octx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	store, err := eventstore.Open(octx, js, f.stream.cfg)
	if err != nil {
		return nil, "", err
	}
	cfg := store.Config()
	ledger, err := importer.OpenLedger(octx, js, cfg.Stream+"_IMPORTS", cfg.Replicas)
	if err != nil {
		return nil, "", fmt.Errorf("import ledger: %w", err)
	}
	im, err := importer.New(store, ledger, importer.Config{Concurrency: f.concurrency, Now: e.now, MaxReported: maxPrintedBadLines})
	return im, cfg.Stream, err
}

// importProgress returns src, read through a progress bar of size bytes on
// w when show, and a function that finishes the bar.
func importProgress(src io.Reader, size int64, show bool, w io.Writer) (io.Reader, func()) {
	if !show {
		return src, func() {}
	}
	bar := progressbar.NewOptions64(size,
		progressbar.OptionSetWriter(w),
		progressbar.OptionSetDescription("importing"),
		progressbar.OptionShowBytes(true),
		progressbar.OptionSetPredictTime(true),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionClearOnFinish(),
	)
	return io.TeeReader(src, bar), func() { _ = bar.Finish() }
}

// report prints what an import of file did, sum, and why it stopped, err,
// and returns the command's error.
func (f *importFlags) report(e env, file string, sum importer.Summary, err error) error {
	for _, b := range sum.BadLines {
		fmt.Fprintln(e.stderr, b)
	}
	if more := sum.Bad - int64(len(sum.BadLines)); more > 0 {
		fmt.Fprintf(e.stderr, "… and %d more bad lines\n", more)
	}
	switch {
	case f.json:
		out := struct {
			File string `json:"file"`
			importer.Summary
			Seconds float64 `json:"seconds"`
			Error   string  `json:"error,omitempty"`
		}{File: file, Summary: sum, Seconds: sum.Elapsed.Seconds()}
		if err != nil {
			out.Error = err.Error()
		}
		if jerr := json.NewEncoder(e.stdout).Encode(out); jerr != nil {
			return jerr
		}
	case !f.quiet:
		fmt.Fprintln(e.stdout, summaryLine(file, sum))
	}
	if err != nil {
		return err
	}
	if sum.Bad > 0 {
		return fmt.Errorf("import %s: %d bad lines", file, sum.Bad)
	}
	return nil
}

// summaryLine says what an import did in one line.
func summaryLine(file string, s importer.Summary) string {
	rate := 0.0
	if s.Elapsed > 0 {
		rate = float64(s.Lines) / s.Elapsed.Seconds()
	}
	line := fmt.Sprintf("imported %s: %d lines: %d appended, %d already imported, %d bad",
		file, s.Lines, s.Appended, s.AlreadyImported, s.Bad)
	if s.Blank > 0 {
		line += fmt.Sprintf(", %d blank", s.Blank)
	}
	return line + fmt.Sprintf(" in %s (%.0f lines/s)", s.Elapsed.Round(time.Millisecond), rate)
}

// openImport opens the file to import, or for "-" copies standard input to a
// temporary file, and returns it with its size and digest: an import reads
// its input twice, once for the digest that identifies it and once to append
// it, so that a re-run of the same content is recognised from its first
// line.
func openImport(name string) (src *os.File, size int64, digest string, cleanup func(), err error) {
	src, size, cleanup, err = openInput(name)
	if err != nil {
		return nil, 0, "", nil, err
	}
	digest, err = importer.Digest(src)
	if err == nil {
		_, err = src.Seek(0, io.SeekStart)
	}
	if err != nil {
		cleanup()
		return nil, 0, "", nil, fmt.Errorf("read %s: %w", name, err)
	}
	return src, size, digest, cleanup, nil
}

// openInput opens the named file, or for "-" a copy of standard input.
func openInput(name string) (src *os.File, size int64, cleanup func(), err error) {
	if name != "-" {
		f, err := os.Open(name)
		if err != nil {
			return nil, 0, nil, err
		}
		st, err := f.Stat()
		if err != nil {
			f.Close()
			return nil, 0, nil, err
		}
		if st.IsDir() {
			f.Close()
			return nil, 0, nil, fmt.Errorf("%s is a directory", name)
		}
		return f, st.Size(), func() { f.Close() }, nil
	}
	tmp, err := os.CreateTemp("", "messages-import-*.jsonl")
	if err != nil {
		return nil, 0, nil, fmt.Errorf("spool standard input: %w", err)
	}
	cleanup = func() {
		tmp.Close()
		os.Remove(tmp.Name())
	}
	size, err = io.Copy(tmp, os.Stdin)
	if err == nil {
		_, err = tmp.Seek(0, io.SeekStart)
	}
	if err != nil {
		cleanup()
		return nil, 0, nil, fmt.Errorf("read standard input: %w", err)
	}
	return tmp, size, cleanup, nil
}

// splitArgs separates flags from positional arguments, which may come before,
// between or after the flags.
func splitArgs(args []string, newFS func() *flag.FlagSet) (flags, positional []string) {
	rest := args
	for len(rest) > 0 {
		fs := newFS()
		fs.SetOutput(io.Discard)
		if err := fs.Parse(rest); err != nil {
			// parse reports it with the usage.
			return append(flags, rest...), positional
		}
		n := len(rest) - len(fs.Args())
		for _, a := range rest[:n] {
			if a != "--" {
				flags = append(flags, a)
			}
		}
		if n > 0 && rest[n-1] == "--" {
			return flags, append(positional, fs.Args()...)
		}
		if len(fs.Args()) == 0 {
			break
		}
		positional = append(positional, fs.Args()[0])
		rest = fs.Args()[1:]
	}
	return flags, positional
}

// isTerminal reports whether w is a terminal, where a progress bar belongs.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}
