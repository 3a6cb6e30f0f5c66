package readmodel_test

import (
	"cmp"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/messages-io/messages/internal/testkit"
	"github.com/messages-io/messages/message"
	"github.com/messages-io/messages/readmodel"
	"github.com/messages-io/messages/reducers"
	"github.com/oklog/ulid/v2"
	"golang.org/x/sync/errgroup"
)

// BenchmarkFold folds a year of messages under 50 tags into a fresh read
// model, as 8 reducers of one process do on the embedded store: one batch
// of the reducers' default size written at a time. It folds the
// history once in time order and once shuffled. It
// reports events/s and checks the folded model against the history:
// every tag's count over an instant-edged range, and the newest page.
// FOLD_EVENTS sets the size (default 24000).
func BenchmarkFold(b *testing.B) {
	n, tags, batch, leafCap := envInt("FOLD_EVENTS", 24000), envInt("FOLD_TAGS", 50), envInt("FOLD_BATCH", reducers.DefaultBatchSize), envInt("FOLD_LEAF", readmodel.LeafCap)
	const partitions = 8
	rng := rand.New(rand.NewPCG(1, 2))
	entropy := rand.NewChaCha8([32]byte{3})
	year := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	history := make([]message.Message, n)
	for i := range history {
		at := year.Add(time.Duration(rng.Int64N(int64(365 * 24 * time.Hour)))).Truncate(time.Millisecond)
		history[i] = message.Message{
			ID:     ulid.MustNew(ulid.Timestamp(at), entropy).String(),
			UserID: "u", Text: "message " + strconv.Itoa(i), Tag: "t" + strconv.Itoa(i%tags), CreatedAt: at,
		}
	}
	for _, order := range []string{"time", "random"} {
		b.Run(order, func(b *testing.B) {
			msgs := slices.Clone(history)
			if order == "time" {
				slices.SortFunc(msgs, func(x, y message.Message) int { return cmp.Compare(x.ID, y.ID) })
			} else {
				rng.Shuffle(len(msgs), func(i, j int) { msgs[i], msgs[j] = msgs[j], msgs[i] })
			}
			byPartition := make([][]readmodel.Change, partitions)
			for _, m := range msgs {
				p := int(m.Tag[len(m.Tag)-1]) % partitions
				byPartition[p] = append(byPartition[p], readmodel.Change{Message: m, Sequence: uint64(len(byPartition[p]) + 1)})
			}
			for range b.N {
				b.StopTimer()
				store, err := readmodel.Open(b.Context(), testkit.Database(b))
				if err != nil {
					b.Fatal(err)
				}
				readmodel.SetLeafCap(store, leafCap)
				b.StartTimer()
				start := time.Now()
				var writing sync.Mutex
				g, ctx := errgroup.WithContext(b.Context())
				for p, changes := range byPartition {
					g.Go(func() error {
						for lo := 0; lo < len(changes); lo += batch {
							part := changes[lo:min(lo+batch, len(changes))]
							writing.Lock()
							err := store.Apply(ctx, p, part, part[len(part)-1].Sequence)
							writing.Unlock()
							if err != nil {
								return err
							}
						}
						return nil
					})
				}
				if err := g.Wait(); err != nil {
					b.Fatal(err)
				}
				b.ReportMetric(float64(n)/time.Since(start).Seconds(), "events/s")
				b.StopTimer()
				checkFolded(b, store, history)
				b.StartTimer()
			}
		})
	}
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// checkFolded compares the model with the history it was folded from.
func checkFolded(b *testing.B, store *readmodel.Store, history []message.Message) {
	ctx := context.Background()
	from, to := time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC), time.Date(2025, 9, 8, 7, 6, 5, 0, time.UTC)
	want := map[string]int64{}
	for _, m := range history {
		if !m.CreatedAt.Before(from) && m.CreatedAt.Before(to) {
			want[m.Tag]++
		}
	}
	for tag, n := range want {
		got, err := store.Count(ctx, readmodel.Filter{Tag: tag, From: readmodel.At(from), To: readmodel.At(to)})
		if err != nil || got != n {
			b.Fatalf("count of %s = %d, %v; want %d", tag, got, err, n)
		}
	}
	newest := slices.SortedFunc(slices.Values(history), func(x, y message.Message) int { return cmp.Compare(y.ID, x.ID) })[:100]
	page, err := store.List(ctx, readmodel.Page{Limit: 100})
	if err != nil {
		b.Fatal(err)
	}
	if fmt.Sprint(ids(page)) != fmt.Sprint(ids(newest)) {
		b.Fatalf("newest page differs from the history")
	}
}

func ids(msgs []message.Message) []string {
	out := make([]string, len(msgs))
	for i, m := range msgs {
		out[i] = m.ID
	}
	return out
}
