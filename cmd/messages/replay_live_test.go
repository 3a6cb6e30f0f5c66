package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/messages-io/messages/internal/testkit"
	"github.com/messages-io/messages/message"
	"github.com/messages-io/messages/position"
)

// A replay switches the read model to a new generation: the consistency
// tokens of writes made before it are still met after it, and a live stream
// open across it sends every message once.
func TestTokensAndStreamsAcrossReplay(t *testing.T) {
	if testing.Short() {
		t.Skip("replays the dev stack's read model")
	}
	a, _ := startDevAddrs(t, t.TempDir(), nil)
	base := "http://" + a.API

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	resp := openStream(t, ctx, base)
	defer resp.Body.Close()
	streamed := make(chan string, 1000)
	go func() {
		defer close(streamed)
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			if d, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
				var m message.Message
				if json.Unmarshal([]byte(d), &m) == nil {
					streamed <- m.ID
				}
			}
		}
	}()

	post := func(n int) (string, string) {
		t.Helper()
		resp, body := call(t, http.MethodPost, base+"/v1/messages", fmt.Sprintf(`{"text":"m%d","tag":"r%d"}`, n, n%3))
		if resp.StatusCode != http.StatusCreated {
			t.Fatalf("POST: %d %s", resp.StatusCode, body)
		}
		var m message.Message
		if err := json.Unmarshal(body, &m); err != nil {
			t.Fatal(err)
		}
		return m.ID, resp.Header.Get(position.TokenHeader)
	}
	var ids, tokens []string
	for n := range 30 {
		id, tok := post(n)
		ids, tokens = append(ids, id), append(tokens, tok)
	}
	if out, err := tool(t, a, "replay", "--drop-old"); err != nil || !strings.Contains(out, "switched to generation 2") {
		t.Fatalf("replay: %v\n%s", err, out)
	}
	for n := 30; n < 40; n++ {
		id, tok := post(n)
		ids, tokens = append(ids, id), append(tokens, tok)
	}
	// Every token, old and new, is met at once in the new generation.
	h := http.Header{"X-User-Id": {"e2e-user"}, position.TokenHeader: {strings.Join(tokens, ",")}}
	res, body := send(t, http.MethodGet, base+"/v1/messages?count=1", h, "")
	if res.StatusCode != http.StatusOK || strings.TrimSpace(string(body)) != "40" {
		t.Fatalf("count with the 40 tokens after the replay: %d %s, want 40", res.StatusCode, body)
	}
	for i, id := range ids[:5] {
		h := http.Header{"X-User-Id": {"e2e-user"}, position.TokenHeader: {tokens[i]}}
		if res, body := send(t, http.MethodGet, base+"/v1/messages/"+id, h, ""); res.StatusCode != http.StatusOK {
			t.Errorf("GET %s with its token after the replay: %d %s", id, res.StatusCode, body)
		}
	}
	// The stream sent each of the 40 once, the switch notwithstanding.
	checkStreamedOnce(t, streamed, ids)
}

// openStream opens a live stream of every message of the API at base, as
// user watcher, for as long as ctx lasts. Until the query role has read the
// log's layout, a stream is answered 503 with Retry-After.
func openStream(t *testing.T, ctx context.Context, base string) *http.Response {
	t.Helper()
	var resp *http.Response
	testkit.Eventually(t, 30*time.Second, 50*time.Millisecond, func() error {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/v1/messages", nil)
		req.Header.Set("Accept", "text/event-stream")
		req.Header.Set("X-User-ID", "watcher")
		var err error
		if resp, err = http.DefaultClient.Do(req); err != nil {
			return err
		}
		if resp.StatusCode != http.StatusOK {
			resp.Body.Close()
			return fmt.Errorf("stream: %s", resp.Status)
		}
		return nil
	})
	return resp
}

// checkStreamedOnce checks that the ids streamed are ids, each once.
func checkStreamedOnce(t *testing.T, streamed <-chan string, ids []string) {
	t.Helper()
	seen := map[string]int{}
	deadline := time.After(30 * time.Second)
	for len(seen) < len(ids) {
		select {
		case id, ok := <-streamed:
			if !ok {
				t.Fatalf("the stream ended after %d messages", len(seen))
			}
			seen[id]++
		case <-deadline:
			t.Fatalf("streamed %d of %d messages within 30s", len(seen), len(ids))
		}
	}
	for _, id := range ids {
		if seen[id] != 1 {
			t.Errorf("%s streamed %d times", id, seen[id])
		}
	}
	select {
	case id := <-streamed:
		t.Errorf("streamed %s again", id)
	case <-time.After(300 * time.Millisecond):
	}
}
