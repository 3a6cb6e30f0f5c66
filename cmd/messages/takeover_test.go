package main

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/messages-io/messages/embedded"
	"github.com/messages-io/messages/eventstore"
	"github.com/messages-io/messages/internal/testkit"
	"github.com/messages-io/messages/message"
	"github.com/oklog/ulid/v2"
)

// A reducer process killed with kill -9 while events keep coming, and
// started again, folds every partition again within the takeover setting
// (JetStream's pin of the dead process lapses) plus a little.
func TestRestartedReducerTakesOverSoon(t *testing.T) {
	const partitions = 8
	natsAddr, mongoAddr := freeAddr(t), freeAddr(t)
	natsURL := "nats://" + natsAddr
	testkit.NATSAt(t, natsAddr, t.TempDir())
	store, err := embedded.StartMongo(embedded.MongoConfig{Listen: mongoAddr, Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(store.Close)
	args := []string{"reducer", "--addr", "127.0.0.1:0", "--log-level", "warn", "--partitions", fmt.Sprint(partitions),
		"--nats-url", natsURL, "--mongo-uri", store.URI(), "--mongo-db", "takeover"}
	proc := startProcess(t, args...)
	events, err := eventstore.Open(t.Context(), connectJetStream(t, natsURL), eventstore.Config{Partitions: partitions})
	if err != nil {
		t.Fatal(err)
	}
	// About 200 events a second over every partition, until the test ends.
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); wg.Wait() })
	wg.Go(func() {
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			m := message.Message{ID: ulid.Make().String(), UserID: "u", Text: fmt.Sprint(i), Tag: fmt.Sprint("tag", i%16),
				CreatedAt: time.Now().UTC().Truncate(time.Millisecond)}
			ev, err := message.CreatedEvent(m, "")
			if err != nil {
				t.Error(err)
				return
			}
			_, _ = events.Append(ctx, eventstore.Append{Event: ev, PartitionKey: m.Tag})
		}
	})
	db := mongoClient(t, store.URI()).Database("takeover")
	testkit.Eventually(t, 60*time.Second, 50*time.Millisecond, func() error {
		if cps := checkpoints(db); len(cps) < partitions {
			return fmt.Errorf("%d partitions folded", len(cps))
		}
		return nil
	})

	proc.kill(t)
	before := checkpoints(db)
	restarted := time.Now()
	startProcess(t, args...)
	moved := map[int]time.Duration{}
	bound := eventstore.DefaultPinnedTTL + 3*time.Second
	testkit.Eventually(t, bound, 20*time.Millisecond, func() error {
		for p, cp := range checkpoints(db) {
			if _, ok := moved[p]; !ok && cp > before[p] {
				moved[p] = time.Since(restarted).Round(10 * time.Millisecond)
			}
		}
		if len(moved) < partitions {
			return fmt.Errorf("partitions folding again after the restart: %v", moved)
		}
		return nil
	})
	t.Logf("each partition folding again after the restart: %v", moved)
}

// --write-concurrency auto writes one batch at a time on the embedded
// FerretDB, which names itself when asked, for dev and reducer alike.
func TestWriteConcurrencyAutoFindsFerretDB(t *testing.T) {
	s := &service{log: testkit.Logger(), mongo: mongoClient(t, testkit.Mongo(t).URI())}
	if !s.singleWriter(t.Context()) {
		t.Error("the embedded FerretDB not recognised as a single-writer store")
	}
	var w writeConcurrency
	for _, tc := range []struct {
		in   string
		want writeConcurrency
		ok   bool
	}{{"auto", autoWrites, true}, {"0", 0, true}, {"3", 3, true}, {"-1", 0, false}, {"all", 0, false}} {
		w = 7
		err := w.Set(tc.in)
		if (err == nil) != tc.ok || tc.ok && w != tc.want {
			t.Errorf("Set(%q) = %v, %v; want %v, ok %v", tc.in, w, err, tc.want, tc.ok)
		}
	}
}
