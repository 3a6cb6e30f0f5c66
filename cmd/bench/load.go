package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// client is an HTTP client that keeps connections alive.
func client(conns int) *http.Client {
	return &http.Client{
		Timeout: 30 * time.Second,
		Transport: &http.Transport{
			MaxIdleConns:        conns,
			MaxIdleConnsPerHost: conns,
			DisableCompression:  true,
			IdleConnTimeout:     time.Minute,
		},
	}
}

// post sends one message and returns its id.
func post(ctx context.Context, c *http.Client, base, text, tag string) (string, error) {
	body := `{"text":` + strconv.Quote(text) + `,"tag":"` + tag + `"}`
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, base+"/v1/messages", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-User-ID", "bench")
	resp, err := c.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusCreated {
		return "", fmt.Errorf("POST: %s: %s", resp.Status, b)
	}
	loc := resp.Header.Get("Location")
	return loc[strings.LastIndexByte(loc, '/')+1:], nil
}

// count asks the query API for a count.
func count(ctx context.Context, c *http.Client, base, query string) (int64, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/v1/messages?count=1&"+query, nil)
	req.Header.Set("X-User-ID", "bench")
	resp, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("GET count %s: %s: %s", query, resp.Status, b)
	}
	return strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
}

// latencies are durations of one kind of request.
type latencies []time.Duration

func (l latencies) pct(p float64) time.Duration {
	if len(l) == 0 {
		return 0
	}
	s := slices.Clone(l)
	slices.Sort(s)
	i := int(p*float64(len(s))+0.5) - 1
	return s[max(0, min(i, len(s)-1))]
}

// postResult is one run of POST load.
type postResult struct {
	rps      float64
	p50, p99 time.Duration
	errors   int64
	// serviceCores and loadCores are the CPU the service and the load
	// generator used during the run, in cores.
	serviceCores, loadCores float64
}

// postLoad posts from clients concurrent clients for d and measures each
// request.
func postLoad(ctx context.Context, base string, clients int, d time.Duration) postResult {
	c := client(clients)
	defer c.CloseIdleConnections()
	var mu sync.Mutex
	var all latencies
	var errs atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	deadline := start.Add(d)
	for w := range clients {
		wg.Go(func() {
			var mine latencies
			for i := 0; time.Now().Before(deadline) && ctx.Err() == nil; i++ {
				t := time.Now()
				_, err := post(ctx, c, base, fmt.Sprintf("load %d-%d", w, i), "load"+strconv.Itoa(i%8))
				if err != nil {
					errs.Add(1)
					continue
				}
				mine = append(mine, time.Since(t))
			}
			mu.Lock()
			all = append(all, mine...)
			mu.Unlock()
		})
	}
	wg.Wait()
	el := time.Since(start)
	return postResult{rps: float64(len(all)) / el.Seconds(), p50: all.pct(.50), p99: all.pct(.99), errors: errs.Load()}
}

// lagResult is one run of the visibility measurement.
type lagResult struct {
	p50, p99 time.Duration
	probes   int     // probes sent, each measured
	rate     float64 // messages per second achieved
	missed   int     // probes not visible within the wait, counted at it
}

// probeEvery is how often a visibility probe asks for its count, which
// bounds the error of a lag measured to it.
const probeEvery = 5 * time.Millisecond

// visibilityLag posts rate messages per second for d. Every tenth of a second
// one of them is a probe under a tag of its own; after its 201, the probe's
// tag is counted until it shows, and the lag is the time from the 201 to the
// answer that showed it.
func visibilityLag(ctx context.Context, base string, rate int, d time.Duration, run int) lagResult {
	return visibilityLagWith(ctx, base, rate, d, run, nil)
}

// visibilityLagWith is visibilityLag telling created of each 201: the
// message's id, its tag and when the 201 came.
func visibilityLagWith(ctx context.Context, base string, rate int, d time.Duration, run int, created func(id, tag string, at time.Time)) lagResult {
	c := client(128)
	defer c.CloseIdleConnections()
	var mu sync.Mutex
	var lags latencies
	var missed, sent atomic.Int64
	var wg sync.WaitGroup
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	start := time.Now()
	sem := make(chan struct{}, 256)
	// Each tick sends the messages due by then, so the rate holds even when
	// ticks are late.
	for i := 0; time.Since(start) < d && ctx.Err() == nil; i++ {
		for int(time.Since(start).Seconds()*float64(rate)) < i {
			<-tick.C
		}
		probe := i%(rate/10) == 0
		tag := "steady" + strconv.Itoa(i%8)
		if probe {
			tag = fmt.Sprintf("probe%dx%d", run, i)
		}
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			id, err := post(ctx, c, base, "steady "+strconv.Itoa(i), tag)
			if err != nil {
				return
			}
			if created != nil {
				created(id, tag, time.Now())
			}
			sent.Add(1)
			if !probe {
				return
			}
			// A probe asks every probeEvery: asking as fast as answers
			// come would load the service with the probes themselves, the
			// more the longer the lag, and so make the lag it measures.
			acked := time.Now()
			for time.Since(acked) < 10*time.Second {
				n, err := count(ctx, c, base, "tag="+tag)
				if err == nil && n == 1 {
					mu.Lock()
					lags = append(lags, time.Since(acked))
					mu.Unlock()
					return
				}
				time.Sleep(probeEvery)
			}
			// Not visible within the wait: counted at the wait, so that
			// the percentiles are lower bounds rather than flattering.
			missed.Add(1)
			mu.Lock()
			lags = append(lags, time.Since(acked))
			mu.Unlock()
		})
	}
	wg.Wait()
	return lagResult{p50: lags.pct(.5), p99: lags.pct(.99), probes: len(lags), missed: int(missed.Load()),
		rate: float64(sent.Load()) / d.Seconds()}
}
