package gateway_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/netip"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/messages-io/messages/internal/testkit"
)

// from sends a GET with token ("" for none) to the gateway from the local
// address ip, and returns the answer.
func (g *testGateway) from(t *testing.T, ip, path, token string) response {
	t.Helper()
	dialer := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
	client := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			return dialer.DialContext(ctx, network, addr)
		},
	}}
	defer client.CloseIdleConnections()
	req, err := http.NewRequest(http.MethodGet, g.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := client.Do(req)
	if err != nil {
		t.Fatalf("GET %s from %s: %v", path, ip, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{Response: res, Body: string(b)}
}

// Failed authentications are limited per client address: once an address
// has used them up it is answered 429 without its token being checked, so
// guessing costs time; requests that authenticate spend nothing, and other
// addresses are not affected.
func TestAuthFailureLimit(t *testing.T) {
	up := newUpstream(t)
	clock := testkit.NewClock(time.Now())
	cfg := config(up)
	cfg.AuthFailureRate, cfg.AuthFailureBurst, cfg.Now = 1, 3, clock.Now
	g := startGateway(t, cfg, true)
	good := hs256(t, claims("alice"))
	forged := sign(t, jwt.SigningMethodHS256, []byte("a guessed secret, also 32 bytes long"), "", claims("alice"))
	const here, there = "127.0.0.1", "127.0.0.2"
	failures := func() float64 {
		return g.metric(t, "messages_gateway_auth_failures_total", map[string]string{"reason": "signature"})
	}

	for i := range 3 {
		problem(t, g.from(t, here, "/v1/messages", forged), http.StatusUnauthorized)
		if got := failures(); got != float64(i+1) {
			t.Fatalf("signature failures = %v, want %d", got, i+1)
		}
	}
	before := len(up.requests())
	res := g.from(t, here, "/v1/messages", forged)
	problem(t, res, http.StatusTooManyRequests)
	if ra := res.Header.Get("Retry-After"); ra != "1" {
		t.Errorf("Retry-After = %q, want 1 (one failure a second)", ra)
	}
	if got := failures(); got != 3 {
		t.Errorf("signature failures = %v after a limited request, want 3: its token must not be checked", got)
	}
	// While limited, no token from the address is checked: a right guess
	// is refused like a wrong one.
	problem(t, g.from(t, here, "/v1/messages", good), http.StatusTooManyRequests)
	problem(t, g.from(t, here, "/v1/messages", ""), http.StatusTooManyRequests)
	if n := len(up.requests()); n != before {
		t.Errorf("a limited request reached the upstream")
	}
	if got := g.metric(t, "messages_gateway_auth_limited_requests_total", nil); got != 3 {
		t.Errorf("auth limited requests = %v, want 3", got)
	}
	// Another address has its own budget.
	problem(t, g.from(t, there, "/v1/messages", forged), http.StatusUnauthorized)
	if res := g.from(t, there, "/v1/messages", good); res.StatusCode != http.StatusOK {
		t.Errorf("a good token from another address = %d %s, want 200", res.StatusCode, res.Body)
	}

	// One failure a second comes back.
	clock.Add(400 * time.Millisecond)
	problem(t, g.from(t, here, "/v1/messages", forged), http.StatusTooManyRequests)
	clock.Add(600 * time.Millisecond)
	problem(t, g.from(t, here, "/v1/messages", forged), http.StatusUnauthorized)
	problem(t, g.from(t, here, "/v1/messages", forged), http.StatusTooManyRequests)

	// Requests that authenticate spend nothing: after the refill, many good
	// requests leave the whole burst of failures.
	clock.Add(3 * time.Second)
	for i := range 50 {
		if res := g.from(t, here, "/v1/messages", good); res.StatusCode != http.StatusOK {
			t.Fatalf("good request %d = %d %s, want 200", i+1, res.StatusCode, res.Body)
		}
	}
	for i := range 3 {
		if res := g.from(t, here, "/v1/messages", forged); res.StatusCode != http.StatusUnauthorized {
			t.Fatalf("failure %d after good requests = %d, want 401", i+1, res.StatusCode)
		}
	}
	problem(t, g.from(t, here, "/v1/messages", forged), http.StatusTooManyRequests)
}

// The limit is on unless turned off: by default 20 failures at once, then
// one a second.
func TestAuthFailureLimitDefault(t *testing.T) {
	up := newUpstream(t)
	clock := testkit.NewClock(time.Now())
	cfg := config(up)
	cfg.Now = clock.Now
	g := startGateway(t, cfg, true)
	for i := range 20 {
		if res := g.do(t, http.MethodGet, "/v1/messages", "not.a.jwt", nil); res.StatusCode != http.StatusUnauthorized {
			t.Fatalf("failure %d = %d, want 401", i+1, res.StatusCode)
		}
	}
	problem(t, g.do(t, http.MethodGet, "/v1/messages", "not.a.jwt", nil), http.StatusTooManyRequests)

	cfg.AuthFailureRate = -1
	off := startGateway(t, cfg, true)
	for i := range 30 {
		if res := off.do(t, http.MethodGet, "/v1/messages", "not.a.jwt", nil); res.StatusCode != http.StatusUnauthorized {
			t.Fatalf("with the limit off, failure %d = %d, want 401", i+1, res.StatusCode)
		}
	}
}

// Behind a trusted proxy, failures count against the client that
// X-Forwarded-For names, not against the proxy that all clients share.
func TestAuthFailureLimitBehindProxy(t *testing.T) {
	up := newUpstream(t)
	clock := testkit.NewClock(time.Now())
	cfg := config(up)
	cfg.AuthFailureRate, cfg.AuthFailureBurst, cfg.Now = 1, 1, clock.Now
	cfg.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
	g := startGateway(t, cfg, true)
	good := hs256(t, claims("alice"))
	via := func(client string) http.Header { return http.Header{"X-Forwarded-For": {client}} }

	problem(t, g.do(t, http.MethodGet, "/v1/messages", "not.a.jwt", via("203.0.113.5")), http.StatusUnauthorized)
	problem(t, g.do(t, http.MethodGet, "/v1/messages", good, via("203.0.113.5")), http.StatusTooManyRequests)
	// Another client behind the same proxy is not limited.
	if res := g.do(t, http.MethodGet, "/v1/messages", good, via("203.0.113.6")); res.StatusCode != http.StatusOK {
		t.Errorf("another client behind the proxy = %d %s, want 200", res.StatusCode, res.Body)
	}
	// A hop the client wrote itself, left of the proxy's, changes nothing.
	problem(t, g.do(t, http.MethodGet, "/v1/messages", good, via("198.51.100.9, 203.0.113.5")), http.StatusTooManyRequests)

	// Without trusted proxies the header is not believed.
	cfg.TrustedProxies = nil
	direct := startGateway(t, cfg, true)
	problem(t, direct.do(t, http.MethodGet, "/v1/messages", "not.a.jwt", via("203.0.113.7")), http.StatusUnauthorized)
	problem(t, direct.do(t, http.MethodGet, "/v1/messages", good, via("203.0.113.8")), http.StatusTooManyRequests)
}
