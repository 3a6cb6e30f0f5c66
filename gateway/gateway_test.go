package gateway_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/messages-io/messages/api"
	"github.com/messages-io/messages/gateway"
	"github.com/messages-io/messages/internal/testkit"
	"github.com/messages-io/messages/web"
	"github.com/prometheus/client_golang/prometheus"
)

// config is a gateway with an HS256 secret in front of the given upstreams,
// the same for writes and reads.
func config(ups ...*upstream) gateway.Config {
	var urls []string
	for _, u := range ups {
		urls = append(urls, u.URL)
	}
	return gateway.Config{Dispatchers: urls, Queries: urls, Secret: secret}
}

// rawRequest sends a request written byte for byte, so that header names keep
// the spelling given, and returns the status code.
func rawRequest(t *testing.T, base, request string) int {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, request); err != nil {
		t.Fatal(err)
	}
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	_, _ = io.Copy(io.Discard, res.Body)
	return res.StatusCode
}

// userIDs are the values of every header an upstream saw whose name is some
// spelling of X-User-ID.
func userIDs(h http.Header) []string {
	var out []string
	for name, vs := range h {
		n := strings.ToLower(strings.ReplaceAll(name, "_", "-"))
		if n == "x-user-id" {
			out = append(out, vs...)
		}
	}
	return out
}

func TestSpoofedUserIDNeverReachesUpstream(t *testing.T) {
	up := newUpstream(t)
	g := startGateway(t, config(up), true)
	token := hs256(t, claims("alice"))
	tests := []struct {
		name    string
		headers string // raw header lines, each ending in \r\n
	}{
		{name: "canonical", headers: "X-User-ID: mallory\r\n"},
		{name: "lower case", headers: "x-user-id: mallory\r\n"},
		{name: "upper case", headers: "X-USER-ID: mallory\r\n"},
		{name: "twice", headers: "X-User-ID: mallory\r\nX-User-Id: eve\r\n"},
		{name: "comma-joined", headers: "X-User-ID: mallory, alice\r\n"},
		{name: "underscores", headers: "X_User_ID: mallory\r\n"},
		{name: "mixed separators", headers: "X-User_Id: mallory\r\n"},
		{name: "empty", headers: "X-User-ID: \r\n"},
	}
	for _, tt := range tests {
		for _, method := range []string{http.MethodGet, http.MethodPost} {
			t.Run(tt.name+" "+method, func(t *testing.T) {
				body := `{"text":"hello","tag":"gw"}`
				req := fmt.Sprintf("%s /v1/messages HTTP/1.1\r\nHost: gw\r\nConnection: close\r\nAuthorization: Bearer %s\r\n%s", method, token, tt.headers)
				if method == http.MethodPost {
					req += fmt.Sprintf("Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
				} else {
					req += "\r\n"
				}
				before := len(up.requests())
				if status := rawRequest(t, g.URL, req); status != http.StatusOK {
					t.Fatalf("status = %d, want 200", status)
				}
				got := up.requests()
				if len(got) != before+1 {
					t.Fatalf("upstream got %d requests, want %d", len(got)-before, 1)
				}
				last := got[len(got)-1]
				if ids := userIDs(last.Header); len(ids) != 1 || ids[0] != "alice" {
					t.Errorf("upstream saw X-User-ID headers %q, want only alice", ids)
				}
				if method == http.MethodPost && last.Body != body {
					t.Errorf("upstream body = %q, want %q", last.Body, body)
				}
			})
		}
		t.Run(tt.name+" without a token", func(t *testing.T) {
			before := len(up.requests())
			req := "GET /v1/messages HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n" + tt.headers + "\r\n"
			if status := rawRequest(t, g.URL, req); status != http.StatusUnauthorized {
				t.Errorf("status = %d, want 401", status)
			}
			if n := len(up.requests()); n != before {
				t.Errorf("upstream got %d requests, want none", n-before)
			}
		})
	}
}

func TestRequestIDPropagation(t *testing.T) {
	up := newUpstream(t)
	g := startGateway(t, config(up), true)
	token := hs256(t, claims("alice"))
	tests := []struct {
		name string
		sent string // "" sends none
		keep bool   // whether the gateway keeps it
	}{
		{name: "well-formed", sent: "client-req-42", keep: true},
		{name: "none"},
		{name: "malformed", sent: "has spaces and ünïcode"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			if tt.sent != "" {
				h.Set(web.RequestIDHeader, tt.sent)
			}
			res := g.do(t, http.MethodGet, "/v1/messages", token, h)
			if res.StatusCode != http.StatusOK {
				t.Fatalf("status = %d %s", res.StatusCode, res.Body)
			}
			echoed := res.Header.Values(web.RequestIDHeader)
			if len(echoed) != 1 {
				t.Fatalf("X-Request-ID on the response = %q, want exactly one", echoed)
			}
			if tt.keep && echoed[0] != tt.sent {
				t.Errorf("X-Request-ID = %q, want %q", echoed[0], tt.sent)
			}
			if !tt.keep && (echoed[0] == tt.sent || echoed[0] == "") {
				t.Errorf("X-Request-ID = %q, want a new one", echoed[0])
			}
			got := up.requests()
			last := got[len(got)-1]
			if sent := last.Header.Values(web.RequestIDHeader); len(sent) != 1 || sent[0] != echoed[0] {
				t.Errorf("upstream saw X-Request-ID %q, want %q", sent, echoed[0])
			}
			if xff := last.Header.Get("X-Forwarded-For"); xff != "127.0.0.1" {
				t.Errorf("upstream saw X-Forwarded-For %q, want 127.0.0.1", xff)
			}
		})
	}
}

func TestRoutes(t *testing.T) {
	dispatcher, query := newUpstream(t), newUpstream(t)
	g := startGateway(t, gateway.Config{Dispatchers: []string{dispatcher.URL}, Queries: []string{query.URL}, Secret: secret}, true)
	token := hs256(t, claims("alice"))
	tests := []struct {
		method, path string
		want         *upstream // nil: answered by the gateway
		status       int
	}{
		{method: http.MethodPost, path: "/v1/messages", want: dispatcher, status: http.StatusOK},
		{method: http.MethodGet, path: "/v1/messages?tag=go&limit=5", want: query, status: http.StatusOK},
		{method: http.MethodGet, path: "/v1/messages/01HQ3Z5Y8K6J9M2N4P7R0S1T2V", want: query, status: http.StatusOK},
		{method: http.MethodGet, path: "/v1/users", status: http.StatusNotFound},
		{method: http.MethodGet, path: "/v1/messages/01HQ3Z5Y8K6J9M2N4P7R0S1T2V/x", status: http.StatusNotFound},
		{method: http.MethodGet, path: "/V1/messages", status: http.StatusNotFound},
		{method: http.MethodGet, path: "/v1/messages/", status: http.StatusNotFound},
		{method: http.MethodGet, path: "/x/../v1/messages", status: http.StatusNotFound},
		{method: http.MethodDelete, path: "/v1/messages/01HQ3Z5Y8K6J9M2N4P7R0S1T2V", status: http.StatusMethodNotAllowed},
		{method: http.MethodPut, path: "/v1/messages", status: http.StatusMethodNotAllowed},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			nd, nq := len(dispatcher.requests()), len(query.requests())
			req, err := http.NewRequest(tt.method, g.URL+tt.path, strings.NewReader(`{"text":"a","tag":"b"}`))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Authorization", "Bearer "+token)
			req.Header.Set("Content-Type", "application/json")
			req.URL.Opaque = strings.SplitN(tt.path, "?", 2)[0] // keep the path as written
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			if res.StatusCode != tt.status {
				t.Fatalf("status = %d, want %d", res.StatusCode, tt.status)
			}
			dd, dq := len(dispatcher.requests())-nd, len(query.requests())-nq
			switch tt.want {
			case dispatcher:
				if dd != 1 || dq != 0 {
					t.Errorf("dispatcher got %d, query %d; want 1 and 0", dd, dq)
				}
			case query:
				if dd != 0 || dq != 1 {
					t.Errorf("dispatcher got %d, query %d; want 0 and 1", dd, dq)
				}
				last := query.requests()[len(query.requests())-1]
				if want := strings.SplitN(tt.path+"?", "?", 3)[1]; last.Query != want {
					t.Errorf("query string = %q, want %q", last.Query, want)
				}
			default:
				if dd+dq != 0 {
					t.Errorf("upstreams got %d requests, want none", dd+dq)
				}
			}
		})
	}
}

func TestPublicEndpoints(t *testing.T) {
	up := newUpstream(t)
	g := startGateway(t, config(up), true)
	res := g.do(t, http.MethodGet, api.DocumentPath, "", nil)
	if res.StatusCode != http.StatusOK || res.Body != string(api.Document()) {
		t.Errorf("GET %s = %d, %d bytes; want 200 and the document", api.DocumentPath, res.StatusCode, len(res.Body))
	}
	if ct := res.Header.Get("Content-Type"); ct != "application/yaml" {
		t.Errorf("Content-Type = %q, want application/yaml", ct)
	}
	if res := g.do(t, http.MethodGet, "/healthz", "", nil); res.StatusCode != http.StatusOK {
		t.Errorf("/healthz = %d", res.StatusCode)
	}
	problem(t, g.do(t, http.MethodGet, "/v1/messages", "", nil), http.StatusUnauthorized)
	problem(t, g.do(t, http.MethodGet, "/v1/messages", "", nil), http.StatusUnauthorized)
	g.do(t, http.MethodGet, "/v1/messages", hs256(t, claims("alice")), nil)
	res = g.do(t, http.MethodGet, "/metrics", "", nil)
	for _, want := range []string{
		`messages_gateway_auth_failures_total{reason="missing"} 2`,
		`messages_gateway_auth_failures_total{reason="expired"} 0`,
		`messages_gateway_rate_limited_requests_total 0`,
		`messages_gateway_upstream_up{pool="dispatcher",upstream="` + up.URL + `"} 1`,
		`messages_http_requests_total{code="401",method="GET",route="/v1/messages"} 2`,
		`messages_http_requests_total{code="200",method="GET",route="/v1/messages"} 1`,
	} {
		if !strings.Contains(res.Body, want+"\n") {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

func TestRateLimit(t *testing.T) {
	up := newUpstream(t)
	clock := testkit.NewClock(time.Now())
	cfg := config(up)
	cfg.Rate, cfg.Burst, cfg.Now = 1, 3, clock.Now
	g := startGateway(t, cfg, true)
	alice, bob := hs256(t, claims("alice")), hs256(t, claims("bob"))

	for i := range 3 {
		if res := g.do(t, http.MethodGet, "/v1/messages", alice, nil); res.StatusCode != http.StatusOK {
			t.Fatalf("request %d of the burst = %d, want 200", i+1, res.StatusCode)
		}
	}
	before := len(up.requests())
	res := g.do(t, http.MethodPost, "/v1/messages", alice, nil)
	problem(t, res, http.StatusTooManyRequests)
	if ra := res.Header.Get("Retry-After"); ra != "1" {
		t.Errorf("Retry-After = %q, want 1 (one request a second)", ra)
	}
	if n := len(up.requests()); n != before {
		t.Errorf("a limited request reached the upstream")
	}
	// Each user has their own bucket.
	if res := g.do(t, http.MethodGet, "/v1/messages", bob, nil); res.StatusCode != http.StatusOK {
		t.Errorf("another user = %d, want 200", res.StatusCode)
	}
	clock.Add(400 * time.Millisecond)
	problem(t, g.do(t, http.MethodGet, "/v1/messages", alice, nil), http.StatusTooManyRequests)
	clock.Add(600 * time.Millisecond)
	if res := g.do(t, http.MethodGet, "/v1/messages", alice, nil); res.StatusCode != http.StatusOK {
		t.Errorf("after a second = %d, want 200", res.StatusCode)
	}
	problem(t, g.do(t, http.MethodGet, "/v1/messages", alice, nil), http.StatusTooManyRequests)
	if got := g.metric(t, "messages_gateway_rate_limited_requests_total", nil); got != 3 {
		t.Errorf("rate limited requests = %v, want 3", got)
	}
	// A request without a valid token is refused before it costs a user
	// anything.
	problem(t, g.do(t, http.MethodGet, "/v1/messages", "", nil), http.StatusUnauthorized)
}

func TestRateLimitRetryAfterRoundsUp(t *testing.T) {
	up := newUpstream(t)
	clock := testkit.NewClock(time.Now())
	cfg := config(up)
	cfg.Rate, cfg.Burst, cfg.Now = 0.2, 1, clock.Now // one request every 5s
	g := startGateway(t, cfg, true)
	alice := hs256(t, claims("alice"))
	g.do(t, http.MethodGet, "/v1/messages", alice, nil)
	clock.Add(1500 * time.Millisecond)
	res := g.do(t, http.MethodGet, "/v1/messages", alice, nil)
	problem(t, res, http.StatusTooManyRequests)
	if ra := res.Header.Get("Retry-After"); ra != "4" {
		t.Errorf("Retry-After = %q, want 4 (3.5s rounded up)", ra)
	}
}

func TestUpstreamHealth(t *testing.T) {
	token := hs256(t, claims("alice"))

	t.Run("one of two down", func(t *testing.T) {
		live, dead := newUpstream(t), newUpstream(t)
		dead.Close()
		g := startGateway(t, config(live, dead), true)
		for i := range 10 {
			for _, method := range []string{http.MethodGet, http.MethodPost} {
				if res := g.do(t, method, "/v1/messages", token, nil); res.StatusCode != http.StatusOK {
					t.Fatalf("%s %d = %d %s, want 200", method, i, res.StatusCode, res.Body)
				}
			}
		}
		if n := len(live.requests()); n != 20 {
			t.Errorf("the live upstream got %d requests, want 20", n)
		}
	})

	t.Run("turns by turn", func(t *testing.T) {
		a, b := newUpstream(t), newUpstream(t)
		g := startGateway(t, config(a, b), true)
		eventually(t, func() error { return ready(g, 2) })
		for range 10 {
			g.do(t, http.MethodGet, "/v1/messages", token, nil)
		}
		if na, nb := len(a.requests()), len(b.requests()); na != 5 || nb != 5 {
			t.Errorf("upstreams got %d and %d requests, want 5 each", na, nb)
		}
	})

	// An upstream that dies between checks costs no request that can be
	// sent again safely: reads, and writes whose connection was refused, so
	// that nothing was sent. (A write sent on a kept-alive connection that
	// breaks may have been received; it is not repeated, and the caller gets
	// a 502.)
	for _, tt := range []struct {
		name      string
		method    string
		keepAlive bool
	}{
		{name: "reads on kept-alive connections", method: http.MethodGet, keepAlive: true},
		{name: "writes on new connections", method: http.MethodPost},
	} {
		t.Run("dies between checks: "+tt.name, func(t *testing.T) {
			checkUpstreamDiesBetweenChecks(t, token, tt.method, tt.keepAlive)
		})
	}

	t.Run("not ready, then ready again", func(t *testing.T) {
		a, b := newUpstream(t), newUpstream(t)
		g := startGateway(t, config(a, b), true)
		// Both are seen ready first, so that the 0 awaited below is from a
		// check made after b stopped being ready, not from before b's first
		// check, which may still find it ready.
		eventually(t, func() error { return ready(g, 2) })
		b.ready.Store(false)
		eventually(t, func() error { return ready(g, 1) })
		before := len(b.requests())
		for range 4 {
			g.do(t, http.MethodGet, "/v1/messages", token, nil)
		}
		if n := len(b.requests()) - before; n != 0 {
			t.Errorf("an upstream whose /readyz fails got %d requests", n)
		}
		b.ready.Store(true)
		eventually(t, func() error { return ready(g, 2) })
	})

	t.Run("all down", func(t *testing.T) { checkAllUpstreamsDown(t, token) })
}

// checkAllUpstreamsDown checks that with no upstream ready the gateway is
// not ready and answers 503 with Retry-After, and counts it.
func checkAllUpstreamsDown(t *testing.T, token string) {
	t.Helper()
	a, b := newUpstream(t), newUpstream(t)
	g := startGateway(t, config(a, b), true)
	a.Close()
	b.ready.Store(false)
	eventually(t, func() error { return ready(g, 0) })
	if res := g.do(t, http.MethodGet, "/readyz", "", nil); res.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("/readyz = %d, want 503", res.StatusCode)
	}
	for _, method := range []string{http.MethodGet, http.MethodPost} {
		res := g.do(t, method, "/v1/messages", token, nil)
		problem(t, res, http.StatusServiceUnavailable)
		if ra := res.Header.Get("Retry-After"); ra != "1" {
			t.Errorf("Retry-After = %q, want 1", ra)
		}
	}
	if got := g.metric(t, "messages_gateway_upstream_errors_total", map[string]string{"pool": "dispatcher", "reason": "unavailable"}); got != 1 {
		t.Errorf("upstream errors {dispatcher, unavailable} = %v, want 1", got)
	}
}

// checkUpstreamDiesBetweenChecks stops one of two upstreams between health
// checks and checks that requests of method, on kept-alive connections or
// not, all reach the live one.
func checkUpstreamDiesBetweenChecks(t *testing.T, token, method string, keepAlive bool) {
	t.Helper()
	a, b := newUpstream(t), newUpstream(t)
	cfg := config(a, b)
	cfg.HealthInterval = time.Hour // only the refused connection tells
	cfg.Transport = &http.Transport{DisableKeepAlives: !keepAlive}
	g := startGateway(t, cfg, true)
	eventually(t, func() error { return ready(g, 2) })
	for range 4 { // a kept-alive connection to each
		g.do(t, method, "/v1/messages", token, nil)
	}
	b.Close()
	before := len(a.requests())
	for i := range 6 {
		res := g.do(t, method, "/v1/messages", token, nil)
		if res.StatusCode != http.StatusOK {
			t.Fatalf("%s %d = %d %s, want 200", method, i, res.StatusCode, res.Body)
		}
	}
	got := a.requests()[before:]
	if len(got) != 6 {
		t.Fatalf("the live upstream got %d requests, want 6", len(got))
	}
	for _, r := range got {
		if method == http.MethodPost && r.Body != `{"text":"hello","tag":"gw"}` {
			t.Errorf("a retried POST reached the live upstream with body %q", r.Body)
		}
	}
	pool := map[string]string{http.MethodGet: "query", http.MethodPost: "dispatcher"}[method]
	if got := g.metric(t, "messages_gateway_upstream_up", map[string]string{"pool": pool, "upstream": b.URL}); got != 0 {
		t.Errorf("upstream_up of the dead one = %v, want 0", got)
	}
}

// ready checks that n upstreams of each pool are up, by the gateway's
// metrics.
func ready(g *testGateway, n int) error {
	families, err := g.reg.Gather()
	if err != nil {
		return err
	}
	up := map[string]int{}
	for _, f := range families {
		if f.GetName() != "messages_gateway_upstream_up" {
			continue
		}
		for _, m := range f.GetMetric() {
			if m.GetGauge().GetValue() == 1 {
				for _, l := range m.GetLabel() {
					if l.GetName() == "pool" {
						up[l.GetValue()]++
					}
				}
			}
		}
	}
	if up["dispatcher"] != n || up["query"] != n {
		return fmt.Errorf("up: %v, want %d of each", up, n)
	}
	return nil
}

func TestUpstreamTimeout(t *testing.T) {
	slow := newUpstream(t)
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	slow.handler = func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}
	cfg := config(slow)
	cfg.UpstreamTimeout = 100 * time.Millisecond
	g := startGateway(t, cfg, true)
	start := time.Now()
	res := g.do(t, http.MethodPost, "/v1/messages", hs256(t, claims("alice")), nil)
	elapsed := time.Since(start)
	p := problem(t, res, http.StatusGatewayTimeout)
	if !strings.Contains(p.Detail, "100ms") {
		t.Errorf("detail = %q, want it to name the timeout", p.Detail)
	}
	if elapsed < 100*time.Millisecond || elapsed > 3*time.Second {
		t.Errorf("answered after %s, want about 100ms", elapsed)
	}
	if got := g.metric(t, "messages_gateway_upstream_errors_total", map[string]string{"pool": "dispatcher", "reason": "timeout"}); got != 1 {
		t.Errorf("upstream errors {dispatcher, timeout} = %v, want 1", got)
	}
}

func TestUpstreamAnswersPassThrough(t *testing.T) {
	up := newUpstream(t)
	up.handler = func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v1/messages/broken" {
			// Cut the connection without answering.
			conn, _, err := http.NewResponseController(w).Hijack()
			if err == nil {
				conn.Close()
			}
			return
		}
		w.Header().Set("Retry-After", "7")
		w.Header().Set("Link", `</v1/messages?cursor=abc>; rel="next"`)
		// As the services do: echo the request id the gateway sent.
		w.Header().Set(web.RequestIDHeader, r.Header.Get(web.RequestIDHeader))
		web.WriteUnavailable(w, r, 7*time.Second, "read model down")
	}
	g := startGateway(t, config(up), true)
	token := hs256(t, claims("alice"))
	res := g.do(t, http.MethodGet, "/v1/messages", token, http.Header{web.RequestIDHeader: {"req-1"}})
	p := problem(t, res, http.StatusServiceUnavailable)
	if p.Detail != "read model down" || res.Header.Get("Retry-After") != "7" || res.Header.Get("Link") == "" {
		t.Errorf("the upstream's answer was changed: %s, headers %v", res.Body, res.Header)
	}
	if ids := res.Header.Values(web.RequestIDHeader); len(ids) != 1 || ids[0] != "req-1" {
		t.Errorf("X-Request-ID = %q, want only req-1", ids)
	}

	problem(t, g.do(t, http.MethodGet, "/v1/messages/broken", token, nil), http.StatusBadGateway)
	if got := g.metric(t, "messages_gateway_upstream_errors_total", map[string]string{"pool": "query", "reason": "failed"}); got != 1 {
		t.Errorf("upstream errors {query, failed} = %v, want 1", got)
	}
}

func TestCountPolicy(t *testing.T) {
	up := newUpstream(t)
	cfg := config(up)
	cfg.CountRole = "counter"
	g := startGateway(t, cfg, true)
	off := startGateway(t, config(up), true)

	plain := hs256(t, claims("alice"))
	listed := hs256(t, with(claims("alice"), "roles", []string{"reader", "counter"}))
	spaced := hs256(t, with(claims("alice"), "roles", "reader counter"))
	otherClaim := hs256(t, with(claims("alice"), "groups", []string{"counter"}))
	tests := []struct {
		name   string
		g      *testGateway
		token  string
		query  string
		status int
	}{
		{name: "count without the role", g: g, token: plain, query: "?count=1", status: http.StatusForbidden},
		{name: "count with filters, without the role", g: g, token: plain, query: "?tag=go&dateStart=2026-01-01&count=1", status: http.StatusForbidden},
		{name: "count repeated, without the role", g: g, token: plain, query: "?count=0&count=1", status: http.StatusForbidden},
		{name: "count escaped, without the role", g: g, token: plain, query: "?count=%31", status: http.StatusForbidden},
		{name: "role in another claim", g: g, token: otherClaim, query: "?count=1", status: http.StatusForbidden},
		{name: "count with the role in a list", g: g, token: listed, query: "?count=1", status: http.StatusOK},
		{name: "count with the role in a string", g: g, token: spaced, query: "?count=1", status: http.StatusOK},
		{name: "list without the role", g: g, token: plain, query: "?tag=go", status: http.StatusOK},
		{name: "count=0 without the role", g: g, token: plain, query: "?count=0", status: http.StatusOK},
		{name: "policy off", g: off, token: plain, query: "?count=1", status: http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(up.requests())
			res := tt.g.do(t, http.MethodGet, "/v1/messages"+tt.query, tt.token, nil)
			if tt.status == http.StatusForbidden {
				p := problem(t, res, http.StatusForbidden)
				if !strings.Contains(p.Detail, `"counter"`) {
					t.Errorf("detail = %q, want it to name the role", p.Detail)
				}
				if n := len(up.requests()); n != before {
					t.Errorf("a refused count reached the upstream")
				}
				return
			}
			if res.StatusCode != tt.status {
				t.Errorf("status = %d, want %d", res.StatusCode, tt.status)
			}
		})
	}
	if got := g.metric(t, "messages_gateway_count_denied_requests_total", nil); got != 5 {
		t.Errorf("count denials = %v, want 5", got)
	}
	// Reading one message needs no role either.
	if res := g.do(t, http.MethodGet, "/v1/messages/01HQ3Z5Y8K6J9M2N4P7R0S1T2V", plain, nil); res.StatusCode != http.StatusOK {
		t.Errorf("GET by id without the role = %d", res.StatusCode)
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  gateway.Config
		want string // a part of the error; "" for none
	}{
		{name: "secret", cfg: gateway.Config{Dispatchers: []string{"http://a:1"}, Queries: []string{"http://b:2"}, Secret: secret}},
		{name: "jwks", cfg: gateway.Config{Dispatchers: []string{"http://a:1"}, Queries: []string{"http://b:2"}, JWKS: "/etc/jwks.json"}},
		{name: "no key", cfg: gateway.Config{Dispatchers: []string{"http://a:1"}, Queries: []string{"http://b:2"}}, want: "secret"},
		{name: "short secret", cfg: gateway.Config{Dispatchers: []string{"http://a:1"}, Queries: []string{"http://b:2"}, Secret: []byte("short")}, want: "at least 32 bytes"},
		{name: "no dispatcher", cfg: gateway.Config{Queries: []string{"http://b:2"}, Secret: secret}, want: "no dispatcher"},
		{name: "upstream with a path", cfg: gateway.Config{Dispatchers: []string{"http://a:1/api"}, Queries: []string{"http://b:2"}, Secret: secret}, want: "without path"},
		{name: "upstream without scheme", cfg: gateway.Config{Dispatchers: []string{"a:1"}, Queries: []string{"http://b:2"}, Secret: secret}, want: "dispatcher upstream"},
		{name: "negative rate", cfg: gateway.Config{Dispatchers: []string{"http://a:1"}, Queries: []string{"http://b:2"}, Secret: secret, Rate: -1}, want: "rate"},
		{name: "rate without burst", cfg: gateway.Config{Dispatchers: []string{"http://a:1"}, Queries: []string{"http://b:2"}, Secret: secret, Rate: 5}, want: "burst"},
		{name: "failed authentications without burst", cfg: gateway.Config{Dispatchers: []string{"http://a:1"}, Queries: []string{"http://b:2"}, Secret: secret, AuthFailureRate: 2, AuthFailureBurst: -1}, want: "failed authentications"},
		{name: "failed authentications unlimited", cfg: gateway.Config{Dispatchers: []string{"http://a:1"}, Queries: []string{"http://b:2"}, Secret: secret, AuthFailureRate: -1}},
		{name: "negative timeout", cfg: gateway.Config{Dispatchers: []string{"http://a:1"}, Queries: []string{"http://b:2"}, Secret: secret, UpstreamTimeout: -time.Second}, want: "negative"},
		{name: "count role of two words", cfg: gateway.Config{Dispatchers: []string{"http://a:1"}, Queries: []string{"http://b:2"}, Secret: secret, CountRole: "a b"}, want: "one word"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := gateway.New(testkit.Logger(), prometheus.NewRegistry(), tt.cfg)
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("New: %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("New: %v, want an error about %q", err, tt.want)
			}
		})
	}
}

func TestTokenSignHS256(t *testing.T) {
	up := newUpstream(t)
	cfg := config(up)
	cfg.Issuer, cfg.Audience, cfg.CountRole, cfg.RoleClaim = "local", "messages", "counter", "perms"
	g := startGateway(t, cfg, true)
	now := time.Now()
	tok, err := gateway.Token{Subject: "alice", Roles: []string{"counter"}, RoleClaim: "perms", Issuer: "local", Audience: "messages", TTL: time.Minute}.SignHS256(secret, now)
	if err != nil {
		t.Fatal(err)
	}
	res := g.do(t, http.MethodGet, "/v1/messages?count=1", tok, nil)
	if res.StatusCode != http.StatusOK || !strings.Contains(res.Body, `"alice"`) {
		t.Errorf("count with a minted token = %d %s, want 200 for alice", res.StatusCode, res.Body)
	}
	parsed, err := jwt.Parse(tok, func(*jwt.Token) (any, error) { return secret, nil }, jwt.WithValidMethods([]string{"HS256"}))
	if err != nil {
		t.Fatal(err)
	}
	exp, _ := parsed.Claims.GetExpirationTime()
	if exp == nil || exp.Unix() != now.Add(time.Minute).Unix() {
		t.Errorf("exp = %v, want %v", exp, now.Add(time.Minute).Unix())
	}
	expired, err := gateway.Token{Subject: "alice", TTL: time.Minute}.SignHS256(secret, now.Add(-2*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	problem(t, startGateway(t, config(up), true).do(t, http.MethodGet, "/v1/messages", expired, nil), http.StatusUnauthorized)

	for _, bad := range []struct {
		name   string
		tok    gateway.Token
		secret []byte
	}{
		{"short secret", gateway.Token{Subject: "alice", TTL: time.Minute}, []byte("short")},
		{"bad user", gateway.Token{Subject: "alice smith", TTL: time.Minute}, secret},
		{"no user", gateway.Token{TTL: time.Minute}, secret},
		{"no lifetime", gateway.Token{Subject: "alice"}, secret},
		{"role of two words", gateway.Token{Subject: "alice", TTL: time.Minute, Roles: []string{"a b"}}, secret},
	} {
		if _, err := bad.tok.SignHS256(bad.secret, now); err == nil {
			t.Errorf("%s: signed, want an error", bad.name)
		}
	}
}

// TestAbandonedRequest: a request whose client goes away while the upstream
// works on it gets no answer, is counted and logged as 499 (never as 200 or
// as a 502 of the gateway's own), and is no upstream error.
func TestAbandonedRequest(t *testing.T) {
	slow := newUpstream(t)
	entered := make(chan struct{}, 1)
	slow.handler = func(w http.ResponseWriter, r *http.Request) {
		entered <- struct{}{}
		<-r.Context().Done()
	}
	logs := &testkit.Logs{}
	g := startGatewayLogging(t, config(slow), true, slog.New(slog.NewJSONHandler(logs, nil)))

	ctx, cancel := context.WithCancel(t.Context())
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, g.URL+"/v1/messages", strings.NewReader(`{"text":"hello","tag":"gw"}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+hs256(t, claims("alice")))
	done := make(chan error, 1)
	go func() {
		res, err := http.DefaultClient.Do(req)
		if err == nil {
			res.Body.Close()
		}
		done <- err
	}()
	select {
	case <-entered:
	case <-time.After(10 * time.Second):
		t.Fatal("the request did not reach the upstream within 10s")
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("client: %v, want context.Canceled", err)
	}

	labels := map[string]string{"route": "/v1/messages", "method": http.MethodPost}
	testkit.Eventually(t, 10*time.Second, 10*time.Millisecond, func() error {
		if n := g.metric(t, "messages_http_requests_total", labels); n != 1 {
			return fmt.Errorf("messages_http_requests_total%v = %v, want 1", labels, n)
		}
		if recs := logs.Records(t, "access"); len(recs) == 0 || recs[len(recs)-1]["path"] != "/v1/messages" {
			return fmt.Errorf("no access record of the request yet: %v", recs)
		}
		return nil
	})
	labels["code"] = "499"
	if n := g.metric(t, "messages_http_requests_total", labels); n != 1 {
		t.Errorf("messages_http_requests_total%v = %v, want 1", labels, n)
	}
	var access []map[string]any
	for _, rec := range logs.Records(t, "access") {
		if rec["path"] == "/v1/messages" {
			access = append(access, rec)
		}
	}
	if len(access) != 1 || access[0]["status"] != float64(web.StatusClientClosedRequest) {
		t.Errorf("access records of the request: %v, want one with status 499", access)
	}
	for _, reason := range []string{"unavailable", "timeout", "failed"} {
		if n := g.metric(t, "messages_gateway_upstream_errors_total", map[string]string{"pool": "dispatcher", "reason": reason}); n > 0 {
			t.Errorf("upstream errors {dispatcher, %s} = %v, want none", reason, n)
		}
	}
}
