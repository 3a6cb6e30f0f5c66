package web_test

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/messages-io/messages/web"
	"github.com/oklog/ulid/v2"
	"github.com/prometheus/client_golang/prometheus"
)

// discard is a logger that writes nothing.
func discard() *slog.Logger { return slog.New(slog.DiscardHandler) }

// serve answers req with h and returns the response.
func serve(t *testing.T, h http.Handler, req *http.Request) *http.Response {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	res := rec.Result()
	t.Cleanup(func() { res.Body.Close() })
	return res
}

// readProblem checks that res is an RFC 9457 problem document for status
// and returns it.
func readProblem(t *testing.T, res *http.Response, status int) web.Problem {
	t.Helper()
	if res.StatusCode != status {
		t.Fatalf("status = %d, want %d", res.StatusCode, status)
	}
	if ct := res.Header.Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("Content-Type = %q, want application/problem+json", ct)
	}
	var p web.Problem
	dec := json.NewDecoder(res.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		t.Fatalf("problem body: %v", err)
	}
	if p.Type == "" {
		t.Errorf("problem type is empty")
	}
	if p.Title != http.StatusText(status) {
		t.Errorf("problem title = %q, want %q", p.Title, http.StatusText(status))
	}
	if p.Status != status {
		t.Errorf("problem status = %d, want %d", p.Status, status)
	}
	if p.Detail == "" {
		t.Errorf("problem detail is empty")
	}
	return p
}

// readJSON decodes res's body into v after checking its status and type.
func readJSON(t *testing.T, res *http.Response, status int, v any) {
	t.Helper()
	if res.StatusCode != status {
		t.Fatalf("status = %d, want %d", res.StatusCode, status)
	}
	if ct := res.Header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("Content-Type = %q, want application/json", ct)
	}
	if err := json.NewDecoder(res.Body).Decode(v); err != nil {
		t.Fatalf("body: %v", err)
	}
}

// assertGeneratedID fails the test unless id is a fresh ULID in canonical
// form.
func assertGeneratedID(t *testing.T, id string) {
	t.Helper()
	if len(id) != 26 {
		t.Fatalf("generated id %q has %d characters, want 26", id, len(id))
	}
	u, err := ulid.ParseStrict(id)
	if err != nil || u.String() != id {
		t.Fatalf("generated id %q is not a canonical ULID (err %v)", id, err)
	}
	if age := time.Since(ulid.Time(u.Time())); age < -time.Minute || age > time.Minute {
		t.Errorf("generated id %q carries time %s, want about now", id, ulid.Time(u.Time()))
	}
}

// counter returns the value of the counter name with exactly labels in g, or
// -1 when there is no such series.
func counter(t *testing.T, g prometheus.Gatherer, name string, labels map[string]string) float64 {
	t.Helper()
	families, err := g.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
	series:
		for _, m := range f.GetMetric() {
			if len(m.GetLabel()) != len(labels) {
				continue
			}
			for _, l := range m.GetLabel() {
				if labels[l.GetName()] != l.GetValue() {
					continue series
				}
			}
			return m.GetCounter().GetValue()
		}
	}
	return -1
}

// echoIDs is a handler that answers 200 with the ids the middleware put in
// the request's context, and counts its calls.
type echoIDs struct{ calls int }

type ids struct {
	UserID    string `json:"userId"`
	RequestID string `json:"requestId"`
}

func (h *echoIDs) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.calls++
	web.WriteJSON(w, http.StatusOK, ids{UserID: web.UserID(r.Context()), RequestID: web.RequestID(r.Context())})
}

func TestUsers(t *testing.T) {
	tests := []struct {
		name     string
		path     string
		userIDs  []string // each one an X-User-ID header line
		wantUser string   // the caller the handler sees, when admitted
		denied   bool
	}{
		{name: "v1 with a user", path: "/v1/messages", userIDs: []string{"alice"}, wantUser: "alice"},
		{name: "v1 root with a user", path: "/v1", userIDs: []string{"alice"}, wantUser: "alice"},
		{name: "every allowed class", path: "/v1/messages", userIDs: []string{"AZaz09._:@-"}, wantUser: "AZaz09._:@-"},
		{name: "128 characters", path: "/v1/messages", userIDs: []string{strings.Repeat("u", 128)}, wantUser: strings.Repeat("u", 128)},
		{name: "v1 without a user", path: "/v1/messages", denied: true},
		{name: "v1 root without a user", path: "/v1", denied: true},
		{name: "deeper v1 path without a user", path: "/v1/messages/01HQ3Z5Y8K6J9M2N4P7R0S1T2V", denied: true},
		{name: "empty user", path: "/v1/messages", userIDs: []string{""}, denied: true},
		{name: "129 characters", path: "/v1/messages", userIDs: []string{strings.Repeat("u", 129)}, denied: true},
		{name: "space", path: "/v1/messages", userIDs: []string{"alice smith"}, denied: true},
		{name: "slash", path: "/v1/messages", userIDs: []string{"alice/bob"}, denied: true},
		{name: "two users in one line", path: "/v1/messages", userIDs: []string{"alice, bob"}, denied: true},
		{name: "non-ascii", path: "/v1/messages", userIDs: []string{"zoë"}, denied: true},
		{name: "two headers, different users", path: "/v1/messages", userIDs: []string{"alice", "bob"}, denied: true},
		{name: "two headers, same user", path: "/v1/messages", userIDs: []string{"alice", "alice"}, denied: true},
		{name: "two headers, first empty", path: "/v1/messages", userIDs: []string{"", "alice"}, denied: true},
		{name: "healthz without a user", path: "/healthz"},
		{name: "metrics without a user", path: "/metrics"},
		{name: "healthz with a malformed user", path: "/healthz", userIDs: []string{"not a user"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := &echoIDs{}
			req := httptest.NewRequest(http.MethodGet, tt.path, nil)
			for _, id := range tt.userIDs {
				req.Header.Add(web.UserIDHeader, id)
			}
			res := serve(t, web.Users(h), req)
			if tt.denied {
				p := readProblem(t, res, http.StatusForbidden)
				if !strings.Contains(p.Detail, "X-User-ID") {
					t.Errorf("detail = %q, want it to name X-User-ID", p.Detail)
				}
				if p.Instance != tt.path {
					t.Errorf("instance = %q, want %q", p.Instance, tt.path)
				}
				if h.calls != 0 {
					t.Errorf("handler called %d times, want 0", h.calls)
				}
				return
			}
			var got ids
			readJSON(t, res, http.StatusOK, &got)
			if h.calls != 1 {
				t.Errorf("handler called %d times, want 1", h.calls)
			}
			if got.UserID != tt.wantUser {
				t.Errorf("web.UserID(ctx) = %q, want %q", got.UserID, tt.wantUser)
			}
		})
	}
}

func TestUserIDWithoutMiddleware(t *testing.T) {
	req := httptest.NewRequest(http.MethodGet, "/v1/messages", nil)
	req.Header.Set(web.UserIDHeader, "alice")
	if got := web.UserID(req.Context()); got != "" {
		t.Errorf("web.UserID = %q before the middleware ran, want \"\"", got)
	}
	if got := web.RequestID(req.Context()); got != "" {
		t.Errorf("web.RequestID = %q before the middleware ran, want \"\"", got)
	}
}

func TestRequestIDs(t *testing.T) {
	tests := []struct {
		name string
		ids  []string // each one an X-Request-ID header line
		want string   // the id kept; "" when one must be generated
	}{
		{name: "simple", ids: []string{"req-123"}, want: "req-123"},
		{name: "every allowed class", ids: []string{"AZaz09._:/+=-"}, want: "AZaz09._:/+=-"},
		{name: "a ulid", ids: []string{"01HQ3Z5Y8K6J9M2N4P7R0S1T2V"}, want: "01HQ3Z5Y8K6J9M2N4P7R0S1T2V"},
		{name: "128 characters", ids: []string{strings.Repeat("r", 128)}, want: strings.Repeat("r", 128)},
		{name: "first of two", ids: []string{"first", "second"}, want: "first"},
		{name: "absent"},
		{name: "empty", ids: []string{""}},
		{name: "129 characters", ids: []string{strings.Repeat("r", 129)}},
		{name: "space", ids: []string{"req 123"}},
		{name: "newline", ids: []string{"req-123\nX-Injected: 1"}},
		{name: "quote", ids: []string{`req"123`}},
		{name: "non-ascii", ids: []string{"réq-123"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := &echoIDs{}
			req := httptest.NewRequest(http.MethodGet, "/healthz", nil)
			for _, id := range tt.ids {
				req.Header.Add(web.RequestIDHeader, id)
			}
			res := serve(t, web.RequestIDs(h), req)
			var got ids
			readJSON(t, res, http.StatusOK, &got)
			echoed := res.Header.Values(web.RequestIDHeader)
			if len(echoed) != 1 {
				t.Fatalf("response has X-Request-ID %q, want exactly one", echoed)
			}
			if got.RequestID != echoed[0] {
				t.Errorf("web.RequestID(ctx) = %q, echoed %q, want the same", got.RequestID, echoed[0])
			}
			if tt.want != "" {
				if echoed[0] != tt.want {
					t.Errorf("echoed X-Request-ID = %q, want %q", echoed[0], tt.want)
				}
				return
			}
			assertGeneratedID(t, echoed[0])
		})
	}
}

func TestRequestIDsGeneratesDistinctIDs(t *testing.T) {
	h := web.RequestIDs(&echoIDs{})
	seen := map[string]bool{}
	for range 100 {
		res := serve(t, h, httptest.NewRequest(http.MethodGet, "/healthz", nil))
		id := res.Header.Get(web.RequestIDHeader)
		assertGeneratedID(t, id)
		if seen[id] {
			t.Fatalf("request id %q generated twice", id)
		}
		seen[id] = true
	}
}
