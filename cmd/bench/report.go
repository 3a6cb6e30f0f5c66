package main

import (
	"bufio"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/messages-io/messages/reducers"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

func medianOf[T any](xs []T, f func(T) float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	v := make([]float64, len(xs))
	for i, x := range xs {
		v[i] = f(x)
	}
	slices.Sort(v)
	if len(v)%2 == 1 {
		return v[len(v)/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
}

func ms(d float64) string { return fmt.Sprintf("%.2f ms", d/float64(time.Millisecond)) }

func mdur(ds []time.Duration) float64 {
	return medianOf(ds, func(d time.Duration) float64 { return float64(d) })
}

func cpuModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return runtime.GOARCH
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return runtime.GOARCH
}

func memTotal() string {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return "?"
	}
	var kb int64
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "MemTotal:") {
			fmt.Sscanf(strings.TrimPrefix(l, "MemTotal:"), "%d", &kb)
		}
	}
	return fmt.Sprintf("%.1f GiB", float64(kb)/(1<<20))
}

func gitCommit(cfg config) string {
	if cfg.commit != "" {
		return cfg.commit
	}
	out, err := exec.Command("git", "rev-parse", "--short", "HEAD").Output()
	if err != nil {
		return "?"
	}
	s := strings.TrimSpace(string(out))
	if out, _ := exec.Command("git", "status", "--porcelain", "--untracked-files=no").Output(); len(out) > 0 {
		s += " (with uncommitted changes)"
	}
	return s
}

// loadAvg is the 1, 5 and 15 minute load average: other work on the machine
// skews every figure.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	return strings.Join(f[:min(3, len(f))], " ")
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return "`" + s + "`"
}

func mark(ok bool) string {
	if ok {
		return "met"
	}
	return "**missed**"
}

func writeReport(cfg config, rep *report) error {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	w("# Benchmarks\n\n")
	w("Written by `make bench` (`cmd/bench`). Every figure is the median of %d runs unless it says otherwise. ", cfg.runs)
	w("The service runs as `messages dev` (embedded NATS with JetStream, FerretDB 1.24 over SQLite as the MongoDB-wire store) ")
	w("or as separate role processes against that dev's servers; the load comes from an in-process Go HTTP client with keep-alive connections on the same machine.\n\n")
	w("| machine | |\n| --- | --- |\n")
	w("| CPU | %s, %d cores |\n| memory | %s |\n| Go | %s %s/%s |\n| date | %s |\n| commit | %s |\n| sizes | %v |\n| load average at start, end | %s, %s |\n| service flags added | %s |\n\n",
		cpuModel(), runtime.NumCPU(), memTotal(), runtime.Version(), runtime.GOOS, runtime.GOARCH,
		rep.started.UTC().Format("2006-01-02 15:04 MST"), gitCommit(cfg), cfg.sizes, rep.loadStart, loadAvg(), orNone(strings.Join(cfg.devFlags, " ")))
	w("![POST throughput and count latency](%s)\n\n", filepath.Base(cfg.chart))

	// Targets.
	w("## Targets\n\n| target | measured | |\n| --- | --- | --- |\n")
	folded := len(rep.sizes) > 0 && rep.sizes[len(rep.sizes)-1].foldComplete
	if len(rep.sizes) > 0 && !folded {
		w("| count latency at 1 M no more than 2× that at 10k; at least 50× faster than `countDocuments` | not measured: the read model did not catch up with the import | **missed** |\n")
	}
	if folded && len(rep.sizes) == 1 {
		w("| count latency at 1 M no more than 2× that at 10k | not measured: one size only | |\n")
	}
	if folded && len(rep.sizes) > 1 {
		first, last := rep.sizes[0], rep.sizes[len(rep.sizes)-1]
		w("| count latency at %d no more than 2× that at %d (one-year range) | %s vs %s | %s |\n",
			last.size, first.size, ms(mdur(last.year)), ms(mdur(first.year)), mark(mdur(last.year) <= 2*mdur(first.year)))
		w("| count at %d at least 50× faster than plain `countDocuments` (one-year range) | %s vs %s (%.1f×) | %s |\n",
			last.size, ms(mdur(last.year)), ms(mdur(last.plainYear)), mdur(last.plainYear)/mdur(last.year), mark(mdur(last.plainYear) >= 50*mdur(last.year)))
	}
	if folded {
		writeShapeTargets(w, rep.sizes[0], rep.sizes[len(rep.sizes)-1])
		last := rep.sizes[len(rep.sizes)-1]
		if last.size < 1000000 {
			w("| (the count and query shape targets are set at 1,000,000 messages; this run stopped at %d) | | |\n", last.size)
		}
	}
	if rs := rep.post[64]; len(rs) > 0 {
		rps := medianOf(rs, func(r postResult) float64 { return r.rps })
		p99 := medianOf(rs, func(r postResult) float64 { return float64(r.p99) })
		w("| POST ≥ 8,000 req/s at 64 clients, dev | %.0f req/s | %s |\n", rps, mark(rps >= 8000))
		w("| POST p99 < 20 ms at 64 clients, dev | %s | %s |\n", ms(p99), mark(p99 < float64(20*time.Millisecond)))
	}
	if len(rep.sizes) > 0 {
		var fold, raw []float64
		for _, s := range rep.sizes {
			fold, raw = append(fold, s.foldRate), append(raw, s.rawRate)
		}
		f, r := medianOf(fold, func(x float64) float64 { return x }), medianOf(raw, func(x float64) float64 { return x })
		w("| reducer throughput ≥ 70%% of raw insertMany (median over sizes) | %.0f vs %.0f events/s (%.0f%%) | %s |\n", f, r, 100*f/r, mark(f >= 0.7*r))
	}
	if len(rep.lag) > 0 {
		p99 := medianOf(rep.lag, func(r lagResult) float64 { return float64(r.p99) })
		w("| visibility lag p99 < 100 ms at %d msg/s | %s | %s |\n", cfg.lagRate, ms(p99), mark(p99 < float64(100*time.Millisecond)))
	}
	for _, r := range rep.streams {
		w("| from a 201 to the stream event, p99 ≤ 20 ms above the visibility lag p99 of the same run (%s, %d subscribers) | %s vs %s | %s |\n",
			r.kind, r.subscribers, ms(float64(r.p99)), ms(float64(r.lag.p99)), mark(r.p99 <= r.lag.p99+20*time.Millisecond))
	}
	if rep.idle != nil {
		d := rep.idle.with - rep.idle.before
		w("| %d idle streams cost < 64 MB above an idle query role | %.1f MiB | %s |\n", rep.idle.streams, float64(d)/(1<<20), mark(d < 64<<20))
	}
	for _, m := range rep.memory {
		if m.role == "dispatcher" {
			w("| dispatcher < 64 MB resident under load | %.1f MiB | %s |\n", float64(m.peak)/(1<<20), mark(m.peak < 64<<20))
		}
		if m.service && m.size == rep.lastSize() {
			w("| dev < 512 MB resident importing, folding and reading %d messages (plain scans apart) | %.1f MiB | %s |\n", m.size, float64(m.peak)/(1<<20), mark(m.peak < 512<<20))
		}
	}
	w("\n")

	if len(rep.post) > 0 {
		w("## POST /v1/messages (dev)\n\nEach run posts for %v from N clients, each waiting for its answer before the next request.\n\n", cfg.postFor)
		w("| clients | requests/s | p50 | p99 | errors (all runs) | CPU of dev, cores | CPU of the load generator, cores |\n| ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n")
		for _, c := range []int{1, 16, 64} {
			rs := rep.post[c]
			var errs int64
			for _, r := range rs {
				errs += r.errors
			}
			w("| %d | %.0f | %s | %s | %d | %.2f | %.2f |\n", c, medianOf(rs, func(r postResult) float64 { return r.rps }),
				ms(medianOf(rs, func(r postResult) float64 { return float64(r.p50) })),
				ms(medianOf(rs, func(r postResult) float64 { return float64(r.p99) })), errs,
				medianOf(rs, func(r postResult) float64 { return r.serviceCores }),
				medianOf(rs, func(r postResult) float64 { return r.loadCores }))
		}
		w("\n")
	}
	if len(rep.lag) > 0 {
		w("## Visibility lag (dev)\n\n%d messages/s for %v per run. Ten times a second one of them goes under a tag of its own; after its 201 the client counts that tag (`count=1&tag=…`) until it answers 1. The lag is the time from the 201 to that answer; a probe not visible within 10 s counts as 10 s, so the percentiles are then lower bounds.\n\n", cfg.lagRate, cfg.lagFor)
		w("| run | achieved msg/s | probes | p50 | p99 | not visible within 10 s |\n| ---: | ---: | ---: | ---: | ---: | ---: |\n")
		for i, r := range rep.lag {
			w("| %d | %.0f | %d | %s | %s | %d |\n", i+1, r.rate, r.probes, ms(float64(r.p50)), ms(float64(r.p99)), r.missed)
		}
		w("| **median** | | | **%s** | **%s** | |\n\n", ms(medianOf(rep.lag, func(r lagResult) float64 { return float64(r.p50) })),
			ms(medianOf(rep.lag, func(r lagResult) float64 { return float64(r.p99) })))
	}
	writeStreams(w, cfg, rep)
	if len(rep.sizes) > 0 {
		w("## Import, fold and raw insertMany (dev)\n\n")
		w("History is imported with `messages import` in steps up to each size, messages spread evenly over one year and 8 tags, ")
		w("and beside them a burst of a fifth as many messages of tag `%s` within one hour (the dense hour), so a size of 10000 holds 12000 messages. ", burstTag)
		w("*Fold* is the new messages divided by the time from the start of the import until a count of all messages shows them (import and fold overlap; the import is much faster). ")
		w("*Raw insertMany* writes the same documents, shaped as the read model stores them, into a scratch collection of the same FerretDB with the same indexes as the messages collection: batches of %d from 8 writers, as the 8 reducers do; it runs once per size, after the fold.\n\n", reducers.DefaultBatchSize)
		w("| size | imported | import lines/s | fold events/s | raw insertMany docs/s | fold / raw |\n| ---: | ---: | ---: | ---: | ---: | ---: |\n")
		for _, s := range rep.sizes {
			note := ""
			if !s.foldComplete {
				note = " (did not catch up)"
			}
			w("| %d | %d | %.0f | %.0f%s | %.0f | %.0f%% |\n", s.size, s.imported.Appended, s.importRate, s.foldRate, note, s.rawRate, 100*s.foldRate/s.rawRate)
		}
		w("\n## Count latency (dev)\n\n")
		w("`GET /v1/messages?count=1` with a one-day range (`dateStart=dateEnd=` a day in the middle of the year) and a one-year range (the whole history), ")
		w("beside a plain `countDocuments` with the same `_id` range on the messages collection, sent directly with the MongoDB driver, in the same run. Median of %d requests after one warm-up.\n\n", max(cfg.runs, 5))
		w("| size | count, 1 day | count, 1 year | countDocuments, 1 day | countDocuments, 1 year | year: countDocuments / count | counts (day, year, plain year) |\n| ---: | ---: | ---: | ---: | ---: | ---: | --- |\n")
		for _, s := range rep.sizes {
			w("| %d | %s | %s | %s | %s | %.1f× | %d, %d, %d |\n", s.size, ms(mdur(s.day)), ms(mdur(s.year)), ms(mdur(s.plainDay)), ms(mdur(s.plainYear)),
				mdur(s.plainYear)/mdur(s.year), s.dayN, s.yearN, s.plainN)
		}
		w("\n")
	}
	writeShapes(w, cfg, rep)
	if rep.replay != nil {
		writeReplay(w, rep.replay)
	}
	if len(rep.memory) > 0 {
		w("## Peak resident memory\n\nVmHWM of each process from `/proc/<pid>/status`, read under or right after its load.\n\n| process | peak resident | load |\n| --- | ---: | --- |\n")
		for _, m := range rep.memory {
			w("| %s | %.1f MiB | %s |\n", m.role, float64(m.peak)/(1<<20), m.note)
		}
		w("\n")
	}
	if cfg.goBench != "" {
		if out, err := os.ReadFile(cfg.goBench); err == nil {
			w("## Go benchmarks of the hot paths\n\n`go test -run '^$' -bench . -benchmem` over the packages of the hot paths.\n\n```\n")
			for _, l := range strings.Split(string(out), "\n") {
				if strings.HasPrefix(l, "Benchmark") || strings.HasPrefix(l, "pkg:") {
					w("%s\n", l)
				}
			}
			w("```\n\n")
		}
	}
	if notes, err := os.ReadFile(cfg.notes); err == nil {
		b.Write(notes)
	}
	if len(rep.notes) > 0 {
		w("\n## Notes of this run\n\n")
		for _, n := range rep.notes {
			w("- %s\n", n)
		}
	}
	if err := os.WriteFile(cfg.out, []byte(b.String()), 0o644); err != nil {
		return err
	}
	return writeChart(cfg, rep)
}

// writeChart draws POST throughput by clients and count latency by size.
func writeChart(cfg config, rep *report) error {
	left := plot.New()
	left.Title.Text = "POST /v1/messages (dev)"
	left.X.Label.Text = "concurrent clients"
	left.Y.Label.Text = "requests/s (median)"
	var vals plotter.Values
	for _, c := range []int{1, 16, 64} {
		vals = append(vals, medianOf(rep.post[c], func(r postResult) float64 { return r.rps }))
	}
	bars, err := plotter.NewBarChart(vals, vg.Points(40))
	if err != nil {
		return err
	}
	bars.Color = plotutil.Color(0)
	left.Add(bars)
	left.NominalX("1", "16", "64")
	target := plotter.NewFunction(func(float64) float64 { return 8000 })
	target.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
	target.Color = plotutil.Color(1)
	left.Add(target)
	left.Legend.Add("target at 64 clients", target)
	left.Legend.Top = true
	left.Y.Min = 0
	left.Y.Max = max(9000, slices.Max(append(vals, 0))*1.15)

	right := plot.New()
	right.Title.Text = "count latency by imported history"
	right.X.Label.Text = "messages"
	right.Y.Label.Text = "milliseconds (median)"
	series := []struct {
		name string
		f    func(sizeResult) []time.Duration
	}{
		{"count, 1 day", func(s sizeResult) []time.Duration { return s.day }},
		{"count, 1 year", func(s sizeResult) []time.Duration { return s.year }},
		{"countDocuments, 1 day", func(s sizeResult) []time.Duration { return s.plainDay }},
		{"countDocuments, 1 year", func(s sizeResult) []time.Duration { return s.plainYear }},
	}
	var args []any
	for _, s := range series {
		var xy plotter.XYs
		for _, r := range rep.sizes {
			xy = append(xy, plotter.XY{X: float64(r.size), Y: max(mdur(s.f(r))/float64(time.Millisecond), 0.01)})
		}
		if len(xy) > 0 {
			args = append(args, s.name, xy)
		}
	}
	if len(args) > 0 {
		right.X.Scale = plot.LogScale{}
		right.X.Tick.Marker = plot.LogTicks{Prec: -1}
		lo, hi := math.Inf(1), 0.0
		for _, a := range args {
			if xy, ok := a.(plotter.XYs); ok {
				for _, p := range xy {
					lo, hi = min(lo, p.Y), max(hi, p.Y)
				}
			}
		}
		if hi > 20*lo {
			right.Y.Scale = plot.LogScale{}
			right.Y.Tick.Marker = plot.LogTicks{Prec: -1}
		} else {
			right.Y.Min = 0
		}
		if last := rep.sizes[len(rep.sizes)-1]; !last.foldComplete {
			right.Title.Text += fmt.Sprintf(" (read model short of %d)", last.size)
		}
		if err := plotutil.AddLinePoints(right, args...); err != nil {
			return err
		}
	}
	right.Legend.Top = false
	right.Legend.Left = false

	img := vgimg.New(vg.Points(900), vg.Points(380))
	dc := draw.New(img)
	tiles := draw.Tiles{Rows: 1, Cols: 2, PadX: vg.Points(30), PadTop: vg.Points(10), PadBottom: vg.Points(10), PadLeft: vg.Points(10), PadRight: vg.Points(10)}
	canvases := plot.Align([][]*plot.Plot{{left, right}}, tiles, dc)
	left.Draw(canvases[0][0])
	right.Draw(canvases[0][1])
	f, err := os.Create(cfg.chart)
	if err != nil {
		return err
	}
	png := vgimg.PngCanvas{Canvas: img}
	if _, err := png.WriteTo(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// shape returns the result of the shape named name, false when it was not
// measured.
func (s sizeResult) shape(name string) (shapeResult, bool) {
	for _, r := range s.shapes {
		if r.name == name && len(r.api) > 0 && len(r.plain) > 0 {
			return r, true
		}
	}
	return shapeResult{}, false
}

// writeShapeTargets writes, for each query shape, whether its latency at
// the last size is within 2× of that at the first, and at least 100× below
// the plain find's.
func writeShapeTargets(w func(string, ...any), first, last sizeResult) {
	for _, r := range last.shapes {
		l, ok := last.shape(r.name)
		if !ok {
			continue
		}
		if f, ok := first.shape(r.name); ok && first.size < last.size {
			w("| %s at %d no more than 2× that at %d | %s vs %s | %s |\n",
				r.name, last.size, first.size, ms(mdur(l.api)), ms(mdur(f.api)), mark(mdur(l.api) <= 2*mdur(f.api)))
		}
		w("| %s at %d at least 100× faster than the plain find or count | %s vs %s (%.1f×) | %s |\n",
			r.name, last.size, ms(mdur(l.api)), ms(mdur(l.plain)), mdur(l.plain)/mdur(l.api), mark(mdur(l.plain) >= 100*mdur(l.api)))
	}
}

// writeShapes writes the table of query shapes by size.
func writeShapes(w func(string, ...any), cfg config, rep *report) {
	if len(rep.sizes) == 0 || len(rep.sizes[0].shapes) == 0 {
		return
	}
	w("## Query shapes (dev)\n\n")
	w("Each shape of `GET /v1/messages` through the API, beside a plain `find` with the same filter sorted by `_id` descending (limit %d), or a `countDocuments` with the same filter, ", pageSize)
	w("on the messages collection, sent directly with the MongoDB driver, in the same run. ")
	w("The page 100 deep is reached by following `Link: rel=\"next\"` from the newest page; only the request for the 100th page is timed, and the plain find continues after the same message. ")
	w("Counts have instant edges (RFC 3339, to the millisecond). The dense hour holds the burst of tag `%s`; its page and count have instant edges inside it. ", burstTag)
	w("Every answer, of the API and of the plain find, is checked against the imported file: the ids, order and content of each page and each count. ")
	w("API: median of %d requests after one warm-up; plain: median of %d.\n\n", max(cfg.runs, 5), cfg.runs)
	w("| shape | size | API | plain find or count | plain / API | messages or count | answers |\n| --- | ---: | ---: | ---: | ---: | ---: | --- |\n")
	for _, q := range rep.sizes[0].shapes {
		for _, s := range rep.sizes {
			r, ok := s.shape(q.name)
			if !ok {
				continue
			}
			verdict := "right"
			if r.wrong != "" {
				verdict = "**wrong**: " + r.wrong
			}
			w("| %s | %d | %s | %s | %.1f× | %d | %s |\n", r.name, s.size, ms(mdur(r.api)), ms(mdur(r.plain)), mdur(r.plain)/mdur(r.api), r.n, verdict)
		}
	}
	w("\n")
}

// writeStreams writes the live stream figures: one run each.
func writeStreams(w func(string, ...any), cfg config, rep *report) {
	if len(rep.streams) > 0 {
		w("## Live streams (dev)\n\nOne run each: %d messages/s for %v, as in the visibility runs, with 100 subscribers on `text/event-stream` (tag streams over the 8 steady tags, then the all-tags stream). The time is from each 201 to each subscriber's receipt of that message; the visibility lag is the probes' of the same run. Of each message, the first receipt is the earliest subscriber's, and the spread the time from there to the last subscriber's: the fold and the feed, then the fan-out to every subscriber, whose clients run on the same cores as the service.\n\n", cfg.lagRate, cfg.lagFor)
		w("| streams | subscribers | achieved msg/s | delivered / expected | dropped as slow | 201 to event p50 | p99 | visibility p50 | p99 | first receipt p99 | spread p50 | spread p99 |\n| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n")
		for _, r := range rep.streams {
			w("| %s | %d | %.0f | %d / %d | %.0f | %s | %s | %s | %s | %s | %s | %s |\n", r.kind, r.subscribers, r.lag.rate, r.delivered, r.expected, r.dropped,
				ms(float64(r.p50)), ms(float64(r.p99)), ms(float64(r.lag.p50)), ms(float64(r.lag.p99)),
				ms(float64(r.first.pct(.99))), ms(float64(r.spread.pct(.5))), ms(float64(r.spread.pct(.99))))
		}
		for _, r := range rep.streams {
			if len(r.tokenWait) > 0 {
				w("\nA GET counting its own write's tag with the 201's `Consistency-Token`, right after the 201, during the %s run: p50 %s, p99 %s over %d GETs, every count 1.\n",
					r.kind, ms(float64(r.tokenWait.pct(.5))), ms(float64(r.tokenWait.pct(.99))), len(r.tokenWait))
			}
		}
		w("\n")
	}
	if rep.idle != nil {
		w("Resident memory of a `messages query` process: %.1f MiB idle, %.1f MiB holding %d idle streams (+%.1f MiB).\n\n",
			float64(rep.idle.before)/(1<<20), float64(rep.idle.with)/(1<<20), rep.idle.streams, float64(rep.idle.with-rep.idle.before)/(1<<20))
	}
}
