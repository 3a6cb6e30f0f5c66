package eventstore_test

import (
	"context"
	"encoding/json"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/messages-io/messages/embedded"
	"github.com/messages-io/messages/event"
	"github.com/messages-io/messages/eventstore"
	"github.com/messages-io/messages/internal/testkit"
	"github.com/oklog/ulid/v2"
)

// BenchmarkAppend appends events to a file-stored log on an embedded NATS
// server, under each fsync policy: one append at a time, which is the wait
// of a lone POST, and 64 at once, which is the throughput of a busy
// dispatcher. With "always" each append is on disk before JetStream
// acknowledges it; with the default interval it is in the operating
// system's page cache, and on disk within the interval.
func BenchmarkAppend(b *testing.B) {
	for _, policy := range []string{embedded.DefaultSyncInterval.String(), "always"} {
		sync, err := embedded.ParseSync(policy)
		if err != nil {
			b.Fatal(err)
		}
		for _, concurrent := range []int{1, 64} {
			b.Run(fmt.Sprintf("sync=%s/concurrent=%d", policy, concurrent), func(b *testing.B) {
				benchmarkAppend(b, sync, concurrent)
			})
		}
	}
}

func benchmarkAppend(b *testing.B, sync embedded.Sync, concurrent int) {
	s, err := embedded.StartNATS(embedded.NATSConfig{Listen: "127.0.0.1:0", StoreDir: b.TempDir(), Sync: sync})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		s.Shutdown()
		s.WaitForShutdown()
	})
	if got := s.JetStreamConfig(); got.SyncAlways != sync.Always {
		b.Fatalf("server syncs always: %v, want %v", got.SyncAlways, sync.Always)
	}
	_, js := testkit.JetStreamAt(b, s.ClientURL())
	ctx := context.Background()
	store, err := eventstore.Open(ctx, js, eventstore.Config{Partitions: 8})
	if err != nil {
		b.Fatal(err)
	}
	data, _ := json.Marshal(map[string]string{"text": "a message of a typical length, with a #tag or two", "tag": "bench"})
	appendOne := func(i int) error {
		ev := event.Event{ID: ulid.Make().String(), Type: "message.created", Version: 1, OccurredAt: time.Now().UTC(),
			UserID: "bench", Data: data}
		_, err := store.Append(ctx, eventstore.Append{Event: ev, PartitionKey: fmt.Sprint("tag", i%16)})
		return err
	}
	b.ResetTimer()
	if concurrent == 1 {
		i := 0
		for b.Loop() {
			if err := appendOne(i); err != nil {
				b.Fatal(err)
			}
			i++
		}
	} else {
		// RunParallel starts parallelism × GOMAXPROCS goroutines.
		b.SetParallelism(max(1, concurrent/runtime.GOMAXPROCS(0)))
		b.RunParallel(func(pb *testing.PB) {
			i := 0
			for pb.Next() {
				if err := appendOne(i); err != nil {
					b.Error(err)
					return
				}
				i++
			}
		})
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "appends/s")
}
