package client

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"sync"
)

const consistencyTokenHeader = "Consistency-Token"

// ConsistencyToken stores in *dst the consistency token of a post's answer:
// an opaque string naming the write's place in the event log. A read given
// it with ReadAfter reflects the write. A post that its Idempotency-Key
// recognised gets the first write's token.
func ConsistencyToken(dst *string) CallOption { return func(c *call) { c.written = dst } }

// ReadAfter makes a read (Get, Count, or every page of List) reflect at
// least the writes whose consistency tokens it is given, at most 64: the
// service waits a bounded time for its read model to fold them, and answers
// 503, which the retry policy retries, when it has not. Empty tokens are
// left out.
func ReadAfter(tokens ...string) CallOption {
	return func(c *call) {
		for _, t := range tokens {
			if t != "" {
				c.readAfter = append(c.readAfter, t)
			}
		}
	}
}

// Session carries the consistency tokens of the posts made through a client
// to the reads made through it (see WithSession), so that a read reflects
// the session's own writes: what one user posted shows in what that user
// reads next, at once, whichever query instance answers.
//
// A session holds the tokens of writes that no read has yet confirmed; a
// successful read confirms the tokens it carried, which the read model then
// reflects for good, so a session that reads now and then holds few. It
// holds at most the 64 newest (what one request may carry); an older one
// is dropped.
//
// The zero Session is empty and ready to use. A Session is safe for
// concurrent use.
type Session struct {
	mu      sync.Mutex
	pending []string // oldest first
}

// maxSessionTokens is the most tokens a session holds: what one request
// may carry.
const maxSessionTokens = 64

// NewSession returns a session holding tokens, the Tokens of an earlier
// session, for one carried across processes (say in a web session).
func NewSession(tokens ...string) *Session {
	s := &Session{}
	for _, t := range tokens {
		s.wrote(t)
	}
	return s
}

// Tokens returns the tokens of the session's writes that no read has
// confirmed yet, oldest first.
func (s *Session) Tokens() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.pending)
}

func (s *Session) wrote(token string) {
	if token == "" {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if slices.Contains(s.pending, token) {
		return
	}
	s.pending = append(s.pending, token)
	if over := len(s.pending) - maxSessionTokens; over > 0 {
		s.pending = slices.Delete(s.pending, 0, over)
	}
}

// confirmed removes tokens, which a successful read carried.
func (s *Session) confirmed(tokens []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pending = slices.DeleteFunc(s.pending, func(t string) bool { return slices.Contains(tokens, t) })
}

// WithSession makes the client's posts and reads part of s: each post's
// consistency token is kept in s, and each read (Get, Count, every page of
// List) carries the tokens s holds, besides any given with ReadAfter. Give
// each end user a client of their own session; clients may share an
// http.Client.
func WithSession(s *Session) Option {
	return func(c *Client) error {
		if s == nil {
			return errors.New("WithSession: nil session")
		}
		c.session = s
		return nil
	}
}

// read sends a GET, carrying the session's tokens, and confirms them when
// it succeeds.
func (c *Client) read(ctx context.Context, u *url.URL, o call) (answer, error) {
	var carried []string
	if c.session != nil {
		carried = c.session.Tokens()
		if room := maxSessionTokens - len(o.readAfter); len(carried) > room {
			carried = carried[len(carried)-max(room, 0):]
		}
		o.readAfter = append(slices.Clip(o.readAfter), carried...)
	}
	a, err := c.send(ctx, http.MethodGet, u, nil, nil, o)
	if err == nil && len(carried) > 0 {
		c.session.confirmed(carried)
	}
	return a, err
}
