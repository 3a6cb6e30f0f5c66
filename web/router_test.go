package web_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/messages-io/messages/web"
	"github.com/prometheus/client_golang/prometheus"
)

// newRouter returns a router with its own metrics registry.
func newRouter(t *testing.T, checks map[string]web.Check) (*web.Router, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	return web.NewRouter(discard(), reg, reg, checks), reg
}

// get builds a GET request for path from user; no user sends no X-User-ID.
func get(path, user string) *http.Request {
	req := httptest.NewRequest(http.MethodGet, path, nil)
	if user != "" {
		req.Header.Set(web.UserIDHeader, user)
	}
	return req
}

// readiness is the body of /readyz.
type readiness struct {
	Ready  bool              `json:"ready"`
	Checks map[string]string `json:"checks"`
}

func pass(context.Context) error { return nil }

func fail(text string) web.Check {
	return func(context.Context) error { return errors.New(text) }
}

func TestHealthz(t *testing.T) {
	rt, _ := newRouter(t, map[string]web.Check{"broken": fail("down")})
	// Liveness answers without a user and whatever the dependencies say.
	res := serve(t, rt.Root(), get("/healthz", ""))
	var got map[string]string
	readJSON(t, res, http.StatusOK, &got)
	if len(got) != 1 || got["status"] != "ok" {
		t.Errorf("body = %v, want {status: ok}", got)
	}
}

func TestReadyz(t *testing.T) {
	tests := []struct {
		name       string
		checks     map[string]web.Check
		wantStatus int
		wantChecks map[string]string
	}{
		{
			name:       "no checks",
			wantStatus: http.StatusOK,
			wantChecks: map[string]string{},
		},
		{
			name:       "all pass",
			checks:     map[string]web.Check{"nats": pass, "mongodb": pass},
			wantStatus: http.StatusOK,
			wantChecks: map[string]string{"nats": "ok", "mongodb": "ok"},
		},
		{
			name:       "one fails",
			checks:     map[string]web.Check{"nats": pass, "mongodb": fail("mongodb: connection refused")},
			wantStatus: http.StatusServiceUnavailable,
			wantChecks: map[string]string{"nats": "ok", "mongodb": "mongodb: connection refused"},
		},
		{
			name:       "all fail",
			checks:     map[string]web.Check{"nats": fail("nats: no servers available"), "mongodb": fail("mongodb: timeout")},
			wantStatus: http.StatusServiceUnavailable,
			wantChecks: map[string]string{"nats": "nats: no servers available", "mongodb": "mongodb: timeout"},
		},
		{
			name: "many pass, last fails",
			checks: map[string]web.Check{
				"a": pass, "b": pass, "c": pass, "d": pass, "e": pass, "f": fail("f is down"),
			},
			wantStatus: http.StatusServiceUnavailable,
			wantChecks: map[string]string{"a": "ok", "b": "ok", "c": "ok", "d": "ok", "e": "ok", "f": "f is down"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rt, _ := newRouter(t, tt.checks)
			res := serve(t, rt.Root(), get("/readyz", ""))
			var got readiness
			readJSON(t, res, tt.wantStatus, &got)
			if want := tt.wantStatus == http.StatusOK; got.Ready != want {
				t.Errorf("ready = %v, want %v", got.Ready, want)
			}
			if len(got.Checks) != len(tt.wantChecks) {
				t.Errorf("checks = %v, want %v", got.Checks, tt.wantChecks)
			}
			for name, want := range tt.wantChecks {
				if got.Checks[name] != want {
					t.Errorf("checks[%q] = %q, want %q", name, got.Checks[name], want)
				}
			}
			if cc := res.Header.Get("Cache-Control"); cc != "no-store" {
				t.Errorf("Cache-Control = %q, want no-store", cc)
			}
		})
	}
}

func TestReadyzBoundsChecksToASecond(t *testing.T) {
	var deadline time.Time
	var hasDeadline bool
	checks := map[string]web.Check{
		"deadline": func(ctx context.Context) error {
			deadline, hasDeadline = ctx.Deadline()
			return nil
		},
		// A dependency that never answers, but honours its context.
		"hung": func(ctx context.Context) error {
			<-ctx.Done()
			return ctx.Err()
		},
	}
	rt, _ := newRouter(t, checks)
	start := time.Now()
	res := serve(t, rt.Root(), get("/readyz", ""))
	elapsed := time.Since(start)

	var got readiness
	readJSON(t, res, http.StatusServiceUnavailable, &got)
	if got.Ready {
		t.Errorf("ready = true with a hung check")
	}
	if got.Checks["hung"] != context.DeadlineExceeded.Error() {
		t.Errorf("checks[hung] = %q, want %q", got.Checks["hung"], context.DeadlineExceeded.Error())
	}
	if got.Checks["deadline"] != "ok" {
		t.Errorf("checks[deadline] = %q, want ok", got.Checks["deadline"])
	}
	if !hasDeadline {
		t.Fatal("check's context has no deadline")
	}
	if d := deadline.Sub(start); d <= 0 || d > time.Second+100*time.Millisecond {
		t.Errorf("check's deadline is %s after the request, want about 1s", d)
	}
	if elapsed < 900*time.Millisecond || elapsed > 3*time.Second {
		t.Errorf("/readyz took %s with a hung check, want about 1s", elapsed)
	}
}

func TestMetricsCountRoutedRequests(t *testing.T) {
	rt, _ := newRouter(t, nil)
	rt.Route(http.MethodPost, "/v1/messages", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		web.WriteJSON(w, http.StatusCreated, map[string]string{"id": "x"})
	}))
	rt.Route(http.MethodGet, "/v1/messages/:id", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		web.WriteProblem(w, r, http.StatusNotFound, "no such message")
	}))
	h := rt.Root()

	post := httptest.NewRequest(http.MethodPost, "/v1/messages", strings.NewReader(`{}`))
	post.Header.Set(web.UserIDHeader, "alice")
	if res := serve(t, h, post); res.StatusCode != http.StatusCreated {
		t.Fatalf("POST /v1/messages = %d, want 201", res.StatusCode)
	}
	for _, id := range []string{"01HQ3Z5Y8K6J9M2N4P7R0S1T2V", "01ARZ3NDEKTSV4RRFFQ69G5FAV"} {
		readProblem(t, serve(t, h, get("/v1/messages/"+id, "alice")), http.StatusNotFound)
	}

	res := serve(t, h, get("/metrics", ""))
	if res.StatusCode != http.StatusOK {
		t.Fatalf("/metrics = %d, want 200", res.StatusCode)
	}
	if ct := res.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("/metrics Content-Type = %q, want the Prometheus text format", ct)
	}
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("read /metrics: %v", err)
	}
	lines := map[string]bool{}
	for _, l := range strings.Split(string(body), "\n") {
		lines[l] = true
	}
	for _, want := range []string{
		`messages_http_requests_total{code="201",method="POST",route="/v1/messages"} 1`,
		// The route label is the pattern, not the path: one series for
		// every id.
		`messages_http_requests_total{code="404",method="GET",route="/v1/messages/:id"} 2`,
		`messages_http_request_duration_seconds_count{code="201",method="POST",route="/v1/messages"} 1`,
		`messages_http_request_duration_seconds_count{code="404",method="GET",route="/v1/messages/:id"} 2`,
	} {
		if !lines[want] {
			t.Errorf("/metrics lacks the line\n%s\nin\n%s", want, body)
		}
	}
	if strings.Contains(string(body), "01HQ3Z5Y8K6J9M2N4P7R0S1T2V") {
		t.Errorf("/metrics has a series labelled with a message id:\n%s", body)
	}
}

func TestRouterProblems(t *testing.T) {
	tests := []struct {
		name       string
		method     string
		path       string
		user       string
		wantStatus int
		wantAllow  string // a method the Allow header must list, for 405
	}{
		{name: "unknown path", method: http.MethodGet, path: "/nope", wantStatus: http.StatusNotFound},
		{name: "unknown v1 path with a user", method: http.MethodGet, path: "/v1/nope", user: "alice", wantStatus: http.StatusNotFound},
		{name: "unknown v1 path without a user", method: http.MethodGet, path: "/v1/nope", wantStatus: http.StatusForbidden},
		{name: "known v1 path without a user", method: http.MethodPost, path: "/v1/messages", wantStatus: http.StatusForbidden},
		{name: "post to healthz", method: http.MethodPost, path: "/healthz", wantStatus: http.StatusMethodNotAllowed, wantAllow: http.MethodGet},
		{name: "delete metrics", method: http.MethodDelete, path: "/metrics", wantStatus: http.StatusMethodNotAllowed, wantAllow: http.MethodGet},
		{name: "get a post-only v1 route", method: http.MethodPut, path: "/v1/messages", user: "alice", wantStatus: http.StatusMethodNotAllowed, wantAllow: http.MethodPost},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rt, _ := newRouter(t, nil)
			handled := 0
			rt.Route(http.MethodPost, "/v1/messages", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				handled++
				w.WriteHeader(http.StatusCreated)
			}))
			req := httptest.NewRequest(tt.method, tt.path, nil)
			req.Header.Set(web.RequestIDHeader, "req-42")
			if tt.user != "" {
				req.Header.Set(web.UserIDHeader, tt.user)
			}
			res := serve(t, rt.Root(), req)
			p := readProblem(t, res, tt.wantStatus)
			if p.Instance != tt.path {
				t.Errorf("instance = %q, want %q", p.Instance, tt.path)
			}
			if p.RequestID != "req-42" {
				t.Errorf("requestId = %q, want req-42", p.RequestID)
			}
			if handled != 0 {
				t.Errorf("POST /v1/messages handler ran %d times, want 0", handled)
			}
			if tt.wantAllow != "" {
				allow := res.Header.Get("Allow")
				if !strings.Contains(allow, tt.wantAllow) {
					t.Errorf("Allow = %q, want it to list %s", allow, tt.wantAllow)
				}
				if strings.Contains(allow, tt.method) {
					t.Errorf("Allow = %q lists the method refused, %s", allow, tt.method)
				}
			}
		})
	}
}

// However a /v1 path is spelled (case, dots, doubled or trailing slashes,
// escapes), it never reaches a /v1 handler without a user.
func TestRootAdmitsNoV1PathWithoutUser(t *testing.T) {
	for _, path := range []string{
		"/v1/messages/01HQ3Z5Y8K6J9M2N4P7R0S1T2V",
		"/V1/messages/01HQ3Z5Y8K6J9M2N4P7R0S1T2V",
		"//v1/messages/01HQ3Z5Y8K6J9M2N4P7R0S1T2V",
		"/./v1/messages/01HQ3Z5Y8K6J9M2N4P7R0S1T2V",
		"/x/../v1/messages/01HQ3Z5Y8K6J9M2N4P7R0S1T2V",
		"/v1/messages/01HQ3Z5Y8K6J9M2N4P7R0S1T2V/",
		"/%76%31/messages/01HQ3Z5Y8K6J9M2N4P7R0S1T2V",
	} {
		t.Run(path, func(t *testing.T) {
			rt, _ := newRouter(t, nil)
			h := &echoIDs{}
			rt.Route(http.MethodGet, "/v1/messages/:id", h)
			res := serve(t, rt.Root(), get(path, ""))
			if h.calls != 0 || res.StatusCode < 300 {
				t.Errorf("GET %s without a user = %d, handler ran %d times; want no 2xx and no call", path, res.StatusCode, h.calls)
			}
		})
	}
}

func TestRootPassesIDsToRoutes(t *testing.T) {
	rt, _ := newRouter(t, nil)
	rt.Route(http.MethodGet, "/v1/messages/:id", &echoIDs{})
	req := get("/v1/messages/01HQ3Z5Y8K6J9M2N4P7R0S1T2V", "auth0:alice")
	req.Header.Set(web.RequestIDHeader, "req-7")
	res := serve(t, rt.Root(), req)
	var got ids
	readJSON(t, res, http.StatusOK, &got)
	if got.UserID != "auth0:alice" || got.RequestID != "req-7" {
		t.Errorf("handler saw user %q request %q, want auth0:alice and req-7", got.UserID, got.RequestID)
	}
	if echoed := res.Header.Get(web.RequestIDHeader); echoed != "req-7" {
		t.Errorf("X-Request-ID = %q, want req-7", echoed)
	}
}

func TestObserve(t *testing.T) {
	tests := []observeCase{
		{
			name:       "writes nothing",
			handler:    func(w http.ResponseWriter, r *http.Request) {},
			wantStatus: http.StatusOK,
		},
		{
			name:       "writes a body only",
			handler:    func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "hello") },
			wantStatus: http.StatusOK,
			wantBody:   "hello",
		},
		{
			name:       "no content",
			handler:    func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) },
			wantStatus: http.StatusNoContent,
		},
		{
			name: "first status counts",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(http.StatusAccepted)
				w.WriteHeader(http.StatusInternalServerError)
			},
			wantStatus: http.StatusAccepted,
		},
		{
			name:       "panics before writing",
			handler:    func(w http.ResponseWriter, r *http.Request) { panic("boom") },
			wantStatus: http.StatusInternalServerError,
			problem:    true,
		},
		{
			name: "panics with an error after setting headers",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				panic(errors.New("boom"))
			},
			wantStatus: http.StatusInternalServerError,
			problem:    true,
		},
		{
			name: "panics after writing",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(http.StatusAccepted)
				io.WriteString(w, "partial")
				panic("boom")
			},
			wantStatus: http.StatusAccepted,
			wantBody:   "partial",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkObserve(t, tt)
		})
	}
}

// observeCase is a handler behind Observe and what Observe must make of it.
type observeCase struct {
	name       string
	handler    http.HandlerFunc
	wantStatus int
	wantBody   string // when the handler's own body must come through
	problem    bool   // when Observe must answer with a problem
}

// checkObserve serves a request with tt's handler behind Observe and checks
// the answer and the request count.
func checkObserve(t *testing.T, tt observeCase) {
	t.Helper()
	reg := prometheus.NewRegistry()
	h := web.RequestIDs(web.Observe(web.NewHTTPMetrics(reg), discard(), "/things/:id", tt.handler))
	req := httptest.NewRequest(http.MethodPut, "/things/7", nil)
	req.Header.Set(web.RequestIDHeader, "req-9")
	res := serve(t, h, req)
	if tt.problem {
		p := readProblem(t, res, tt.wantStatus)
		if p.RequestID != "req-9" {
			t.Errorf("requestId = %q, want req-9", p.RequestID)
		}
		if p.Instance != "/things/7" {
			t.Errorf("instance = %q, want /things/7", p.Instance)
		}
	} else {
		if res.StatusCode != tt.wantStatus {
			t.Fatalf("status = %d, want %d", res.StatusCode, tt.wantStatus)
		}
		body, _ := io.ReadAll(res.Body)
		if string(body) != tt.wantBody {
			t.Errorf("body = %q, want %q", body, tt.wantBody)
		}
	}
	labels := map[string]string{"route": "/things/:id", "method": http.MethodPut, "code": strconv.Itoa(tt.wantStatus)}
	if got := counter(t, reg, "messages_http_requests_total", labels); got != 1 {
		t.Errorf("messages_http_requests_total%v = %v, want 1", labels, got)
	}
}

func TestObserveLogsPanics(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	h := web.RequestIDs(web.Observe(web.NewHTTPMetrics(prometheus.NewRegistry()), log, "/boom", http.HandlerFunc(
		func(w http.ResponseWriter, r *http.Request) { panic("kaboom") })))
	req := httptest.NewRequest(http.MethodGet, "/boom", nil)
	req.Header.Set(web.RequestIDHeader, "req-panic")
	readProblem(t, serve(t, h, req), http.StatusInternalServerError)

	var records []map[string]any
	dec := json.NewDecoder(&buf)
	for dec.More() {
		var rec map[string]any
		if err := dec.Decode(&rec); err != nil {
			t.Fatalf("log %q: %v", buf.String(), err)
		}
		records = append(records, rec)
	}
	if len(records) != 2 {
		t.Fatalf("logged %d records, want 2 (the panic and the request):\n%v", len(records), records)
	}
	if p := records[0]; p["msg"] != "handler panicked" || p["level"] != "ERROR" || p["panic"] != "kaboom" || p["request_id"] != "req-panic" {
		t.Errorf("panic record = %v, want an ERROR naming the panic and request id", p)
	}
	if r := records[1]; r["msg"] != "request" || r["level"] != "WARN" || r["status"] != float64(500) || r["request_id"] != "req-panic" {
		t.Errorf("request record = %v, want a WARN with status 500 and the request id", r)
	}
}

func TestServerShutdownDrainsInFlight(t *testing.T) {
	entered := make(chan struct{})
	release := make(chan struct{})
	srv, err := web.Listen("127.0.0.1:0", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(entered)
		<-release
		io.WriteString(w, "done")
	}))
	if err != nil {
		t.Fatalf("Listen: %v", err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve() }()

	type result struct {
		body string
		err  error
	}
	answered := make(chan result, 1)
	go func() {
		res, err := http.Get("http://" + srv.Addr().String() + "/slow")
		if err != nil {
			answered <- result{err: err}
			return
		}
		defer res.Body.Close()
		b, err := io.ReadAll(res.Body)
		answered <- result{string(b), err}
	}()
	select {
	case <-entered:
	case <-time.After(5 * time.Second):
		t.Fatal("request never reached the handler")
	}

	shut := make(chan error, 1)
	go func() { shut <- srv.Shutdown(5 * time.Second) }()
	select {
	case err := <-shut:
		t.Fatalf("Shutdown returned %v with a request in flight", err)
	case <-time.After(100 * time.Millisecond):
	}
	close(release)

	select {
	case r := <-answered:
		if r.err != nil || r.body != "done" {
			t.Errorf("in-flight request = %q, %v; want done", r.body, r.err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("in-flight request never answered")
	}
	for name, ch := range map[string]chan error{"Shutdown": shut, "Serve": served} {
		select {
		case err := <-ch:
			if err != nil {
				t.Errorf("%s: %v", name, err)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("%s did not return", name)
		}
	}
}

// Profiles are served only where asked for.
func TestProfiling(t *testing.T) {
	rt, _ := newRouter(t, nil)
	rec := httptest.NewRecorder()
	rt.Root().ServeHTTP(rec, get("/debug/pprof/", ""))
	if rec.Code != http.StatusNotFound {
		t.Fatalf("without profiling: /debug/pprof/ answered %d", rec.Code)
	}
	rt.Profiling()
	for path, want := range map[string]string{
		"/debug/pprof/":                  "goroutine",
		"/debug/pprof/goroutine?debug=1": "goroutine profile: total",
		"/debug/pprof/cmdline":           "",
	} {
		rec := httptest.NewRecorder()
		rt.Root().ServeHTTP(rec, get(path, ""))
		if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), want) {
			t.Errorf("%s: %d %.80q", path, rec.Code, rec.Body.String())
		}
	}
}

func TestObserveRecordsAbandonedRequestsAs499(t *testing.T) {
	tests := []struct {
		name     string
		handler  http.HandlerFunc
		wantCode string
	}{
		{"writes nothing", func(http.ResponseWriter, *http.Request) {}, "499"},
		{"answered before noticing", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) }, "204"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reg := prometheus.NewRegistry()
			h := web.Observe(web.NewHTTPMetrics(reg), discard(), "/things", tt.handler)
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/things", nil).WithContext(ctx))
			for _, code := range []string{"499", "200", "204"} {
				want := 0.0
				if code == tt.wantCode {
					want = 1
				}
				labels := map[string]string{"route": "/things", "method": http.MethodGet, "code": code}
				if got := max(counter(t, reg, "messages_http_requests_total", labels), 0); got != want {
					t.Errorf("messages_http_requests_total%v = %v, want %v", labels, got, want)
				}
			}
			if tt.wantCode == "499" && (rec.Body.Len() != 0 || rec.Code != http.StatusOK) {
				// httptest's recorder reports 200 for a response nobody wrote.
				t.Errorf("wrote %d %q to a client that left", rec.Code, rec.Body.String())
			}
		})
	}
}
