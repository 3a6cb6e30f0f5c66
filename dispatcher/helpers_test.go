package dispatcher_test

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/messages-io/messages/dispatcher"
	"github.com/messages-io/messages/eventstore"
	"github.com/messages-io/messages/internal/testkit"
	"github.com/messages-io/messages/message"
	"github.com/messages-io/messages/web"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/oklog/ulid/v2"
	"github.com/prometheus/client_golang/prometheus"
)

// openStore opens a stream of the test's own, named after it, on js.
func openStore(t *testing.T, js jetstream.JetStream) *eventstore.Store {
	t.Helper()
	sum := sha256.Sum256([]byte(t.Name()))
	name := "T_" + hex.EncodeToString(sum[:12])
	store, err := eventstore.Open(t.Context(), js, eventstore.Config{Stream: name, SubjectPrefix: "test." + name})
	if err != nil {
		t.Fatalf("open event store: %v", err)
	}
	return store
}

// api is the write API served the way production serves it, over a real HTTP
// server.
type api struct {
	url string
	reg *prometheus.Registry
	// contentLength is the Content-Length of the last request the server
	// received, -1 when it came chunked.
	contentLength atomic.Int64
}

// serve builds the router and the dispatcher as main does, appending to events,
// and serves them until the test ends.
func serve(t *testing.T, events dispatcher.Log, cfg dispatcher.Config) *api {
	t.Helper()
	reg := prometheus.NewRegistry()
	rt := web.NewRouter(testkit.Logger(), reg, reg, nil)
	d, err := dispatcher.New(events, testkit.Logger(), reg, cfg)
	if err != nil {
		t.Fatalf("dispatcher: %v", err)
	}
	d.Routes(rt)
	a := &api{reg: reg}
	root := rt.Root()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.contentLength.Store(r.ContentLength)
		root.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	a.url = srv.URL + "/v1/messages"
	return a
}

// headers are those of a well-formed POST by user.
func headers(user, requestID string) http.Header {
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	h.Set(web.UserIDHeader, user)
	h.Set(web.RequestIDHeader, requestID)
	return h
}

// unsized hides the length of a body, so that the client sends it chunked.
type unsized struct{ io.Reader }

// post sends a POST to url and returns the response with its body read.
func post(t *testing.T, url string, h http.Header, body io.Reader) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, url, body)
	if err != nil {
		t.Fatalf("request: %v", err)
	}
	if _, ok := body.(unsized); ok {
		req.ContentLength = -1
	}
	req.Header = h
	client := &http.Client{Timeout: 15 * time.Second}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("POST: %v", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read response: %v", err)
	}
	return resp, b
}

// checkCreated checks a 201 answer and returns the message it carries.
func checkCreated(t *testing.T, resp *http.Response, body []byte) message.Message {
	t.Helper()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("status %d, want 201; body %s", resp.StatusCode, body)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q, want application/json", ct)
	}
	var fields map[string]string
	if err := json.Unmarshal(body, &fields); err != nil {
		t.Fatalf("201 body %s: want an object of strings: %v", body, err)
	}
	if keys := slices.Sorted(maps.Keys(fields)); !slices.Equal(keys, []string{"createdAt", "id", "tag", "text", "userId"}) {
		t.Errorf("201 body has fields %v, want createdAt id tag text userId", keys)
	}
	if !message.ValidID(fields["id"]) {
		t.Fatalf("id %q is not a ULID", fields["id"])
	}
	createdAt, err := time.Parse(time.RFC3339Nano, fields["createdAt"])
	if err != nil {
		t.Fatalf("createdAt %q: %v", fields["createdAt"], err)
	}
	if !strings.HasSuffix(fields["createdAt"], "Z") {
		t.Errorf("createdAt %q is not in UTC", fields["createdAt"])
	}
	if got, want := resp.Header.Get("Location"), "/v1/messages/"+fields["id"]; got != want {
		t.Errorf("Location %q, want %q", got, want)
	}
	if got, want := ulid.MustParse(fields["id"]).Time(), uint64(createdAt.UnixMilli()); got != want {
		t.Errorf("id %s holds time %d ms, createdAt %d ms", fields["id"], got, want)
	}
	return message.Message{ID: fields["id"], UserID: fields["userId"], Text: fields["text"], Tag: fields["tag"], CreatedAt: createdAt}
}

// checkProblem checks an error answer: the status and an RFC 9457 document
// that states it, and no Location.
func checkProblem(t *testing.T, resp *http.Response, body []byte, status int) map[string]any {
	t.Helper()
	p := testkit.CheckProblem(t, resp, body, status)
	if resp.Header.Get("Location") != "" {
		t.Errorf("an error answer has Location %q", resp.Header.Get("Location"))
	}
	return p
}

// lastSequence is the sequence of the newest event in store.
func lastSequence(t *testing.T, store *eventstore.Store) uint64 {
	t.Helper()
	seq, err := store.LastSequence(t.Context())
	if err != nil {
		t.Fatalf("last sequence: %v", err)
	}
	return seq
}

// stored reads the event at seq and the message it records.
func stored(t *testing.T, store *eventstore.Store, seq uint64) (eventstore.Record, message.Message) {
	t.Helper()
	rec, err := store.Get(t.Context(), seq)
	if err != nil {
		t.Fatalf("get event %d: %v", seq, err)
	}
	m, err := message.FromCreated(rec.Event)
	if err != nil {
		t.Fatalf("event %d: %v", seq, err)
	}
	return rec, m
}

// sameMessage reports the first difference between two messages, "" when
// they are equal.
func sameMessage(got, want message.Message) string {
	switch {
	case got.ID != want.ID:
		return "id " + got.ID + ", want " + want.ID
	case got.UserID != want.UserID:
		return "userId " + got.UserID + ", want " + want.UserID
	case got.Text != want.Text:
		return "text " + got.Text + ", want " + want.Text
	case got.Tag != want.Tag:
		return "tag " + got.Tag + ", want " + want.Tag
	case !got.CreatedAt.Equal(want.CreatedAt):
		return "createdAt " + got.CreatedAt.Format(time.RFC3339Nano) + ", want " + want.CreatedAt.Format(time.RFC3339Nano)
	}
	return ""
}

// body is a message body as a client writes it.
func body(text, tag string) string {
	b, err := json.Marshal(map[string]string{"text": text, "tag": tag})
	if err != nil {
		panic(err)
	}
	return string(b)
}
