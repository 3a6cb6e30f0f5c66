package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/messages-io/messages/internal/testkit"
	"github.com/messages-io/messages/message"
)

// Through the gateway, a live stream outlasts the upstream timeout, shows a
// message posted while it is open, and is logged once, when it ends.
func TestGatewayStreams(t *testing.T) {
	dev, _ := startDev(t, t.TempDir(), nil)
	logs := &testkit.Logs{}
	gw := startGatewayLogged(t, logs, "--dispatcher-urls", dev, "--query-urls", dev,
		"--upstream-timeout", "1s", "--stream-idle-timeout", "30s", "--rate", "1000", "--burst", "1000")
	token := mintToken(t, "--user", "alice")

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, gw+"/v1/messages?tag=live", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Accept", "text/event-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("stream: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	data := make(chan string, 16)
	go func() {
		defer close(data)
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			if d, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
				data <- d
			}
		}
	}()
	// Outlast the upstream timeout before anything is sent.
	time.Sleep(1500 * time.Millisecond)
	h := bearer(token)
	h.Set("Content-Type", "application/json")
	res, body := send(t, http.MethodPost, gw+"/v1/messages", h, `{"text":"streamed through","tag":"live"}`)
	if res.StatusCode != http.StatusCreated {
		t.Fatalf("POST: %d %s", res.StatusCode, body)
	}
	var posted message.Message
	if err := json.Unmarshal(body, &posted); err != nil {
		t.Fatal(err)
	}
	select {
	case d, ok := <-data:
		if !ok {
			t.Fatal("the stream ended")
		}
		var got message.Message
		if err := json.Unmarshal([]byte(d), &got); err != nil || got.ID != posted.ID || got.Text != posted.Text {
			t.Fatalf("streamed %s, want %+v", d, posted)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the posted message was not streamed within 20s")
	}
	if n := len(streamAccess(t, logs)); n != 0 {
		t.Errorf("%d access records while the stream is open, want none yet", n)
	}
	cancel()
	testkit.Eventually(t, 10*time.Second, 20*time.Millisecond, func() error {
		if recs := streamAccess(t, logs); len(recs) != 1 {
			return fmt.Errorf("%d access records of the stream, want 1", len(recs))
		}
		return nil
	})
	rec := streamAccess(t, logs)[0]
	if rec["status"] != float64(200) || rec["user_id"] != "alice" {
		t.Errorf("access record %v, want status 200 for alice", rec)
	}
}

// streamAccess returns the gateway's access records of GET /v1/messages.
func streamAccess(t *testing.T, logs *testkit.Logs) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, r := range logs.Records(t, "access") {
		if r["method"] == http.MethodGet && r["path"] == "/v1/messages" {
			out = append(out, r)
		}
	}
	return out
}

// startGatewayLogged runs `messages gateway` with args, its JSON log in
// logs, and returns its base URL once it is ready.
func startGatewayLogged(t *testing.T, logs io.Writer, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan Addrs, 1)
	done := make(chan error, 1)
	args = append([]string{"gateway", "--addr", "127.0.0.1:0", "--health-interval", "50ms", "--log-format", "json"}, args...)
	go func() {
		done <- run(ctx, args, env{getenv: secretEnv, stdout: io.Discard, stderr: logs, ready: func(a Addrs) { ready <- a }})
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			t.Error("gateway did not stop within 20s")
		}
	})
	var base string
	select {
	case a := <-ready:
		base = "http://" + a.API
	case err := <-done:
		t.Fatalf("gateway exited: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("gateway not serving within 10s")
	}
	testkit.Eventually(t, 10*time.Second, 20*time.Millisecond, func() error {
		res, err := http.Get(base + "/readyz")
		if err != nil {
			return err
		}
		res.Body.Close()
		if res.StatusCode != http.StatusOK {
			return fmt.Errorf("/readyz %d", res.StatusCode)
		}
		return nil
	})
	return base
}
