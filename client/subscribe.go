package client

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Event is a message of a live stream, with the position after it.
type Event struct {
	Message
	// Position is where the stream stands after this message: Subscribe
	// with ResumeAfter(Position) goes on with the message after it, with no
	// gap and no duplicate, on any query instance.
	Position string
}

// ResumeAfter makes a subscription start after position, the Position of
// an Event received before (or a post's consistency token: after that
// write), instead of now.
func ResumeAfter(position string) CallOption { return func(c *call) { c.resumeAfter = position } }

// silence is how long a stream may send nothing before it is taken for
// broken: the service sends a comment every 15s while idle.
const silence = 45 * time.Second

// Subscribe returns the messages under tag (every tag when empty) as they
// become visible to reads, from now on (or after ResumeAfter's position),
// until ctx ends. It reads the live stream of Server-Sent Events the API
// answers a GET /v1/messages with Accept: text/event-stream.
//
// A broken connection, a stream silent for longer than its heartbeats
// allow, or an answer of 502, 503 or 504 is followed by a new connection
// that resumes with Last-Event-ID after the last event received, so no
// message is missed or repeated; it waits the stream's retry hint or the
// answer's Retry-After first. The retry policy bounds the attempts in a row
// that fail before one connects. Any other answer, or the retries used up,
// ends the sequence with the error. The end of ctx ends it without one.
//
// The http.Client's Timeout does not apply to the stream, which lasts; the
// context bounds it.
func (c *Client) Subscribe(ctx context.Context, tag string, opts ...CallOption) iter.Seq2[Event, error] {
	return func(yield func(Event, error) bool) {
		o := options(opts)
		q := url.Values{}
		if tag != "" {
			q.Set("tag", tag)
		}
		u := c.endpoint(q, "v1", "messages")
		hc := *c.hc
		hc.Timeout = 0
		s := &stream{c: c, hc: &hc, u: u, o: o, last: o.resumeAfter}
		failures := 0
		for {
			connected, err := s.run(ctx, yield)
			if s.stopped || ctx.Err() != nil {
				return
			}
			if connected {
				failures = 0
			}
			failures++
			wait, retry := c.retry.wait(failures, err)
			if !retry {
				yield(Event{}, fmt.Errorf("messages: subscribe: %w", err))
				return
			}
			var p *Problem
			if s.retryHint > 0 && !errors.As(err, &p) {
				wait = s.retryHint
			}
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
		}
	}
}

// stream is one subscription: where it stands, across its connections.
type stream struct {
	c         *Client
	hc        *http.Client
	u         *url.URL
	o         call
	last      string        // the last event id received: the position to resume after
	retryHint time.Duration // the stream's retry: field
	stopped   bool          // the loop asked for no more
}

// run makes one connection and yields its events until it ends; connected
// says whether the service answered with a stream.
func (s *stream) run(ctx context.Context, yield func(Event, error) bool) (connected bool, err error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	res, err := s.connect(ctx)
	if err != nil {
		return false, err
	}
	defer res.Body.Close()
	// A stream silent for longer than its heartbeats allow is broken.
	watchdog := time.AfterFunc(silence, func() { cancel(errors.New("the stream fell silent")) })
	defer watchdog.Stop()
	err = s.read(res.Body, func() { watchdog.Reset(silence) }, yield)
	if cause := context.Cause(ctx); cause != nil && ctx.Err() != nil && err != nil && !s.stopped {
		err = fmt.Errorf("the stream broke: %w", cause)
	}
	return true, err
}

// connect asks for the stream, from after the last event received.
func (s *stream) connect(ctx context.Context) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.u.String(), nil)
	if err != nil {
		return nil, permanentError{err}
	}
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Cache-Control", "no-cache")
	req.Header.Set("User-Agent", s.c.agent)
	if s.c.userID != "" {
		req.Header.Set("X-User-ID", s.c.userID)
	}
	if s.o.requestID != "" {
		req.Header.Set("X-Request-ID", s.o.requestID)
	}
	if s.last != "" {
		req.Header.Set("Last-Event-ID", s.last)
	}
	if s.c.tokens != nil {
		tok, err := s.c.tokens.Token(ctx)
		if err != nil {
			return nil, permanentError{fmt.Errorf("token: %w", err)}
		}
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	res, err := s.hc.Do(req)
	if err != nil {
		return nil, err
	}
	if res.StatusCode != http.StatusOK {
		defer res.Body.Close()
		b, _ := io.ReadAll(io.LimitReader(res.Body, 64<<10))
		return nil, problemOf(res, b)
	}
	if mt, _, _ := mime.ParseMediaType(res.Header.Get("Content-Type")); mt != "text/event-stream" {
		res.Body.Close()
		return nil, permanentError{fmt.Errorf("the answer is %q, not a stream of events", res.Header.Get("Content-Type"))}
	}
	return res, nil
}

// read parses Server-Sent Events from body and yields each message event,
// calling alive for every line, until the stream ends (an error) or the
// loop asks for no more (nil, with s.stopped set).
func (s *stream) read(body io.Reader, alive func(), yield func(Event, error) bool) error {
	r := bufio.NewReaderSize(body, 64<<10)
	var event, id, data strings.Builder
	var hasID bool
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return fmt.Errorf("the stream broke: %w", err)
		}
		alive()
		line = strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r")
		if line == "" {
			// The end of an event: dispatch it.
			if hasID {
				s.last = id.String()
			}
			if data.Len() > 0 && (event.Len() == 0 || event.String() == "message") {
				var m Message
				if err := json.Unmarshal([]byte(strings.TrimSuffix(data.String(), "\n")), &m); err != nil {
					return permanentError{fmt.Errorf("an event's data is not a message: %w", err)}
				}
				if !yield(Event{Message: m, Position: s.last}, nil) {
					s.stopped = true
					return nil
				}
			}
			event.Reset()
			data.Reset()
			id.Reset()
			hasID = false
			continue
		}
		if strings.HasPrefix(line, ":") {
			continue // a comment: the heartbeat
		}
		field, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		switch field {
		case "event":
			event.Reset()
			event.WriteString(value)
		case "data":
			data.WriteString(value)
			data.WriteByte('\n')
		case "id":
			if !strings.ContainsRune(value, 0) {
				id.Reset()
				id.WriteString(value)
				hasID = true
			}
		case "retry":
			if ms, err := strconv.Atoi(value); err == nil && ms >= 0 {
				s.retryHint = time.Duration(ms) * time.Millisecond
			}
		}
	}
}
