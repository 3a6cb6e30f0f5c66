package dispatcher_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/messages-io/messages/dispatcher"
	"github.com/messages-io/messages/eventstore"
	"github.com/messages-io/messages/internal/testkit"
	"github.com/messages-io/messages/message"
	"github.com/messages-io/messages/web"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
)

// freeAddr is a loopback address no one listens on right now.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	return addr
}

// checkUnavailable checks a 503 answer that tells the caller when to retry.
func checkUnavailable(t *testing.T, resp *http.Response, body []byte, retryAfter string) {
	t.Helper()
	checkProblem(t, resp, body, http.StatusServiceUnavailable)
	if got := resp.Header.Get("Retry-After"); got != retryAfter {
		t.Errorf("Retry-After %q, want %q", got, retryAfter)
	}
}

// TestEventStoreDownThenBack stops the NATS server under the dispatcher and
// starts it again in the same place: while it is down a POST is answered 503
// with Retry-After, never 201, and once it is back POSTs succeed again. The
// stream ends up holding every message answered 201, once.
func TestEventStoreDownThenBack(t *testing.T) {
	addr, dir := freeAddr(t), t.TempDir()
	srv := testkit.NATSAt(t, addr, dir)
	_, js := testkit.JetStream(t, srv)
	store := openStore(t, js)
	api := serve(t, store, dispatcher.Config{AppendTimeout: time.Second, RetryAfter: 3 * time.Second})

	// Every request has its own text, so that the stream tells which ones
	// it holds.
	created := map[string]message.Message{} // by text
	var unavailable []string                // texts answered 503
	notStored := map[string]bool{}          // texts answered a plain 503: nothing stored
	sent := map[string]bool{}
	send := func(t *testing.T, text, key string) (*http.Response, []byte) {
		t.Helper()
		sent[text] = true
		h := headers("dave", fmt.Sprintf("req-%d", time.Now().UnixNano()))
		if key != "" {
			h.Set(dispatcher.IdempotencyKeyHeader, key)
		}
		resp, got := post(t, api.url, h, strings.NewReader(body(text, "outage")))
		switch resp.StatusCode {
		case http.StatusCreated:
			created[text] = checkCreated(t, resp, got)
		case http.StatusServiceUnavailable:
			unavailable = append(unavailable, text)
			notStored[text] = nothingStored(t, got)
		}
		return resp, got
	}

	resp, got := send(t, "before", "")
	checkCreated(t, resp, got)

	srv.Shutdown()
	srv.WaitForShutdown()

	start := time.Now()
	resp, got = send(t, "while down", "")
	checkUnavailable(t, resp, got, "3")
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("the 503 took %v; the append timeout is 1s", took)
	}
	// A client that retries safely sends an Idempotency-Key.
	resp, got = send(t, "retried with a key", "outage-retry-1")
	checkUnavailable(t, resp, got, "3")

	testkit.NATSAt(t, addr, dir)

	attempts := 0
	testkit.Eventually(t, 20*time.Second, 100*time.Millisecond, func() error {
		attempts++
		resp, got := send(t, "retried with a key", "outage-retry-1")
		switch resp.StatusCode {
		case http.StatusCreated:
			t.Logf("attempt %d after the restart: 201, Idempotent-Replayed %q", attempts, resp.Header.Get("Idempotent-Replayed"))
			return nil
		case http.StatusServiceUnavailable:
			checkUnavailable(t, resp, got, "3")
			return fmt.Errorf("attempt %d: still 503", attempts)
		}
		t.Fatalf("attempt %d: status %d, want 201 or 503; body %s", attempts, resp.StatusCode, got)
		return nil
	})
	resp, got = send(t, "after", "")
	checkCreated(t, resp, got)

	last := checkHeld(t, store, created, notStored, sent)
	t.Logf("answered 201: %d, answered 503: %d (%d attempts after the restart), events stored: %d", len(created), len(unavailable), attempts, last)
}

// nothingStored reads the problem type of a 503's body: true for a plain
// 503, which promises that nothing was stored, false for one whose outcome
// is unknown, as a later attempt may have stored it.
func nothingStored(t *testing.T, body []byte) bool {
	t.Helper()
	var p struct{ Type string }
	if err := json.Unmarshal(body, &p); err != nil {
		t.Fatalf("503 body %s: %v", body, err)
	}
	switch p.Type {
	case "about:blank":
		return true
	case dispatcher.OutcomeUnknownType:
		return false
	}
	t.Errorf("503 of type %q", p.Type)
	return false
}

// checkHeld checks what the stream of store holds against what was sent
// and answered: every 201 stored once as answered, a 503 stored at most
// once and only when it did not promise that nothing was, and nothing that
// was not sent. It returns the stream's last sequence.
func checkHeld(t *testing.T, store *eventstore.Store, created map[string]message.Message, notStored, sent map[string]bool) uint64 {
	t.Helper()
	last := lastSequence(t, store)
	held := map[string][]message.Message{}
	for seq := uint64(1); seq <= last; seq++ {
		_, m := stored(t, store, seq)
		held[m.Text] = append(held[m.Text], m)
	}
	for text, m := range created {
		switch got := held[text]; {
		case len(got) != 1:
			t.Errorf("%q was answered 201 and is stored %d times", text, len(got))
		case sameMessage(got[0], m) != "":
			t.Errorf("%q: stored %s", text, sameMessage(got[0], m))
		}
	}
	for text, ms := range held {
		if _, ok := created[text]; !ok {
			// JetStream may store an append whose acknowledgement never
			// came: a 503 of the outcome-unknown type says so. A plain 503
			// promised that nothing was stored.
			if notStored[text] {
				t.Errorf("%q was answered a plain 503, nothing stored, and is stored %d times", text, len(ms))
			}
			t.Logf("%q was answered 503 and is nevertheless stored %d times (%s)", text, len(ms), ms[0].ID)
			if len(ms) != 1 {
				t.Errorf("%q is stored %d times, want at most once", text, len(ms))
			}
		}
		if !sent[text] {
			t.Errorf("the stream holds %q, which no request sent", text)
		}
	}
	return last
}

// gatedLog holds every append until the request's context ends, then hands
// it to the real store with that context.
type gatedLog struct {
	*eventstore.Store
	entered chan struct{}
	result  chan error
}

func (g *gatedLog) Append(ctx context.Context, a eventstore.Append) (eventstore.Appended, error) {
	g.entered <- struct{}{}
	select {
	case <-ctx.Done():
	case <-time.After(10 * time.Second):
	}
	res, err := g.Store.Append(ctx, a)
	g.result <- err
	return res, err
}

// TestEventStoreSlow answers 503 with the configured Retry-After when the
// store does not acknowledge within the append timeout.
func TestEventStoreSlow(t *testing.T) {
	srv := testkit.NATS(t)
	_, js := testkit.JetStream(t, srv)
	store := openStore(t, js)
	events := &gatedLog{Store: store, entered: make(chan struct{}, 1), result: make(chan error, 1)}
	api := serve(t, events, dispatcher.Config{AppendTimeout: 200 * time.Millisecond, RetryAfter: 7 * time.Second})

	resp, got := post(t, api.url, headers("erin", "req-slow"), strings.NewReader(body("slow", "x")))
	checkUnavailable(t, resp, got, "7")
	if err := <-events.result; !errors.Is(err, eventstore.ErrUnavailable) && !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("the store answered %v; the test meant it to time out", err)
	}
	if seq := lastSequence(t, store); seq != 0 {
		t.Errorf("the stream holds %d events after a 503, want 0", seq)
	}
}

// TestCanceledRequest: a POST whose context ends before the event store
// acknowledges is never answered 201, and stores nothing.
func TestCanceledRequest(t *testing.T) {
	srv := testkit.NATS(t)
	_, js := testkit.JetStream(t, srv)

	t.Run("canceled before it arrives", func(t *testing.T) { checkCanceledBeforeArrival(t, js) })
	t.Run("client goes away while the store is slow", func(t *testing.T) { checkClientGoesAway(t, js) })
}

// checkCanceledBeforeArrival checks that a POST canceled before the
// dispatcher reads it is not created and appends nothing.
func checkCanceledBeforeArrival(t *testing.T, js jetstream.JetStream) {
	t.Helper()
	store := openStore(t, js)
	reg := prometheus.NewRegistry()
	rt := web.NewRouter(testkit.Logger(), reg, reg, nil)
	d, err := dispatcher.New(store, testkit.Logger(), reg, dispatcher.Config{Now: fixedClock})
	if err != nil {
		t.Fatal(err)
	}
	d.Routes(rt)

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	req := httptest.NewRequestWithContext(ctx, http.MethodPost, "/v1/messages", strings.NewReader(body("hi", "x")))
	req.Header = headers("frank", "req-canceled")
	rec := httptest.NewRecorder()
	rt.Root().ServeHTTP(rec, req)

	if rec.Code == http.StatusCreated || rec.Header().Get("Location") != "" {
		t.Errorf("answered %d, Location %q, to a canceled request", rec.Code, rec.Header().Get("Location"))
	}
	if seq := lastSequence(t, store); seq != 0 {
		t.Errorf("the stream holds %d events after a canceled request, want 0", seq)
	}
}

// checkClientGoesAway checks that a client leaving while its append waits
// for a slow store cancels the append, gets no 201, and appends nothing.
func checkClientGoesAway(t *testing.T, js jetstream.JetStream) {
	t.Helper()
	store := openStore(t, js)
	events := &gatedLog{Store: store, entered: make(chan struct{}, 1), result: make(chan error, 1)}
	reg := prometheus.NewRegistry()
	rt := web.NewRouter(testkit.Logger(), reg, reg, nil)
	d, err := dispatcher.New(events, testkit.Logger(), reg, dispatcher.Config{AppendTimeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	d.Routes(rt)
	statuses := make(chan int, 1)
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &web.StatusRecorder{ResponseWriter: w}
		rt.Root().ServeHTTP(rec, r)
		statuses <- rec.Status
	}))
	t.Cleanup(hs.Close)

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, hs.URL+"/v1/messages", strings.NewReader(body("hi", "x")))
	if err != nil {
		t.Fatal(err)
	}
	req.Header = headers("frank", "req-gone")
	done := make(chan error, 1)
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			err = fmt.Errorf("answered %d", resp.StatusCode)
		}
		done <- err
	}()
	select {
	case <-events.entered:
	case <-time.After(10 * time.Second):
		t.Fatal("the append did not start within 10s")
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("client: %v, want it canceled", err)
	}

	select {
	case err := <-events.result:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("the append ended with %v; the test meant the request context to be canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the request context was not canceled within 10s of the client going away")
	}
	select {
	case status := <-statuses:
		if status == http.StatusCreated {
			t.Errorf("answered 201 to a request whose append was canceled")
		}
		t.Logf("the handler wrote status %d (0: none) for the canceled request", status)
	case <-time.After(10 * time.Second):
		t.Fatal("the handler did not return within 10s")
	}
	if seq := lastSequence(t, store); seq != 0 {
		t.Errorf("the stream holds %d events after a canceled request, want 0", seq)
	}
}
