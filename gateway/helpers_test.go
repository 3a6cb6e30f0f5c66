package gateway_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/messages-io/messages/gateway"
	"github.com/messages-io/messages/internal/testkit"
	"github.com/messages-io/messages/web"
	"github.com/prometheus/client_golang/prometheus"
)

// secret is the HS256 secret of the gateways under test.
var secret = []byte("0123456789abcdef0123456789abcdef-test")

// seen is one request as an upstream received it.
type seen struct {
	Method string
	Path   string
	Query  string
	Header http.Header
	Body   string
}

// upstream is a stand-in for a dispatcher or query instance: it records what
// reaches it and answers 200 with the X-User-ID it saw, or what handler says.
type upstream struct {
	*httptest.Server
	ready atomic.Bool // what /readyz answers
	mu    sync.Mutex
	got   []seen
	// handler, when set, answers /v1 requests instead.
	handler http.HandlerFunc
}

func newUpstream(t *testing.T) *upstream {
	t.Helper()
	u := &upstream{}
	u.ready.Store(true)
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/readyz" {
			if !u.ready.Load() {
				http.Error(w, "not ready", http.StatusServiceUnavailable)
				return
			}
			fmt.Fprint(w, `{"ready":true}`)
			return
		}
		body, _ := io.ReadAll(r.Body)
		u.mu.Lock()
		u.got = append(u.got, seen{Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery, Header: r.Header.Clone(), Body: string(body)})
		u.mu.Unlock()
		if u.handler != nil {
			u.handler(w, r)
			return
		}
		w.Header().Set(web.RequestIDHeader, r.Header.Get(web.RequestIDHeader))
		web.WriteJSON(w, http.StatusOK, map[string]string{"userId": r.Header.Get(web.UserIDHeader)})
	}))
	t.Cleanup(u.Close)
	return u
}

// requests returns what reached the upstream so far.
func (u *upstream) requests() []seen {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]seen(nil), u.got...)
}

// testGateway is a gateway serving on a random port.
type testGateway struct {
	URL string
	reg *prometheus.Registry
}

// startGateway runs a gateway with cfg until the test ends. Unless cfg says
// otherwise its upstreams are checked every 20ms. When waitReady is set it
// returns once /readyz answers 200.
func startGateway(t *testing.T, cfg gateway.Config, waitReady bool) *testGateway {
	t.Helper()
	return startGatewayLogging(t, cfg, waitReady, testkit.Logger())
}

// startGatewayLogging is startGateway with the gateway logging to log.
func startGatewayLogging(t *testing.T, cfg gateway.Config, waitReady bool, log *slog.Logger) *testGateway {
	t.Helper()
	if cfg.HealthInterval == 0 {
		cfg.HealthInterval = 20 * time.Millisecond
	}
	reg := prometheus.NewRegistry()
	gw, err := gateway.New(log, reg, cfg)
	if err != nil {
		t.Fatalf("gateway.New: %v", err)
	}
	srv := httptest.NewServer(gw.Handler(web.NewRouter(log, reg, reg, gw.Checks())))
	t.Cleanup(srv.Close)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- gw.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	g := &testGateway{URL: srv.URL, reg: reg}
	if waitReady {
		testkit.Eventually(t, 5*time.Second, 10*time.Millisecond, func() error {
			res := g.do(t, http.MethodGet, "/readyz", "", nil)
			if res.StatusCode != http.StatusOK {
				return fmt.Errorf("/readyz = %d %s", res.StatusCode, res.Body)
			}
			return nil
		})
	}
	return g
}

// response is an answer with its body read.
type response struct {
	*http.Response
	Body string
}

// do sends a request to the gateway with the given token ("" for none) and
// headers.
func (g *testGateway) do(t *testing.T, method, path, token string, header http.Header) response {
	t.Helper()
	var body io.Reader
	if method == http.MethodPost {
		body = strings.NewReader(`{"text":"hello","tag":"gw"}`)
	}
	req, err := http.NewRequest(method, g.URL+path, body)
	if err != nil {
		t.Fatal(err)
	}
	if method == http.MethodPost {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for k, vs := range header {
		req.Header[k] = append(req.Header[k], vs...)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{Response: res, Body: string(b)}
}

// metric returns the value of the series name{labels} in the gateway's
// registry, or -1 when there is none.
func (g *testGateway) metric(t *testing.T, name string, labels map[string]string) float64 {
	t.Helper()
	families, err := g.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
	series:
		for _, m := range f.GetMetric() {
			have := map[string]string{}
			for _, l := range m.GetLabel() {
				have[l.GetName()] = l.GetValue()
			}
			for k, v := range labels {
				if have[k] != v {
					continue series
				}
			}
			switch {
			case m.GetCounter() != nil:
				return m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				return m.GetGauge().GetValue()
			}
		}
	}
	return -1
}

// problem checks that res is a problem document with status and returns it.
func problem(t *testing.T, res response, status int) web.Problem {
	t.Helper()
	if res.StatusCode != status {
		t.Fatalf("status = %d, want %d; body %s", res.StatusCode, status, res.Body)
	}
	if ct := res.Header.Get("Content-Type"); ct != "application/problem+json" {
		t.Errorf("Content-Type = %q, want application/problem+json", ct)
	}
	var p web.Problem
	if err := json.Unmarshal([]byte(res.Body), &p); err != nil {
		t.Fatalf("body %q: %v", res.Body, err)
	}
	if p.Status != status || p.Title != http.StatusText(status) || p.Detail == "" {
		t.Errorf("problem = %+v, want status %d with its title and a detail", p, status)
	}
	if rid := res.Header.Get(web.RequestIDHeader); rid == "" || p.RequestID != rid {
		t.Errorf("requestId = %q, X-Request-ID = %q; want the same, not empty", p.RequestID, rid)
	}
	return p
}

// claims are a token's claims valid for an hour for user.
func claims(user string) jwt.MapClaims {
	now := time.Now()
	return jwt.MapClaims{"sub": user, "iat": now.Unix(), "exp": now.Add(time.Hour).Unix()}
}

// with returns c with the given claims added, or removed when nil.
func with(c jwt.MapClaims, kv ...any) jwt.MapClaims {
	out := jwt.MapClaims{}
	for k, v := range c {
		out[k] = v
	}
	for i := 0; i < len(kv); i += 2 {
		if kv[i+1] == nil {
			delete(out, kv[i].(string))
			continue
		}
		out[kv[i].(string)] = kv[i+1]
	}
	return out
}

// sign makes a token signed by method with key, with kid in its header when
// not empty.
func sign(t *testing.T, method jwt.SigningMethod, key any, kid string, c jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, c)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatalf("sign: %v", err)
	}
	return s
}

func hs256(t *testing.T, c jwt.MapClaims) string {
	t.Helper()
	return sign(t, jwt.SigningMethodHS256, secret, "", c)
}

// rsaKey and ecKey are new signing keys.
func rsaKey(t *testing.T) *rsa.PrivateKey {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func ecKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// jwkOf is the public JWK of an RSA or EC private key.
func jwkOf(t *testing.T, kid string, key any) map[string]string {
	t.Helper()
	b64 := base64.RawURLEncoding.EncodeToString
	switch k := key.(type) {
	case *rsa.PrivateKey:
		return map[string]string{"kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256",
			"n": b64(k.N.Bytes()), "e": b64(big.NewInt(int64(k.E)).Bytes())}
	case *ecdsa.PrivateKey:
		raw, err := k.PublicKey.Bytes()
		if err != nil {
			t.Fatal(err)
		}
		return map[string]string{"kty": "EC", "kid": kid, "use": "sig", "crv": "P-256",
			"x": b64(raw[1:33]), "y": b64(raw[33:])}
	}
	t.Fatalf("no JWK for %T", key)
	return nil
}

// jwksServer serves a JWK set that the test can change, and counts fetches.
type jwksServer struct {
	*httptest.Server
	mu      sync.Mutex
	doc     []byte
	fetches atomic.Int64
}

func newJWKSServer(t *testing.T, keys ...map[string]string) *jwksServer {
	t.Helper()
	s := &jwksServer{}
	s.set(t, keys...)
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.fetches.Add(1)
		s.mu.Lock()
		doc := s.doc
		s.mu.Unlock()
		w.Header().Set("Content-Type", "application/jwk-set+json")
		_, _ = w.Write(doc)
	}))
	t.Cleanup(s.Close)
	return s
}

// set replaces the served keys.
func (s *jwksServer) set(t *testing.T, keys ...map[string]string) {
	t.Helper()
	doc := jwksDoc(t, keys...)
	s.mu.Lock()
	s.doc = doc
	s.mu.Unlock()
}

func jwksDoc(t *testing.T, keys ...map[string]string) []byte {
	t.Helper()
	if keys == nil {
		keys = []map[string]string{}
	}
	doc, err := json.Marshal(map[string]any{"keys": keys})
	if err != nil {
		t.Fatal(err)
	}
	return doc
}

// eventually polls f until it returns nil, for at most 5s.
func eventually(t *testing.T, f func() error) {
	t.Helper()
	testkit.Eventually(t, 5*time.Second, 5*time.Millisecond, f)
}

// waitFetches waits until the key set server has been asked n times.
func waitFetches(t *testing.T, s *jwksServer, n int64) {
	t.Helper()
	eventually(t, func() error {
		if got := s.fetches.Load(); got < n {
			return fmt.Errorf("key set fetched %d times, want %d", got, n)
		}
		return nil
	})
}
