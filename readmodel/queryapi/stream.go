package queryapi

import (
	"context"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/messages-io/messages/message"
	"github.com/messages-io/messages/position"
	"github.com/messages-io/messages/web"
	"github.com/prometheus/client_golang/prometheus"
)

// StreamConfig bounds the live streams of GET /v1/messages with Accept:
// text/event-stream.
type StreamConfig struct {
	// Feed serves the streams; without one, a stream is answered 503.
	Feed *Feed
	// PerUser and Total bound the streams open at once, for one user and
	// for the instance: over them a stream is answered 429 or 503.
	// Defaults 8 and 10000.
	PerUser, Total int
	// Heartbeat is how often an idle stream sends a comment, so that
	// proxies and clients see it alive. Default 15s.
	Heartbeat time.Duration
	// Retry is the reconnection delay a stream tells its client. Default
	// 2s.
	Retry time.Duration
	// WriteTimeout bounds each write to a stream's client; a client that
	// takes longer is disconnected. Default 10s.
	WriteTimeout time.Duration
}

func (c *StreamConfig) setDefaults() {
	if c.PerUser == 0 {
		c.PerUser = 8
	}
	if c.Total == 0 {
		c.Total = 10000
	}
	if c.Heartbeat == 0 {
		c.Heartbeat = 15 * time.Second
	}
	if c.Retry == 0 {
		c.Retry = 2 * time.Second
	}
	if c.WriteTimeout == 0 {
		c.WriteTimeout = 10 * time.Second
	}
}

// LastEventIDHeader is where a reconnecting EventSource sends the id of the
// last event it received.
const LastEventIDHeader = "Last-Event-ID"

// wantsStream reports whether r asks for a live stream: its Accept names
// text/event-stream.
func wantsStream(r *http.Request) bool {
	for _, v := range r.Header.Values("Accept") {
		for _, part := range strings.Split(v, ",") {
			if mt, _, err := mime.ParseMediaType(strings.TrimSpace(part)); err == nil && mt == "text/event-stream" {
				return true
			}
		}
	}
	return false
}

// stream serves a live stream of the messages that become visible, under
// the tag of the query or all: each as an event "message" whose data is
// the message as GET answers it and whose id is the stream's position.
func (a *API) stream(w http.ResponseWriter, r *http.Request) {
	tag, ok := streamTag(w, r)
	if !ok {
		return
	}
	cfg := a.cfg.Streams
	f := cfg.Feed
	if f == nil {
		web.WriteUnavailable(w, r, a.cfg.RetryAfter, "this query instance serves no live streams")
		return
	}
	layout := f.layoutOf()
	if layout.Partitions == 0 {
		web.WriteUnavailable(w, r, a.cfg.RetryAfter, errNotStarted.Error()+"; retry later")
		return
	}
	pos, ok := startAt(w, r, f, layout)
	if !ok {
		return
	}
	s, err := f.subscribe(tag, web.UserID(r.Context()), cfg.PerUser, cfg.Total)
	switch {
	case errors.Is(err, errUserStreams):
		web.SetRetryAfter(w.Header(), 5*a.cfg.RetryAfter)
		web.WriteProblem(w, r, http.StatusTooManyRequests, fmt.Sprintf("%s: at most %d at once; close one or retry later", err, cfg.PerUser))
		return
	case err != nil:
		web.WriteUnavailable(w, r, a.cfg.RetryAfter, err.Error()+"; retry later")
		return
	}
	defer f.closeStream(s)
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	go func() {
		select {
		case <-s.done:
			cancel()
		case <-ctx.Done():
		}
	}()
	a.follow(ctx, w, r, s, pos)
}

// streamTag reads the tag of a stream's query, "" for all; it answers 400
// and returns false for a query a stream does not take.
func streamTag(w http.ResponseWriter, r *http.Request) (string, bool) {
	params, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		web.WriteProblem(w, r, http.StatusBadRequest, "the query string is malformed: "+err.Error())
		return "", false
	}
	var tag string
	for name, vals := range params {
		switch {
		case name != "tag" && knownParams[name]:
			web.WriteProblem(w, r, http.StatusBadRequest, fmt.Sprintf("%s does not apply to a stream; it takes only tag", name))
			return "", false
		case name != "tag":
			web.WriteProblem(w, r, http.StatusBadRequest, fmt.Sprintf("unknown parameter %q; a stream takes only tag", name))
			return "", false
		case len(vals) > 1:
			web.WriteProblem(w, r, http.StatusBadRequest, fmt.Sprintf("parameter tag given %d times", len(vals)))
			return "", false
		}
		if tag, err = message.NormalizeTag(vals[0]); err != nil {
			web.WriteProblem(w, r, http.StatusBadRequest, err.Error())
			return "", false
		}
	}
	return tag, true
}

// follow writes the stream s from pos until it or its client ends: first
// what it missed since pos, then each message as it becomes visible, with
// a heartbeat between.
func (a *API) follow(ctx context.Context, w http.ResponseWriter, r *http.Request, s *stream, pos position.Position) {
	cfg := a.cfg.Streams
	f := cfg.Feed
	// A stream outlives the server's read and write timeouts; each write
	// has a deadline of its own.
	rc := http.NewResponseController(w)
	_ = rc.SetReadDeadline(time.Time{})
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	// The stream attaches before its client hears from it, so that once
	// the client has its first id, what becomes visible reaches it, or, if
	// its partition's events are forgotten meanwhile, ends it.
	attached, err := f.attach(s, pos)
	if err != nil {
		a.endStream(r, s, err)
		return
	}
	out := &sseWriter{w: w, rc: rc, timeout: cfg.WriteTimeout, sent: f.metrics.sent}
	if err := out.write(fmt.Appendf(nil, "retry: %d\nid: %s\n\n", cfg.Retry.Milliseconds(), pos)); err != nil {
		return
	}
	send := func(items ...*item) error { return out.send(&pos, items...) }
	if !attached {
		if err := f.catchUp(ctx, s, &pos, send); err != nil {
			a.endStream(r, s, err)
			return
		}
	}
	beat := time.NewTicker(cfg.Heartbeat)
	defer beat.Stop()
	for {
		items, more, err := f.take(s, takeAtOnce)
		if err == nil && len(items) > 0 {
			err = send(items...)
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			f.dropSlow(s)
		}
		if err != nil {
			a.endStream(r, s, err)
			return
		}
		if len(items) > 0 {
			continue
		}
		select {
		case <-more:
		case <-beat.C:
			if err := out.write(heartbeat); err != nil {
				return
			}
		case <-ctx.Done():
			a.endStream(r, s, ctx.Err())
			return
		}
	}
}

// endStream logs why a stream ended, unless its client left.
func (a *API) endStream(r *http.Request, s *stream, err error) {
	select {
	case <-s.done:
		err = s.err
	default:
	}
	if err == nil || r.Context().Err() != nil {
		return
	}
	a.log.Info("stream ended", "err", err, "tag", s.tag, "user_id", s.user, "request_id", web.RequestID(r.Context()))
}

// startAt returns where a stream starts: after the position of
// Last-Event-ID, or after the writes of Consistency-Token, or now. It
// answers 400 itself for a start that is malformed or of another log.
func startAt(w http.ResponseWriter, r *http.Request, f *Feed, layout position.Layout) (position.Position, bool) {
	if id := strings.TrimSpace(r.Header.Get(LastEventIDHeader)); id != "" {
		pos, err := position.ParsePosition(id, layout)
		if errors.Is(err, position.ErrMalformed) {
			// A consistency token may serve as a start too.
			if tok, terr := position.ParseToken(id, layout); terr == nil {
				return position.At(layout, tok.Sequence), true
			}
		}
		if err != nil {
			web.WriteProblem(w, r, http.StatusBadRequest, "Last-Event-ID: "+layoutError(err))
			return position.Position{}, false
		}
		return pos, true
	}
	if values := r.Header.Values(position.TokenHeader); len(values) > 0 {
		need, err := position.ParseTokens(values, layout)
		if err != nil {
			web.WriteProblem(w, r, http.StatusBadRequest, "Consistency-Token: "+tokenError(err))
			return position.Position{}, false
		}
		var after uint64
		for _, seq := range need {
			after = max(after, seq)
		}
		return position.At(layout, after), true
	}
	return f.now(), true
}

// takeAtOnce bounds the messages a stream takes from the feed, and writes,
// at once. A client must take writeAtOnce bytes within the write timeout:
// enough events that a deadline per write costs little, few enough that a
// slow client that still reads is not dropped for the size of one write.
// The buffer a stream keeps holds one piece and one event.
const (
	takeAtOnce  = 256
	writeAtOnce = 32 << 10
)

var heartbeat = []byte(": heartbeat\n\n")

// appendEvent appends the event of a message whose JSON is data to b, with
// pos, the stream's position once it is sent, as its id.
func appendEvent(b []byte, pos position.Position, data []byte) []byte {
	b = append(b, "event: message\nid: "...)
	b, _ = pos.AppendText(b)
	b = append(b, "\ndata: "...)
	b = append(b, data...)
	return append(b, "\n\n"...)
}

// sseWriter writes a stream's events, each write within its own deadline.
type sseWriter struct {
	w       http.ResponseWriter
	rc      *http.ResponseController
	timeout time.Duration
	sent    prometheus.Counter
	buf     []byte // kept from one send to the next
}

// send writes the events of the messages of items, taken at once, and
// flushes them once, pos moving past each message: in pieces of about
// writeAtOnce bytes, each within its own deadline.
func (s *sseWriter) send(pos *position.Position, items ...*item) error {
	buf := s.buf[:0]
	for _, it := range items {
		pos.After[it.part] = it.seq
		buf = appendEvent(buf, *pos, it.data)
		if len(buf) >= writeAtOnce {
			if err := s.put(buf); err != nil {
				return err
			}
			buf = buf[:0]
		}
	}
	if err := s.write(buf); err != nil {
		return err
	}
	s.sent.Add(float64(len(items)))
	s.buf = buf
	return nil
}

// write writes b and flushes it.
func (s *sseWriter) write(b []byte) error {
	if err := s.put(b); err != nil {
		return err
	}
	return s.rc.Flush()
}

// put writes b, unflushed, within the write timeout.
func (s *sseWriter) put(b []byte) error {
	_ = s.rc.SetWriteDeadline(time.Now().Add(s.timeout))
	_, err := s.w.Write(b)
	return err
}
