package reducers_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/messages-io/messages/eventstore"
	"github.com/messages-io/messages/internal/testkit"
	"github.com/messages-io/messages/readmodel"
	"github.com/messages-io/messages/reducers"
)

// writeLog is a read model that records the changes of each write.
type writeLog struct {
	reducers.Sink
	mu     sync.Mutex
	writes [][]uint64 // the sequences of each write's changes
}

func (w *writeLog) Apply(ctx context.Context, partition int, changes []readmodel.Change, through uint64) error {
	seqs := make([]uint64, len(changes))
	for i, c := range changes {
		seqs[i] = c.Sequence
	}
	w.mu.Lock()
	w.writes = append(w.writes, seqs)
	w.mu.Unlock()
	return w.Sink.Apply(ctx, partition, changes, through)
}

// Events delivered while a reducer waits for its turn to write join that
// write: an event does not wait a turn more for the batch before it.
func TestEventsDeliveredDuringTheWaitJoinTheWrite(t *testing.T) {
	f := setup(t, 1)
	log := &writeLog{Sink: f.rm}
	writes := make(chan struct{}, 1)
	writes <- struct{}{} // another partition's turn, until released below
	projected := make(chan struct{}, 16)
	f.run(t, func(c *reducers.Config, s *reducers.Sink) {
		c.Writes, *s = writes, log
		c.Project = func(rec eventstore.Record) (readmodel.Change, error) {
			projected <- struct{}{}
			return reducers.Project(rec)
		}
	})
	at := time.Date(2026, 4, 5, 6, 7, 8, 0, time.UTC)
	f.post(t, "a", "first", at)
	select {
	case <-projected: // the batch of the first event is in hand
	case <-time.After(20 * time.Second):
		t.Fatal("the first event was not delivered")
	}
	for i := 1; i < 5; i++ {
		f.post(t, "a", fmt.Sprint(i), at.Add(time.Duration(i)*time.Second))
	}
	// Wait until JetStream has delivered the later events to the reducer,
	// which holds them unacknowledged while it waits.
	cons, err := f.js.Consumer(t.Context(), "EV", "t-p0")
	if err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 20*time.Second, 10*time.Millisecond, func() error {
		info, err := cons.Info(t.Context())
		if err != nil {
			return err
		}
		if info.NumAckPending != 5 {
			return fmt.Errorf("%d events delivered and unacknowledged, want 5", info.NumAckPending)
		}
		return nil
	})
	<-writes
	f.waitCount(t, 5)
	log.mu.Lock()
	defer log.mu.Unlock()
	if len(log.writes) != 1 || len(log.writes[0]) != 5 {
		t.Errorf("writes of sequences %v; want one write of all 5", log.writes)
	}
}
