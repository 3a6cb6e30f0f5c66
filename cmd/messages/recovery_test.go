package main

import (
	"context"
	"crypto/rand"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/messages-io/messages/embedded"
	"github.com/messages-io/messages/eventstore"
	"github.com/messages-io/messages/internal/testkit"
	"github.com/messages-io/messages/message"
	"github.com/messages-io/messages/readmodel"
	"github.com/oklog/ulid/v2"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// appendMessages appends n messages over eight tags and a year, from
// several writers at once, and returns how many each tag got.
func appendMessages(t *testing.T, events *eventstore.Store, n int) map[string]int64 {
	t.Helper()
	const writers = 8
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	perTag := map[string]int64{}
	for i := range n {
		perTag[fmt.Sprint("tag", i%8)]++
	}
	for w := range writers {
		wg.Go(func() {
			entropy := ulid.Monotonic(rand.Reader, 0)
			for i := w; i < n; i += writers {
				at := start.Add(time.Duration(i) * 17 * time.Minute)
				m := message.Message{ID: ulid.MustNew(ulid.Timestamp(at), entropy).String(), UserID: "u", Text: fmt.Sprint("m", i),
					Tag: fmt.Sprint("tag", i%8), CreatedAt: at}
				ev, err := message.CreatedEvent(m, "")
				if err == nil {
					_, err = events.Append(context.Background(), eventstore.Append{Event: ev, PartitionKey: m.Tag})
				}
				if err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	return perTag
}

// A reducer process killed with kill -9 while it catches up a backlog, and
// started again, folds the whole log: every partition's checkpoint reaches
// its last event, and every count equals the messages appended. The
// reducer runs as a role of its own against servers of the test's, and as
// part of `messages dev`, which restarts its embedded servers from their
// data with it.
func TestReducerKilledWhileCatchingUpResumes(t *testing.T) {
	const partitions = 8
	t.Run("roles apart", func(t *testing.T) {
		natsAddr, mongoAddr := freeAddr(t), freeAddr(t)
		testkit.NATSAt(t, natsAddr, t.TempDir())
		store, err := embedded.StartMongo(embedded.MongoConfig{Listen: mongoAddr, Dir: t.TempDir()})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(store.Close)
		killWhileCatchingUp(t, "nats://"+natsAddr, store.URI(), []string{"reducer", "--addr", "127.0.0.1:0", "--log-level", "warn",
			"--partitions", fmt.Sprint(partitions), "--nats-url", "nats://" + natsAddr, "--mongo-uri", store.URI(), "--mongo-db", "recovery"})
	})
	t.Run("dev", func(t *testing.T) {
		natsAddr, mongoAddr := freeAddr(t), freeAddr(t)
		killWhileCatchingUp(t, "nats://"+natsAddr, "mongodb://"+mongoAddr+"/", []string{"dev", "--addr", "127.0.0.1:0", "--log-level", "warn",
			"--partitions", fmt.Sprint(partitions), "--data-dir", t.TempDir(), "--nats-listen", natsAddr, "--mongo-listen", mongoAddr, "--mongo-db", "recovery"})
	})
}

// killWhileCatchingUp appends a backlog to the log at natsURL, runs
// `messages args…`, kills it with kill -9 a third of the way through the
// backlog, starts it again and waits until it has folded every event into
// the read model at mongoURI, with every count exact.
func killWhileCatchingUp(t *testing.T, natsURL, mongoURI string, args []string) {
	const backlog, partitions = 30000, 8
	proc := startProcess(t, args...)
	var events *eventstore.Store
	js := connectJetStream(t, natsURL)
	testkit.Eventually(t, 60*time.Second, 100*time.Millisecond, func() (err error) {
		events, err = eventstore.Open(t.Context(), js, eventstore.Config{Partitions: partitions})
		return err
	})
	perTag := appendMessages(t, events, backlog)
	last := lastSequences(t, events)
	db := mongoClient(t, mongoURI).Database("recovery")

	testkit.Eventually(t, 120*time.Second, 50*time.Millisecond, func() error {
		if n := folded(checkpoints(db), last, backlog); n < backlog/3 {
			return fmt.Errorf("%d of %d events folded", n, backlog)
		}
		return nil
	})
	// Read before the kill: in dev the read model's server goes with it.
	before := checkpoints(db)
	proc.kill(t)
	t.Logf("killed with about %d of %d events folded, checkpoints %v", folded(before, last, backlog), backlog, before)

	restarted := time.Now()
	startProcess(t, args...)
	moved := map[int]time.Duration{}
	testkit.Eventually(t, 120*time.Second, 100*time.Millisecond, func() error {
		cps := checkpoints(db)
		for p, cp := range cps {
			if _, ok := moved[p]; !ok && cp > before[p] {
				moved[p] = time.Since(restarted).Round(time.Millisecond)
			}
		}
		for p, want := range last {
			if cps[p] != want {
				return fmt.Errorf("partition %d at %d of %d; checkpoints %v", p, cps[p], want, cps)
			}
		}
		return nil
	})
	t.Logf("caught up %v after the restart; each partition's checkpoint first moved after %v", time.Since(restarted).Round(time.Millisecond), moved)

	ctx := t.Context()
	model, err := activeGeneration(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	if n, err := model.CountByScan(ctx, readmodel.Filter{}); err != nil || n != backlog {
		t.Errorf("%d messages stored (%v), want %d", n, err, backlog)
	}
	if n, err := model.Count(ctx, readmodel.Filter{}); err != nil || n != backlog {
		t.Errorf("count of every tag %d (%v), want %d", n, err, backlog)
	}
	for tag, want := range perTag {
		if n, err := model.Count(ctx, readmodel.Filter{Tag: tag}); err != nil || n != want {
			t.Errorf("count of %s %d (%v), want %d", tag, n, err, want)
		}
	}
}

func mongoClient(t *testing.T, uri string) *mongo.Client {
	t.Helper()
	c, err := mongo.Connect(options.Client().ApplyURI(uri).SetServerSelectionTimeout(2 * time.Second))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Disconnect(context.Background()) })
	return c
}

// lastSequences returns the sequence of the last event of each partition.
func lastSequences(t *testing.T, events *eventstore.Store) map[int]uint64 {
	t.Helper()
	st, err := events.Stats(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	last := map[int]uint64{}
	for _, p := range st.Partitions {
		last[p.Partition] = p.Last
	}
	return last
}

// checkpoints reads the active generation's checkpoints; none while there
// is no read model yet.
func checkpoints(db *mongo.Database) map[int]uint64 {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	model, err := activeGeneration(ctx, db)
	if err != nil {
		return nil
	}
	cps, err := model.Checkpoints(ctx)
	if err != nil {
		return nil
	}
	return cps
}

// folded estimates the events folded from the checkpoints: the log's
// sequences are shared by the partitions, which fill about evenly.
func folded(cps, last map[int]uint64, total int) int {
	var n float64
	for p, cp := range cps {
		if last[p] > 0 {
			n += float64(total) / float64(len(last)) * float64(cp) / float64(last[p])
		}
	}
	return int(n)
}

// activeGeneration opens the active generation of the read model in db.
func activeGeneration(ctx context.Context, db *mongo.Database) (*readmodel.Store, error) {
	gens, err := readmodel.OpenExistingGenerations(ctx, db)
	if err != nil {
		return nil, err
	}
	return gens.Find(ctx, 0)
}
