package queryapi_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/messages-io/messages/internal/testkit"
	"github.com/messages-io/messages/message"
	"github.com/messages-io/messages/position"
	"github.com/messages-io/messages/readmodel"
	"github.com/messages-io/messages/readmodel/queryapi"
	"github.com/messages-io/messages/web"
	"github.com/prometheus/client_golang/prometheus"
)

var testLayout = position.Layout{Stream: "MESSAGES", Partitions: 4}

// countingStore is the read model, counting the reads of messages.
type countingStore struct {
	*readmodel.Store
	reads atomic.Int64
}

func (c *countingStore) Get(ctx context.Context, id string) (message.Message, error) {
	c.reads.Add(1)
	return c.Store.Get(ctx, id)
}

func (c *countingStore) List(ctx context.Context, p readmodel.Page) ([]message.Message, error) {
	c.reads.Add(1)
	return c.Store.List(ctx, p)
}

func (c *countingStore) Count(ctx context.Context, f readmodel.Filter) (int64, error) {
	c.reads.Add(1)
	return c.Store.Count(ctx, f)
}

// folder serves the query API over a read model of testLayout whose events
// the test folds itself, each in its tag's partition at the next sequence.
type folder struct {
	store *countingStore
	url   string
	seq   uint64
}

func newFolder(t *testing.T, cfg queryapi.Config) *folder {
	t.Helper()
	store, err := readmodel.Open(t.Context(), testkit.Database(t))
	if err != nil {
		t.Fatalf("open read model: %v", err)
	}
	f := &folder{store: &countingStore{Store: store}}
	reg := prometheus.NewRegistry()
	rt := web.NewRouter(testkit.Logger(), reg, reg, nil)
	cfg.Layout = testLayout
	queryapi.New(f.store, testkit.Logger(), cfg).Routes(rt)
	srv := httptest.NewServer(rt.Root())
	t.Cleanup(srv.Close)
	f.url = srv.URL
	return f
}

// write gives m the next sequence and returns its token, without folding it.
func (f *folder) write(m message.Message) (readmodel.Change, position.Token) {
	f.seq++
	p := testLayout.Partition(m.Tag)
	return readmodel.Change{Message: m, Sequence: f.seq}, position.Token{Layout: testLayout, Partition: p, Sequence: f.seq}
}

func (f *folder) fold(t *testing.T, c readmodel.Change) {
	t.Helper()
	if err := f.store.Apply(t.Context(), testLayout.Partition(c.Message.Tag), []readmodel.Change{c}, c.Sequence); err != nil {
		t.Fatalf("apply: %v", err)
	}
}

func (f *folder) get(t *testing.T, target string, h http.Header) (*http.Response, []byte) {
	t.Helper()
	if h == nil {
		h = http.Header{}
	}
	h.Set(web.UserIDHeader, testUser)
	return (&api{url: f.url}).getAs(t, target, h)
}

func TestConsistencyTokenWaitsForTheFold(t *testing.T) {
	f := newFolder(t, queryapi.Config{ConsistencyWait: 10 * time.Second})
	m := msg(time.Now(), "news", "hello")
	c, tok := f.write(m)

	// The fold happens while the read waits.
	done := make(chan struct{})
	go func() {
		defer close(done)
		time.Sleep(100 * time.Millisecond)
		_ = f.store.Apply(context.Background(), tok.Partition, []readmodel.Change{c}, c.Sequence)
	}()
	resp, body := f.get(t, "/v1/messages?tag=news&count=1", http.Header{position.TokenHeader: {tok.String()}})
	<-done
	if resp.StatusCode != http.StatusOK || strings.TrimSpace(string(body)) != "1" {
		t.Fatalf("count with the token: %d %s, want 200 1", resp.StatusCode, body)
	}
	for _, target := range []string{"/v1/messages", "/v1/messages?tag=NEWS", "/v1/messages/" + m.ID} {
		resp, body := f.get(t, target, http.Header{position.TokenHeader: {"  " + tok.String() + " ,"}})
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), m.ID) {
			t.Errorf("GET %s with the token: %d %s, want 200 with %s", target, resp.StatusCode, body, m.ID)
		}
	}
}

func TestConsistencyTokenNotFoldedIs503(t *testing.T) {
	f := newFolder(t, queryapi.Config{ConsistencyWait: 300 * time.Millisecond})
	folded, tokA := f.write(msg(time.Now(), "news", "folded"))
	f.fold(t, folded)
	_, tokB := f.write(msg(time.Now(), "news", "not folded"))

	resp, body := f.get(t, "/v1/messages?tag=news", http.Header{position.TokenHeader: {tokA.String() + "," + tokB.String()}})
	p := testkit.CheckProblem(t, resp, body, http.StatusServiceUnavailable)
	if p["type"] != queryapi.NotYetConsistentType {
		t.Errorf("problem type %v, want %s", p["type"], queryapi.NotYetConsistentType)
	}
	if resp.Header.Get("Retry-After") == "" {
		t.Error("503 without Retry-After")
	}
	// It says how far behind the read model is.
	if d, _ := p["detail"].(string); !strings.Contains(d, "folded through sequence 1 and the token needs 2") {
		t.Errorf("detail %q does not say how far behind the partition is", d)
	}
	if n := f.store.reads.Load(); n != 0 {
		t.Errorf("%d reads of messages for a read that was not answered", n)
	}
}

func TestConsistencyTokenRefused(t *testing.T) {
	f := newFolder(t, queryapi.Config{})
	good := position.Token{Layout: testLayout, Partition: 1, Sequence: 1}.String()
	many := strings.Repeat(good+",", position.MaxTokens) + good
	for name, tok := range map[string]string{
		"garbage":          "not-a-token",
		"empty":            ",",
		"position":         position.At(testLayout, 1).String(),
		"other stream":     position.Token{Layout: position.Layout{Stream: "ELSEWHERE", Partitions: 4}, Sequence: 1}.String(),
		"other partitions": position.Token{Layout: position.Layout{Stream: "MESSAGES", Partitions: 8}, Sequence: 1}.String(),
		"too many":         many,
		"one bad of two":   good + ",x",
	} {
		for _, target := range []string{"/v1/messages", "/v1/messages?count=1", "/v1/messages/01KB0000000000000000000000"} {
			resp, body := f.get(t, target, http.Header{position.TokenHeader: {tok}})
			if resp.StatusCode != http.StatusBadRequest {
				t.Errorf("%s on %s: %d %s, want 400", name, target, resp.StatusCode, body)
				continue
			}
			testkit.CheckProblem(t, resp, body, http.StatusBadRequest)
		}
	}
}

func TestETagAnd304(t *testing.T) {
	f := newFolder(t, queryapi.Config{})
	news, _ := f.write(msg(time.Now(), "news", "one"))
	f.fold(t, news)
	other := "sport"
	if testLayout.Partition(other) == testLayout.Partition("news") {
		t.Fatalf("pick a tag of another partition than news")
	}

	for _, target := range []string{"/v1/messages", "/v1/messages?tag=news", "/v1/messages?count=1", "/v1/messages?tag=news&count=1"} {
		t.Run(target, func(t *testing.T) {
			resp, body := f.get(t, target, nil)
			etag := resp.Header.Get("ETag")
			if resp.StatusCode != http.StatusOK || !strings.HasPrefix(etag, `W/"`) {
				t.Fatalf("GET: %d ETag %q %s", resp.StatusCode, etag, body)
			}
			if cc := resp.Header.Get("Cache-Control"); cc != "no-cache" {
				t.Errorf("Cache-Control %q, want no-cache", cc)
			}
			before := f.store.reads.Load()
			resp, body = f.get(t, target, http.Header{"If-None-Match": {`"x", ` + etag}})
			if resp.StatusCode != http.StatusNotModified || len(body) != 0 || resp.Header.Get("ETag") != etag {
				t.Fatalf("If-None-Match: %d ETag %q body %q, want 304 with the ETag and no body", resp.StatusCode, resp.Header.Get("ETag"), body)
			}
			if n := f.store.reads.Load() - before; n != 0 {
				t.Errorf("a 304 read messages %d times", n)
			}
		})
	}

	etags := func() map[string]string {
		out := map[string]string{}
		for _, target := range []string{"/v1/messages", "/v1/messages?tag=news", "/v1/messages?count=1&tag=news"} {
			resp, _ := f.get(t, target, nil)
			out[target] = resp.Header.Get("ETag")
		}
		return out
	}
	first := etags()
	// A write to another partition changes what all tags read, not news.
	s, _ := f.write(msg(time.Now(), other, "elsewhere"))
	f.fold(t, s)
	second := etags()
	if second["/v1/messages"] == first["/v1/messages"] {
		t.Error("the ETag of all tags did not change after a write")
	}
	if second["/v1/messages?tag=news"] != first["/v1/messages?tag=news"] {
		t.Error("the ETag of news changed after a write to another partition")
	}
	// A write to news: 200 with a new ETag for the old one.
	n2, _ := f.write(msg(time.Now(), "news", "two"))
	f.fold(t, n2)
	resp, body := f.get(t, "/v1/messages?count=1&tag=news", http.Header{"If-None-Match": {first["/v1/messages?count=1&tag=news"]}})
	if resp.StatusCode != http.StatusOK || strings.TrimSpace(string(body)) != "2" || resp.Header.Get("ETag") == first["/v1/messages?count=1&tag=news"] {
		t.Errorf("after a write: %d %s ETag %q, want 200 2 with a new ETag", resp.StatusCode, body, resp.Header.Get("ETag"))
	}
}

func TestMessageETag(t *testing.T) {
	f := newFolder(t, queryapi.Config{})
	m := msg(time.Now(), "news", "one")
	c, _ := f.write(m)
	f.fold(t, c)
	resp, _ := f.get(t, "/v1/messages/"+m.ID, nil)
	etag := resp.Header.Get("ETag")
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(etag, `"`) || resp.Header.Get("Cache-Control") == "" {
		t.Fatalf("GET by id: %d ETag %q Cache-Control %q", resp.StatusCode, etag, resp.Header.Get("Cache-Control"))
	}
	resp, body := f.get(t, "/v1/messages/"+m.ID, http.Header{"If-None-Match": {etag}})
	if resp.StatusCode != http.StatusNotModified || len(body) != 0 {
		t.Errorf("If-None-Match: %d %q, want 304", resp.StatusCode, body)
	}
	resp, _ = f.get(t, "/v1/messages/"+m.ID, http.Header{"If-None-Match": {`"other"`}})
	if resp.StatusCode != http.StatusOK {
		t.Errorf("another ETag: %d, want 200", resp.StatusCode)
	}
}
