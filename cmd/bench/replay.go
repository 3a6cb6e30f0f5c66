package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// replayResult is one `messages replay` of the whole history into a new
// generation, verified and switched to while dev keeps serving.
type replayResult struct {
	size     int
	events   uint64
	foldRate float64       // events per second the replay folded at, verify apart
	wall     time.Duration // from start to exit: fold, verify and switch
	peak     int64         // the replay process's peak resident memory
	right    bool          // every query shape answered right on the new generation
}

// benchReplay rebuilds the read model of dev, holding size messages of h,
// with `messages replay` run as its own process, and then asks the API
// every query shape against the new generation.
func benchReplay(ctx context.Context, cfg config, d *dev, c *http.Client, h history, size int, rep *report) error {
	log.Printf("replay: rebuilding the read model of %d messages", total(size))
	cmd := exec.CommandContext(ctx, cfg.bin, "replay", "--json", "--nats-url", d.natsURL(), "--mongo-uri", d.mongoURI())
	t0 := time.Now()
	out, err := cmd.Output()
	if err != nil {
		return fmt.Errorf("replay: %w: %s", err, out)
	}
	res := &replayResult{size: size, wall: time.Since(t0)}
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		res.peak = ru.Maxrss << 10 // kB on Linux
	}
	var summary struct {
		Events     uint64  `json:"events"`
		EventsPerS float64 `json:"eventsPerSecond"`
		Switched   bool    `json:"switched"`
		Generation int     `json:"generation"`
	}
	if err := json.Unmarshal(out, &summary); err != nil {
		return fmt.Errorf("replay summary %q: %w", out, err)
	}
	if !summary.Switched {
		return fmt.Errorf("replay did not switch: %s", out)
	}
	res.events, res.foldRate = summary.Events, summary.EventsPerS
	rep.replay = res
	log.Printf("replay: %d events at %.0f events/s, %v with verify and switch; peak resident %.1f MiB",
		res.events, res.foldRate, res.wall.Round(time.Second), float64(res.peak)/(1<<20))
	if err := waitGeneration(ctx, c, "http://"+d.api, summary.Generation, time.Minute); err != nil {
		return err
	}
	if err := readShapes(ctx, c, "http://"+d.api, h, size); err != nil {
		return fmt.Errorf("query shapes after the replay: %w", err)
	}
	res.right = true
	return nil
}

// waitGeneration polls the query API until its lists name generation gen
// in their ETag, for at most timeout.
func waitGeneration(ctx context.Context, c *http.Client, base string, gen int, timeout time.Duration) error {
	want := fmt.Sprintf(`W/"g%d-`, gen)
	deadline := time.Now().Add(timeout)
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/v1/messages?count=1", nil)
		req.Header.Set("X-User-ID", "bench")
		resp, err := c.Do(req)
		if err != nil {
			return err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		et := resp.Header.Get("ETag")
		if resp.StatusCode == http.StatusOK && strings.HasPrefix(et, want) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the query API still answers %s (ETag %q) %v after the switch to generation %d", resp.Status, et, timeout, gen)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// writeReplay writes the replay section of the report.
func writeReplay(w func(string, ...any), r *replayResult) {
	w("## Replay (dev)\n\n")
	w("`messages replay` run as its own process against the dev of the count benchmark once it held the largest size: it folds the whole log into a new generation in batches of the reducers' size, verifies it against the log, and switches to it while dev keeps serving. Once the query API's ETags name the new generation, every query shape is asked through the API once and its answer checked against the imported file. One run.\n\n")
	w("| messages | events folded | fold, events/s | start to exit, verify and switch included | peak resident of the replay | answers after the switch |\n| ---: | ---: | ---: | ---: | ---: | --- |\n")
	answers := "wrong"
	if r.right {
		answers = "right"
	}
	w("| %d | %d | %.0f | %v | %.1f MiB | %s |\n\n", total(r.size), r.events, r.foldRate, r.wall.Round(time.Second),
		float64(r.peak)/(1<<20), answers)
}
