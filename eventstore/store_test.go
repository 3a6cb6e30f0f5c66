package eventstore_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/messages-io/messages/event"
	"github.com/messages-io/messages/eventstore"
	"github.com/messages-io/messages/internal/testkit"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/oklog/ulid/v2"
)

func open(t *testing.T, js jetstream.JetStream, cfg eventstore.Config) *eventstore.Store {
	t.Helper()
	s, err := eventstore.Open(t.Context(), js, cfg)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	return s
}

func newEvent(t *testing.T, text string) event.Event {
	t.Helper()
	data, _ := json.Marshal(map[string]string{"text": text, "tag": "t"})
	return event.Event{
		ID:         ulid.Make().String(),
		Type:       "message.created",
		Version:    1,
		OccurredAt: time.Now().UTC(),
		UserID:     "u1",
		Data:       data,
	}
}

func appendN(t *testing.T, s *eventstore.Store, key string, n int) []uint64 {
	t.Helper()
	var seqs []uint64
	for i := range n {
		res, err := s.Append(t.Context(), eventstore.Append{Event: newEvent(t, fmt.Sprint(key, i)), PartitionKey: key})
		if err != nil {
			t.Fatalf("append: %v", err)
		}
		seqs = append(seqs, res.Sequence)
	}
	return seqs
}

func TestOpenMakesAnAppendOnlyStream(t *testing.T) {
	_, js := testkit.JetStream(t, testkit.NATS(t))
	ctx := t.Context()
	open(t, js, eventstore.Config{Stream: "EV", Partitions: 4, DuplicateWindow: time.Minute})
	info, err := js.Stream(ctx, "EV")
	if err != nil {
		t.Fatal(err)
	}
	cfg := info.CachedInfo().Config
	if !cfg.DenyDelete || !cfg.DenyPurge || cfg.MaxAge != 0 || cfg.Storage != jetstream.FileStorage ||
		cfg.Retention != jetstream.LimitsPolicy || cfg.Duplicates != time.Minute || cfg.Replicas != 1 {
		t.Errorf("stream config = %+v", cfg)
	}
	if len(cfg.Subjects) != 1 || cfg.Subjects[0] != "messages.events.>" {
		t.Errorf("subjects = %v", cfg.Subjects)
	}
	// Appends can never be deleted.
	if err := info.DeleteMsg(ctx, 1); err == nil {
		t.Error("deleting an event succeeded")
	}
	if err := info.Purge(ctx); err == nil {
		t.Error("purging the stream succeeded")
	}

	// Opening again is a no-op, a changed window is applied, changed
	// partitioning is refused.
	open(t, js, eventstore.Config{Stream: "EV", Partitions: 4, DuplicateWindow: 2 * time.Minute})
	info, _ = js.Stream(ctx, "EV")
	if got := info.CachedInfo().Config.Duplicates; got != 2*time.Minute {
		t.Errorf("duplicate window after reopen = %v, want 2m", got)
	}
	// A process that leaves the window and replicas unset, such as an
	// import, keeps the stream's and runs with them.
	kept := open(t, js, eventstore.Config{Stream: "EV", Partitions: 4})
	info, _ = js.Stream(ctx, "EV")
	if got := info.CachedInfo().Config.Duplicates; got != 2*time.Minute {
		t.Errorf("duplicate window after a reopen without one = %v, want the stream's 2m", got)
	}
	if got := kept.Config(); got.DuplicateWindow != 2*time.Minute || got.Replicas != 1 {
		t.Errorf("store config = %+v, want the stream's window (2m) and replicas (1)", got)
	}
	_, err = eventstore.Open(ctx, js, eventstore.Config{Stream: "EV", Partitions: 5})
	if !errors.Is(err, eventstore.ErrIncompatibleStream) {
		t.Errorf("open with 5 partitions: err = %v, want ErrIncompatibleStream", err)
	}
}

func TestConfigValidate(t *testing.T) {
	_, js := testkit.JetStream(t, testkit.NATS(t))
	for _, cfg := range []eventstore.Config{
		{Stream: "bad name"},
		{SubjectPrefix: "a..b"},
		{SubjectPrefix: "a.*"},
		{Partitions: -1},
		{Partitions: 1025},
		{Partitions: 2000},
		{Replicas: -1},
		{Replicas: 7},
		{DuplicateWindow: time.Millisecond},
		{DuplicateWindow: 500 * time.Millisecond},
		{DuplicateWindow: -time.Minute},
	} {
		if err := cfg.Validate(); !errors.Is(err, eventstore.ErrInvalidConfig) {
			t.Errorf("%+v.Validate() = %v, want ErrInvalidConfig", cfg, err)
		}
		if _, err := eventstore.Open(t.Context(), js, cfg); !errors.Is(err, eventstore.ErrInvalidConfig) {
			t.Errorf("Open(%+v) = %v, want ErrInvalidConfig", cfg, err)
		}
	}
	for _, cfg := range []eventstore.Config{
		{},
		{Partitions: 1024, Replicas: 5, DuplicateWindow: time.Second},
		{Partitions: 1, Replicas: 1, DuplicateWindow: 24 * time.Hour},
	} {
		if err := cfg.Validate(); err != nil {
			t.Errorf("%+v.Validate() = %v, want nil", cfg, err)
		}
	}
}

// A stream the server cannot take is a rejection, which no retry cures; a
// server that does not answer is unavailability, which one may wait out.
func TestOpenTellsRejectionFromUnavailability(t *testing.T) {
	ns := testkit.NATS(t)
	_, js := testkit.JetStream(t, ns)
	_, err := eventstore.Open(t.Context(), js, eventstore.Config{Stream: "EV", Replicas: 3})
	if !errors.Is(err, eventstore.ErrRejected) || errors.Is(err, eventstore.ErrUnavailable) {
		t.Errorf("open with 3 replicas on one server: %v, want ErrRejected only", err)
	}

	ns.Shutdown()
	ns.WaitForShutdown()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_, err = eventstore.Open(ctx, js, eventstore.Config{Stream: "EV"})
	if !errors.Is(err, eventstore.ErrUnavailable) || errors.Is(err, eventstore.ErrRejected) {
		t.Errorf("open with the server down: %v, want ErrUnavailable only", err)
	}
}

func TestAppendIsAcknowledgedAndDeduplicated(t *testing.T) {
	_, js := testkit.JetStream(t, testkit.NATS(t))
	s := open(t, js, eventstore.Config{Stream: "EV"})
	ctx := t.Context()
	ev := newEvent(t, "hello")
	ev.CorrelationID = "req-1"
	first, err := s.Append(ctx, eventstore.Append{Event: ev, PartitionKey: "go", MsgID: "k1"})
	if err != nil || first.Duplicate || first.Sequence != 1 {
		t.Fatalf("first append = %+v, %v", first, err)
	}
	again, err := s.Append(ctx, eventstore.Append{Event: newEvent(t, "other"), PartitionKey: "go", MsgID: "k1"})
	if err != nil || !again.Duplicate || again.Sequence != 1 {
		t.Fatalf("repeated append = %+v, %v; want duplicate of 1", again, err)
	}
	if last, _ := s.LastSequence(ctx); last != 1 {
		t.Errorf("last sequence = %d, want 1", last)
	}
	rec, err := s.Get(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	if rec.ID != ev.ID || rec.CorrelationID != "req-1" || string(rec.Data) != string(ev.Data) ||
		!rec.OccurredAt.Equal(ev.OccurredAt) || rec.Partition != s.Partition("go") {
		t.Errorf("stored %+v, appended %+v", rec, ev)
	}
	if _, err := s.Get(ctx, 2); !errors.Is(err, eventstore.ErrNotFound) {
		t.Errorf("get missing: err = %v, want ErrNotFound", err)
	}
}

func TestPartitionKeepsAKeyTogether(t *testing.T) {
	_, js := testkit.JetStream(t, testkit.NATS(t))
	s := open(t, js, eventstore.Config{Stream: "EV", Partitions: 8})
	seen := map[int]bool{}
	for i := range 200 {
		key := fmt.Sprint("tag", i)
		p := s.Partition(key)
		if p < 0 || p >= 8 || p != s.Partition(key) {
			t.Fatalf("Partition(%q) = %d, unstable or out of range", key, p)
		}
		seen[p] = true
	}
	if len(seen) != 8 {
		t.Errorf("200 keys used %d of 8 partitions", len(seen))
	}
	seqs := appendN(t, s, "go", 3)
	for _, seq := range seqs {
		rec, err := s.Get(t.Context(), seq)
		if err != nil || rec.Partition != s.Partition("go") {
			t.Errorf("event %d in partition %d (%v), want %d", seq, rec.Partition, err, s.Partition("go"))
		}
	}
}

// storeOfStoppedServer returns a store whose server has stopped, once its
// client has noticed.
func storeOfStoppedServer(t *testing.T) *eventstore.Store {
	t.Helper()
	ns := testkit.NATS(t)
	nc, js := testkit.JetStream(t, ns)
	s := open(t, js, eventstore.Config{Stream: "EV"})
	ns.Shutdown()
	ns.WaitForShutdown()
	testkit.Eventually(t, 5*time.Second, 10*time.Millisecond, func() error {
		if nc.IsConnected() {
			return errors.New("the client has not noticed yet")
		}
		return nil
	})
	return s
}

// An append to a server that is down is never sent, so it certainly stored
// nothing: its error is unavailability, not an unknown outcome.
func TestAppendWhenServerIsDown(t *testing.T) {
	s := storeOfStoppedServer(t)
	ctx, cancel := context.WithTimeout(t.Context(), time.Second)
	defer cancel()
	_, err := s.Append(ctx, eventstore.Append{Event: newEvent(t, "x"), PartitionKey: "k"})
	if !errors.Is(err, eventstore.ErrUnavailable) || errors.Is(err, eventstore.ErrOutcomeUnknown) {
		t.Errorf("append with the server down: err = %v, want ErrUnavailable and a known outcome", err)
	}
}

// An append whose acknowledgement does not come has an unknown outcome, and
// appending it again with the same id tells it: stored once, either way.
func TestAppendWithoutAcknowledgement(t *testing.T) {
	ns := testkit.NATS(t)
	_, direct := testkit.JetStream(t, ns)
	proxy := testkit.NewProxy(t, ns.Addr().String())
	_, proxyJS := testkit.JetStreamAt(t, "nats://"+proxy.Addr())
	s := open(t, proxyJS, eventstore.Config{Stream: "EV"})
	watch := open(t, direct, eventstore.Config{Stream: "EV"})
	waitLast := func(t *testing.T, want uint64) {
		t.Helper()
		testkit.Eventually(t, 10*time.Second, 10*time.Millisecond, func() error {
			last, err := watch.LastSequence(t.Context())
			if err == nil && last != want {
				err = fmt.Errorf("last sequence %d, want %d", last, want)
			}
			return err
		})
	}
	appendWithin := func(d time.Duration, a eventstore.Append) (eventstore.Appended, error) {
		ctx, cancel := context.WithTimeout(t.Context(), d)
		defer cancel()
		return s.Append(ctx, a)
	}

	t.Run("acknowledgement lost", func(t *testing.T) {
		a := eventstore.Append{Event: newEvent(t, "lost ack"), PartitionKey: "k"}
		proxy.PauseReplies()
		_, err := appendWithin(300*time.Millisecond, a)
		if !errors.Is(err, eventstore.ErrOutcomeUnknown) || !errors.Is(err, eventstore.ErrUnavailable) {
			t.Fatalf("append without an acknowledgement: %v, want ErrOutcomeUnknown", err)
		}
		waitLast(t, 1) // it was stored nonetheless
		proxy.Resume()
		res, err := appendWithin(5*time.Second, a)
		if err != nil || !res.Duplicate || res.Sequence != 1 {
			t.Errorf("append again: %+v, %v; want the duplicate of sequence 1", res, err)
		}
		waitLast(t, 1)
	})

	t.Run("server stopped", func(t *testing.T) {
		a := eventstore.Append{Event: newEvent(t, "stopped"), PartitionKey: "k", MsgID: "key-1"}
		proxy.Pause()
		_, err := appendWithin(300*time.Millisecond, a)
		if !errors.Is(err, eventstore.ErrOutcomeUnknown) {
			t.Fatalf("append to a stopped server: %v, want ErrOutcomeUnknown", err)
		}
		waitLast(t, 1) // not stored yet
		proxy.Resume()
		waitLast(t, 2) // stored once the server goes on
		res, err := appendWithin(5*time.Second, a)
		if err != nil || !res.Duplicate || res.Sequence != 2 {
			t.Errorf("append again: %+v, %v; want the duplicate of sequence 2", res, err)
		}
	})
}

func TestAppendRefusesMalformedEvents(t *testing.T) {
	_, js := testkit.JetStream(t, testkit.NATS(t))
	s := open(t, js, eventstore.Config{Stream: "EV"})
	for _, ev := range []event.Event{
		{Type: "x", Version: 1, Data: []byte(`{}`)},
		{ID: "1", Version: 1, Data: []byte(`{}`)},
		{ID: "1", Type: "x", Data: []byte(`{}`)},
		{ID: "1", Type: "x", Version: 1},
	} {
		if _, err := s.Append(t.Context(), eventstore.Append{Event: ev}); !errors.Is(err, event.ErrMalformed) {
			t.Errorf("append %+v: err = %v, want ErrMalformed", ev, err)
		}
	}
}

func TestReadReplaysFromASequence(t *testing.T) {
	_, js := testkit.JetStream(t, testkit.NATS(t))
	s := open(t, js, eventstore.Config{Stream: "EV", Partitions: 3})
	appendN(t, s, "a", 5)
	appendN(t, s, "b", 5)
	var got []uint64
	err := s.Read(t.Context(), 4, func(r eventstore.Record) error {
		if r.Err != nil {
			return r.Err
		}
		got = append(got, r.Sequence)
		if r.Sequence == 6 {
			appendN(t, s, "c", 2) // stored after Read began: not read
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got) != "[4 5 6 7 8 9 10]" {
		t.Errorf("read sequences %v, want 4..10", got)
	}
	stop := errors.New("stop")
	n := 0
	err = s.Read(t.Context(), 0, func(eventstore.Record) error { n++; return stop })
	if !errors.Is(err, stop) || n != 1 {
		t.Errorf("read stopping at once: n=%d err=%v", n, err)
	}
}

// A window no longer than WindowAbove is refused before a stream is made
// or changed.
func TestOpenRefusesAWindowNotAboveTheRepeats(t *testing.T) {
	_, js := testkit.JetStream(t, testkit.NATS(t))
	ctx := t.Context()
	if _, err := eventstore.Open(ctx, js, eventstore.Config{Stream: "EV", WindowAbove: 10 * time.Minute}); !errors.Is(err, eventstore.ErrInvalidConfig) {
		t.Errorf("a new stream with the default window of 10m above 10m: err = %v, want ErrInvalidConfig", err)
	}
	if _, err := js.Stream(ctx, "EV"); !errors.Is(err, jetstream.ErrStreamNotFound) {
		t.Errorf("the refused stream was made: %v", err)
	}
	open(t, js, eventstore.Config{Stream: "EV", DuplicateWindow: 2 * time.Second})
	if _, err := eventstore.Open(ctx, js, eventstore.Config{Stream: "EV", WindowAbove: 2 * time.Second}); !errors.Is(err, eventstore.ErrInvalidConfig) {
		t.Errorf("the stream's window of 2s above 2s: err = %v, want ErrInvalidConfig", err)
	}
	s := open(t, js, eventstore.Config{Stream: "EV", WindowAbove: time.Second})
	if w := s.Config().DuplicateWindow; w != 2*time.Second {
		t.Errorf("window %s after an Open above 1s, want the stream's 2s", w)
	}
}
