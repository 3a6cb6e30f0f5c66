package reducers_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/messages-io/messages/eventstore"
	"github.com/messages-io/messages/internal/testkit"
	"github.com/messages-io/messages/message"
	"github.com/messages-io/messages/readmodel"
	"github.com/messages-io/messages/reducers"
	"github.com/prometheus/client_golang/prometheus"
)

// writeLog is a read model that records the changes of each write. When
// refuse is set, it calls it in the first write, which it then refuses.
type writeLog struct {
	reducers.Sink
	refuse func()
	mu     sync.Mutex
	writes [][]uint64 // the sequences of each write's changes, the refused one included
}

func (w *writeLog) Apply(ctx context.Context, partition int, changes []readmodel.Change, through uint64) error {
	seqs := make([]uint64, len(changes))
	for i, c := range changes {
		seqs[i] = c.Sequence
	}
	w.mu.Lock()
	w.writes = append(w.writes, seqs)
	first := len(w.writes) == 1
	w.mu.Unlock()
	if first && w.refuse != nil {
		w.refuse()
		return errors.New("refused")
	}
	return w.Sink.Apply(ctx, partition, changes, through)
}

// turns runs one reducer for partition 0 into sink, and holds its process's
// one write slot, as another partition's write would, until the reducer has
// projected its first batch and the test has posted what it posts then and
// JetStream has delivered it; it returns how many events it delivered.
// Its metrics go to reg; wrap, when set, stands between the reducer and its
// consumer.
type turns struct {
	f       fixture
	writes  chan struct{}
	fetched chan struct{}
	reg     *prometheus.Registry
}

func (f fixture) runTurns(t *testing.T, sink reducers.Sink, project func(eventstore.Record) (readmodel.Change, error), wrap func(reducers.Source) reducers.Source) turns {
	t.Helper()
	tu := turns{f: f, writes: make(chan struct{}, 1), fetched: make(chan struct{}, 1), reg: prometheus.NewRegistry()}
	tu.writes <- struct{}{}
	ctx, cancel := context.WithCancel(context.Background())
	// The reducer waits for its turn without pulling again, so the later
	// events come to the pull request of its first batch: it must outlast
	// the test's posting.
	src, err := f.events.Consumer(ctx, 0, eventstore.ConsumerConfig{Name: "t", FetchWait: 20 * time.Second, PinnedTTL: time.Minute, AckWait: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	var source reducers.Source = src
	if wrap != nil {
		source = wrap(src)
	}
	cfg := reducers.Config{BatchSize: 16, RetryMin: 10 * time.Millisecond, RetryMax: 50 * time.Millisecond,
		MaxAttempts: 2, Park: f.events.Park, Writes: tu.writes,
		Project: func(rec eventstore.Record) (readmodel.Change, error) {
			select {
			case tu.fetched <- struct{}{}:
			default:
			}
			return project(rec)
		}}
	r, err := reducers.New(source, func() reducers.Sink { return sink }, testkit.Logger(), reducers.NewMetrics(tu.reg), cfg)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Go(func() { _ = r.Run(ctx) })
	t.Cleanup(func() { cancel(); wg.Wait() })
	return tu
}

// hold waits until the reducer has its first batch in hand, calls post,
// waits until JetStream has delivered delivered events to the reducer in
// all, and gives the reducer its turn.
func (tu turns) hold(t *testing.T, post func(), delivered int) {
	t.Helper()
	select {
	case <-tu.fetched:
	case <-time.After(20 * time.Second):
		t.Fatal("no batch was delivered")
	}
	post()
	tu.f.waitDelivered(t, delivered)
	<-tu.writes
}

// postDuringTheWait posts one event and, while the reducer holds it and
// waits for its turn, four more; it returns once all five are counted.
func (tu turns) postDuringTheWait(t *testing.T) {
	t.Helper()
	at := time.Date(2026, 4, 5, 6, 7, 8, 0, time.UTC)
	tu.f.post(t, "a", "first", at)
	tu.hold(t, func() {
		for i := 1; i < 5; i++ {
			tu.f.post(t, "a", fmt.Sprint(i), at.Add(time.Duration(i)*time.Second))
		}
	}, 5)
	tu.f.waitCount(t, 5)
}

// waitDelivered waits until JetStream has delivered n events of partition 0
// to its reducer that it has not acknowledged.
func (f fixture) waitDelivered(t *testing.T, n int) {
	t.Helper()
	cons, err := f.js.Consumer(context.Background(), "EV", "t-p0")
	if err != nil {
		t.Error(err)
		return
	}
	testkit.Eventually(t, 20*time.Second, 10*time.Millisecond, func() error {
		info, err := cons.Info(context.Background())
		if err != nil {
			return err
		}
		if info.NumAckPending != n {
			return fmt.Errorf("%d events delivered and unacknowledged, want %d", info.NumAckPending, n)
		}
		return nil
	})
}

// Events delivered while a reducer waits for its turn to write join that
// write: an event does not wait a turn more for the batch before it.
func TestEventsDeliveredDuringTheWaitJoinTheWrite(t *testing.T) {
	f := setup(t, 1)
	log := &writeLog{Sink: f.rm}
	tu := f.runTurns(t, log, reducers.Project, nil)
	tu.postDuringTheWait(t)
	log.mu.Lock()
	defer log.mu.Unlock()
	if len(log.writes) != 1 || len(log.writes[0]) != 5 {
		t.Errorf("writes of sequences %v; want one write of all 5", log.writes)
	}
}

// An event taken in during the wait that cannot be folded is left out of
// the write, with the events after it, and takes its usual course: tried
// again, then parked. When the write then fails and the batch is written
// in smaller runs, events delivered meanwhile are not taken in after those
// left out, which would acknowledge them unapplied.
func TestAnEventThatCannotBeFoldedIsLeftOutOfTheWrite(t *testing.T) {
	f := setup(t, 1)
	var late message.Message
	at := time.Date(2026, 4, 5, 6, 7, 8, 0, time.UTC)
	log := &writeLog{Sink: f.rm, refuse: func() {
		late = f.post(t, "a", "late", at.Add(time.Minute))
		f.waitDelivered(t, 10)
	}}
	project := func(rec eventstore.Record) (readmodel.Change, error) {
		c, err := reducers.Project(rec)
		if err == nil && c.Message.Text == "poison" {
			return c, errors.New("the read model rejects it")
		}
		return c, err
	}
	tu := f.runTurns(t, log, project, nil)
	var posted []message.Message
	for i := range 5 {
		posted = append(posted, f.post(t, "a", fmt.Sprint(i), at.Add(time.Duration(i)*time.Second)))
	}
	var poison message.Message
	tu.hold(t, func() {
		poison = f.post(t, "a", "poison", at.Add(5*time.Second))
		for i := 6; i < 9; i++ {
			posted = append(posted, f.post(t, "a", fmt.Sprint(i), at.Add(time.Duration(i)*time.Second)))
		}
	}, 9)
	f.waitCount(t, int64(len(posted))+1)
	posted = append(posted, late)
	for _, m := range posted {
		if _, err := f.rm.Get(t.Context(), m.ID); err != nil {
			t.Errorf("message %q: %v", m.Text, err)
		}
	}
	if _, err := f.rm.Get(t.Context(), poison.ID); !errors.Is(err, readmodel.ErrNotFound) {
		t.Errorf("the poison was folded: %v", err)
	}
	dls, err := f.events.DeadLetters(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(dls) != 1 || dls[0].OriginalSequence != 6 {
		t.Errorf("dead letters %+v, want the event at sequence 6", dls)
	}
}

// pendingSource is a partition's consumer whose first batch reports, as
// JetStream does when the next events are stored while the first of a pull
// request is delivered, pending events that then come to the same request.
type pendingSource struct {
	reducers.Source
	pending uint64
}

func (s pendingSource) Next(ctx context.Context, after uint64, max int) (*eventstore.Batch, error) {
	b, err := s.Source.Next(ctx, after, max)
	if err == nil && after == 0 {
		b.Pending = s.pending
	}
	return b, err
}

// Once a write has taken in the events delivered while it waited, the
// partition's lag is that reported with the last of them: a reducer left
// with nothing to fold reports no events waiting, and its checkpoint does
// not age as if it were stalled.
func TestLagAfterATopUpIsThatOfItsLastEvent(t *testing.T) {
	f := setup(t, 1)
	tu := f.runTurns(t, f.rm, reducers.Project, func(src reducers.Source) reducers.Source {
		return pendingSource{Source: src, pending: 4}
	})
	tu.postDuringTheWait(t)
	testkit.Eventually(t, 10*time.Second, 10*time.Millisecond, func() error {
		lag := gauge(t, tu.reg, "messages_reducer_lag_events")
		age := gauge(t, tu.reg, "messages_reducer_checkpoint_age_seconds")
		if lag != 0 || age != 0 {
			return fmt.Errorf("lag %v events, checkpoint age %vs; want 0 and 0", lag, age)
		}
		return nil
	})
}
