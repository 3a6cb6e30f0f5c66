package client

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// DefaultUserAgent is the User-Agent of a client made without WithUserAgent.
const DefaultUserAgent = "messages-go-client/1"

// maxBody bounds the answers read: a full page of 1000 messages of 1000
// characters is about 4 MiB.
const maxBody = 16 << 20

// Message is a message as the service stores it.
type Message struct {
	// ID is a ULID; it sorts by creation time.
	ID string `json:"id"`
	// UserID is who posted it.
	UserID string `json:"userId"`
	// Text is 1-1000 characters.
	Text string `json:"text"`
	// Tag is lower case, without a leading #.
	Tag string `json:"tag"`
	// CreatedAt is when the dispatcher accepted it, in UTC.
	CreatedAt time.Time `json:"createdAt"`
}

// NewMessage is what a post sends.
type NewMessage struct {
	// Text is 1-1000 characters, not blank.
	Text string `json:"text"`
	// Tag is 1-64 of A-Z a-z 0-9 _ -, with one leading # allowed; the
	// service stores it in lower case, without the #.
	Tag string `json:"tag"`
}

// TokenSource gives the bearer token of each request, for a client of the
// gateway whose tokens expire.
type TokenSource interface {
	Token(ctx context.Context) (string, error)
}

// TokenFunc is a TokenSource made of a function.
type TokenFunc func(ctx context.Context) (string, error)

// Token calls f.
func (f TokenFunc) Token(ctx context.Context) (string, error) { return f(ctx) }

// Client calls the v1 API at one base URL. It is safe for concurrent use.
type Client struct {
	base    *url.URL
	hc      *http.Client
	tokens  TokenSource
	userID  string
	agent   string
	retry   RetryPolicy
	session *Session
}

// Option configures a Client.
type Option func(*Client) error

// New returns a client of the API at baseURL, the scheme, host and any path
// prefix under which /v1 is served, such as http://localhost:8080.
func New(baseURL string, opts ...Option) (*Client, error) {
	u, err := url.Parse(baseURL)
	if err != nil {
		return nil, fmt.Errorf("messages: base URL: %w", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("messages: base URL %q: want http:// or https:// and a host", baseURL)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("messages: base URL %q: want no query or fragment", baseURL)
	}
	u.Path = strings.TrimRight(u.Path, "/")
	u.RawPath = ""
	c := &Client{base: u, hc: http.DefaultClient, agent: DefaultUserAgent}
	for _, opt := range opts {
		if err := opt(c); err != nil {
			return nil, fmt.Errorf("messages: %w", err)
		}
	}
	c.retry.setDefaults()
	return c, nil
}

// WithHTTPClient sends requests with hc instead of http.DefaultClient. Its
// Timeout, if any, bounds each attempt; the context bounds the whole call.
func WithHTTPClient(hc *http.Client) Option {
	return func(c *Client) error {
		if hc == nil {
			return errors.New("WithHTTPClient: nil client")
		}
		c.hc = hc
		return nil
	}
}

// WithToken sends token as the bearer token of every request, as the gateway
// requires.
func WithToken(token string) Option {
	return func(c *Client) error {
		if token == "" || strings.ContainsAny(token, " \t\r\n") {
			return errors.New("WithToken: want a token without spaces")
		}
		c.tokens = TokenFunc(func(context.Context) (string, error) { return token, nil })
		return nil
	}
}

// WithTokenSource asks ts for the bearer token of each request.
func WithTokenSource(ts TokenSource) Option {
	return func(c *Client) error {
		if ts == nil {
			return errors.New("WithTokenSource: nil source")
		}
		c.tokens = ts
		return nil
	}
}

var userIDRE = regexp.MustCompile(`^[A-Za-z0-9._:@-]{1,128}$`)

// WithUserID sends X-User-ID: id with every request. The services behind the
// gateway trust that header; call them directly only in development, as
// `messages dev` allows. The gateway discards it and takes the user from the
// token.
func WithUserID(id string) Option {
	return func(c *Client) error {
		if !userIDRE.MatchString(id) {
			return fmt.Errorf("WithUserID %q: want 1-128 characters of A-Z a-z 0-9 . _ : @ -", id)
		}
		c.userID = id
		return nil
	}
}

// WithUserAgent sends ua as the User-Agent of every request.
func WithUserAgent(ua string) Option {
	return func(c *Client) error {
		if ua == "" {
			return errors.New("WithUserAgent: empty user agent")
		}
		c.agent = ua
		return nil
	}
}

// WithRetry sets when and how often a call is sent again; see RetryPolicy.
func WithRetry(p RetryPolicy) Option {
	return func(c *Client) error {
		if err := p.validate(); err != nil {
			return fmt.Errorf("WithRetry: %w", err)
		}
		c.retry = p
		return nil
	}
}

// CallOption sets something of one call.
type CallOption func(*call)

type call struct {
	requestID      string
	idempotencyKey string
	// readAfter are consistency tokens a read sends; written receives a
	// post's.
	readAfter []string
	written   *string
	// resumeAfter is where a subscription starts.
	resumeAfter string
}

// RequestID sends id as the call's X-Request-ID, which the service logs and
// stores as the correlation id of a posted message's event. A malformed one
// is replaced by the service. Every attempt of the call carries the same.
func RequestID(id string) CallOption { return func(c *call) { c.requestID = id } }

// IdempotencyKey makes a post's key key instead of a generated one: a post
// sent again with the same key (1-255 visible ASCII characters) within the
// service's duplicate window, by this program or another, stores nothing new
// and answers with the first message, or 409 when the text or tag differ.
func IdempotencyKey(key string) CallOption { return func(c *call) { c.idempotencyKey = key } }

var idempotencyKeyRE = regexp.MustCompile(`^[\x21-\x7e]{1,255}$`)

// Post posts a message and returns it as stored. The call carries an
// Idempotency-Key, generated unless IdempotencyKey gives one, so that its
// retries store the message at most once.
func (c *Client) Post(ctx context.Context, m NewMessage, opts ...CallOption) (Message, error) {
	o := options(opts)
	if o.idempotencyKey == "" {
		o.idempotencyKey = rand.Text()
	} else if !idempotencyKeyRE.MatchString(o.idempotencyKey) {
		return Message{}, fmt.Errorf("messages: idempotency key %q: want 1-255 visible ASCII characters", o.idempotencyKey)
	}
	body, err := json.Marshal(m)
	if err != nil {
		return Message{}, fmt.Errorf("messages: post: %w", err)
	}
	h := http.Header{"Content-Type": {"application/json"}, "Idempotency-Key": {o.idempotencyKey}}
	res, err := c.send(ctx, http.MethodPost, c.endpoint(nil, "v1", "messages"), h, body, o)
	if err != nil {
		return Message{}, err
	}
	var out Message
	if err := decode(res, &out); err != nil {
		return Message{}, err
	}
	token := res.header.Get(consistencyTokenHeader)
	if o.written != nil {
		*o.written = token
	}
	if c.session != nil {
		c.session.wrote(token)
	}
	return out, nil
}

// Get returns the message with id. A message not (yet) in the read model is
// a *Problem with Status 404.
func (c *Client) Get(ctx context.Context, id string, opts ...CallOption) (Message, error) {
	if id == "" {
		return Message{}, errors.New("messages: get: empty id")
	}
	res, err := c.read(ctx, c.endpoint(nil, "v1", "messages", id), options(opts))
	if err != nil {
		return Message{}, err
	}
	var out Message
	if err := decode(res, &out); err != nil {
		return Message{}, err
	}
	return out, nil
}

// Count returns how many messages match f; f.PageSize plays no part.
func (c *Client) Count(ctx context.Context, f Filter, opts ...CallOption) (int64, error) {
	q, err := f.query()
	if err != nil {
		return 0, err
	}
	q.Del("limit")
	q.Set("count", "1")
	res, err := c.read(ctx, c.endpoint(q, "v1", "messages"), options(opts))
	if err != nil {
		return 0, err
	}
	n, err := strconv.ParseInt(strings.TrimSpace(string(res.body)), 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("messages: count: the answer %.40q is not a count", res.body)
	}
	return n, nil
}

// List returns the messages matching f, newest first, one page at a time as
// the loop consumes them. An error ends the sequence: it is yielded with a
// zero Message, and nothing follows.
func (c *Client) List(ctx context.Context, f Filter, opts ...CallOption) iter.Seq2[Message, error] {
	return func(yield func(Message, error) bool) {
		q, err := f.query()
		if err != nil {
			yield(Message{}, err)
			return
		}
		o := options(opts)
		next := c.endpoint(q, "v1", "messages")
		for next != nil {
			res, err := c.read(ctx, next, o)
			if err != nil {
				yield(Message{}, err)
				return
			}
			var page []Message
			if err := decode(res, &page); err != nil {
				yield(Message{}, err)
				return
			}
			next, err = c.nextPage(next, res.header)
			if err != nil {
				yield(Message{}, err)
				return
			}
			for _, m := range page {
				if !yield(m, nil) {
					return
				}
			}
		}
	}
}

// nextPage returns the URL of the Link header's rel="next", resolved
// against the page's URL, or nil on the last page. A next page elsewhere
// than the base URL's origin is refused: the client's credentials go only
// there.
func (c *Client) nextPage(page *url.URL, h http.Header) (*url.URL, error) {
	ref, ok := nextLink(h.Values("Link"))
	if !ok {
		return nil, nil
	}
	u, err := page.Parse(ref)
	if err != nil {
		return nil, fmt.Errorf("messages: list: Link %q: %w", ref, err)
	}
	if u.Scheme != c.base.Scheme || u.Host != c.base.Host {
		return nil, fmt.Errorf("messages: list: the next page %q is not at %s://%s", ref, c.base.Scheme, c.base.Host)
	}
	return u, nil
}

var linkRE = regexp.MustCompile(`^\s*<([^>]*)>\s*(;.*)?$`)
var relNextRE = regexp.MustCompile(`(?i);\s*rel\s*=\s*(?:"(?:[^"]*\s)?next(?:\s[^"]*)?"|next)\s*(?:;|$)`)

// nextLink finds the target of rel="next" in Link header values (RFC 8288).
func nextLink(values []string) (string, bool) {
	for _, v := range values {
		for _, part := range strings.Split(v, ",") {
			m := linkRE.FindStringSubmatch(part)
			if m != nil && relNextRE.MatchString(m[2]) {
				return m[1], true
			}
		}
	}
	return "", false
}

func options(opts []CallOption) call {
	var o call
	for _, opt := range opts {
		opt(&o)
	}
	return o
}

// endpoint is the URL of the path segments under the base URL, with query
// q.
func (c *Client) endpoint(q url.Values, segments ...string) *url.URL {
	u := *c.base
	raw := c.base.EscapedPath()
	for _, s := range segments {
		u.Path += "/" + s
		raw += "/" + url.PathEscape(s)
	}
	u.RawPath = raw
	u.RawQuery = q.Encode()
	return &u
}

// answer is a successful response, its body read.
type answer struct {
	status int
	header http.Header
	body   []byte
}

func decode(a answer, v any) error {
	if err := json.Unmarshal(a.body, v); err != nil {
		return fmt.Errorf("messages: the answer (%d) is not what the API describes: %w", a.status, err)
	}
	return nil
}

// send makes one call: it sends the request, again while the retry policy
// allows, and returns a successful answer, a *Problem, or the error that
// ended the call.
func (c *Client) send(ctx context.Context, method string, u *url.URL, h http.Header, body []byte, o call) (answer, error) {
	what := method + " " + u.EscapedPath()
	for attempt := 1; ; attempt++ {
		a, err := c.attempt(ctx, method, u, h, body, o)
		if err == nil {
			return a, nil
		}
		if ctx.Err() != nil {
			return answer{}, fmt.Errorf("messages: %s: %w", what, context.Cause(ctx))
		}
		wait, retry := c.retry.wait(attempt, err)
		if !retry {
			return answer{}, wrap(what, err)
		}
		if d, ok := ctx.Deadline(); ok && time.Until(d) < wait {
			return answer{}, wrap(what, err)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return answer{}, wrap(what, err)
		case <-t.C:
		}
	}
}

// wrap names the call in an error that is not a *Problem, which speaks for
// itself.
func wrap(what string, err error) error {
	var p *Problem
	if errors.As(err, &p) {
		return err
	}
	return fmt.Errorf("messages: %s: %w", what, err)
}

// attempt sends the request once.
func (c *Client) attempt(ctx context.Context, method string, u *url.URL, h http.Header, body []byte, o call) (answer, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), rd)
	if err != nil {
		return answer{}, permanentError{err}
	}
	for k, v := range h {
		req.Header[k] = v
	}
	req.Header.Set("Accept", "application/json, application/problem+json")
	req.Header.Set("User-Agent", c.agent)
	if c.userID != "" {
		req.Header.Set("X-User-ID", c.userID)
	}
	if o.requestID != "" {
		req.Header.Set("X-Request-ID", o.requestID)
	}
	if len(o.readAfter) > 0 {
		req.Header.Set(consistencyTokenHeader, strings.Join(o.readAfter, ","))
	}
	if c.tokens != nil {
		tok, err := c.tokens.Token(ctx)
		if err != nil {
			return answer{}, permanentError{fmt.Errorf("token: %w", err)}
		}
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	res, err := c.hc.Do(req)
	if err != nil {
		return answer{}, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(io.LimitReader(res.Body, maxBody+1))
	if err != nil {
		return answer{}, fmt.Errorf("read the answer: %w", err)
	}
	if len(b) > maxBody {
		return answer{}, permanentError{fmt.Errorf("the answer is over %d bytes", maxBody)}
	}
	if res.StatusCode >= 200 && res.StatusCode < 300 {
		return answer{status: res.StatusCode, header: res.Header, body: b}, nil
	}
	return answer{}, problemOf(res, b)
}

// permanentError is a failure that no retry can cure.
type permanentError struct{ err error }

func (e permanentError) Error() string { return e.err.Error() }
func (e permanentError) Unwrap() error { return e.err }
