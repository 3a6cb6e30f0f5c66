package main

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/messages-io/messages/position"
)

// Read your writes on the dev stack: each of 200 rounds posts a message and
// at once counts the tag's messages, sending the POST's Consistency-Token
// back, and every count is exact. A control run of the same rounds without
// the token must see the count behind at least once; otherwise this test
// could not tell the token from a fold that is always quick.
func TestReadYourWrites(t *testing.T) {
	if testing.Short() {
		t.Skip("400 rounds on the dev stack")
	}
	base, _ := startDev(t, t.TempDir(), nil)
	const rounds = 200
	round := func(tag string, n int, withToken bool) (count int) {
		t.Helper()
		resp, body := call(t, http.MethodPost, base+"/v1/messages", fmt.Sprintf(`{"text":"round %d","tag":%q}`, n, tag))
		if resp.StatusCode != http.StatusCreated {
			t.Fatalf("POST: %d %s", resp.StatusCode, body)
		}
		tok := resp.Header.Get(position.TokenHeader)
		if tok == "" {
			t.Fatal("a 201 without Consistency-Token")
		}
		h := http.Header{"X-User-Id": {"e2e-user"}}
		if withToken {
			h.Set(position.TokenHeader, tok)
		}
		resp, body = send(t, http.MethodGet, base+"/v1/messages?count=1&tag="+tag, h, "")
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET count: %d %s", resp.StatusCode, body)
		}
		count, err := strconv.Atoi(strings.TrimSpace(string(body)))
		if err != nil {
			t.Fatalf("count %q: %v", body, err)
		}
		return count
	}

	behind := 0
	for n := 1; n <= rounds; n++ {
		if got := round("control", n, false); got < n {
			behind++
		} else if got > n {
			t.Fatalf("control round %d: count %d", n, got)
		}
	}
	t.Logf("without the token, %d of %d reads missed their own write", behind, rounds)
	if behind == 0 {
		t.Fatal("no read without the token missed its write: this test cannot tell the token works")
	}
	for n := 1; n <= rounds; n++ {
		if got := round("ryw", n, true); got != n {
			t.Fatalf("round %d with the token: count %d, want %d", n, got, n)
		}
	}
}

// Through the gateway: the token of a POST makes the next read see it, a
// repeated read with its ETag gets 304, and after another write 200 with a
// new ETag.
func TestConsistencyThroughGateway(t *testing.T) {
	dev, _ := startDev(t, t.TempDir(), nil)
	gw := startGatewayCmd(t, dev, dev, "--rate", "1000", "--burst", "1000")
	alice := bearer(mintToken(t, "--user", "alice"))
	tag := fmt.Sprintf("gw-ryw-%d", time.Now().UnixNano())
	target := gw + "/v1/messages?count=1&tag=" + tag
	post := func(text string) string {
		t.Helper()
		h := alice.Clone()
		h.Set("Content-Type", "application/json")
		res, body := send(t, http.MethodPost, gw+"/v1/messages", h, fmt.Sprintf(`{"text":%q,"tag":%q}`, text, tag))
		if res.StatusCode != http.StatusCreated || res.Header.Get(position.TokenHeader) == "" {
			t.Fatalf("POST: %d %s, token %q", res.StatusCode, body, res.Header.Get(position.TokenHeader))
		}
		return res.Header.Get(position.TokenHeader)
	}
	get := func(h http.Header) (*http.Response, string) {
		t.Helper()
		res, body := send(t, http.MethodGet, target, h, "")
		return res, strings.TrimSpace(string(body))
	}

	h := alice.Clone()
	h.Set(position.TokenHeader, post("one"))
	res, n := get(h)
	etag := res.Header.Get("ETag")
	if res.StatusCode != http.StatusOK || n != "1" || etag == "" {
		t.Fatalf("count with the token: %d %q ETag %q, want 200 1 with an ETag", res.StatusCode, n, etag)
	}
	h = alice.Clone()
	h.Set("If-None-Match", etag)
	if res, body := get(h); res.StatusCode != http.StatusNotModified || body != "" {
		t.Fatalf("If-None-Match: %d %q, want 304", res.StatusCode, body)
	}
	h.Set(position.TokenHeader, post("two"))
	res, n = get(h)
	if res.StatusCode != http.StatusOK || n != "2" || res.Header.Get("ETag") == etag {
		t.Fatalf("after a write: %d %q ETag %q, want 200 2 with a new ETag", res.StatusCode, n, res.Header.Get("ETag"))
	}
	bad := alice.Clone()
	bad.Set(position.TokenHeader, "garbage")
	if res, body := get(bad); res.StatusCode != http.StatusBadRequest {
		t.Errorf("a malformed token: %d %s, want 400", res.StatusCode, body)
	}
}
