package gateway

import (
	"context"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"net/http/httputil"
	"strings"
	"sync"
	"time"
)

// streaming reports whether r asks for a live stream (Accept:
// text/event-stream), which the gateway passes through as it comes.
func streaming(r *http.Request) bool {
	for _, v := range r.Header.Values("Accept") {
		for _, part := range strings.Split(v, ",") {
			if mt, _, err := mime.ParseMediaType(strings.TrimSpace(part)); err == nil && mt == "text/event-stream" {
				return true
			}
		}
	}
	return false
}

// errStreamIdle ends a stream on which the upstream sent nothing, not even
// a heartbeat, for the idle timeout.
var errStreamIdle = errors.New("the stream was idle too long")

// proxyStream passes a live stream through: the upstream must answer within
// the upstream timeout, and may then stream for as long as it sends
// something at least every StreamIdleTimeout. Each event is flushed to the
// caller at once (the reverse proxy flushes text/event-stream as it comes),
// and the server's own read and write timeouts do not apply.
func (g *Gateway) proxyStream(rp *httputil.ReverseProxy, p *pool, w http.ResponseWriter, r *http.Request) {
	if x := exchangeFrom(r.Context()); x != nil {
		x.stream = true
	}
	rc := http.NewResponseController(w)
	_ = rc.SetReadDeadline(time.Time{})
	_ = rc.SetWriteDeadline(time.Time{})
	ctx, cancel := context.WithCancelCause(r.Context())
	defer cancel(nil)
	iw := &idleWriter{ResponseWriter: w, idleTimeout: g.cfg.StreamIdleTimeout, onIdle: func() { cancel(errStreamIdle) }}
	iw.timer = time.AfterFunc(g.cfg.UpstreamTimeout, func() { cancel(context.DeadlineExceeded) })
	defer iw.stop()
	rp.ServeHTTP(iw, r.WithContext(ctx))
	if !iw.started() && errors.Is(context.Cause(ctx), context.DeadlineExceeded) && r.Context().Err() == nil {
		// The proxy saw its request canceled and answered nothing.
		g.upstreamFailed(w, r, p, fmt.Errorf("no answer within %s: %w", g.cfg.UpstreamTimeout, context.DeadlineExceeded))
	}
}

// idleWriter is a stream's response: the upstream must answer within the
// upstream timeout, and once it has, every write puts off the idle timeout.
type idleWriter struct {
	http.ResponseWriter
	idleTimeout time.Duration
	onIdle      func()
	mu          sync.Mutex
	timer       *time.Timer
	wrote       bool
}

func (w *idleWriter) started() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.wrote
}

func (w *idleWriter) stop() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.timer.Stop()
}

func (w *idleWriter) WriteHeader(status int) {
	w.mu.Lock()
	if !w.wrote {
		w.wrote = true
		w.timer.Stop() // the answer came in time; from now on silence ends it
		w.timer = time.AfterFunc(w.idleTimeout, w.onIdle)
	}
	w.mu.Unlock()
	w.ResponseWriter.WriteHeader(status)
}

func (w *idleWriter) Write(b []byte) (int, error) {
	if !w.started() {
		w.WriteHeader(http.StatusOK)
	}
	w.mu.Lock()
	w.timer.Reset(w.idleTimeout)
	w.mu.Unlock()
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController flush the response underneath.
func (w *idleWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
