// Command bench measures the messages service end to end on this machine and
// writes BENCH.md with a chart: POST throughput and latency, the lag from a
// POST to its visibility in a count, reducer fold throughput beside raw
// insertMany, count latency beside a plain countDocuments at growing sizes
// of imported history, the latency of every query shape of GET /v1/messages
// beside a plain find or count at those sizes, each answer checked against
// the imported history, and the peak resident memory of each role. Every
// figure is the median of repeated runs. `make bench` builds the binary and
// runs it.
package main

import (
	"cmp"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/messages-io/messages/message"
	"github.com/messages-io/messages/reducers"
	"github.com/oklog/ulid/v2"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// config is what a benchmark run measures and where it writes.
type config struct {
	bin         string
	out         string
	chart       string
	goBench     string
	sizes       []int
	runs        int
	postFor     time.Duration
	lagFor      time.Duration
	lagRate     int
	foldTimeout time.Duration
	skip        map[string]bool
	devFlags    []string
	commit      string
	notes       string
}

func main() {
	log.SetFlags(log.Ltime)
	var cfg config
	var sizes, skip string
	flag.StringVar(&cfg.bin, "bin", "bin/messages", "the messages binary")
	flag.StringVar(&cfg.out, "out", "BENCH.md", "report to write")
	flag.StringVar(&cfg.chart, "chart", "bench.png", "chart to write, beside the report")
	flag.StringVar(&cfg.goBench, "gobench", "", "output of go test -bench to include in the report")
	flag.StringVar(&cfg.notes, "notes", "cmd/bench/notes.md", "hand-written analysis to include in the report")
	flag.StringVar(&sizes, "sizes", envOr("BENCH_SIZES", "10000,100000,1000000"), "imported history sizes for the count benchmark [BENCH_SIZES]")
	flag.IntVar(&cfg.runs, "runs", envInt("BENCH_RUNS", 3), "repetitions of each measurement; the median is reported [BENCH_RUNS]")
	flag.DurationVar(&cfg.postFor, "post-for", 5*time.Second, "length of one POST load run")
	flag.DurationVar(&cfg.lagFor, "lag-for", 10*time.Second, "length of one visibility run")
	flag.IntVar(&cfg.lagRate, "lag-rate", 1000, "messages per second during the visibility runs")
	flag.DurationVar(&cfg.foldTimeout, "fold-timeout", envDuration("BENCH_FOLD_TIMEOUT", 20*time.Minute), "longest wait for the read model to catch up with an import [BENCH_FOLD_TIMEOUT]")
	flag.StringVar(&skip, "skip", os.Getenv("BENCH_SKIP"), "sections to skip, comma-separated: post,lag,streams,counts,shapes,replay,roles [BENCH_SKIP]")
	devFlags := flag.String("dev-flags", os.Getenv("BENCH_DEV_FLAGS"), "extra flags of every `messages dev` started, space-separated [BENCH_DEV_FLAGS]")
	flag.StringVar(&cfg.commit, "commit", os.Getenv("BENCH_COMMIT"), "commit measured, when not the current directory's [BENCH_COMMIT]")
	var sc soakConfig
	flag.DurationVar(&sc.duration, "soak", 0, "run a soak of this length instead of the benchmarks: steady POSTs and reads against the roles as processes, each sampled")
	flag.IntVar(&sc.rate, "soak-rate", 1000, "POSTs a second during the soak")
	flag.IntVar(&sc.reads, "soak-reads", 100, "reads a second during the soak")
	flag.DurationVar(&sc.sample, "soak-sample", 10*time.Second, "time between two samples of each process's memory and goroutines")
	flag.StringVar(&sc.out, "soak-out", "SOAK.md", "report of the soak")
	flag.Parse()
	cfg.devFlags = strings.Fields(*devFlags)
	for _, s := range strings.Split(sizes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			log.Fatalf("sizes: %q is not a positive number", s)
		}
		cfg.sizes = append(cfg.sizes, n)
	}
	slices.Sort(cfg.sizes)
	cfg.skip = map[string]bool{}
	for _, s := range strings.Split(skip, ",") {
		cfg.skip[strings.TrimSpace(s)] = true
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if sc.duration > 0 {
		if err := runSoak(ctx, cfg, sc); err != nil {
			log.Fatal(err)
		}
		return
	}
	if err := run(ctx, cfg); err != nil {
		log.Fatal(err)
	}
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

func envInt(k string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(k)); err == nil {
		return n
	}
	return def
}

func envDuration(k string, def time.Duration) time.Duration {
	if d, err := time.ParseDuration(os.Getenv(k)); err == nil {
		return d
	}
	return def
}

// report is everything measured.
type report struct {
	started   time.Time
	loadStart string
	post      map[int][]postResult // by clients
	lag       []lagResult
	sizes     []sizeResult
	memory    []memResult
	notes     []string
	streams   []streamResult
	idle      *idleResult
	replay    *replayResult
}

type sizeResult struct {
	size         int
	imported     importSummary
	importRate   float64
	foldRate     float64 // events per second the read model caught up at
	foldComplete bool
	rawRate      float64 // documents per second of a plain insertMany
	day, year    []time.Duration
	plainDay     []time.Duration
	plainYear    []time.Duration
	dayN, yearN  int64
	plainN       int64
	shapes       []shapeResult
}

type memResult struct {
	role string
	peak int64
	note string
	// service is set on dev's peak over importing, folding and reading a
	// size through the API, the plain scans apart; size is that size.
	service bool
	size    int
}

func run(ctx context.Context, cfg config) error {
	dir, err := os.MkdirTemp("", "messages-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	log.Printf("working in %s", dir)
	rep := &report{started: time.Now(), loadStart: loadAvg(), post: map[int][]postResult{}}

	if !cfg.skip["post"] {
		if err := benchPost(ctx, cfg, dir, rep); err != nil {
			return fmt.Errorf("post: %w", err)
		}
	}
	if !cfg.skip["lag"] {
		if err := benchLag(ctx, cfg, dir, rep); err != nil {
			return fmt.Errorf("visibility: %w", err)
		}
	}
	if !cfg.skip["streams"] {
		if err := benchStreams(ctx, cfg, dir, rep); err != nil {
			return fmt.Errorf("streams: %w", err)
		}
		if err := benchIdleStreams(ctx, cfg, dir, rep, 1000); err != nil {
			return fmt.Errorf("idle streams: %w", err)
		}
	}
	if !cfg.skip["roles"] {
		if err := benchRoles(ctx, cfg, dir, rep); err != nil {
			return fmt.Errorf("roles: %w", err)
		}
	}
	// The count benchmark reports what it measured before it stopped, and
	// the run fails after the report is written.
	var failed error
	if !cfg.skip["counts"] {
		if err := benchCounts(ctx, cfg, dir, rep); err != nil {
			rep.notes = append(rep.notes, "The count benchmark stopped early: "+err.Error())
			failed = fmt.Errorf("counts: %w", err)
		}
	}
	if wrong := rep.wrongAnswers(); len(wrong) > 0 {
		rep.notes = append(rep.notes, wrong...)
		failed = cmp.Or(failed, fmt.Errorf("%d query shapes answered wrong; the first: %s", len(wrong), wrong[0]))
	}
	if err := writeReport(cfg, rep); err != nil {
		return err
	}
	log.Printf("wrote %s and %s", cfg.out, cfg.chart)
	return failed
}

// benchPost measures POST at 1, 16 and 64 clients against a fresh dev.
func benchPost(ctx context.Context, cfg config, dir string, rep *report) error {
	d, err := startDev(ctx, cfg, dir, "post")
	if err != nil {
		return err
	}
	defer d.stop()
	base := "http://" + d.api
	// Warm up connections, the stream and the runtime.
	postLoad(ctx, base, 16, time.Second)
	for r := range cfg.runs {
		for _, c := range []int{1, 16, 64} {
			svc0, self0, t0 := d.cpuSeconds(), selfCPUSeconds(), time.Now()
			res := postLoad(ctx, base, c, cfg.postFor)
			el := time.Since(t0).Seconds()
			res.serviceCores, res.loadCores = (d.cpuSeconds()-svc0)/el, (selfCPUSeconds()-self0)/el
			log.Printf("POST run %d, %2d clients: %6.0f req/s  p50 %v  p99 %v  errors %d  (CPU: service %.2f cores, load generator %.2f cores)",
				r+1, c, res.rps, res.p50, res.p99, res.errors, res.serviceCores, res.loadCores)
			rep.post[c] = append(rep.post[c], res)
		}
	}
	peak, err := d.peakRSS()
	if err == nil {
		rep.memory = append(rep.memory, memResult{role: "dev (all roles, embedded NATS and FerretDB)", peak: peak, note: "after the POST runs"})
	}
	return nil
}

// benchLag measures visibility at a steady rate against a fresh dev.
func benchLag(ctx context.Context, cfg config, dir string, rep *report) error {
	d, err := startDev(ctx, cfg, dir, "lag")
	if err != nil {
		return err
	}
	defer d.stop()
	base := "http://" + d.api
	for r := range cfg.runs {
		res := visibilityLag(ctx, base, cfg.lagRate, cfg.lagFor, r)
		log.Printf("visibility run %d at %.0f msg/s: p50 %v  p99 %v  (%d probes, %d not visible within 10s)", r+1, res.rate, res.p50, res.p99, res.probes, res.missed)
		rep.lag = append(rep.lag, res)
	}
	return nil
}

// benchRoles runs the dispatcher, query and reducer roles as processes of
// their own against a dev's NATS and FerretDB, loads them, and reads each
// one's peak resident memory.
func benchRoles(ctx context.Context, cfg config, dir string, rep *report) error {
	rs, err := startRoles(ctx, cfg, dir, "benchroles")
	if err != nil {
		return err
	}
	defer rs.stop()
	// Load: POSTs at 64 clients, and counts and lists at 4 clients.
	stopReads := make(chan struct{})
	var wg sync.WaitGroup
	c := client(8)
	for i := range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stopReads:
					return
				default:
				}
				_, _ = count(ctx, c, "http://"+rs.queryAddr, "tag=load"+strconv.Itoa(i))
			}
		})
	}
	var res postResult
	for range cfg.runs {
		res = postLoad(ctx, "http://"+rs.dispAddr, 64, cfg.postFor)
		log.Printf("roles: dispatcher alone at 64 clients: %.0f req/s  p50 %v  p99 %v", res.rps, res.p50, res.p99)
	}
	close(stopReads)
	wg.Wait()
	// Give the reducer a while to fold what arrived.
	select {
	case <-ctx.Done():
	case <-time.After(10 * time.Second):
	}
	notes := map[*proc]string{
		rs.disp:     fmt.Sprintf("%d runs of POST at 64 clients (last: %.0f req/s)", cfg.runs, res.rps),
		rs.query:    "4 clients counting during the POST runs",
		rs.red:      "folding the POST runs' events",
		rs.dev.proc: "NATS and FerretDB serving the roles (its own roles idle)",
	}
	for _, p := range rs.procs() {
		peak, err := p.p.peakRSS()
		if err != nil {
			return err
		}
		name := p.name
		if p.p == rs.dev.proc {
			name = "dev"
		}
		log.Printf("roles: %s peak resident %.1f MiB", name, float64(peak)/(1<<20))
		rep.memory = append(rep.memory, memResult{role: name, peak: peak, note: notes[p.p]})
	}
	return nil
}

// importSummary is the JSON summary of `messages import --json`.
type importSummary struct {
	Lines           int64   `json:"lines"`
	Appended        int64   `json:"appended"`
	AlreadyImported int64   `json:"alreadyImported"`
	Bad             int64   `json:"bad"`
	Seconds         float64 `json:"seconds"`
}

// benchCounts imports growing history into one dev and measures, at each
// size, the fold, a raw insertMany of the same documents, and count latency.
func benchCounts(ctx context.Context, cfg config, dir string, rep *report) error {
	d, err := startDev(ctx, cfg, dir, "counts")
	if err != nil {
		return err
	}
	defer func() {
		if peak, err := d.peakRSS(); err == nil {
			rep.memory = append(rep.memory, memResult{role: "dev (all roles)", peak: peak, note: fmt.Sprintf("from the import of the step to %d messages on, the raw insertMany, plain finds and counts included", rep.lastSize())})
		}
		d.stop()
	}()
	mc, err := mongo.Connect(options.Client().ApplyURI(d.mongoURI()).SetTimeout(10 * time.Minute))
	if err != nil {
		return err
	}
	defer mc.Disconnect(context.Background())
	db := mc.Database("messages")
	base := "http://" + d.api
	c := client(4)
	h := history{end: time.Now().UTC().Truncate(24 * time.Hour)}
	prev := 0
	for _, size := range cfg.sizes {
		res := sizeResult{size: size}
		file := filepath.Join(dir, fmt.Sprintf("history-%d-%d.jsonl", prev, size))
		log.Printf("counts: writing the messages from %d to %d and their burst", prev, size)
		if err := h.writeLines(file, prev, size); err != nil {
			return err
		}
		log.Printf("counts: importing %d messages", total(size)-total(prev))
		if err := d.resetPeak(); err != nil {
			log.Printf("counts: dev's peak memory is not reset: %v", err)
		}
		t0 := time.Now()
		out, err := exec.CommandContext(ctx, cfg.bin, "import", "--json", "--quiet", "--nats-url", d.natsURL(), file).Output()
		if err != nil {
			return fmt.Errorf("import: %v: %s", err, out)
		}
		if err := json.Unmarshal(out, &res.imported); err != nil {
			return fmt.Errorf("import summary %q: %w", out, err)
		}
		res.importRate = float64(res.imported.Lines) / res.imported.Seconds
		log.Printf("counts: imported %d lines (%d appended) at %.0f lines/s; waiting for the read model", res.imported.Lines, res.imported.Appended, res.importRate)
		n, complete, err := waitCount(ctx, base, int64(total(size)), cfg.foldTimeout)
		if err != nil {
			return err
		}
		res.foldComplete = complete
		res.foldRate = float64(n-int64(total(prev))) / time.Since(t0).Seconds()
		log.Printf("counts: read model holds %d of %d after %v: %.0f events/s (import and fold overlapping)", n, total(size), time.Since(t0).Round(time.Second), res.foldRate)

		if err := readShapes(ctx, c, base, h, size); err != nil {
			return fmt.Errorf("query shapes at %d: %w", size, err)
		}
		if peak, err := d.peakRSS(); err == nil {
			log.Printf("counts: dev's peak resident memory, importing, folding and reading %d messages: %.1f MiB", size, float64(peak)/(1<<20))
			rep.memory = append(rep.memory, memResult{role: "dev (all roles)", peak: peak, service: true, size: size,
				note: fmt.Sprintf("importing, folding and reading %d messages through the API (every query shape once), before any plain scan", size)})
		}
		coll, err := messagesCollection(ctx, db)
		if err != nil {
			return err
		}
		res.rawRate, err = rawInsert(ctx, db, coll, h, prev, size)
		if err != nil {
			return fmt.Errorf("raw insertMany: %w", err)
		}
		log.Printf("counts: raw insertMany of the same %d documents: %.0f docs/s", total(size)-total(prev), res.rawRate)

		day := h.start().Add(182 * 24 * time.Hour)
		dayQ := "dateStart=" + day.Format(time.DateOnly) + "&dateEnd=" + day.Format(time.DateOnly)
		yearQ := "dateStart=" + h.start().Format(time.DateOnly) + "&dateEnd=" + h.end.Add(-time.Hour).Format(time.DateOnly)
		dayF := idRange(day, day.Add(24*time.Hour))
		yearF := idRange(h.start(), h.end)
		for i := 0; i <= max(cfg.runs, 5); i++ {
			dd, dn, err := timed(func() (int64, error) { return count(ctx, c, base, dayQ) })
			if err != nil {
				return err
			}
			yd, yn, err := timed(func() (int64, error) { return count(ctx, c, base, yearQ) })
			if err != nil {
				return err
			}
			pd, _, err := timed(func() (int64, error) { return coll.CountDocuments(ctx, dayF) })
			if err != nil {
				return err
			}
			py, pn, err := timed(func() (int64, error) { return coll.CountDocuments(ctx, yearF) })
			if err != nil {
				return err
			}
			if i == 0 {
				continue // warm-up
			}
			res.day, res.year, res.plainDay, res.plainYear = append(res.day, dd), append(res.year, yd), append(res.plainDay, pd), append(res.plainYear, py)
			res.dayN, res.yearN, res.plainN = dn, yn, pn
		}
		if res.plainN != res.yearN {
			rep.notes = append(rep.notes, fmt.Sprintf("At %d messages the one-year count answered %d and countDocuments on %s.%s %d.", size, res.yearN, db.Name(), coll.Name(), res.plainN))
		}
		log.Printf("counts at %d: day %v (%d), year %v (%d); countDocuments day %v, year %v (%d)", size,
			median(res.day), res.dayN, median(res.year), res.yearN, median(res.plainDay), median(res.plainYear), res.plainN)
		if !cfg.skip["shapes"] {
			res.shapes, err = benchShapes(ctx, c, base, coll, h, size, max(cfg.runs, 5), cfg.runs)
			logShapes(size, res.shapes)
			if err != nil {
				rep.sizes = append(rep.sizes, res)
				return fmt.Errorf("query shapes at %d: %w", size, err)
			}
		}
		rep.sizes = append(rep.sizes, res)
		prev = size
		os.Remove(file)
		if !complete {
			return fmt.Errorf("the read model did not catch up with %d messages within %v", size, cfg.foldTimeout)
		}
	}
	if cfg.skip["replay"] {
		return nil
	}
	return benchReplay(ctx, cfg, d, c, h, prev, rep)
}

// wrongAnswers says which shape answered wrong at which size.
func (r *report) wrongAnswers() []string {
	var out []string
	for _, s := range r.sizes {
		for _, q := range s.shapes {
			if q.wrong != "" {
				out = append(out, fmt.Sprintf("At %d messages, %s answered wrong: %s.", s.size, q.name, q.wrong))
			}
		}
	}
	return out
}

func (r *report) lastSize() int {
	if len(r.sizes) == 0 {
		return 0
	}
	return r.sizes[len(r.sizes)-1].size
}

// messagesCollection finds the read model's collection of messages: the
// largest collection named messages, with or without a prefix (the read
// model may keep generations side by side).
func messagesCollection(ctx context.Context, db *mongo.Database) (*mongo.Collection, error) {
	names, err := db.ListCollectionNames(ctx, bson.M{})
	if err != nil {
		return nil, err
	}
	var best *mongo.Collection
	var most int64 = -1
	for _, n := range names {
		if n != "messages" && !strings.HasSuffix(n, "_messages") && !strings.HasSuffix(n, ".messages") {
			continue
		}
		c := db.Collection(n)
		if k, err := c.EstimatedDocumentCount(ctx); err == nil && k > most {
			best, most = c, k
		}
	}
	if best == nil {
		return nil, fmt.Errorf("no messages collection in database %s among %v", db.Name(), names)
	}
	return best, nil
}

func timed(f func() (int64, error)) (time.Duration, int64, error) {
	t := time.Now()
	n, err := f()
	return time.Since(t), n, err
}

// waitCount polls the total count until it reaches want or timeout passes.
func waitCount(ctx context.Context, base string, want int64, timeout time.Duration) (int64, bool, error) {
	hc := client(1)
	deadline := time.Now().Add(timeout)
	last, lastLog := int64(-1), time.Now()
	for {
		n, err := count(ctx, hc, base, "")
		if err != nil && ctx.Err() != nil {
			return last, false, ctx.Err()
		}
		if err == nil {
			last = n
		}
		if last >= want {
			return last, true, nil
		}
		if time.Now().After(deadline) {
			return last, false, nil
		}
		if time.Since(lastLog) > 15*time.Second {
			log.Printf("counts: read model holds %d of %d", last, want)
			lastLog = time.Now()
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// idRange is the filter of messages created in [from, to): ids are ULIDs
// that begin with their time.
func idRange(from, to time.Time) bson.M {
	return bson.M{"_id": bson.M{"$gte": idFloor(from), "$lt": idFloor(to)}}
}

// idFloor is the least id of a message created at t, to the millisecond.
func idFloor(t time.Time) string {
	var id ulid.ULID
	_ = id.SetTime(uint64(t.UnixMilli()))
	return id.String()
}

// rawInsert writes the documents of the messages a history gains from
// from to to messages, shaped as the read
// model stores them, into a scratch collection with plain insertMany calls:
// batches of the reducers' default size from 8 writers (one per
// partition), and returns documents per second. The collection has the
// messages collection's indexes, so that it costs the store what the read
// model costs it. It is dropped afterwards.
func rawInsert(ctx context.Context, db *mongo.Database, like *mongo.Collection, h history, from, to int) (float64, error) {
	coll := db.Collection("bench_raw_insert")
	_ = coll.Drop(ctx)
	defer coll.Drop(context.WithoutCancel(ctx))
	if err := copyIndexes(ctx, like, coll); err != nil {
		return 0, err
	}
	docs := make([]any, 0, total(to)-total(from))
	h.between(from, to, func(m message.Message) {
		docs = append(docs, bson.D{
			{Key: "_id", Value: m.ID}, {Key: "userId", Value: m.UserID}, {Key: "text", Value: m.Text},
			{Key: "tag", Value: m.Tag}, {Key: "createdAt", Value: m.CreatedAt}, {Key: "seq", Value: int64(len(docs) + 1)},
		})
	})
	const batch, writers = reducers.DefaultBatchSize, 8
	batches := make(chan []any)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	start := time.Now()
	for range writers {
		wg.Go(func() {
			for b := range batches {
				if _, err := coll.InsertMany(ctx, b, options.InsertMany().SetOrdered(true)); err != nil {
					mu.Lock()
					firstErr = cmp.Or(firstErr, err)
					mu.Unlock()
				}
			}
		})
	}
	for i := 0; i < len(docs); i += batch {
		batches <- docs[i:min(i+batch, len(docs))]
	}
	close(batches)
	wg.Wait()
	return float64(len(docs)) / time.Since(start).Seconds(), firstErr
}

// copyIndexes makes on to the indexes of from, but for the _id index every
// collection has. The embedded store adds one more to every collection
// within a moment of its creation; the pause leaves it the time.
func copyIndexes(ctx context.Context, from, to *mongo.Collection) error {
	cur, err := from.Indexes().List(ctx)
	if err != nil {
		return fmt.Errorf("indexes of %s: %w", from.Name(), err)
	}
	var specs []struct {
		Name string `bson:"name"`
		Key  bson.D `bson:"key"`
	}
	if err := cur.All(ctx, &specs); err != nil {
		return fmt.Errorf("indexes of %s: %w", from.Name(), err)
	}
	for _, s := range specs {
		if s.Name == "_id_" {
			continue
		}
		if _, err := to.Indexes().CreateOne(ctx, mongo.IndexModel{Keys: s.Key, Options: options.Index().SetName(s.Name)}); err != nil {
			return fmt.Errorf("index %s on %s: %w", s.Name, to.Name(), err)
		}
	}
	time.Sleep(time.Second)
	return nil
}

func median(ds []time.Duration) time.Duration { return latencies(ds).pct(.5) }
