package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"log"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// streamResult is one run of live streams under a steady load: the time
// from each 201 to each subscriber's receipt of that message, beside the
// visibility lag measured in the same run.
type streamResult struct {
	kind        string // "tagged" or "all tags"
	subscribers int
	delivered   int // (subscriber, message) pairs received
	expected    int // pairs that should have been
	p50, p99    time.Duration
	// first is the time from a 201 to the first subscriber's receipt, and
	// spread from the first receipt of a message to its last: what the
	// fold and the feed take, and what reaching every subscriber adds.
	first, spread latencies
	lag           lagResult
	tokenWait     latencies // GETs with a consistency token, in the tagged run
	dropped       float64   // streams the service disconnected as too slow
}

// idleResult is the memory of a query role holding idle streams.
type idleResult struct {
	streams      int
	before, with int64 // resident bytes
}

// benchStreams measures live streams against a fresh dev: at cfg.lagRate
// messages a second, 100 subscribers on tag streams, then 100 on the
// all-tags stream; and GETs carrying a consistency token.
func benchStreams(ctx context.Context, cfg config, dir string, rep *report) error {
	cfg.devFlags = append(append([]string(nil), cfg.devFlags...), "--streams-per-user", "1000")
	d, err := startDev(ctx, cfg, dir, "streams")
	if err != nil {
		return err
	}
	defer d.stop()
	base := "http://" + d.api
	for run, kind := range []string{"tagged", "all tags"} {
		res, err := streamRun(ctx, base, kind, 100, cfg.lagRate, cfg.lagFor, run)
		if err != nil {
			return err
		}
		log.Printf("streams, %s, %d subscribers at %.0f msg/s: 201 to event p50 %v p99 %v (%d of %d delivered, %.0f streams dropped as slow); visibility p50 %v p99 %v; first receipt p99 %v, spread to the last p50 %v p99 %v",
			kind, res.subscribers, res.lag.rate, res.p50, res.p99, res.delivered, res.expected, res.dropped, res.lag.p50, res.lag.p99,
			res.first.pct(.99), res.spread.pct(.5), res.spread.pct(.99))
		if len(res.tokenWait) > 0 {
			log.Printf("streams: GET with a consistency token right after its 201: p50 %v p99 %v (%d GETs)", res.tokenWait.pct(.5), res.tokenWait.pct(.99), len(res.tokenWait))
		}
		rep.streams = append(rep.streams, res)
	}
	return nil
}

// streamRun opens subs streams (each on one of the steady tags, or all on
// the all-tags stream), posts at rate for dur as visibilityLag does, and
// times each message from its 201 to each receipt.
func streamRun(ctx context.Context, base, kind string, subs, rate int, dur time.Duration, run int) (streamResult, error) {
	res := streamResult{kind: kind, subscribers: subs}
	var mu sync.Mutex
	type post struct {
		tag string
		at  time.Time // its 201
	}
	created := map[string]post{} // by message id
	type receipt struct {
		id [26]byte
		at time.Time
	}
	receipts := make([][]receipt, subs)
	for i := range receipts {
		// Room for every message of the run, so that no receipt waits
		// for its slice to grow.
		receipts[i] = make([]receipt, 0, rate*int(dur.Seconds()+1))
	}
	var received atomic.Int64
	dropped0 := metricValue(ctx, base, "messages_query_streams_dropped_total")
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	c := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: subs, DisableCompression: true}}
	tags := make([]string, subs)
	for i := range subs {
		path := "/v1/messages"
		if kind == "tagged" {
			tags[i] = "steady" + strconv.Itoa(i%8)
			path += "?tag=" + tags[i]
		}
		body, err := openSSE(sctx, c, base+path, fmt.Sprintf("sub%d", i))
		if err != nil {
			return res, err
		}
		wg.Go(func() {
			defer body.Close()
			sc := bufio.NewScanner(body)
			for sc.Scan() {
				// The client's work per line stays small, so that the
				// bench's own load weighs little on the service it times.
				data, ok := bytes.CutPrefix(sc.Bytes(), dataField)
				if !ok {
					continue
				}
				// The id is the first field of the message's JSON.
				if at := bytes.Index(data, idField); at >= 0 && len(data) >= at+6+26 {
					receipts[i] = append(receipts[i], receipt{[26]byte(data[at+6 : at+6+26]), time.Now()})
					received.Add(1)
				}
			}
		})
	}
	// Token waits run beside the load in the tagged run.
	var tokenWait latencies
	stopTokens := make(chan struct{})
	var twg sync.WaitGroup
	if kind == "tagged" {
		twg.Go(func() {
			tc := client(2)
			for n := 0; ; n++ {
				select {
				case <-stopTokens:
					return
				default:
				}
				tok, err := postToken(ctx, tc, base, "token "+strconv.Itoa(n), fmt.Sprintf("tok%dx%d", run, n))
				if err != nil {
					continue
				}
				t0 := time.Now()
				if _, err := countWith(ctx, tc, base, fmt.Sprintf("tag=tok%dx%d", run, n), tok); err == nil {
					tokenWait = append(tokenWait, time.Since(t0))
				}
			}
		})
	}
	res.lag = visibilityLagWith(ctx, base, rate, dur, run, func(id, tag string, at time.Time) {
		mu.Lock()
		created[id] = post{tag: tag, at: at}
		mu.Unlock()
	})
	close(stopTokens)
	twg.Wait()
	res.tokenWait = tokenWait
	// Let the last messages arrive, until none has for 2 s (at most 60 s),
	// then close the streams.
	for last, quiet, waited := received.Load(), 0, 0; quiet < 4 && waited < 120 && ctx.Err() == nil; waited++ {
		time.Sleep(500 * time.Millisecond)
		if n := received.Load(); n != last {
			last, quiet = n, 0
		} else {
			quiet++
		}
	}
	res.dropped = metricValue(ctx, base, "messages_query_streams_dropped_total") - dropped0
	cancel()
	wg.Wait()
	// Each receipt's time from the 201, and each message's first and last
	// receipt.
	var ds latencies
	type span struct{ first, last time.Time }
	spans := map[[26]byte]span{}
	for _, rs := range receipts {
		for _, r := range rs {
			p, ok := created[string(r.id[:])]
			if !ok {
				continue
			}
			ds = append(ds, r.at.Sub(p.at))
			sp, seen := spans[r.id]
			if !seen || r.at.Before(sp.first) {
				sp.first = r.at
			}
			if !seen || r.at.After(sp.last) {
				sp.last = r.at
			}
			spans[r.id] = sp
		}
	}
	for id, sp := range spans {
		res.first = append(res.first, sp.first.Sub(created[string(id[:])].at))
		res.spread = append(res.spread, sp.last.Sub(sp.first))
	}
	res.delivered = len(ds)
	for _, p := range created {
		for _, tag := range tags {
			if tag == "" || tag == p.tag {
				res.expected++
			}
		}
	}
	res.p50, res.p99 = ds.pct(.5), ds.pct(.99)
	return res, nil
}

var dataField, idField = []byte("data: "), []byte(`"id":"`)

// openSSE opens a live stream at url as user and returns its body.
func openSSE(ctx context.Context, c *http.Client, url, user string) (io.ReadCloser, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("X-User-ID", user)
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return nil, fmt.Errorf("stream %s: %s: %s", url, resp.Status, b)
	}
	return resp.Body, nil
}

// postToken posts a message and returns its consistency token.
func postToken(ctx context.Context, c *http.Client, base, text, tag string) (string, error) {
	body := `{"text":` + strconv.Quote(text) + `,"tag":"` + tag + `"}`
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, base+"/v1/messages", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-User-ID", "bench")
	resp, err := c.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != http.StatusCreated {
		return "", fmt.Errorf("POST: %s", resp.Status)
	}
	return resp.Header.Get("Consistency-Token"), nil
}

// countWith counts with a consistency token, which must show the write.
func countWith(ctx context.Context, c *http.Client, base, query, token string) (int64, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/v1/messages?count=1&"+query, nil)
	req.Header.Set("X-User-ID", "bench")
	req.Header.Set("Consistency-Token", token)
	resp, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("GET count %s: %s: %s", query, resp.Status, b)
	}
	n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err == nil && n != 1 {
		return n, fmt.Errorf("GET count %s with its token: %d, want 1", query, n)
	}
	return n, err
}

// benchIdleStreams starts a query role of its own against a dev's servers,
// reads its resident memory idle, opens n idle streams and reads it again.
func benchIdleStreams(ctx context.Context, cfg config, dir string, rep *report, n int) error {
	d, err := startDev(ctx, cfg, dir, "idle-infra")
	if err != nil {
		return err
	}
	defer d.stop()
	addr := freeAddr()
	q, err := start(dir, cfg.bin, "idle-query", "query", "--addr", addr, "--nats-url", d.natsURL(), "--mongo-uri", d.mongoURI(), "--log-level", "warn")
	if err != nil {
		return err
	}
	defer q.stop()
	base := "http://" + addr
	if err := q.waitReady(ctx, base+"/readyz", time.Minute); err != nil {
		return err
	}
	// Serve a few reads and a stream first, so that what is measured next
	// is the streams, not a warming runtime.
	c := client(4)
	for range 20 {
		_, _ = count(ctx, c, base, "tag=warm")
	}
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var first io.ReadCloser
	for {
		first, err = openSSE(sctx, http.DefaultClient, base+"/v1/messages", "warm")
		if err == nil || ctx.Err() != nil {
			break
		}
		time.Sleep(100 * time.Millisecond) // the feed reaches the log
	}
	if err != nil {
		return err
	}
	first.Close()
	time.Sleep(2 * time.Second)
	before, err := q.rss()
	if err != nil {
		return err
	}
	sc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: n, DisableCompression: true}}
	for i := range n {
		body, err := openSSE(sctx, sc, base+"/v1/messages", "idle"+strconv.Itoa(i))
		if err != nil {
			return fmt.Errorf("stream %d: %w", i, err)
		}
		defer body.Close()
	}
	time.Sleep(2 * time.Second)
	with, err := q.rss()
	if err != nil {
		return err
	}
	log.Printf("idle streams: query role resident %.1f MiB idle, %.1f MiB holding %d streams (+%.1f MiB)",
		float64(before)/(1<<20), float64(with)/(1<<20), n, float64(with-before)/(1<<20))
	rep.idle = &idleResult{streams: n, before: before, with: with}
	return nil
}

// metricValue reads one unlabelled series from base's /metrics, 0 when it
// cannot.
func metricValue(ctx context.Context, base, name string) float64 {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/metrics", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			f, _ := strconv.ParseFloat(strings.TrimSpace(v), 64)
			return f
		}
	}
	return 0
}
