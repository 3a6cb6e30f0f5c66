// Package importer loads messages from another system into the event log. It
// reads JSON Lines, checks every line by the rules of the write API, and
// appends one message.created event per good line that keeps the message's
// original creation time. It records how far each file got, so that importing
// the same file again appends nothing new.
//
// Lines are appended in batches of fixed line ranges of the file, each an
// atomic batch under one deduplication id named by the file and the range.
// An interrupted import run again within the event store's duplicate window
// resends the ranges after its recorded point, and the store keeps each
// once; the store remembers one id per range, not one per message. Run again
// after the window, it stores those ranges again, for the read model, which
// keys messages by id, to fold once.
package importer

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"hash/fnv"
	"io"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/messages-io/messages/eventstore"
	"github.com/messages-io/messages/internal/backoff"
	"github.com/messages-io/messages/message"
)

// Log is where the importer appends events: the event store.
type Log interface {
	AppendBatch(ctx context.Context, msgID string, batch []eventstore.Append) (eventstore.AppendedBatch, error)
}

// Ledger remembers, per file, how many of its first lines are imported: every
// one of them appended, acknowledged, or found bad.
type Ledger interface {
	Imported(ctx context.Context, digest string) (int64, error)
	Record(ctx context.Context, digest string, lines int64) error
}

// Config holds the importer's options.
type Config struct {
	// Concurrency is how many batches wait for the event store at once:
	// 1-32. JetStream opens 50 on a stream, for every importer at once.
	// Default 8.
	Concurrency int
	// BatchLines is how many lines of the file one batch covers:
	// 1-eventstore.MaxBatch. Default 500. An import run again must keep it
	// for the event store to recognise the batches it already holds.
	BatchLines int
	// Now bounds createdAt from above. Default time.Now.
	Now func() time.Time
	// MaxReported is how many bad lines the summary lists; the rest are only
	// counted. Default 100.
	MaxReported int
	// RecordEvery is how often progress is written to the ledger while an
	// import runs. Default 1s.
	RecordEvery time.Duration
	// AppendTimeout bounds one attempt to append. Default 10s.
	AppendTimeout time.Duration
	// Retries is how often an append the event store did not acknowledge is
	// tried again before the import stops. Default 5.
	Retries int
}

func (c *Config) setDefaults() {
	if c.Concurrency == 0 {
		c.Concurrency = 8
	}
	if c.BatchLines == 0 {
		c.BatchLines = 500
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.MaxReported == 0 {
		c.MaxReported = 100
	}
	if c.RecordEvery == 0 {
		c.RecordEvery = time.Second
	}
	if c.AppendTimeout == 0 {
		c.AppendTimeout = 10 * time.Second
	}
	if c.Retries == 0 {
		c.Retries = 5
	}
}

// DefaultConfig holds the options a zero Config takes.
func DefaultConfig() Config {
	var c Config
	c.setDefaults()
	return c
}

// Validate reports the first option out of range.
func (c Config) Validate() error {
	switch {
	case c.Concurrency < 1 || c.Concurrency > MaxConcurrency:
		return fmt.Errorf("concurrency %d: want 1-%d", c.Concurrency, MaxConcurrency)
	case c.BatchLines < 1 || c.BatchLines > eventstore.MaxBatch:
		return fmt.Errorf("batch lines %d: want 1-%d", c.BatchLines, eventstore.MaxBatch)
	case c.MaxReported < 0:
		return fmt.Errorf("max reported %d: want 0 or more", c.MaxReported)
	case c.RecordEvery <= 0 || c.AppendTimeout <= 0 || c.Retries < 0:
		return errors.New("importer: durations and retries must be positive")
	}
	return nil
}

// MaxConcurrency bounds the batches one import keeps open on the stream, of
// the 50 that JetStream allows a stream at once.
const MaxConcurrency = 32

// Importer appends the messages of import files to the log.
type Importer struct {
	events Log
	ledger Ledger
	cfg    Config
}

// New returns an importer appending to events and keeping its progress in ledger.
func New(events Log, ledger Ledger, cfg Config) (*Importer, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Importer{events: events, ledger: ledger, cfg: cfg}, nil
}

// BadLine is a line that cannot be imported, and why.
type BadLine struct {
	Line   int64  `json:"line"`
	Reason string `json:"reason"`
}

func (b BadLine) String() string { return fmt.Sprintf("line %d: %s", b.Line, b.Reason) }

// Summary says what an import did.
type Summary struct {
	// Digest is the SHA-256 of the file, in hex: its key in the ledger.
	Digest string `json:"sha256"`
	// Lines is how many lines were read.
	Lines int64 `json:"lines"`
	// Appended is how many messages were appended to the log.
	Appended int64 `json:"appended"`
	// AlreadyImported is how many good lines an earlier import of the same
	// file had appended: recorded as done, or in a batch the log already
	// held.
	AlreadyImported int64 `json:"alreadyImported"`
	// Bad is how many lines cannot be imported; BadLines lists the first.
	Bad      int64     `json:"bad"`
	BadLines []BadLine `json:"badLines"`
	// Blank is how many lines held only white space; they are ignored.
	Blank int64 `json:"blank"`
	// Elapsed is how long the import took.
	Elapsed time.Duration `json:"-"`
}

// Digest returns the hex SHA-256 of what r holds, the key under which an
// import of it is recorded.
func Digest(r io.Reader) (string, error) {
	h := sha256.New()
	if _, err := io.Copy(h, r); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// kind is what became of one line.
type kind int

const (
	appended  kind = iota // stored in the log
	duplicate             // the log already held its event
	skipped               // an earlier import of the file had done it
	bad
	blankLine
	abandoned // not attempted: the import stopped first
)

type outcome struct {
	line   int64
	kind   kind
	reason string // of a bad line
	err    error  // that stops the import
}

// job is a batch: the good lines of one range of lines and their events.
type job struct {
	batch int64 // the range: lines batch*BatchLines+1 up to the next range
	// valid is a hash of the numbers of every line of the range that
	// parsed, those done before included: a range whose lines parse
	// otherwise in another run (a createdAt no longer in the future) is
	// another batch, so that JetStream never takes it for the one stored.
	valid hash.Hash64
	lines []int64
	apps  []eventstore.Append
}

// addLine adds line n to the hash h of a range's valid lines.
func addLine(h hash.Hash64, n int64) {
	h.Write(binary.LittleEndian.AppendUint64(nil, uint64(n)))
}

// Import appends the messages of the JSON Lines in r, whose content has the
// given digest, and returns what it did. Lines an earlier import of the same
// content recorded as done are checked but not appended again. Bad lines do
// not stop the import; they are counted and the first are listed. The error
// is set when the import could not finish: the log or the ledger failed, r
// could not be read, or ctx ended. Progress up to the first line not done is
// recorded even then, so that running the import again carries on.
func (im *Importer) Import(ctx context.Context, r io.Reader, digest string) (Summary, error) {
	start := time.Now()
	done, err := im.ledger.Imported(ctx, digest)
	if err != nil {
		return Summary{Digest: digest, BadLines: []BadLine{}}, fmt.Errorf("import ledger: %w", err)
	}
	readCtx, stopReading := context.WithCancel(ctx)
	defer stopReading()
	run := &importRun{im: im, digest: digest, stopReading: stopReading, mark: newWatermark(done), recorded: done,
		sum: Summary{Digest: digest, BadLines: []BadLine{}}}
	run.collect(ctx, run.pipeline(ctx, readCtx, r, done))
	run.sum.Elapsed = time.Since(start)
	switch {
	case run.err != nil:
		return run.sum, run.err
	case run.readErr != nil:
		return run.sum, run.readErr
	case ctx.Err() != nil:
		return run.sum, fmt.Errorf("import stopped after line %d: %w", run.mark.line(), ctx.Err())
	}
	return run.sum, nil
}

// importRun is one run of Import.
type importRun struct {
	im          *Importer
	digest      string
	stopReading func()
	sum         Summary
	// readErr is why reading stopped early; set once the outcomes are
	// closed.
	readErr error
	// mark is how far every line is done, and recorded how far the ledger
	// knows it.
	mark     *watermark
	recorded int64
	// err is the first error that stops the import; failed is set with it,
	// for the workers.
	err    error
	failed atomic.Bool
}

// pipeline starts reading r and appending its lines, after the first done,
// and returns the outcomes of the lines, closed once every line is done.
func (run *importRun) pipeline(ctx, readCtx context.Context, r io.Reader, done int64) <-chan outcome {
	im := run.im
	jobs := make(chan job, im.cfg.Concurrency)
	outcomes := make(chan outcome, 4*im.cfg.Concurrency)
	var wg sync.WaitGroup
	wg.Go(func() {
		defer close(jobs)
		run.sum.Lines, run.readErr = im.read(readCtx, r, run.digest, done, jobs, outcomes)
	})
	for range im.cfg.Concurrency {
		wg.Go(func() {
			for j := range jobs {
				kind, err := abandoned, error(nil)
				if !run.failed.Load() && ctx.Err() == nil {
					kind, err = im.append(ctx, run.digest, j)
				}
				for i, line := range j.lines {
					o := outcome{line: line, kind: kind}
					if i == 0 {
						o.err = err
					}
					outcomes <- o
				}
			}
		})
	}
	go func() {
		wg.Wait()
		close(outcomes)
	}()
	return outcomes
}

// collect counts the outcomes until they close, moving the mark and
// recording it in the ledger every RecordEvery and at the end.
func (run *importRun) collect(ctx context.Context, outcomes <-chan outcome) {
	tick := time.NewTicker(run.im.cfg.RecordEvery)
	defer tick.Stop()
	for {
		select {
		case o, ok := <-outcomes:
			if !ok {
				run.record(ctx)
				return
			}
			if o.err != nil {
				run.fail(o.err)
				continue
			}
			if run.count(o) {
				run.mark.done(o.line)
			}
		case <-tick.C:
			run.record(ctx)
		}
	}
}

// count adds one line's outcome to the summary and reports whether the line
// is done.
func (run *importRun) count(o outcome) bool {
	sum := &run.sum
	switch o.kind {
	case appended:
		sum.Appended++
	case duplicate, skipped:
		sum.AlreadyImported++
	case blankLine:
		sum.Blank++
	case bad:
		sum.Bad++
		if len(sum.BadLines) < run.im.cfg.MaxReported {
			sum.BadLines = append(sum.BadLines, BadLine{Line: o.line, Reason: o.reason})
		}
	case abandoned:
		return false
	}
	return true
}

// fail stops the import for err, the first error unless one came before.
func (run *importRun) fail(err error) {
	if run.err == nil {
		run.err = err
	}
	run.failed.Store(true)
	run.stopReading()
}

// record writes the mark to the ledger when it moved, unless the ledger
// failed before.
func (run *importRun) record(ctx context.Context) {
	mark := run.mark.line()
	if mark <= run.recorded || run.err != nil && errors.Is(run.err, errLedger) {
		return
	}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), run.im.cfg.AppendTimeout)
	defer cancel()
	if err := run.im.ledger.Record(rctx, run.digest, mark); err != nil {
		run.fail(fmt.Errorf("%w: %w", errLedger, err))
		return
	}
	run.recorded = mark
}

// watermark is the last line up to which every line is done, of lines done
// in any order: a line done after a gap waits until the gap closes.
type watermark struct {
	mark  int64
	ahead map[int64]struct{}
}

// newWatermark returns the watermark of a file whose first done lines are
// done.
func newWatermark(done int64) *watermark {
	return &watermark{mark: done, ahead: map[int64]struct{}{}}
}

// done records that line is done.
func (w *watermark) done(line int64) {
	switch {
	case line <= w.mark:
		return
	case line != w.mark+1:
		w.ahead[line] = struct{}{}
		return
	}
	w.mark++
	for {
		if _, ok := w.ahead[w.mark+1]; !ok {
			return
		}
		delete(w.ahead, w.mark+1)
		w.mark++
	}
}

// line returns the last line up to which every line is done.
func (w *watermark) line() int64 { return w.mark }

var errLedger = errors.New("import ledger")

// append appends one batch, retrying while the event store is unavailable,
// and says what became of its lines. Appends in flight finish even when ctx
// ends, so that what was sent is counted.
func (im *Importer) append(ctx context.Context, digest string, j job) (kind, error) {
	id := batchID(digest, im.cfg.BatchLines, j.batch, j.valid.Sum64())
	policy := backoff.Policy{Min: 100 * time.Millisecond, Max: 2 * time.Second, Attempts: im.cfg.Retries + 1}
	res, err := backoff.Retry(ctx, policy, func(ctx context.Context) (eventstore.AppendedBatch, error) {
		actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), im.cfg.AppendTimeout)
		defer cancel()
		res, err := im.events.AppendBatch(actx, id, j.apps)
		if err != nil && !errors.Is(err, eventstore.ErrUnavailable) {
			return res, backoff.Permanent(err)
		}
		return res, err
	}, nil)
	switch {
	case err != nil:
		return abandoned, fmt.Errorf("lines %d-%d: %w", j.lines[0], j.lines[len(j.lines)-1], err)
	case res.Duplicate:
		return duplicate, nil
	}
	return appended, nil
}

// batchID is the event store's deduplication id of one range of lines of the
// file with digest: "import:", the digest's first 24 hex digits, the lines a
// range covers, the range's number and the hash of its valid lines. It is
// never a dispatcher's id: those are ULIDs of 26 characters and
// Idempotency-Key digests of 37.
func batchID(digest string, lines int, batch int64, valid uint64) string {
	if len(digest) > 24 {
		digest = digest[:24]
	}
	return "import:" + digest + ":" + strconv.Itoa(lines) + ":" + strconv.FormatInt(batch, 10) + ":" + strconv.FormatUint(valid, 16)
}

// read parses r line by line: it sends the good lines after done to jobs, a
// batch per range of BatchLines lines, and the outcome of every other line to
// outcomes. It returns how many lines it read.
func (im *Importer) read(ctx context.Context, r io.Reader, digest string, done int64, jobs chan<- job, outcomes chan<- outcome) (int64, error) {
	br := bufio.NewReaderSize(r, MaxLineBytes)
	now := im.cfg.Now()
	short := digest
	if len(short) > 12 {
		short = short[:12]
	}
	per := int64(im.cfg.BatchLines)
	pending := job{valid: fnv.New64a()}
	// send passes the pending batch on, if it holds any line.
	send := func() bool {
		if len(pending.lines) == 0 {
			return true
		}
		select {
		case jobs <- pending:
			return true
		case <-ctx.Done():
			return false
		}
	}
	var n int64
	for {
		line, tooLong, err := readLine(br)
		if err != nil && err != io.EOF {
			return n, fmt.Errorf("read line %d: %w", n+1, err)
		}
		if err == io.EOF && len(line) == 0 && !tooLong {
			send()
			return n, nil
		}
		n++
		if r := (n - 1) / per; r != pending.batch {
			if !send() {
				return n - 1, nil
			}
			pending = job{batch: r, valid: fnv.New64a()}
		}
		o := outcome{line: n}
		app, ok := im.parse(line, tooLong, n, done, now, short, &o)
		if ok || o.kind == skipped {
			addLine(pending.valid, n)
		}
		if ok {
			pending.lines = append(pending.lines, n)
			pending.apps = append(pending.apps, app)
		} else {
			select {
			case outcomes <- o:
			case <-ctx.Done():
				return n - 1, nil
			}
		}
		if err == io.EOF {
			send()
			return n, nil
		}
	}
}

// parse returns the event of line n, or fills in o with what else became of
// the line.
func (im *Importer) parse(line []byte, tooLong bool, n, done int64, now time.Time, short string, o *outcome) (eventstore.Append, bool) {
	switch {
	case tooLong:
		o.kind, o.reason = bad, fmt.Sprintf("line is longer than %d bytes", MaxLineBytes)
		return eventstore.Append{}, false
	case blank(line):
		o.kind = blankLine
		return eventstore.Append{}, false
	}
	m, err := ParseLine(line, now)
	switch {
	case err != nil:
		o.kind, o.reason = bad, err.Error()
		return eventstore.Append{}, false
	case n <= done:
		o.kind = skipped
		return eventstore.Append{}, false
	}
	ev, err := message.CreatedEvent(m, "import:"+short+":"+strconv.FormatInt(n, 10))
	if err != nil {
		o.kind, o.reason = bad, err.Error()
		return eventstore.Append{}, false
	}
	return eventstore.Append{Event: ev, PartitionKey: m.Tag}, true
}

// readLine returns the next line without its line ending. A line longer than
// the reader's buffer is skipped through its end and reported as too long.
// The line is valid until the next read.
func readLine(br *bufio.Reader) (line []byte, tooLong bool, err error) {
	line, err = br.ReadSlice('\n')
	for err == bufio.ErrBufferFull {
		tooLong = true
		_, err = br.ReadSlice('\n')
	}
	if tooLong {
		return nil, true, err
	}
	line = bytes.TrimSuffix(line, []byte("\n"))
	line = bytes.TrimSuffix(line, []byte("\r"))
	return line, false, err
}
