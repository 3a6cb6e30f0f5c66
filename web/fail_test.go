package web_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/messages-io/messages/fault"
	"github.com/messages-io/messages/web"
	"github.com/prometheus/client_golang/prometheus"
)

// failure gives every kind its own detail, so that a test sees which was
// written.
func failure(log *slog.Logger) web.Failure {
	return web.Failure{
		Log:             log,
		What:            "thing",
		RetryAfter:      7 * time.Second,
		NotFound:        "no such thing",
		Unavailable:     "the store did not answer",
		OutcomeUnknown:  "the write may have happened",
		UpstreamTimeout: "the upstream was slow",
		BadGateway:      "the upstream failed",
		Internal:        "the thing failed",
	}
}

func TestFailureAnswer(t *testing.T) {
	ownUnavailable := fault.New("store unavailable", fault.ErrUnavailable)
	tests := []struct {
		name       string
		err        error
		kind       web.Kind
		label      string
		status     int
		typ        string
		detail     string
		retryAfter string
		level      slog.Level
	}{
		{name: "not found", err: fmt.Errorf("message 1: %w", fault.New("not found", fault.ErrNotFound)),
			kind: web.KindNotFound, label: "not_found", status: http.StatusNotFound, typ: "about:blank", detail: "no such thing", level: slog.LevelDebug},
		{name: "unavailable", err: fmt.Errorf("get: %w: connection refused", ownUnavailable),
			kind: web.KindUnavailable, label: "unavailable", status: http.StatusServiceUnavailable, typ: "about:blank", detail: "the store did not answer", retryAfter: "7", level: slog.LevelWarn},
		{name: "deadline passed", err: fmt.Errorf("count: %w", context.DeadlineExceeded),
			kind: web.KindUnavailable, label: "unavailable", status: http.StatusServiceUnavailable, typ: "about:blank", detail: "the store did not answer", retryAfter: "7", level: slog.LevelWarn},
		{name: "outcome unknown", err: fmt.Errorf("%w: %w", fault.ErrOutcomeUnknown, context.DeadlineExceeded),
			kind: web.KindOutcomeUnknown, label: "unknown", status: http.StatusServiceUnavailable, typ: web.OutcomeUnknownType, detail: "the write may have happened", retryAfter: "7", level: slog.LevelWarn},
		{name: "outcome unknown, store unavailable", err: fmt.Errorf("%w: %w", fault.ErrOutcomeUnknown, ownUnavailable),
			kind: web.KindOutcomeUnknown, label: "unknown", status: http.StatusServiceUnavailable, typ: web.OutcomeUnknownType, detail: "the write may have happened", retryAfter: "7", level: slog.LevelWarn},
		{name: "upstream timeout", err: fmt.Errorf("%w: %w", web.ErrUpstreamTimeout, context.DeadlineExceeded),
			kind: web.KindUpstreamTimeout, label: "timeout", status: http.StatusGatewayTimeout, typ: "about:blank", detail: "the upstream was slow", level: slog.LevelWarn},
		{name: "bad gateway", err: fmt.Errorf("%w: EOF", web.ErrBadGateway),
			kind: web.KindBadGateway, label: "failed", status: http.StatusBadGateway, typ: "about:blank", detail: "the upstream failed", level: slog.LevelWarn},
		{name: "no upstream", err: fmt.Errorf("%w: %w", web.ErrBadGateway, ownUnavailable),
			kind: web.KindUnavailable, label: "unavailable", status: http.StatusServiceUnavailable, typ: "about:blank", detail: "the store did not answer", retryAfter: "7", level: slog.LevelWarn},
		{name: "anything else", err: errors.New("malformed event"),
			kind: web.KindInternal, label: "failed", status: http.StatusInternalServerError, typ: "about:blank", detail: "the thing failed", level: slog.LevelError},
		{name: "canceled, the client still there", err: fmt.Errorf("read: %w", context.Canceled),
			kind: web.KindInternal, label: "failed", status: http.StatusInternalServerError, typ: "about:blank", detail: "the thing failed", level: slog.LevelError},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logs bytes.Buffer
			log := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
			rec := httptest.NewRecorder()
			req := httptest.NewRequest(http.MethodGet, "/v1/things/1", nil)
			req.Header.Set(web.RequestIDHeader, "req-7")
			var kind web.Kind = -1
			web.RequestIDs(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				kind = failure(log).Answer(w, r, tt.err)
			})).ServeHTTP(rec, req)
			if kind != tt.kind {
				t.Errorf("kind = %v, want %v", kind, tt.kind)
			}
			if tt.kind.String() != tt.label {
				t.Errorf("label = %q, want %q", tt.kind.String(), tt.label)
			}
			res := rec.Result()
			defer res.Body.Close()
			p := readProblem(t, res, tt.status)
			if p.Type != tt.typ || p.Detail != tt.detail || p.Instance != "/v1/things/1" || p.RequestID != "req-7" {
				t.Errorf("problem %+v, want type %q, detail %q, instance /v1/things/1, request id req-7", p, tt.typ, tt.detail)
			}
			if got := res.Header.Values("Retry-After"); tt.retryAfter == "" && len(got) != 0 || tt.retryAfter != "" && (len(got) != 1 || got[0] != tt.retryAfter) {
				t.Errorf("Retry-After = %q, want %q", got, tt.retryAfter)
			}
			want := fmt.Sprintf(`"level":%q,"msg":"thing failed","kind":%q,"err":%q,"request_id":"req-7"`, tt.level.String(), tt.label, tt.err.Error())
			if !strings.Contains(logs.String(), want) || strings.Count(logs.String(), "\n") != 1 {
				t.Errorf("log = %s, want one record with %s", logs.String(), want)
			}
		})
	}
}

// TestFailureAnswerAbandoned: a request whose client went away gets no
// answer, whatever error its abandonment caused underneath, and is counted
// and logged as 499, never as 200.
func TestFailureAnswerAbandoned(t *testing.T) {
	for _, err := range []error{
		context.Canceled,
		fmt.Errorf("%w: connection closed", fault.New("store unavailable", fault.ErrUnavailable)),
		fmt.Errorf("%w: %w", fault.ErrOutcomeUnknown, context.Canceled),
		errors.New("driver: operation was interrupted"),
	} {
		t.Run(err.Error(), func(t *testing.T) {
			var logs bytes.Buffer
			log := slog.New(slog.NewJSONHandler(&logs, nil))
			reg := prometheus.NewRegistry()
			var kind web.Kind = -1
			h := web.Observe(web.NewHTTPMetrics(reg), log, "/v1/things", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				kind = failure(log).Answer(w, r, err)
			}))
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/v1/things", nil).WithContext(ctx))
			if kind != web.KindCanceled || kind.String() != "canceled" {
				t.Errorf("kind = %v (%q), want KindCanceled", kind, kind.String())
			}
			if rec.Body.Len() != 0 || len(rec.Header()) != 0 {
				t.Errorf("wrote headers %v and body %q to a client that left", rec.Header(), rec.Body.String())
			}
			labels := map[string]string{"route": "/v1/things", "method": http.MethodGet, "code": "499"}
			if got := counter(t, reg, "messages_http_requests_total", labels); got != 1 {
				t.Errorf("messages_http_requests_total%v = %v, want 1", labels, got)
			}
			if !strings.Contains(logs.String(), `"msg":"thing failed","kind":"canceled"`) || strings.Contains(logs.String(), `"status":200`) {
				t.Errorf("log = %s, want the failure as canceled and no status 200", logs.String())
			}
		})
	}
}

func TestStatusRecorderRecorded(t *testing.T) {
	live := httptest.NewRequest(http.MethodGet, "/", nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	gone := live.WithContext(ctx)
	expired, stop := context.WithTimeout(context.Background(), -time.Second)
	defer stop()
	timedOut := live.WithContext(expired)
	tests := []struct {
		name    string
		written int
		req     *http.Request
		want    int
	}{
		{"written, client there", http.StatusCreated, live, http.StatusCreated},
		{"written, client gone", http.StatusServiceUnavailable, gone, http.StatusServiceUnavailable},
		{"nothing written, client there", 0, live, http.StatusOK},
		{"nothing written, client gone", 0, gone, web.StatusClientClosedRequest},
		{"nothing written, deadline passed", 0, timedOut, http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := &web.StatusRecorder{ResponseWriter: httptest.NewRecorder()}
			if tt.written != 0 {
				rec.WriteHeader(tt.written)
			}
			if got := rec.Recorded(tt.req); got != tt.want {
				t.Errorf("Recorded = %d, want %d", got, tt.want)
			}
		})
	}
}

func TestFailureUnavailableType(t *testing.T) {
	f := failure(discard())
	f.UnavailableType = "urn:example:problem:behind"
	for _, tt := range []struct {
		err    error
		status int
		typ    string
	}{
		{fmt.Errorf("wait: %w", context.DeadlineExceeded), http.StatusServiceUnavailable, "urn:example:problem:behind"},
		{fault.ErrOutcomeUnknown, http.StatusServiceUnavailable, web.OutcomeUnknownType},
		{errors.New("broken"), http.StatusInternalServerError, "about:blank"},
	} {
		rec := httptest.NewRecorder()
		f.Answer(rec, httptest.NewRequest(http.MethodGet, "/v1/things", nil), tt.err)
		if p := readProblem(t, rec.Result(), tt.status); p.Type != tt.typ {
			t.Errorf("%v: problem type %q, want %q", tt.err, p.Type, tt.typ)
		}
	}
}
