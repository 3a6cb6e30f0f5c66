package dispatcher_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/messages-io/messages/dispatcher"
	"github.com/messages-io/messages/eventstore"
	"github.com/messages-io/messages/internal/testkit"
	"github.com/prometheus/client_golang/prometheus"
)

// answer is a response as a goroutine other than the test's reports it.
type answer struct {
	resp *http.Response
	body []byte
	err  error
}

// postAsync sends a POST from another goroutine, which calls no testing.T
// method; the answer comes on the channel.
func postAsync(url string, h http.Header, body string) <-chan answer {
	ch := make(chan answer, 1)
	go func() {
		req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
		if err != nil {
			ch <- answer{err: err}
			return
		}
		req.Header = h
		resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
		if err != nil {
			ch <- answer{err: err}
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		ch <- answer{resp: resp, body: b, err: err}
	}()
	return ch
}

// value is the value of the counter or gauge name with the given labels in
// g, 0 when there is no such series.
func value(t *testing.T, g prometheus.Gatherer, name string, labels map[string]string) float64 {
	t.Helper()
	families, err := g.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
	series:
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if labels[l.GetName()] != l.GetValue() {
					continue series
				}
			}
			return m.GetCounter().GetValue()
		}
	}
	return 0
}

// outcomeFixture is a dispatcher whose connection to JetStream passes through
// a proxy the test can pause, and a store on a direct connection that sees
// what the stream holds meanwhile.
type outcomeFixture struct {
	proxy *testkit.Proxy
	watch *eventstore.Store
	api   *api
}

func newOutcomeFixture(t *testing.T, cfg dispatcher.Config) outcomeFixture {
	t.Helper()
	ns := testkit.NATS(t)
	proxy := testkit.NewProxy(t, ns.Addr().String())
	_, viaProxy := testkit.JetStreamAt(t, "nats://"+proxy.Addr())
	_, direct := testkit.JetStream(t, ns)
	store := openStore(t, viaProxy)
	return outcomeFixture{proxy: proxy, watch: openStore(t, direct), api: serve(t, store, cfg)}
}

// waitHeld waits until the stream holds exactly n events.
func (f outcomeFixture) waitHeld(t *testing.T, n uint64) {
	t.Helper()
	testkit.Eventually(t, 10*time.Second, 10*time.Millisecond, func() error {
		if last := lastSequence(t, f.watch); last != n {
			return fmt.Errorf("the stream holds %d events, want %d", last, n)
		}
		return nil
	})
}

// waitResends waits until the dispatcher has published an event again.
func (f outcomeFixture) waitResends(t *testing.T) {
	t.Helper()
	testkit.Eventually(t, 10*time.Second, 5*time.Millisecond, func() error {
		if value(t, f.api.reg, "messages_dispatcher_append_resends_total", nil) < 1 {
			return errors.New("no resend yet")
		}
		return nil
	})
}

// A POST whose first acknowledgement is lost is stored, and answered 201
// once the resend's acknowledgement says so: not a 503 for a stored message,
// and not a second copy.
func TestLostAcknowledgementIsResolved(t *testing.T) {
	for _, key := range []string{"", "lost-ack-1"} {
		t.Run(fmt.Sprintf("Idempotency-Key %q", key), func(t *testing.T) {
			f := newOutcomeFixture(t, dispatcher.Config{AppendTimeout: 10 * time.Second, ResendAfter: 300 * time.Millisecond})
			h := headers("gina", "req-lost-ack")
			if key != "" {
				h.Set(dispatcher.IdempotencyKeyHeader, key)
			}
			f.proxy.PauseReplies()
			answered := postAsync(f.api.url, h, body("ack lost", "net"))
			f.waitHeld(t, 1) // the first attempt is stored,
			f.waitResends(t) // its acknowledgement did not come in time,
			f.proxy.Resume() // and the resend's does.
			a := <-answered
			if a.err != nil {
				t.Fatal(a.err)
			}
			m := checkCreated(t, a.resp, a.body)
			if got := a.resp.Header.Get("Idempotent-Replayed"); got != "" {
				t.Errorf("Idempotent-Replayed %q on the first request's own answer", got)
			}
			f.waitHeld(t, 1)
			if _, held := stored(t, f.watch, 1); sameMessage(held, m) != "" {
				t.Errorf("stored message: %s", sameMessage(held, m))
			}
			for result, want := range map[string]float64{"stored": 1, "duplicate": 0, "unknown": 0} {
				if got := value(t, f.api.reg, "messages_dispatcher_appends_total", map[string]string{"result": result}); got != want {
					t.Errorf("appends_total{result=%q} = %v, want %v", result, got, want)
				}
			}
		})
	}
}

// A POST to a store that is stopped for longer than the append timeout is
// answered 503 of the outcome-unknown type, since the event is on its way;
// once the store goes on it holds the event once, and the retry with the
// same Idempotency-Key answers with it.
func TestUnknownOutcomeIsSaidSo(t *testing.T) {
	f := newOutcomeFixture(t, dispatcher.Config{AppendTimeout: time.Second, ResendAfter: 300 * time.Millisecond, RetryAfter: 2 * time.Second})
	h := headers("hank", "req-stopped")
	h.Set(dispatcher.IdempotencyKeyHeader, "stopped-1")
	f.proxy.Pause()
	start := time.Now()
	resp, got := post(t, f.api.url, h, strings.NewReader(body("while stopped", "net")))
	took := time.Since(start)
	checkUnavailable(t, resp, got, "2")
	var p struct{ Type, Detail string }
	if err := json.Unmarshal(got, &p); err != nil {
		t.Fatal(err)
	}
	if p.Type != dispatcher.OutcomeUnknownType || !strings.Contains(p.Detail, "may or may not be stored") || !strings.Contains(p.Detail, "same Idempotency-Key") {
		t.Errorf("problem type %q, detail %q; want the outcome-unknown type and a retry with the same key", p.Type, p.Detail)
	}
	if took > 3*time.Second {
		t.Errorf("the 503 took %v; the append timeout is 1s", took)
	}
	if n := value(t, f.api.reg, "messages_dispatcher_append_resends_total", nil); n < 2 {
		t.Errorf("published again %v times within 1s, resending after 300ms; want at least 2", n)
	}
	if last := lastSequence(t, f.watch); last != 0 {
		t.Fatalf("the stream holds %d events while stopped", last)
	}

	f.proxy.Resume()
	f.waitHeld(t, 1) // every attempt arrives; one is kept
	resp, got = post(t, f.api.url, h, strings.NewReader(body("while stopped", "net")))
	m := checkCreated(t, resp, got)
	if resp.Header.Get("Idempotent-Replayed") != "true" {
		t.Errorf("the retry is not marked Idempotent-Replayed")
	}
	if _, held := stored(t, f.watch, 1); sameMessage(held, m) != "" {
		t.Errorf("the retry answered another message than the stored one: %s", sameMessage(held, m))
	}
	f.waitHeld(t, 1)
	if n := value(t, f.api.reg, "messages_dispatcher_appends_total", map[string]string{"result": "unknown"}); n != 1 {
		t.Errorf("appends_total{result=unknown} = %v, want 1", n)
	}

	// Without an Idempotency-Key the answer says a retry may store twice.
	f.proxy.Pause()
	resp, got = post(t, f.api.url, headers("hank", "req-stopped-2"), strings.NewReader(body("no key", "net")))
	f.proxy.Resume()
	checkUnavailable(t, resp, got, "2")
	if err := json.Unmarshal(got, &p); err != nil {
		t.Fatal(err)
	}
	if p.Type != dispatcher.OutcomeUnknownType || !strings.Contains(p.Detail, "may store it twice") {
		t.Errorf("without a key: problem type %q, detail %q", p.Type, p.Detail)
	}
}
