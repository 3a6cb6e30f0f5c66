package web

import (
	"context"
	"crypto/rand"
	"errors"
	"log/slog"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/messages-io/messages/message"
	"github.com/oklog/ulid/v2"
)

// Headers the service reads and writes.
const (
	RequestIDHeader = "X-Request-ID"
	UserIDHeader    = "X-User-ID"
)

type ctxKey int

const (
	requestIDKey ctxKey = iota
	userIDKey
)

var requestIDRE = regexp.MustCompile(`^[A-Za-z0-9._:/+=-]{1,128}$`)

// RequestID returns the request id that the RequestIDs middleware put in ctx.
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey).(string)
	return id
}

// UserID returns the caller that the Users middleware put in ctx.
func UserID(ctx context.Context) string {
	id, _ := ctx.Value(userIDKey).(string)
	return id
}

// RequestIDs takes a well-formed X-Request-ID from the request or makes one,
// puts it in the request's context and echoes it on the response.
func RequestIDs(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get(RequestIDHeader)
		if !requestIDRE.MatchString(id) {
			id = ulid.MustNew(ulid.Now(), rand.Reader).String()
		}
		w.Header().Set(RequestIDHeader, id)
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), requestIDKey, id)))
	})
}

// Users admits requests under /v1 only with a well-formed X-User-ID, set by
// the gateway, and puts it in the request's context; others get 403.
func Users(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasPrefix(r.URL.Path, "/v1/") && r.URL.Path != "/v1" {
			next.ServeHTTP(w, r)
			return
		}
		id := r.Header.Values(UserIDHeader)
		if len(id) != 1 || !message.ValidUserID(id[0]) {
			WriteProblem(w, r, http.StatusForbidden,
				"X-User-ID must be 1-128 characters of A-Z a-z 0-9 . _ : @ -, set by the gateway")
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), userIDKey, id[0])))
	})
}

// StatusRecorder remembers the first status a handler wrote: 0 while it
// wrote nothing, 200 when it wrote a body without a status.
type StatusRecorder struct {
	http.ResponseWriter
	Status int
}

// WriteHeader implements http.ResponseWriter.
func (r *StatusRecorder) WriteHeader(status int) {
	if r.Status == 0 {
		r.Status = status
	}
	r.ResponseWriter.WriteHeader(status)
}

// Write implements http.ResponseWriter.
func (r *StatusRecorder) Write(b []byte) (int, error) {
	if r.Status == 0 {
		r.Status = http.StatusOK
	}
	return r.ResponseWriter.Write(b)
}

// Unwrap gives http.ResponseController the writer underneath.
func (r *StatusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// StatusClientClosedRequest is the status recorded, never sent, for a request
// its client abandoned before the handler answered (nginx's 499).
const StatusClientClosedRequest = 499

// Recorded is the status req is counted and logged with once answered: the
// one written; StatusClientClosedRequest when nothing was written and the
// client went away; otherwise 200, which the server sends for a handler
// that wrote nothing.
func (r *StatusRecorder) Recorded(req *http.Request) int {
	switch {
	case r.Status != 0:
		return r.Status
	case errors.Is(req.Context().Err(), context.Canceled):
		return StatusClientClosedRequest
	}
	return http.StatusOK
}

// Observe records each request in the metrics under route, and logs it at
// debug level (warn for server errors), with its request id. A request whose
// client went away before the handler wrote anything is recorded as 499, not
// as the 200 the server would otherwise imply; nothing is written to it.
func Observe(m *HTTPMetrics, log *slog.Logger, route string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &StatusRecorder{ResponseWriter: w}
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v) // the server aborts the response, as the handler asked
				}
				log.Error("handler panicked", "route", route, "panic", v, "request_id", RequestID(r.Context()))
				if rec.Status == 0 {
					WriteProblem(rec, r, http.StatusInternalServerError, "internal error")
				}
			}
			rec.Status = rec.Recorded(r)
			elapsed := time.Since(start)
			code := strconv.Itoa(rec.Status)
			m.requests.WithLabelValues(route, r.Method, code).Inc()
			m.duration.WithLabelValues(route, r.Method, code).Observe(elapsed.Seconds())
			level := slog.LevelDebug
			if rec.Status >= 500 {
				level = slog.LevelWarn
			}
			log.Log(r.Context(), level, "request",
				"method", r.Method, "route", route, "path", r.URL.Path, "status", rec.Status,
				"duration", elapsed, "request_id", RequestID(r.Context()), "user_id", r.Header.Get(UserIDHeader))
		}()
		next.ServeHTTP(rec, r)
	})
}
