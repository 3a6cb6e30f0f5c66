package client_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/messages-io/messages/client"
)

// newClient returns a client of the service at base, for user: directly
// with X-User-ID, or through the gateway with a token.
func newClient(t *testing.T, base, user string, opts ...client.Option) *client.Client {
	t.Helper()
	if base == gatewayURL {
		tok, err := stack.Token(user)
		if err != nil {
			t.Fatal(err)
		}
		opts = append(opts, client.WithToken(tok))
	} else {
		opts = append(opts, client.WithUserID(user))
	}
	c, err := client.New(base, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func uniqueTag(t *testing.T) string {
	return fmt.Sprintf("t%d", time.Now().UnixNano())
}

// waitCount polls until c counts want messages under f.
func waitCount(t *testing.T, c *client.Client, f client.Filter, want int64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		n, err := c.Count(ctx, f)
		if err == nil && n == want {
			return
		}
		if ctx.Err() != nil {
			t.Fatalf("count %+v = %d, %v; want %d within 30s", f, n, err, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func collect(t *testing.T, seq func(func(client.Message, error) bool)) []client.Message {
	t.Helper()
	var out []client.Message
	for m, err := range seq {
		if err != nil {
			t.Fatalf("list: %v", err)
		}
		out = append(out, m)
	}
	return out
}

// Posts, reads and filters through both doors: the services directly and
// the gateway.
func TestPostGetListCount(t *testing.T) {
	for name, base := range map[string]string{"direct": baseURL, "gateway": gatewayURL} {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			c := newClient(t, base, "bob")
			tag := uniqueTag(t)
			var posted []client.Message
			for i := range 5 {
				m, err := c.Post(ctx, client.NewMessage{Text: fmt.Sprintf("message %d", i), Tag: "#" + strings.ToUpper(tag)})
				if err != nil {
					t.Fatal(err)
				}
				if m.UserID != "bob" || m.Tag != tag || m.Text != fmt.Sprintf("message %d", i) || len(m.ID) != 26 || m.CreatedAt.IsZero() {
					t.Fatalf("posted %+v", m)
				}
				posted = append(posted, m)
			}
			waitCount(t, c, client.Filter{Tag: tag}, 5)

			// Pages of two: three pages, newest first.
			got := collect(t, c.List(ctx, client.Filter{Tag: tag, PageSize: 2}))
			want := slices.Clone(posted)
			slices.Reverse(want)
			if !equalMessages(got, want) {
				t.Errorf("list = %v\nwant %v", got, want)
			}
			for _, m := range posted {
				g, err := c.Get(ctx, m.ID)
				if err != nil || !g.CreatedAt.Equal(m.CreatedAt) || g.ID != m.ID || g.Text != m.Text {
					t.Errorf("get %s = %+v, %v; want %+v", m.ID, g, err, m)
				}
			}
			// Lower-case ids are the same ids.
			if g, err := c.Get(ctx, strings.ToLower(posted[0].ID)); err != nil || g.ID != posted[0].ID {
				t.Errorf("get in lower case = %+v, %v", g, err)
			}

			// Both date forms, on each side.
			first, last := posted[0].CreatedAt, posted[4].CreatedAt
			day := client.DayOf(first)
			for _, tt := range []struct {
				f    client.Filter
				want int64
			}{
				{client.Filter{Tag: tag, Since: day, Until: client.DayOf(last)}, 5},
				{client.Filter{Tag: tag, Since: client.Instant(first)}, 5},
				{client.Filter{Tag: tag, Since: client.Instant(first.Add(time.Millisecond))}, countAfter(posted, first)},
				{client.Filter{Tag: tag, Until: client.Instant(last)}, countBefore(posted, last)},
				{client.Filter{Tag: tag, Until: client.Day(2020, 1, 1)}, 0},
				{client.Filter{Tag: tag, Since: client.Day(2999, 1, 1)}, 0},
				{client.Filter{Tag: "nothing-" + tag}, 0},
			} {
				n, err := c.Count(ctx, tt.f)
				if err != nil || n != tt.want {
					t.Errorf("count %+v = %d, %v; want %d", tt.f, n, err, tt.want)
				}
				l := collect(t, c.List(ctx, tt.f))
				if int64(len(l)) != tt.want {
					t.Errorf("list %+v: %d messages, want %d", tt.f, len(l), tt.want)
				}
			}
		})
	}
}

func countAfter(ms []client.Message, t time.Time) (n int64) {
	for _, m := range ms {
		if m.CreatedAt.After(t) {
			n++
		}
	}
	return n
}

func countBefore(ms []client.Message, t time.Time) (n int64) {
	for _, m := range ms {
		if m.CreatedAt.Before(t) {
			n++
		}
	}
	return n
}

func equalMessages(a, b []client.Message) bool {
	return slices.EqualFunc(a, b, func(x, y client.Message) bool {
		return x.ID == y.ID && x.UserID == y.UserID && x.Text == y.Text && x.Tag == y.Tag && x.CreatedAt.Equal(y.CreatedAt)
	})
}

// countingTransport counts the requests sent through it.
type countingTransport struct {
	mu   sync.Mutex
	urls []string
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.mu.Lock()
	c.urls = append(c.urls, r.URL.String())
	c.mu.Unlock()
	return http.DefaultTransport.RoundTrip(r)
}

func (c *countingTransport) sent() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.urls)
}

// List asks for a page only when the loop needs it, and follows the cursor
// of each Link.
func TestListIsLazy(t *testing.T) {
	rec := &countingTransport{}
	c := newClient(t, baseURL, "alice", client.WithHTTPClient(&http.Client{Transport: rec}))
	f := client.Filter{Tag: "morning", PageSize: 1}
	for range c.List(context.Background(), f) {
		break
	}
	if n := len(rec.sent()); n != 1 {
		t.Fatalf("one message taken: %d requests, want 1", n)
	}
	if got := collect(t, c.List(context.Background(), f)); len(got) != 3 {
		t.Fatalf("%d messages, want 3", len(got))
	}
	sent := rec.sent()[1:]
	if len(sent) != 3 {
		t.Fatalf("three pages of one: %d requests %v, want 3", len(sent), sent)
	}
	for i, u := range sent {
		hasCursor := strings.Contains(u, "cursor=")
		if hasCursor != (i > 0) {
			t.Errorf("request %d %s: cursor %v", i, u, hasCursor)
		}
	}
}

// Answers other than success are *Problem, with what the service said.
func TestProblems(t *testing.T) {
	ctx := context.Background()
	direct := newClient(t, baseURL, "alice")
	anonymous, err := client.New(baseURL)
	if err != nil {
		t.Fatal(err)
	}
	noToken, err := client.New(gatewayURL)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name   string
		call   func() error
		status int
	}{
		{"blank text", func() error {
			_, err := direct.Post(ctx, client.NewMessage{Text: " ", Tag: "a"})
			return err
		}, 400},
		{"no such message", func() error { _, err := direct.Get(ctx, "01HQ3Z5Y8K6J9M2N4P7R0S1T2V"); return err }, 404},
		{"not an id", func() error { _, err := direct.Get(ctx, "nope"); return err }, 400},
		{"start after end", func() error {
			_, err := direct.Count(ctx, client.Filter{Since: client.Day(2026, 2, 1), Until: client.Day(2026, 1, 1)})
			return err
		}, 400},
		{"list start after end", func() error {
			for _, err := range direct.List(ctx, client.Filter{Since: client.Day(2026, 2, 1), Until: client.Day(2026, 1, 1)}) {
				return err
			}
			return nil
		}, 400},
		{"no user", func() error { _, err := anonymous.Count(ctx, client.Filter{}); return err }, 403},
		{"no token", func() error { _, err := noToken.Get(ctx, "01HQ3Z5Y8K6J9M2N4P7R0S1T2V"); return err }, 401},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call()
			var p *client.Problem
			if !errors.As(err, &p) {
				t.Fatalf("error %v (%T), want a *client.Problem", err, err)
			}
			if p.Status != tt.status || p.Title != http.StatusText(tt.status) || p.Detail == "" || p.RequestID == "" || p.Type != "about:blank" {
				t.Errorf("problem %+v, want status %d with a title, detail and request id", p, tt.status)
			}
			if !strings.Contains(err.Error(), fmt.Sprint(tt.status)) || !strings.Contains(err.Error(), p.Detail) {
				t.Errorf("error text %q does not say the status and detail", err)
			}
		})
	}
}

// A request id given to a call is the one the service logs and answers with.
func TestRequestID(t *testing.T) {
	c := newClient(t, baseURL, "alice")
	_, err := c.Get(context.Background(), "01HQ3Z5Y8K6J9M2N4P7R0S1T2V", client.RequestID("trace-42"))
	var p *client.Problem
	if !errors.As(err, &p) || p.RequestID != "trace-42" {
		t.Fatalf("error %v, want a problem of request trace-42", err)
	}
}

// fakeService answers each request with the next of its answers, recording
// what it was sent; a nil answer drops the connection.
type fakeService struct {
	mu      sync.Mutex
	answers []func(w http.ResponseWriter)
	got     []*http.Request
	keys    []string
}

func newFake(t *testing.T, answers ...func(w http.ResponseWriter)) (*fakeService, string) {
	f := &fakeService{answers: answers}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return f, srv.URL
}

func (f *fakeService) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.got = append(f.got, r)
	f.keys = append(f.keys, r.Header.Get("Idempotency-Key"))
	var answer func(http.ResponseWriter)
	if len(f.answers) > 0 {
		answer, f.answers = f.answers[0], f.answers[1:]
	}
	f.mu.Unlock()
	if answer == nil {
		conn, _, err := http.NewResponseController(w).Hijack()
		if err == nil {
			conn.Close()
		}
		return
	}
	answer(w)
}

func (f *fakeService) requests() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.got)
}

func status(code int, retryAfter string) func(w http.ResponseWriter) {
	return func(w http.ResponseWriter) {
		if retryAfter != "" {
			w.Header().Set("Retry-After", retryAfter)
		}
		w.Header().Set("Content-Type", "application/problem+json")
		w.Header().Set("X-Request-ID", "req-1")
		w.WriteHeader(code)
		fmt.Fprintf(w, `{"type":"about:blank","title":%q,"status":%d,"detail":"from the fake"}`, http.StatusText(code), code)
	}
}

func created(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusCreated)
	fmt.Fprint(w, `{"id":"01M819QQ3B3PP1B9NQGDKMBF9F","userId":"alice","text":"hi","tag":"a","createdAt":"2026-11-22T09:34:58.667Z"}`)
}

var quick = client.WithRetry(client.RetryPolicy{Attempts: 4, MinWait: time.Millisecond, MaxWait: 2 * time.Second})

// A post is sent again after 502, 503, 504 and broken connections, with the
// same Idempotency-Key, and never after a 4xx.
func TestPostRetries(t *testing.T) {
	for _, tt := range []struct {
		name     string
		answers  []func(http.ResponseWriter)
		requests int
		status   int // of the Problem returned; 0: success
	}{
		{"503 with Retry-After", []func(http.ResponseWriter){status(503, "1"), created}, 2, 0},
		{"502 and 504", []func(http.ResponseWriter){status(502, ""), status(504, ""), created}, 3, 0},
		{"a dropped connection", []func(http.ResponseWriter){nil, created}, 2, 0},
		{"every attempt fails", []func(http.ResponseWriter){status(503, ""), status(503, ""), status(503, ""), status(503, ""), created}, 4, 503},
		{"400", []func(http.ResponseWriter){status(400, ""), created}, 1, 400},
		{"409", []func(http.ResponseWriter){status(409, ""), created}, 1, 409},
		{"429 with Retry-After", []func(http.ResponseWriter){status(429, "1"), created}, 1, 429},
		{"500", []func(http.ResponseWriter){status(500, ""), created}, 1, 500},
		{"Retry-After over MaxWait", []func(http.ResponseWriter){status(503, "3"), created}, 1, 503},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f, url := newFake(t, tt.answers...)
			c, err := client.New(url, client.WithUserID("alice"), quick)
			if err != nil {
				t.Fatal(err)
			}
			m, err := c.Post(context.Background(), client.NewMessage{Text: "hi", Tag: "a"})
			if n := f.requests(); n != tt.requests {
				t.Errorf("%d requests, want %d", n, tt.requests)
			}
			if len(f.keys) == 0 || f.keys[0] == "" || slices.ContainsFunc(f.keys, func(k string) bool { return k != f.keys[0] }) {
				t.Errorf("keys %q, want one generated key on every attempt", f.keys)
			}
			var p *client.Problem
			switch {
			case tt.status == 0 && (err != nil || m.ID != "01M819QQ3B3PP1B9NQGDKMBF9F"):
				t.Errorf("post = %+v, %v; want the message", m, err)
			case tt.status != 0 && (!errors.As(err, &p) || p.Status != tt.status || p.RequestID != "req-1"):
				t.Errorf("post error %v, want a problem with status %d", err, tt.status)
			}
		})
	}

	t.Run("the context's deadline comes before Retry-After", func(t *testing.T) { checkDeadlineBeforeRetryAfter(t) })

	t.Run("a key given is sent", func(t *testing.T) { checkKeyGivenIsSent(t) })

	t.Run("two posts, two keys", func(t *testing.T) {
		f, url := newFake(t, created, created)
		c, err := client.New(url, client.WithUserID("alice"))
		if err != nil {
			t.Fatal(err)
		}
		for range 2 {
			if _, err := c.Post(context.Background(), client.NewMessage{Text: "hi", Tag: "a"}); err != nil {
				t.Fatal(err)
			}
		}
		if len(f.keys) != 2 || f.keys[0] == f.keys[1] {
			t.Errorf("keys %q, want two different ones", f.keys)
		}
	})
}

// checkDeadlineBeforeRetryAfter checks that a post whose context ends
// before the Retry-After of a 503 returns that problem at once.
func checkDeadlineBeforeRetryAfter(t *testing.T) {
	t.Helper()
	f, url := newFake(t, status(503, "2"), created)
	c, err := client.New(url, client.WithUserID("alice"), quick)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_, err = c.Post(ctx, client.NewMessage{Text: "hi", Tag: "a"})
	var p *client.Problem
	if !errors.As(err, &p) || p.Status != 503 || p.RetryAfter != 2*time.Second {
		t.Errorf("post error %v, want the 503 asking for 2s", err)
	}
	if n := f.requests(); n != 1 {
		t.Errorf("%d requests, want 1", n)
	}
	if ctx.Err() != nil {
		t.Error("the call waited out its deadline instead of returning the problem")
	}
}

// checkKeyGivenIsSent checks that a post sends the Idempotency-Key given on
// every attempt, and refuses a malformed one.
func checkKeyGivenIsSent(t *testing.T) {
	t.Helper()
	f, url := newFake(t, status(503, ""), created)
	c, err := client.New(url, client.WithUserID("alice"), quick)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Post(context.Background(), client.NewMessage{Text: "hi", Tag: "a"}, client.IdempotencyKey("my-key")); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(f.keys, []string{"my-key", "my-key"}) {
		t.Errorf("keys %q, want my-key twice", f.keys)
	}
	if _, err := c.Post(context.Background(), client.NewMessage{Text: "hi", Tag: "a"}, client.IdempotencyKey("two words")); err == nil {
		t.Error("a key with a space was sent")
	}
}

// A post whose answer was lost on the way back is sent again and stored
// once: the service recognises its key and answers with the first message.
func TestRetriedPostIsStoredOnce(t *testing.T) {
	target, err := url.Parse(baseURL)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var firstID string
	var replayed []string
	proxy := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) { r.SetURL(target) },
		ModifyResponse: func(res *http.Response) error {
			mu.Lock()
			defer mu.Unlock()
			replayed = append(replayed, res.Header.Get("Idempotent-Replayed"))
			if firstID == "" {
				firstID = strings.TrimPrefix(res.Header.Get("Location"), "/v1/messages/")
				// The message is stored; its answer is lost.
				return errors.New("lost")
			}
			return nil
		},
	}
	srv := httptest.NewServer(proxy)
	t.Cleanup(srv.Close)

	c := newClient(t, srv.URL, "carol", quick)
	tag := uniqueTag(t)
	m, err := c.Post(context.Background(), client.NewMessage{Text: "once", Tag: tag})
	if err != nil {
		t.Fatal(err)
	}
	if firstID == "" || m.ID != firstID {
		t.Errorf("message %s, want the one stored by the first attempt, %s", m.ID, firstID)
	}
	if !slices.Equal(replayed, []string{"", "true"}) {
		t.Errorf("Idempotent-Replayed of the attempts %q, want the second replayed", replayed)
	}
	direct := newClient(t, baseURL, "carol")
	waitCount(t, direct, client.Filter{Tag: tag}, 1)
	if got := collect(t, direct.List(context.Background(), client.Filter{Tag: tag})); len(got) != 1 || got[0].ID != firstID {
		t.Errorf("stored %v, want the one message", got)
	}
}

// Reads are sent again after a 503 too; the context's cancellation ends a
// call at once.
func TestReadRetriesAndCancellation(t *testing.T) {
	f, url := newFake(t, status(503, ""), func(w http.ResponseWriter) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, "7")
	})
	c, err := client.New(url, client.WithUserID("alice"), quick)
	if err != nil {
		t.Fatal(err)
	}
	if n, err := c.Count(context.Background(), client.Filter{}); err != nil || n != 7 || f.requests() != 2 {
		t.Errorf("count = %d, %v after %d requests; want 7 after 2", n, err, f.requests())
	}

	block := make(chan struct{})
	defer close(block)
	_, url = newFake(t, func(w http.ResponseWriter) { <-block })
	c, err = client.New(url, client.WithUserID("alice"), quick)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		time.Sleep(50 * time.Millisecond)
		cancel()
	}()
	if _, err := c.Get(ctx, "01HQ3Z5Y8K6J9M2N4P7R0S1T2V"); !errors.Is(err, context.Canceled) {
		t.Errorf("get = %v, want context.Canceled", err)
	}
}

// An answer that is not a problem document still gives a *Problem.
func TestProblemFromAnyAnswer(t *testing.T) {
	_, url := newFake(t, func(w http.ResponseWriter) {
		w.Header().Set("Content-Type", "text/html")
		w.Header().Set("Retry-After", time.Now().Add(time.Hour).UTC().Format(http.TimeFormat))
		w.WriteHeader(http.StatusTooManyRequests)
		io.WriteString(w, "<html>slow down</html>")
	})
	c, err := client.New(url, client.WithUserID("alice"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Count(context.Background(), client.Filter{})
	var p *client.Problem
	if !errors.As(err, &p) || p.Status != 429 || p.Title != "Too Many Requests" || p.Type != "about:blank" ||
		p.RetryAfter < 59*time.Minute || p.RetryAfter > time.Hour {
		t.Errorf("error %v (%+v), want a 429 problem asking for about an hour", err, p)
	}
}

// A Link to another origin is not followed: the client's credentials go
// only to its base URL.
func TestListFollowsLinksOnlyToItsOrigin(t *testing.T) {
	page := func(link string) func(http.ResponseWriter) {
		return func(w http.ResponseWriter) {
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Link", link)
			fmt.Fprint(w, `[{"id":"01M819QQ3B3PP1B9NQGDKMBF9F","userId":"alice","text":"hi","tag":"a","createdAt":"2026-11-22T09:34:58.667Z"}]`)
		}
	}
	f, url := newFake(t, page(`</v1/messages?cursor=abc>; rel="next"`), page(`<http://elsewhere.example/v1/messages?cursor=def>; rel="next"`))
	c, err := client.New(url, client.WithToken("secret"))
	if err != nil {
		t.Fatal(err)
	}
	var n int
	var last error
	for _, err := range c.List(context.Background(), client.Filter{}) {
		if err != nil {
			last = err
			break
		}
		n++
	}
	if n != 1 || last == nil || !strings.Contains(last.Error(), "elsewhere.example") || f.requests() != 2 {
		t.Errorf("%d messages, error %v after %d requests; want 1 message, then a refusal of elsewhere.example", n, last, f.requests())
	}
	if f.got[1].URL.Query().Get("cursor") != "abc" || f.got[1].Header.Get("Authorization") != "Bearer secret" {
		t.Errorf("second request %s with %q", f.got[1].URL, f.got[1].Header.Get("Authorization"))
	}
}

func TestOptions(t *testing.T) {
	for _, tt := range []struct {
		name string
		base string
		opts []client.Option
		ok   bool
	}{
		{"plain", "http://localhost:8080", nil, true},
		{"with a path", "https://api.example.com/messages/", nil, true},
		{"no scheme", "localhost:8080", nil, false},
		{"ftp", "ftp://example.com", nil, false},
		{"a query", "http://localhost:8080/?x=1", nil, false},
		{"user id", "http://x", []client.Option{client.WithUserID("a.b@c:d-e_f")}, true},
		{"bad user id", "http://x", []client.Option{client.WithUserID("a b")}, false},
		{"empty token", "http://x", []client.Option{client.WithToken("")}, false},
		{"nil HTTP client", "http://x", []client.Option{client.WithHTTPClient(nil)}, false},
		{"nil token source", "http://x", []client.Option{client.WithTokenSource(nil)}, false},
		{"empty user agent", "http://x", []client.Option{client.WithUserAgent("")}, false},
		{"negative attempts", "http://x", []client.Option{client.WithRetry(client.RetryPolicy{Attempts: -1})}, false},
		{"min over max", "http://x", []client.Option{client.WithRetry(client.RetryPolicy{MinWait: time.Second, MaxWait: time.Millisecond})}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := client.New(tt.base, tt.opts...)
			if (err == nil) != tt.ok {
				t.Errorf("New(%q) error %v, want ok %v", tt.base, err, tt.ok)
			}
		})
	}
}

// A token source is asked for every request; the base URL's path prefix and
// the user agent are kept.
func TestTokenSourceAndPrefix(t *testing.T) {
	f, url := newFake(t, status(503, ""), created)
	var asked int
	ts := client.TokenFunc(func(context.Context) (string, error) {
		asked++
		return fmt.Sprintf("tok%d", asked), nil
	})
	c, err := client.New(url+"/prefix/", client.WithTokenSource(ts), client.WithUserAgent("tests/1"), quick)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Post(context.Background(), client.NewMessage{Text: "hi", Tag: "a"}); err != nil {
		t.Fatal(err)
	}
	for i, r := range f.got {
		if r.URL.Path != "/prefix/v1/messages" || r.Header.Get("Authorization") != fmt.Sprintf("Bearer tok%d", i+1) || r.UserAgent() != "tests/1" {
			t.Errorf("request %d: %s %q %q", i, r.URL.Path, r.Header.Get("Authorization"), r.UserAgent())
		}
	}
	failing := client.TokenFunc(func(context.Context) (string, error) { return "", errors.New("no token today") })
	c, err = client.New(url, client.WithTokenSource(failing), quick)
	if err != nil {
		t.Fatal(err)
	}
	before := f.requests()
	if _, err := c.Count(context.Background(), client.Filter{}); err == nil || !strings.Contains(err.Error(), "no token today") || f.requests() != before {
		t.Errorf("count with a failing token source: %v", err)
	}
}

func TestBounds(t *testing.T) {
	for _, tt := range []struct {
		in, want string
		day      bool
	}{
		{"2026-12-01", "2026-12-01", true},
		{"2026-12-01T09:30:00Z", "2026-12-01T09:30:00Z", false},
		{"2026-12-01t09:30:00.250z", "2026-12-01T09:30:00.25Z", false},
		{"2026-12-01T10:30:00+01:00", "2026-12-01T09:30:00Z", false},
	} {
		b, err := client.ParseBound(tt.in)
		if err != nil || b.String() != tt.want || b.IsDay() != tt.day {
			t.Errorf("ParseBound(%q) = %q (day %v), %v; want %q", tt.in, b, b.IsDay(), err, tt.want)
		}
	}
	for _, bad := range []string{"2026-13-01", "yesterday", "2026-12-01 09:30", "20261201"} {
		if _, err := client.ParseBound(bad); err == nil {
			t.Errorf("ParseBound(%q) took it", bad)
		}
	}
	if b, err := client.ParseBound(""); err != nil || !b.IsZero() {
		t.Errorf("ParseBound(\"\") = %v, %v", b, err)
	}
	if got := client.Day(2026, 2, 30).String(); got != "2026-03-02" {
		t.Errorf("Day(2026, 2, 30) = %s", got)
	}
	if got := client.DayOf(time.Date(2026, 12, 1, 23, 30, 0, 0, time.FixedZone("", -3600))).String(); got != "2026-12-02" {
		t.Errorf("DayOf an evening west of UTC = %s, want the next UTC day", got)
	}
	if _, err := client.New("http://x"); err != nil {
		t.Fatal(err)
	}
	c, _ := client.New("http://127.0.0.1:1")
	for _, err := range c.List(context.Background(), client.Filter{PageSize: 1001}) {
		if err == nil || !strings.Contains(err.Error(), "1-1000") {
			t.Errorf("page size 1001: %v", err)
		}
	}
}
