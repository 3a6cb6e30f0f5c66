package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// soakConfig is what a soak runs: POSTs at rate a second and reads at reads
// a second, for a while, with every process sampled every sample.
type soakConfig struct {
	duration time.Duration
	rate     int
	reads    int
	sample   time.Duration
	out      string
}

// roleSet is the dispatcher, query and reducer roles, each a process of its
// own, against the NATS and FerretDB of a dev whose own roles stay idle:
// they fold another stream.
type roleSet struct {
	dev                   *dev
	disp, query, red      *proc
	dispAddr, queryAddr   string
	redAddr               string
	stream, subjectPrefix string
}

// startRoles starts a dev and the three roles on a stream of their own,
// named after name, and waits until each is ready.
func startRoles(ctx context.Context, cfg config, dir, name string) (*roleSet, error) {
	d, err := startDev(ctx, cfg, dir, name+"-infra")
	if err != nil {
		return nil, err
	}
	rs := &roleSet{dev: d, dispAddr: freeAddr(), queryAddr: freeAddr(), redAddr: freeAddr(),
		stream: strings.ToUpper(name), subjectPrefix: name + ".events"}
	common := []string{"--nats-url", d.natsURL(), "--stream", rs.stream, "--subject-prefix", rs.subjectPrefix, "--log-level", "warn"}
	mongo := []string{"--mongo-uri", d.mongoURI(), "--mongo-db", name}
	if rs.disp, err = start(dir, cfg.bin, name+"-dispatcher", append([]string{"dispatcher", "--addr", rs.dispAddr}, common...)...); err != nil {
		rs.stop()
		return nil, err
	}
	if rs.query, err = start(dir, cfg.bin, name+"-query", append(append([]string{"query", "--addr", rs.queryAddr}, common...), mongo...)...); err != nil {
		rs.stop()
		return nil, err
	}
	if rs.red, err = start(dir, cfg.bin, name+"-reducer", append(append([]string{"reducer", "--addr", rs.redAddr, "--consumer", name}, common...), mongo...)...); err != nil {
		rs.stop()
		return nil, err
	}
	for _, r := range rs.procs() {
		if err := r.p.waitReady(ctx, "http://"+r.addr+"/readyz", time.Minute); err != nil {
			rs.stop()
			return nil, err
		}
	}
	return rs, nil
}

// sampled is a process of a role set and the address of its /metrics.
type sampled struct {
	name string
	p    *proc
	addr string
}

func (rs *roleSet) procs() []sampled {
	var out []sampled
	for _, s := range []sampled{{"dispatcher", rs.disp, rs.dispAddr}, {"query", rs.query, rs.queryAddr}, {"reducer", rs.red, rs.redAddr},
		{"dev (NATS and FerretDB)", rs.dev.proc, rs.dev.api}} {
		if s.p != nil {
			out = append(out, s)
		}
	}
	return out
}

func (rs *roleSet) stop() {
	for _, p := range []*proc{rs.disp, rs.query, rs.red} {
		if p != nil {
			p.stop()
		}
	}
	rs.dev.stop()
}

// sample is one reading of a process.
type sample struct {
	at         time.Duration // since the soak began
	rss        int64         // resident memory, bytes
	goroutines int
}

// minute is what the load saw in one minute of the soak.
type minute struct {
	posts, postErrors int
	reads, readErrors int
	// notFound counts reads by id of a message not folded yet: answered,
	// 404.
	notFound   int
	post, read latencies
}

// soakResult is everything a soak measured.
type soakResult struct {
	started   time.Time
	loadStart string
	minutes   []*minute
	samples   map[string][]sample
	order     []string
	created   int64
	folded    int64
	foldedIn  time.Duration
	caughtUp  bool
}

// runSoak loads the roles with POSTs at a steady rate and reads beside them
// for the soak's duration, samples each process's resident memory and
// goroutines, and writes the report.
func runSoak(ctx context.Context, cfg config, sc soakConfig) error {
	dir, err := os.MkdirTemp("", "messages-soak-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	log.Printf("soak: %v at %d POSTs/s and %d reads/s, sampling every %v; working in %s", sc.duration, sc.rate, sc.reads, sc.sample, dir)
	rs, err := startRoles(ctx, cfg, dir, "soak")
	if err != nil {
		return err
	}
	defer rs.stop()
	res := &soakResult{started: time.Now(), loadStart: loadAvg(), samples: map[string][]sample{}}
	for range int((sc.duration + time.Minute - 1) / time.Minute) {
		res.minutes = append(res.minutes, &minute{})
	}
	for _, p := range rs.procs() {
		res.order = append(res.order, p.name)
	}

	lctx, cancel := context.WithTimeout(ctx, sc.duration)
	defer cancel()
	var mu sync.Mutex // guards res.minutes and recent
	var recent []string
	bucket := func() *minute {
		return res.minutes[min(int(time.Since(res.started)/time.Minute), len(res.minutes)-1)]
	}
	var wg sync.WaitGroup
	wg.Go(func() { sampleProcs(lctx, rs, sc.sample, res) })
	c := client(256)
	defer c.CloseIdleConnections()
	var created atomic.Int64
	wg.Go(func() {
		paced(lctx, sc.rate, 256, func(i int) {
			t := time.Now()
			id, err := post(lctx, c, "http://"+rs.dispAddr, "soak "+strconv.Itoa(i), "soak"+strconv.Itoa(i%16))
			took := time.Since(t)
			if lctx.Err() != nil && err != nil {
				return // cut by the end of the soak
			}
			mu.Lock()
			defer mu.Unlock()
			m := bucket()
			m.posts++
			if err != nil {
				m.postErrors++
				return
			}
			created.Add(1)
			m.post = append(m.post, took)
			if len(recent) < 1000 {
				recent = append(recent, id)
			} else {
				recent[i%1000] = id
			}
		})
	})
	wg.Go(func() {
		rc := client(16)
		defer rc.CloseIdleConnections()
		paced(lctx, sc.reads, 16, func(i int) {
			var path string
			switch i % 3 {
			case 0:
				path = "/v1/messages?count=1&tag=soak" + strconv.Itoa(i%16)
			case 1:
				path = "/v1/messages?limit=20&tag=soak" + strconv.Itoa(i%16)
			default:
				mu.Lock()
				if len(recent) > 0 {
					path = "/v1/messages/" + recent[rand.IntN(len(recent))]
				}
				mu.Unlock()
				if path == "" {
					return
				}
			}
			t := time.Now()
			status, err := get(lctx, rc, "http://"+rs.queryAddr+path)
			took := time.Since(t)
			if lctx.Err() != nil && err != nil {
				return
			}
			mu.Lock()
			defer mu.Unlock()
			m := bucket()
			m.reads++
			switch {
			case err != nil || status != http.StatusOK && status != http.StatusNotFound:
				m.readErrors++
				return
			case status == http.StatusNotFound:
				m.notFound++
			}
			m.read = append(m.read, took)
		})
	})
	wg.Wait()
	if ctx.Err() != nil {
		return ctx.Err()
	}
	res.created = created.Load()
	log.Printf("soak: load done, %d messages created; waiting for the reducer", res.created)
	res.folded, res.caughtUp, err = waitCount(ctx, "http://"+rs.queryAddr, res.created, 5*time.Minute)
	if err != nil {
		return err
	}
	res.foldedIn = time.Since(res.started) - sc.duration
	for _, m := range res.minutes {
		log.Printf("soak minute: %d POSTs (%d errors) p99 %v; %d reads (%d errors, %d 404) p99 %v", m.posts, m.postErrors, m.post.pct(.99), m.reads, m.readErrors, m.notFound, m.read.pct(.99))
	}
	if err := writeSoakReport(cfg, sc, res); err != nil {
		return err
	}
	log.Printf("wrote %s", sc.out)
	return nil
}

// paced calls f(i) for i = 0, 1, … at rate a second until ctx ends, with at
// most conc calls at once; when the calls fall behind, it waits for a free
// slot rather than send more at once.
func paced(ctx context.Context, rate, conc int, f func(i int)) {
	if rate <= 0 {
		return
	}
	sem := make(chan struct{}, conc)
	var wg sync.WaitGroup
	defer wg.Wait()
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	start := time.Now()
	for i := 0; ; i++ {
		for int(time.Since(start).Seconds()*float64(rate)) < i {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
		select {
		case <-ctx.Done():
			return
		case sem <- struct{}{}:
		}
		wg.Go(func() {
			defer func() { <-sem }()
			f(i)
		})
	}
}

// get sends a GET and returns the status of its answer, read to the end.
func get(ctx context.Context, c *http.Client, url string) (int, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	req.Header.Set("X-User-ID", "bench")
	resp, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	_, err = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, err
}

// sampleProcs reads each process's resident memory and goroutines every
// interval, from the start until ctx ends.
func sampleProcs(ctx context.Context, rs *roleSet, interval time.Duration, res *soakResult) {
	c := client(4)
	defer c.CloseIdleConnections()
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		at := time.Since(res.started)
		for _, p := range rs.procs() {
			rss, err := p.p.rss()
			if err != nil {
				log.Printf("soak: %s: %v", p.name, err)
				continue
			}
			g, err := goroutines(ctx, c, "http://"+p.addr+"/metrics")
			if err != nil {
				if ctx.Err() != nil {
					return
				}
				log.Printf("soak: %s: %v", p.name, err)
				continue
			}
			res.samples[p.name] = append(res.samples[p.name], sample{at: at, rss: rss, goroutines: g})
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// goroutines reads go_goroutines from a process's /metrics.
func goroutines(ctx context.Context, c *http.Client, url string) (int, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "go_goroutines "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			return int(f), err
		}
	}
	return 0, fmt.Errorf("%s: no go_goroutines", url)
}

// slope is the least-squares slope of ys over xs.
func slope(xs, ys []float64) float64 {
	n := float64(len(xs))
	if n < 2 {
		return 0
	}
	var sx, sy, sxx, sxy float64
	for i := range xs {
		sx, sy, sxx, sxy = sx+xs[i], sy+ys[i], sxx+xs[i]*xs[i], sxy+xs[i]*ys[i]
	}
	d := n*sxx - sx*sx
	if d == 0 {
		return 0
	}
	return (n*sxy - sx*sy) / d
}

// steady are the samples after the first minute, the warm-up, when there
// are at least three of them; otherwise all.
func steady(ss []sample) []sample {
	var out []sample
	for _, s := range ss {
		if s.at >= time.Minute {
			out = append(out, s)
		}
	}
	if len(out) < 3 {
		return ss
	}
	return out
}

func writeSoakReport(cfg config, sc soakConfig, res *soakResult) error {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	w("# Soak\n\n")
	w("Written by `make soak` (`cmd/bench -soak`). The dispatcher, query and reducer roles run as processes of their own against the NATS and FerretDB of a `messages dev` (whose own roles stay idle). ")
	w("For %v the load sends %d POSTs a second and %d reads a second (a tag's count, a page of 20 of a tag, a recent message by id, in turn), paced, from an in-process Go client on the same machine. ", sc.duration, sc.rate, sc.reads)
	w("Every %v the resident memory (VmRSS) and goroutines (`go_goroutines`) of each process are read.\n\n", sc.sample)
	w("| machine | |\n| --- | --- |\n")
	w("| CPU | %s, %d cores |\n| memory | %s |\n| Go | %s |\n| date | %s |\n| commit | %s |\n| load average at start, end | %s, %s |\n| service flags added | %s |\n\n",
		cpuModel(), runtime.NumCPU(), memTotal(), runtime.Version(), res.started.UTC().Format("2006-01-02 15:04 MST"), gitCommit(cfg),
		res.loadStart, loadAvg(), orNone(strings.Join(cfg.devFlags, " ")))

	w("## Per minute\n\nA read by id of a message not folded yet answers 404: it counts as an answer, and the column says how many.\n\n")
	w("| minute | POSTs/s | POST errors | POST p50 | POST p99 | reads/s | read errors | reads 404 | read p50 | read p99 |\n| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n")
	for i, m := range res.minutes {
		length := min(time.Minute, sc.duration-time.Duration(i)*time.Minute).Seconds()
		w("| %d | %.0f | %d | %s | %s | %.0f | %d | %d | %s | %s |\n", i+1, float64(m.posts)/length, m.postErrors, ms(float64(m.post.pct(.5))), ms(float64(m.post.pct(.99))),
			float64(m.reads)/length, m.readErrors, m.notFound, ms(float64(m.read.pct(.5))), ms(float64(m.read.pct(.99))))
	}
	status := "all folded"
	if !res.caughtUp {
		status = "**not all folded**"
	}
	w("\n%d messages created; the read model counted %d messages %v after the load stopped (%s).\n\n", res.created, res.folded, res.foldedIn.Round(time.Second), status)

	w("## Memory and goroutines\n\nThe slope is the least-squares fit over the samples after the first minute (the warm-up), or over all of them when fewer than three come after it. ")
	w("A flat line is a slope near 0; a leak shows as a slope that stays positive as the soak goes on.\n\n")
	w("| process | resident first, last, peak | slope | goroutines first, last, peak | slope |\n| --- | --- | --- | --- | --- |\n")
	for _, name := range res.order {
		ss := res.samples[name]
		if len(ss) == 0 {
			continue
		}
		var xs, rss, gs []float64
		for _, s := range steady(ss) {
			xs = append(xs, s.at.Minutes())
			rss = append(rss, float64(s.rss)/(1<<20))
			gs = append(gs, float64(s.goroutines))
		}
		var peakRSS int64
		var peakG int
		for _, s := range ss {
			peakRSS, peakG = max(peakRSS, s.rss), max(peakG, s.goroutines)
		}
		first, last := ss[0], ss[len(ss)-1]
		w("| %s | %.1f, %.1f, %.1f MiB | %+.2f MiB/min | %d, %d, %d | %+.1f /min |\n", name,
			float64(first.rss)/(1<<20), float64(last.rss)/(1<<20), float64(peakRSS)/(1<<20), slope(xs, rss),
			first.goroutines, last.goroutines, peakG, slope(xs, gs))
	}
	w("\n### Samples\n\n| at |")
	for _, name := range res.order {
		w(" %s |", name)
	}
	w("\n| --- |%s\n", strings.Repeat(" --- |", len(res.order)))
	for i := range res.samples[res.order[0]] {
		w("| %v |", res.samples[res.order[0]][i].at.Round(time.Second))
		for _, name := range res.order {
			if ss := res.samples[name]; i < len(ss) {
				w(" %.1f MiB, %d |", float64(ss[i].rss)/(1<<20), ss[i].goroutines)
			} else {
				w(" |")
			}
		}
		w("\n")
	}
	return os.WriteFile(sc.out, []byte(b.String()), 0o644)
}
