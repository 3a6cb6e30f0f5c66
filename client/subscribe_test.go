package client_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/messages-io/messages/client"
	"github.com/messages-io/messages/internal/testkit"
)

// sseFake serves a stream per connection from its scripts, in turn, and
// keeps each connection's Last-Event-ID.
type sseFake struct {
	mu      sync.Mutex
	scripts []func(w http.ResponseWriter, r *http.Request)
	lastIDs []string
	accepts []string
}

func (f *sseFake) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.lastIDs = append(f.lastIDs, r.Header.Get("Last-Event-ID"))
	f.accepts = append(f.accepts, r.Header.Get("Accept"))
	var script func(http.ResponseWriter, *http.Request)
	if len(f.scripts) > 0 {
		script, f.scripts = f.scripts[0], f.scripts[1:]
	}
	f.mu.Unlock()
	if script == nil {
		<-r.Context().Done()
		return
	}
	script(w, r)
}

func (f *sseFake) seen() ([]string, []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.lastIDs), slices.Clone(f.accepts)
}

func answer(f func(http.ResponseWriter)) func(http.ResponseWriter, *http.Request) {
	return func(w http.ResponseWriter, _ *http.Request) { f(w) }
}

func event(id, text string) string {
	return fmt.Sprintf("event: message\nid: %s\ndata: {\"id\":\"01M819QQ3B3PP1B9NQGDKMBF9%s\",\"userId\":\"alice\",\"text\":%q,\"tag\":\"t\",\"createdAt\":\"2026-11-22T09:34:58.667Z\"}\n\n", id, id[len(id)-1:], text)
}

// sends writes the stream's head and then each chunk, flushed, and returns
// (the connection ends) unless hold.
func sends(hold bool, chunks ...string) func(http.ResponseWriter, *http.Request) {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(http.StatusOK)
		for _, c := range chunks {
			fmt.Fprint(w, c)
			http.NewResponseController(w).Flush()
		}
		if hold {
			<-r.Context().Done()
		}
	}
}

// A subscription resumes after a broken connection with Last-Event-ID, and
// after a 503; heartbeats and the position-only event yield nothing.
func TestSubscribeResumes(t *testing.T) {
	f := &sseFake{scripts: []func(http.ResponseWriter, *http.Request){
		sends(false, "retry: 10\nid: P0\n\n", ": heartbeat\n\n", event("P1", "one"), "data: {\"id\":\"01M819QQ3B3PP1B9NQGDKMBF9F\",\n", "data: \"userId\":\"alice\",\"text\":\"two\",\"tag\":\"t\",\"createdAt\":\"2026-11-22T09:34:58.667Z\"}\nid: P2\n\n"),
		answer(status(503, "1")),
		sends(true, "retry: 10\nid: P2\n\n", event("P3", "three")),
	}}
	srv := httptest.NewServer(f)
	defer srv.Close()
	c, err := client.New(srv.URL, client.WithUserID("alice"), quick)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var texts, positions []string
	for e, err := range c.Subscribe(ctx, "t", client.ResumeAfter("P-start")) {
		if err != nil {
			t.Fatal(err)
		}
		texts = append(texts, e.Text)
		positions = append(positions, e.Position)
		if len(texts) == 3 {
			break
		}
	}
	if !slices.Equal(texts, []string{"one", "two", "three"}) || !slices.Equal(positions, []string{"P1", "P2", "P3"}) {
		t.Errorf("got %q at %q", texts, positions)
	}
	lastIDs, accepts := f.seen()
	if !slices.Equal(lastIDs, []string{"P-start", "P2", "P2"}) {
		t.Errorf("Last-Event-ID of each connection %q, want P-start, then P2 twice", lastIDs)
	}
	if accepts[0] != "text/event-stream" {
		t.Errorf("Accept %q", accepts[0])
	}
}

// A 4xx ends a subscription with the problem; the end of the context ends it
// without an error.
func TestSubscribeEnds(t *testing.T) {
	f := &sseFake{scripts: []func(http.ResponseWriter, *http.Request){answer(status(429, "1"))}}
	srv := httptest.NewServer(f)
	defer srv.Close()
	c, err := client.New(srv.URL, client.WithUserID("alice"), quick)
	if err != nil {
		t.Fatal(err)
	}
	var got []error
	for _, err := range c.Subscribe(context.Background(), "") {
		got = append(got, err)
	}
	var p *client.Problem
	if len(got) != 1 || !errors.As(got[0], &p) || p.Status != 429 {
		t.Errorf("errors %v, want one 429 problem", got)
	}

	f = &sseFake{scripts: []func(http.ResponseWriter, *http.Request){sends(true, "retry: 10\nid: P0\n\n", event("P1", "one"))}}
	srv2 := httptest.NewServer(f)
	defer srv2.Close()
	c, err = client.New(srv2.URL, client.WithUserID("alice"), quick)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var n int
	for _, err := range c.Subscribe(ctx, "") {
		if err != nil {
			t.Fatalf("error %v after the context ended", err)
		}
		n++
		cancel()
	}
	if n != 1 {
		t.Errorf("%d events, want 1", n)
	}
}

// A subscription to the real service, directly and through the gateway:
// it starts after a post's token, sees the messages after it in order, and
// goes on after every connection is broken with no gap and no duplicate.
func TestSubscribeToTheService(t *testing.T) {
	for name, base := range map[string]string{"direct": baseURL, "gateway": gatewayURL} {
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			proxy := testkit.NewProxy(t, strings.TrimPrefix(base, "http://"))
			c := newClient(t, base, "watcher")
			viaProxy := newClient(t, "http://"+proxy.Addr(), "watcher")
			if base == gatewayURL {
				tok, err := stack.Token("watcher")
				if err != nil {
					t.Fatal(err)
				}
				viaProxy, err = client.New("http://"+proxy.Addr(), client.WithToken(tok))
				if err != nil {
					t.Fatal(err)
				}
			}
			tag := uniqueTag(t)
			post := func(text string) (client.Message, string) {
				var token string
				m, err := c.Post(ctx, client.NewMessage{Text: text, Tag: tag}, client.ConsistencyToken(&token))
				if err != nil {
					t.Fatal(err)
				}
				return m, token
			}
			_, start := post("before")
			var want []string
			for _, text := range []string{"one", "two", "three"} {
				m, _ := post(text)
				want = append(want, m.ID)
			}
			var got, positions []string
			for e, err := range viaProxy.Subscribe(ctx, strings.ToUpper(tag), client.ResumeAfter(start)) {
				if err != nil {
					t.Fatal(err)
				}
				if e.Tag != tag || e.UserID != "watcher" || e.Position == "" {
					t.Fatalf("event %+v", e)
				}
				got = append(got, e.ID)
				positions = append(positions, e.Position)
				if len(got) == 3 {
					// The network drops the stream; two more messages come
					// while it is down.
					proxy.Break()
					for _, text := range []string{"four", "five"} {
						m, _ := post(text)
						want = append(want, m.ID)
					}
				}
				if len(got) == 5 {
					break
				}
			}
			if !slices.Equal(got, want) {
				t.Errorf("received %v, want %v", got, want)
			}
			if len(slices.Compact(slices.Clone(positions))) != len(positions) {
				t.Errorf("positions repeat: %v", positions)
			}
		})
	}
}
