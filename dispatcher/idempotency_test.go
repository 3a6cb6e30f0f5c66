package dispatcher_test

import (
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/messages-io/messages/dispatcher"
	"github.com/messages-io/messages/internal/testkit"
	"github.com/messages-io/messages/message"
	"github.com/messages-io/messages/position"
)

// tickingClock moves a second and a bit forward each time it is read, so that
// a message stamped twice shows two different times.
type tickingClock struct {
	mu   sync.Mutex
	next time.Time
	last time.Time
}

func newTickingClock() *tickingClock {
	return &tickingClock{next: time.Date(2030, 1, 2, 3, 4, 5, 678900000, time.UTC)}
}

func (c *tickingClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.last = c.next
	c.next = c.next.Add(1234567 * time.Microsecond)
	return c.last
}

// Last is the time the clock read last.
func (c *tickingClock) Last() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.last
}

func TestIdempotencyKey(t *testing.T) {
	srv := testkit.NATS(t)
	_, js := testkit.JetStream(t, srv)
	store := openStore(t, js)
	clock := newTickingClock()
	api := serve(t, store, dispatcher.Config{Now: clock.Now})

	const noKey = "\x00none"
	hello := body("hello", "News")
	answered := map[string]message.Message{} // by step name
	ids := map[string]string{}               // step name by message id
	tokens := map[string]string{}            // Consistency-Token by step name

	// The steps run in order against one stream; each sees what those before
	// it stored.
	for _, step := range idempotencySteps(hello, noKey) {
		t.Run(step.name, func(t *testing.T) {
			h := headers(step.user, "req-"+strings.ReplaceAll(step.name, " ", "-"))
			if step.key != noKey {
				h.Set(dispatcher.IdempotencyKeyHeader, step.key)
			}
			resp, got := post(t, api.url, h, strings.NewReader(step.body))
			tok := resp.Header.Get(position.TokenHeader)
			if step.status != http.StatusCreated {
				checkProblem(t, resp, got, step.status)
				if tok != "" {
					t.Errorf("a %d carries Consistency-Token %q", step.status, tok)
				}
			} else {
				m := checkCreated(t, resp, got)
				replayed := resp.Header.Get("Idempotent-Replayed")
				if step.sameAs == "" {
					if prev, ok := ids[m.ID]; ok {
						t.Fatalf("answered the message of step %q, want a new one", prev)
					}
					want := message.Message{ID: m.ID, UserID: step.user, Text: "hello", Tag: "news", CreatedAt: clock.Last().Truncate(time.Millisecond)}
					if diff := sameMessage(m, want); diff != "" {
						t.Errorf("answered %s", diff)
					}
					if replayed != "" {
						t.Errorf("a new message has Idempotent-Replayed %q", replayed)
					}
					if _, ev := stored(t, store, step.events); sameMessage(ev, m) != "" {
						t.Errorf("event %d: %s", step.events, sameMessage(ev, m))
					}
					answered[step.name], ids[m.ID] = m, step.name
					// The token names the event that stored the message.
					wantTok := position.Token{Layout: store.Layout(), Partition: store.Partition("news"), Sequence: step.events}
					if got, err := position.ParseToken(tok, store.Layout()); err != nil || got != wantTok {
						t.Errorf("Consistency-Token %q is %+v, %v; want %+v", tok, got, err, wantTok)
					}
					tokens[step.name] = tok
				} else {
					if tok != tokens[step.sameAs] {
						t.Errorf("replayed Consistency-Token %q, want the first answer's %q", tok, tokens[step.sameAs])
					}
					if diff := sameMessage(m, answered[step.sameAs]); diff != "" {
						t.Errorf("replayed %s", diff)
					}
					if replayed != "true" {
						t.Errorf("Idempotent-Replayed %q, want true", replayed)
					}
				}
			}
			if seq := lastSequence(t, store); seq != step.events {
				t.Errorf("the stream holds %d events, want %d", seq, step.events)
			}
		})
	}
}

// idempotencyStep is one POST of TestIdempotencyKey and what it must get.
type idempotencyStep struct {
	name      string
	user, key string
	body      string
	status    int
	// sameAs names the step whose message a 201 must replay; a 201
	// without it must be a new message.
	sameAs string
	// events is how many events the stream holds after the step.
	events uint64
}

// idempotencySteps are the POSTs of TestIdempotencyKey, in order; hello is
// the body most send, and noKey stands for a POST without a key.
func idempotencySteps(hello, noKey string) []idempotencyStep {
	return []idempotencyStep{
		{name: "first", user: "alice", key: "order-1", body: hello, status: 201, events: 1},
		{name: "retry", user: "alice", key: "order-1", body: hello, status: 201, sameAs: "first", events: 1},
		{name: "retry again", user: "alice", key: "order-1", body: hello, status: 201, sameAs: "first", events: 1},
		{name: "same key other text", user: "alice", key: "order-1", body: body("goodbye", "News"), status: 409, events: 1},
		{name: "same key other tag", user: "alice", key: "order-1", body: body("hello", "sport"), status: 409, events: 1},
		{name: "retry after conflicts", user: "alice", key: "order-1", body: hello, status: 201, sameAs: "first", events: 1},
		{name: "same key other user", user: "bob", key: "order-1", body: hello, status: 201, events: 2},
		{name: "other user retry", user: "bob", key: "order-1", body: hello, status: 201, sameAs: "same key other user", events: 2},
		{name: "other key", user: "alice", key: "order-2", body: hello, status: 201, events: 3},
		{name: "key differing in case", user: "alice", key: "ORDER-1", body: hello, status: 201, events: 4},
		{name: "no key", user: "alice", key: noKey, body: hello, status: 201, events: 5},
		{name: "no key again", user: "alice", key: noKey, body: hello, status: 201, events: 6},
		{name: "key of 255 characters", user: "alice", key: strings.Repeat("k", 255), body: hello, status: 201, events: 7},
		{name: "key of 255 characters retried", user: "alice", key: strings.Repeat("k", 255), body: hello, status: 201, sameAs: "key of 255 characters", events: 7},
		{name: "key of every visible ASCII character", user: "alice", key: visibleASCII(), body: hello, status: 201, events: 8},
		{name: "key of 256 characters", user: "alice", key: strings.Repeat("k", 256), body: hello, status: 400, events: 8},
		{name: "key with a space", user: "alice", key: "order 1", body: hello, status: 400, events: 8},
		{name: "key not ASCII", user: "alice", key: "clé", body: hello, status: 400, events: 8},
		{name: "bad key with a bad body", user: "alice", key: "order 1", body: body("", "x"), status: 400, events: 8},
	}
}

func visibleASCII() string {
	var b strings.Builder
	for c := byte(0x21); c <= 0x7e; c++ {
		b.WriteByte(c)
	}
	return b.String()
}

// TestIdempotencyKeyConcurrentRetries sends one message with one key many
// times at once: every answer is that one message, stored once.
func TestIdempotencyKeyConcurrentRetries(t *testing.T) {
	srv := testkit.NATS(t)
	_, js := testkit.JetStream(t, srv)
	store := openStore(t, js)
	api := serve(t, store, dispatcher.Config{Now: newTickingClock().Now})

	const n = 8
	type answer struct {
		status   int
		location string
		replayed string
		body     string
		err      error
	}
	answers := make(chan answer, n)
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			h := headers("carol", "req-concurrent")
			h.Set(dispatcher.IdempotencyKeyHeader, "concurrent-1")
			req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, api.url, strings.NewReader(body("at once", "race")))
			if err != nil {
				answers <- answer{err: err}
				return
			}
			req.Header = h
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				answers <- answer{err: err}
				return
			}
			defer resp.Body.Close()
			b, err := io.ReadAll(resp.Body)
			answers <- answer{resp.StatusCode, resp.Header.Get("Location"), resp.Header.Get("Idempotent-Replayed"), string(b), err}
		})
	}
	wg.Wait()
	close(answers)

	locations := map[string]int{}
	replays := 0
	for a := range answers {
		if a.err != nil {
			t.Fatalf("POST: %v", a.err)
		}
		if a.status != http.StatusCreated {
			t.Fatalf("status %d, want 201; body %s", a.status, a.body)
		}
		locations[a.location]++
		if a.replayed == "true" {
			replays++
		}
	}
	if len(locations) != 1 {
		t.Errorf("answered %d different messages %v, want 1", len(locations), locations)
	}
	if replays != n-1 {
		t.Errorf("%d answers are replays, want %d", replays, n-1)
	}
	if seq := lastSequence(t, store); seq != 1 {
		t.Fatalf("the stream holds %d events, want 1", seq)
	}
	if _, m := stored(t, store, 1); locations["/v1/messages/"+m.ID] != n {
		t.Errorf("stored message %s, answered %v", m.ID, locations)
	}
}
