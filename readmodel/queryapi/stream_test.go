package queryapi_test

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/messages-io/messages/eventstore"
	"github.com/messages-io/messages/internal/testkit"
	"github.com/messages-io/messages/message"
	"github.com/messages-io/messages/position"
	"github.com/messages-io/messages/readmodel"
	"github.com/messages-io/messages/readmodel/queryapi"
	"github.com/messages-io/messages/web"
	"github.com/prometheus/client_golang/prometheus"
	"go.mongodb.org/mongo-driver/v2/mongo"
)

// live is a log and a read model that the test folds itself, and query
// instances serving streams of them.
type live struct {
	events *eventstore.Store
	db     *mongo.Database
	store  *readmodel.Store
	// visible is what the feeds of instances read: the store, unless a
	// test wraps it.
	visible queryapi.Visible
	// written are the changes appended and not yet folded, per partition.
	mu      sync.Mutex
	written map[int][]readmodel.Change
	all     []message.Message // every message appended, in log order
}

func newLive(t *testing.T) *live {
	t.Helper()
	_, js := testkit.JetStream(t, testkit.NATS(t))
	sum := sha256.Sum256([]byte(t.Name()))
	name := "T_" + hex.EncodeToString(sum[:12])
	events, err := eventstore.Open(testkit.Context(t), js, eventstore.Config{Stream: name, SubjectPrefix: "test." + name, Partitions: 4})
	if err != nil {
		t.Fatalf("open event store: %v", err)
	}
	db := testkit.Database(t)
	store, err := readmodel.Open(testkit.Context(t), db)
	if err != nil {
		t.Fatalf("open read model: %v", err)
	}
	// Each batch folded is told as the reducers tell it.
	store.Notify(func(n position.Folded) { _ = events.PublishFolded(n) })
	return &live{events: events, db: db, store: store, visible: store, written: map[int][]readmodel.Change{}}
}

// eachWay runs test with the reducers' notices of the fold, and without
// them, as when every notice is lost: the feed reads the checkpoints and
// the messages instead.
func eachWay(t *testing.T, test func(t *testing.T, l *live)) {
	t.Run("notices", func(t *testing.T) { test(t, newLive(t)) })
	t.Run("checkpoints", func(t *testing.T) {
		l := newLive(t)
		l.store.Notify(nil)
		test(t, l)
	})
}

// instance is one query instance serving streams.
type instance struct {
	url   string
	reg   *prometheus.Registry
	stop  func()
	feed  *queryapi.Feed
	close func()
}

// serve starts a query instance whose feed follows the log; stop ends its
// feed, as SIGTERM does, and close its server.
func (l *live) serve(t *testing.T, streams queryapi.StreamConfig, feed queryapi.FeedConfig, wrap func(net.Listener) net.Listener) *instance {
	t.Helper()
	reg := prometheus.NewRegistry()
	feed.Registerer = reg
	f := queryapi.NewFeed(l.events, l.visible, testkit.Logger(), feed)
	streams.Feed = f
	rt := web.NewRouter(testkit.Logger(), reg, reg, nil)
	queryapi.New(l.store, testkit.Logger(), queryapi.Config{Layout: l.events.Layout(), Registerer: reg, Streams: streams}).Routes(rt)
	srv := httptest.NewUnstartedServer(rt.Root())
	if wrap != nil {
		srv.Listener = wrap(srv.Listener)
	}
	srv.Start()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = f.Run(ctx)
	}()
	in := &instance{url: srv.URL, reg: reg, feed: f}
	var once sync.Once
	in.stop = func() { once.Do(func() { cancel(); <-done }) }
	in.close = func() { in.stop(); srv.CloseClientConnections(); srv.Close() }
	t.Cleanup(in.close)
	// Streams are served once the feed has reached the log.
	testkit.Eventually(t, 10*time.Second, 10*time.Millisecond, func() error {
		resp, err := http.Get(srv.URL + "/readyz")
		if err != nil {
			return err
		}
		resp.Body.Close()
		s, err := openStream(srv.URL+"/v1/messages", "probe", "")
		if err != nil {
			return err
		}
		s.close()
		if n := metric(t, reg, "messages_query_streams_open"); n != 0 {
			return fmt.Errorf("%v streams open", n)
		}
		return nil
	})
	return in
}

// append writes messages of tag to the log, not folded yet.
func (l *live) append(t *testing.T, tag string, n int) []message.Message {
	t.Helper()
	var out []message.Message
	for i := range n {
		m := msg(time.Now(), tag, fmt.Sprintf("%s %d", tag, i))
		ev, err := message.CreatedEvent(m, "test")
		if err != nil {
			t.Fatal(err)
		}
		res, err := l.events.Append(testkit.Context(t), eventstore.Append{Event: ev, PartitionKey: tag})
		if err != nil {
			t.Fatalf("append: %v", err)
		}
		l.mu.Lock()
		l.written[res.Partition] = append(l.written[res.Partition], readmodel.Change{Message: m, Sequence: res.Sequence})
		l.all = append(l.all, m)
		l.mu.Unlock()
		out = append(out, m)
	}
	return out
}

// fold folds up to n of the changes of partition p written and not yet
// folded, as one batch; all of them when n is 0.
func (l *live) fold(t *testing.T, p, n int) {
	t.Helper()
	l.mu.Lock()
	w := l.written[p]
	if n == 0 || n > len(w) {
		n = len(w)
	}
	batch := w[:n]
	l.written[p] = w[n:]
	l.mu.Unlock()
	if len(batch) == 0 {
		return
	}
	if err := l.store.Apply(testkit.Context(t), p, batch, batch[len(batch)-1].Sequence); err != nil {
		t.Fatalf("apply: %v", err)
	}
}

func (l *live) foldAll(t *testing.T) {
	t.Helper()
	for p := range l.events.Partitions() {
		l.fold(t, p, 0)
	}
}

// event is one Server-Sent Event.
type event struct {
	name, id string
	msg      message.Message
	data     string
}

// sseStream is a client's open stream.
type sseStream struct {
	resp   *http.Response
	events chan event
	lines  chan string // every line, comments included
	done   chan struct{}
	close  func()
}

// openStream opens a stream at url as user, from lastID when not empty.
func openStream(url, user, lastID string) (*sseStream, error) {
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		cancel()
		return nil, err
	}
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set(web.UserIDHeader, user)
	if lastID != "" {
		req.Header.Set(queryapi.LastEventIDHeader, lastID)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		cancel()
		return nil, fmt.Errorf("status %d", resp.StatusCode)
	}
	s := &sseStream{resp: resp, events: make(chan event, 10000), lines: make(chan string, 10000), done: make(chan struct{})}
	s.close = func() { cancel(); resp.Body.Close(); <-s.done }
	go func() {
		defer close(s.done)
		defer close(s.events)
		sc := bufio.NewScanner(resp.Body)
		var ev event
		for sc.Scan() {
			line := sc.Text()
			select {
			case s.lines <- line:
			default:
			}
			switch {
			case line == "":
				if ev.data != "" {
					_ = json.Unmarshal([]byte(ev.data), &ev.msg)
					s.events <- ev
				}
				ev = event{}
			case strings.HasPrefix(line, "event: "):
				ev.name = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "id: "):
				ev.id = strings.TrimPrefix(line, "id: ")
			case strings.HasPrefix(line, "data: "):
				ev.data = strings.TrimPrefix(line, "data: ")
			}
		}
	}()
	return s, nil
}

func mustOpen(t *testing.T, url, user, lastID string) *sseStream {
	t.Helper()
	s, err := openStream(url, user, lastID)
	if err != nil {
		t.Fatalf("open stream %s from %q: %v", url, lastID, err)
	}
	t.Cleanup(s.close)
	return s
}

// next returns the next event of s, failing after a bounded wait.
func (s *sseStream) next(t *testing.T) event {
	t.Helper()
	select {
	case ev, ok := <-s.events:
		if !ok {
			t.Fatal("the stream ended")
		}
		return ev
	case <-time.After(20 * time.Second):
		t.Fatal("no event within 20s")
	}
	return event{}
}

// firstID is the id the stream set before any message: where it started.
func (s *sseStream) firstID(t *testing.T) string {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		select {
		case line := <-s.lines:
			if id, ok := strings.CutPrefix(line, "id: "); ok {
				return id
			}
		case <-deadline:
			t.Fatal("no id within 20s")
		}
	}
}

// checkVisible fails unless each message of evs reads back by id at once:
// a stream sends only what a GET shows.
func checkVisible(t *testing.T, in *instance, evs []event) {
	t.Helper()
	for _, ev := range evs {
		resp, body := (&api{url: in.url}).get(t, "/v1/messages/"+ev.msg.ID)
		if resp.StatusCode != http.StatusOK || strings.TrimSpace(string(body)) != ev.data {
			t.Errorf("streamed %s, then GET answered %d %s", ev.data, resp.StatusCode, body)
		}
	}
}

func ids(msgs []message.Message) []string {
	out := make([]string, len(msgs))
	for i, m := range msgs {
		out[i] = m.ID
	}
	return out
}

func eventIDs(evs []event) []string {
	out := make([]string, len(evs))
	for i, e := range evs {
		out[i] = e.msg.ID
	}
	return out
}

// A tag's stream sends each message once it is folded, as GET shows it;
// a client that disconnects in the middle of a batch resumes with
// Last-Event-ID exactly after the last message it received.
func TestStreamResumesMidBatch(t *testing.T) { eachWay(t, testStreamResumesMidBatch) }

func testStreamResumesMidBatch(t *testing.T, l *live) {
	in := l.serve(t, queryapi.StreamConfig{}, queryapi.FeedConfig{}, nil)
	url := in.url + "/v1/messages?tag=news"
	s := mustOpen(t, url, "alice", "")
	s.firstID(t)

	l.append(t, "sport", 3) // another tag, maybe in the same partition
	want := l.append(t, "news", 10)
	select {
	case ev := <-s.events:
		t.Fatalf("sent %s before it was folded", ev.data)
	case <-time.After(200 * time.Millisecond):
	}
	l.foldAll(t) // one batch per partition
	var got []event
	for range 4 {
		ev := s.next(t)
		if ev.name != "message" {
			t.Errorf("event %q, want message", ev.name)
		}
		got = append(got, ev)
	}
	s.close()
	checkVisible(t, in, got)

	r := mustOpen(t, url, "alice", got[len(got)-1].id)
	for range 6 {
		got = append(got, r.next(t))
	}
	if !slices.Equal(eventIDs(got), ids(want)) {
		t.Fatalf("streamed %v, want %v", eventIDs(got), ids(want))
	}
	more := l.append(t, "news", 1)
	l.foldAll(t)
	if ev := r.next(t); ev.msg.ID != more[0].ID {
		t.Errorf("then %s, want %s", ev.msg.ID, more[0].ID)
	}
	select {
	case ev := <-r.events:
		t.Errorf("a duplicate or stray event: %s", ev.data)
	case <-time.After(200 * time.Millisecond):
	}
	// What the first connection wrote before it closed counts too.
	if n := metric(t, in.reg, "messages_query_stream_events_sent_total"); n < 11 || n > 17 {
		t.Errorf("events sent %v, want 11-17", n)
	}
}

// metric returns the value of the series name, which has no labels.
func metric(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() == name && len(f.GetMetric()) == 1 {
			m := f.GetMetric()[0]
			return m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}

// The all-tags stream, whose partitions are folded in an order of their
// own, in batches, while its client keeps disconnecting and resuming:
// every message exactly once, each readable by id when it arrives.
func TestAllTagsStreamResumesWhilePartitionsFold(t *testing.T) {
	eachWay(t, testAllTagsStreamResumesWhilePartitionsFold)
}

func testAllTagsStreamResumesWhilePartitionsFold(t *testing.T, l *live) {
	in := l.serve(t, queryapi.StreamConfig{}, queryapi.FeedConfig{}, nil)
	url := in.url + "/v1/messages"
	s := mustOpen(t, url, "alice", "")
	last := s.firstID(t)
	tags := []string{"a", "b", "c", "d", "e", "f", "g", "h"}
	var got []event
	for round := range 6 {
		for _, tag := range tags {
			l.append(t, tag, 1+round%3)
		}
		// Partitions fold out of log order, in batches of two.
		for _, p := range []int{3, 1, 2, 0} {
			l.fold(t, p, 2)
		}
		l.mu.Lock()
		folded := len(l.all)
		for _, w := range l.written {
			folded -= len(w)
		}
		l.mu.Unlock()
		for len(got) < folded {
			ev := s.next(t)
			got = append(got, ev)
			last = ev.id
			if len(got)%7 == 0 { // disconnect between any two events
				s.close()
				s = mustOpen(t, url, "alice", last)
			}
		}
	}
	l.foldAll(t)
	for len(got) < len(l.all) {
		got = append(got, s.next(t))
	}
	select {
	case ev := <-s.events:
		t.Errorf("a duplicate or stray event: %s", ev.data)
	case <-time.After(200 * time.Millisecond):
	}
	gotIDs := eventIDs(got)
	wantIDs := ids(l.all)
	slices.Sort(gotIDs)
	slices.Sort(wantIDs)
	if !slices.Equal(gotIDs, wantIDs) {
		t.Fatalf("streamed %d messages %v, want the %d appended %v", len(got), gotIDs, len(wantIDs), wantIDs)
	}
	checkVisible(t, in, got)
}

// A stream resumed on another query instance, started after the first
// stopped, sends exactly what it missed: its position is one of the log.
func TestStreamResumesAfterRestart(t *testing.T) {
	l := newLive(t)
	first := l.serve(t, queryapi.StreamConfig{}, queryapi.FeedConfig{}, nil)
	s := mustOpen(t, first.url+"/v1/messages", "alice", "")
	s.firstID(t)
	for _, tag := range []string{"a", "b", "c", "d"} {
		l.append(t, tag, 3)
	}
	l.foldAll(t)
	var got []event
	for range 5 {
		got = append(got, s.next(t))
	}
	first.close() // as SIGTERM: the stream ends
	for ev := range s.events {
		got = append(got, ev)
	}
	// Meanwhile more is written and folded.
	for _, tag := range []string{"d", "c", "b", "a"} {
		l.append(t, tag, 2)
	}
	l.foldAll(t)
	second := l.serve(t, queryapi.StreamConfig{}, queryapi.FeedConfig{}, nil)
	r := mustOpen(t, second.url+"/v1/messages", "alice", got[len(got)-1].id)
	for len(got) < len(l.all) {
		got = append(got, r.next(t))
	}
	after := l.append(t, "e", 1)
	l.foldAll(t)
	if ev := r.next(t); ev.msg.ID != after[0].ID {
		t.Errorf("then %s, want %s", ev.msg.ID, after[0].ID)
	}
	gotIDs, wantIDs := eventIDs(got), ids(l.all[:len(l.all)-1])
	slices.Sort(gotIDs)
	slices.Sort(wantIDs)
	if !slices.Equal(gotIDs, wantIDs) {
		t.Fatalf("streamed %v, want %v", gotIDs, wantIDs)
	}
}

// A client that stops reading is disconnected once its buffer is full,
// while another client and folding go on.
func TestSlowClientIsDropped(t *testing.T) {
	l := newLive(t)
	small := func(ln net.Listener) net.Listener { return smallBuffers{ln} }
	in := l.serve(t, queryapi.StreamConfig{}, queryapi.FeedConfig{Recent: 64}, small)
	fast := mustOpen(t, in.url+"/v1/messages", "alice", "")
	fast.firstID(t)

	// The slow client asks for a stream and reads nothing more.
	d := net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		return c.Control(func(fd uintptr) { _ = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 2048) })
	}}
	conn, err := d.Dial("tcp", strings.TrimPrefix(in.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "GET /v1/messages HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\nX-User-ID: slow\r\n\r\n")
	testkit.Eventually(t, 10*time.Second, 10*time.Millisecond, func() error {
		if n := metric(t, in.reg, "messages_query_streams_open"); n != 2 {
			return fmt.Errorf("%v streams open", n)
		}
		return nil
	})

	long := strings.Repeat("x", 1000)
	var want []string
	for i := range 200 {
		m := msg(time.Now(), "big", fmt.Sprint(i, long[:990]))
		ev, _ := message.CreatedEvent(m, "test")
		res, err := l.events.Append(testkit.Context(t), eventstore.Append{Event: ev, PartitionKey: "big"})
		if err != nil {
			t.Fatal(err)
		}
		if err := l.store.Apply(testkit.Context(t), res.Partition, []readmodel.Change{{Message: m, Sequence: res.Sequence}}, res.Sequence); err != nil {
			t.Fatal(err)
		}
		want = append(want, m.ID)
	}
	var got []string
	for len(got) < len(want) {
		got = append(got, fast.next(t).msg.ID)
	}
	if !slices.Equal(got, want) {
		t.Errorf("the reading client got %d messages, not the %d in order", len(got), len(want))
	}
	testkit.Eventually(t, 10*time.Second, 10*time.Millisecond, func() error {
		if n := metric(t, in.reg, "messages_query_streams_dropped_total"); n != 1 {
			return fmt.Errorf("%v streams dropped, want 1", n)
		}
		if n := metric(t, in.reg, "messages_query_streams_open"); n != 1 {
			return fmt.Errorf("%v streams open, want 1", n)
		}
		return nil
	})
	if n := (&api{url: in.url}).count(t, "/v1/messages?count=1&tag=big"); n != 200 {
		t.Errorf("count %d, want 200", n)
	}
}

// smallBuffers gives every accepted connection a small send buffer, so
// that a client that stops reading blocks the server's writes soon.
type smallBuffers struct{ net.Listener }

func (s smallBuffers) Accept() (net.Conn, error) {
	c, err := s.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetWriteBuffer(2048)
	}
	return c, err
}

func TestStreamLimits(t *testing.T) {
	l := newLive(t)
	in := l.serve(t, queryapi.StreamConfig{PerUser: 2, Total: 3}, queryapi.FeedConfig{}, nil)
	url := in.url + "/v1/messages"
	a1 := mustOpen(t, url, "alice", "")
	mustOpen(t, url, "alice", "")
	get := func(user string) (*http.Response, []byte) {
		h := http.Header{"Accept": {"text/event-stream"}, web.UserIDHeader: {user}}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		req.Header = h
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			return resp, nil
		}
		var b strings.Builder
		_, _ = bufio.NewReader(resp.Body).WriteTo(&b)
		return resp, []byte(b.String())
	}
	resp, body := get("alice")
	testkit.CheckProblem(t, resp, body, http.StatusTooManyRequests)
	if resp.Header.Get("Retry-After") == "" {
		t.Error("429 without Retry-After")
	}
	mustOpen(t, url, "bob", "")
	resp, body = get("carol")
	testkit.CheckProblem(t, resp, body, http.StatusServiceUnavailable)
	if resp.Header.Get("Retry-After") == "" {
		t.Error("503 without Retry-After")
	}
	a1.close()
	testkit.Eventually(t, 10*time.Second, 10*time.Millisecond, func() error {
		s, err := openStream(url, "carol", "")
		if err != nil {
			return err
		}
		s.close()
		return nil
	})
}

func TestStreamRefuses(t *testing.T) {
	l := newLive(t)
	in := l.serve(t, queryapi.StreamConfig{}, queryapi.FeedConfig{}, nil)
	other := position.At(position.Layout{Stream: "ELSEWHERE", Partitions: 4}, 1).String()
	for _, tt := range []struct{ query, lastID string }{
		{"?count=1", ""}, {"?limit=5", ""}, {"?cursor=AAAA", ""}, {"?dateStart=2026-01-01", ""},
		{"?dateEnd=2026-01-01", ""}, {"?tag=a&tag=b", ""}, {"?tag=no%20spaces", ""}, {"?since=1", ""},
		{"", "garbage"}, {"", other},
	} {
		h := http.Header{}
		h.Set("Accept", "text/event-stream")
		h.Set(web.UserIDHeader, "alice")
		if tt.lastID != "" {
			h.Set(queryapi.LastEventIDHeader, tt.lastID)
		}
		resp, body := (&api{url: in.url}).getAs(t, "/v1/messages"+tt.query, h)
		testkit.CheckProblem(t, resp, body, http.StatusBadRequest)
	}
}

// A stream starts with its retry hint and position, sends heartbeats while
// idle, takes a consistency token as its start, and ends when its instance
// stops.
func TestStreamHeartbeatStartAndShutdown(t *testing.T) {
	l := newLive(t)
	in := l.serve(t, queryapi.StreamConfig{Heartbeat: 50 * time.Millisecond, Retry: 3 * time.Second}, queryapi.FeedConfig{}, nil)
	before := l.append(t, "a", 2)
	l.foldAll(t)
	tok := position.Token{Layout: l.events.Layout(), Partition: l.events.Partition("a"), Sequence: 1}

	s := mustOpen(t, in.url+"/v1/messages", "alice", tok.String())
	var lines []string
	for len(lines) < 2 || !slices.Contains(lines, ": heartbeat") {
		select {
		case line := <-s.lines:
			lines = append(lines, line)
		case <-time.After(10 * time.Second):
			t.Fatalf("lines %q: no heartbeat", lines)
		}
	}
	if lines[0] != "retry: 3000" || !strings.HasPrefix(lines[1], "id: ") {
		t.Errorf("the stream starts %q, want retry: 3000 and an id", lines[:2])
	}
	// From the token of the first write: the second.
	if ev := s.next(t); ev.msg.ID != before[1].ID {
		t.Errorf("from the token: %s, want %s", ev.msg.ID, before[1].ID)
	}
	in.stop()
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
		t.Fatal("the stream did not end when its instance stopped")
	}
}

// When more events of a partition wait to be folded than the feed keeps,
// it forgets them and ends the streams that read the partition; resumed,
// they read the log and miss nothing.
func TestStreamOfAPartitionFarBehind(t *testing.T) {
	l := newLive(t)
	in := l.serve(t, queryapi.StreamConfig{}, queryapi.FeedConfig{Waiting: 5}, nil)
	s := mustOpen(t, in.url+"/v1/messages?tag=slow", "alice", "")
	start := s.firstID(t)
	want := l.append(t, "slow", 12)
	select {
	case <-s.done:
	case <-time.After(20 * time.Second):
		t.Fatal("the stream did not end when its partition fell far behind")
	}
	l.foldAll(t)
	r := mustOpen(t, in.url+"/v1/messages?tag=slow", "alice", start)
	var got []event
	for range want {
		got = append(got, r.next(t))
	}
	if !slices.Equal(eventIDs(got), ids(want)) {
		t.Fatalf("resumed %v, want %v", eventIDs(got), ids(want))
	}
	select {
	case ev := <-r.events:
		t.Errorf("a duplicate or stray event: %s", ev.data)
	case <-time.After(200 * time.Millisecond):
	}
}

// unread is a read model whose messages cannot be read by id; it counts
// the attempts.
type unread struct {
	*readmodel.Store
	reads atomic.Int64
}

func (u *unread) Stored(context.Context, string) (message.Message, uint64, error) {
	u.reads.Add(1)
	return message.Message{}, 0, readmodel.ErrUnavailable
}

// The notices of the fold say which events stored their message, so a
// stream that follows the fold reads none back: here it could not. An
// event the batch did not fold, as one parked, stored none and is not
// sent, and the events after it are.
func TestStreamFromNoticesReadsNoMessage(t *testing.T) {
	l := newLive(t)
	u := &unread{Store: l.store}
	l.visible = u
	// The checkpoints are not read within the test, however late a notice
	// comes on a busy machine: only the notices can hand the messages on.
	in := l.serve(t, queryapi.StreamConfig{}, queryapi.FeedConfig{PollInterval: time.Hour}, nil)
	s := mustOpen(t, in.url+"/v1/messages?tag=news", "alice", "")
	s.firstID(t)

	want := l.append(t, "news", 5)
	p := l.events.Layout().Partition("news")
	l.mu.Lock()
	batch := l.written[p]
	l.written[p] = nil
	l.mu.Unlock()
	parked := batch[2]
	folded := slices.Delete(slices.Clone(batch), 2, 3)
	if err := l.store.Apply(testkit.Context(t), p, folded, batch[len(batch)-1].Sequence); err != nil {
		t.Fatalf("apply: %v", err)
	}
	var got []string
	for range 4 {
		got = append(got, s.next(t).msg.ID)
	}
	wantIDs := slices.DeleteFunc(ids(want), func(id string) bool { return id == parked.Message.ID })
	if !slices.Equal(got, wantIDs) {
		t.Fatalf("streamed %v, want %v: all but the one not folded", got, wantIDs)
	}
	select {
	case ev := <-s.events:
		t.Errorf("a stray event: %s", ev.data)
	case <-time.After(200 * time.Millisecond):
	}
	if n := u.reads.Load(); n != 0 {
		t.Errorf("the feed read %d messages back; the notices told it them", n)
	}
}
