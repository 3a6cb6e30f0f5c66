package client_test

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/messages-io/messages/client"
)

// headerRecorder keeps the Consistency-Token header of each request and of
// each answer.
type headerRecorder struct {
	mu       sync.Mutex
	sent     []string // of each request, "" when none
	answered []string // of each answer
}

func (h *headerRecorder) RoundTrip(r *http.Request) (*http.Response, error) {
	res, err := http.DefaultTransport.RoundTrip(r)
	h.mu.Lock()
	defer h.mu.Unlock()
	h.sent = append(h.sent, r.Header.Get("Consistency-Token"))
	if err == nil {
		h.answered = append(h.answered, res.Header.Get("Consistency-Token"))
	}
	return res, err
}

// A client with a session reads its own writes at once: each read carries
// the tokens of the posts no read has confirmed, and only those.
func TestSessionReadsItsOwnWrites(t *testing.T) {
	ctx := context.Background()
	for name, base := range map[string]string{"direct": baseURL, "gateway": gatewayURL} {
		t.Run(name, func(t *testing.T) {
			rec := &headerRecorder{}
			var s client.Session
			c := newClient(t, base, "session", client.WithSession(&s), client.WithHTTPClient(&http.Client{Transport: rec}))
			tag := uniqueTag(t)
			for n := 1; n <= 10; n++ {
				m, err := c.Post(ctx, client.NewMessage{Text: "mine " + strconv.Itoa(n), Tag: tag})
				if err != nil {
					t.Fatal(err)
				}
				token := rec.answered[len(rec.answered)-1]
				if token == "" || !slices.Equal(s.Tokens(), []string{token}) {
					t.Fatalf("after post %d the session holds %q, want the post's token %q", n, s.Tokens(), token)
				}
				got, err := c.Get(ctx, m.ID)
				if err != nil || got.Text != m.Text {
					t.Fatalf("get %s right after its post: %+v, %v", m.ID, got, err)
				}
				if sent := rec.sent[len(rec.sent)-1]; sent != token {
					t.Fatalf("the get carried %q, want %q", sent, token)
				}
				if len(s.Tokens()) != 0 {
					t.Fatalf("after a read the session still holds %q", s.Tokens())
				}
				if n%3 == 0 {
					// Two posts unread: a count carries both and sees both.
					m2, err := c.Post(ctx, client.NewMessage{Text: "more", Tag: tag})
					if err != nil {
						t.Fatal(err)
					}
					m3, err := c.Post(ctx, client.NewMessage{Text: "more", Tag: tag})
					if err != nil {
						t.Fatal(err)
					}
					if len(s.Tokens()) != 2 {
						t.Fatalf("two posts unread, the session holds %q", s.Tokens())
					}
					cnt, err := c.Count(ctx, client.Filter{Tag: tag})
					if err != nil {
						t.Fatal(err)
					}
					var listed []string
					for m, err := range c.List(ctx, client.Filter{Tag: tag, PageSize: 1}) {
						if err != nil {
							t.Fatal(err)
						}
						listed = append(listed, m.ID)
						break
					}
					if len(listed) != 1 || listed[0] != m3.ID || cnt < 2 || m2.ID == "" {
						t.Fatalf("after two posts: count %d, newest listed %v, want %s first", cnt, listed, m3.ID)
					}
					if sent := rec.sent[len(rec.sent)-2]; len(strings.Split(sent, ",")) != 2 {
						t.Fatalf("the count carried %q, want two tokens", sent)
					}
				}
			}
		})
	}
}

// A session holds the 64 newest tokens of unconfirmed writes; a failed read
// confirms none; tokens given with ReadAfter go along.
func TestSessionBounds(t *testing.T) {
	var tokens []string
	for i := range 70 {
		tokens = append(tokens, fmt.Sprintf("tok%d", i))
	}
	s := client.NewSession(tokens...)
	if got := s.Tokens(); len(got) != 64 || got[0] != "tok6" || got[63] != "tok69" {
		t.Fatalf("session of 70 holds %d: %v…", len(got), got[:1])
	}
	f, url := newFake(t, status(404, ""), func(w http.ResponseWriter) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, "1")
	})
	c, err := client.New(url, client.WithUserID("alice"), client.WithSession(s))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Get(context.Background(), "01HQ3Z5Y8K6J9M2N4P7R0S1T2V"); err == nil {
		t.Fatal("no 404")
	}
	if len(s.Tokens()) != 64 {
		t.Fatalf("a failed read confirmed tokens: %d left", len(s.Tokens()))
	}
	if _, err := c.Count(context.Background(), client.Filter{}, client.ReadAfter("mine")); err != nil {
		t.Fatal(err)
	}
	sent := strings.Split(f.got[1].Header.Get("Consistency-Token"), ",")
	if len(sent) != 64 || sent[0] != "mine" || sent[63] != "tok69" {
		t.Errorf("sent %d tokens %v…, want mine and the 63 newest", len(sent), sent[:2])
	}
	if left := s.Tokens(); len(left) != 1 || left[0] != "tok6" {
		t.Errorf("after the read the session holds %v, want the one not sent", left)
	}
	if _, err := client.New(url, client.WithSession(nil)); err == nil {
		t.Error("a nil session was taken")
	}
}
