package importer_test

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/messages-io/messages/importer"
	"github.com/messages-io/messages/internal/testkit"
)

func BenchmarkParseLine(b *testing.B) {
	l := []byte(line(1))
	b.SetBytes(int64(len(l)))
	for b.Loop() {
		if _, err := importer.ParseLine(l, now); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkImport imports b.N lines into an embedded JetStream server, with
// 1, 8 and 32 batches in flight.
func BenchmarkImport(b *testing.B) {
	for _, c := range []int{1, 8, 32} {
		b.Run("concurrency="+strconv.Itoa(c), func(b *testing.B) {
			e := connectB(b)
			content := goodLines(b.N)
			digest, _ := importer.Digest(strings.NewReader(content))
			im, err := importer.New(e.store, e.ledger, importer.Config{Concurrency: c, Now: func() time.Time { return now }})
			if err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			sum, err := im.Import(b.Context(), strings.NewReader(content), digest)
			if err != nil || sum.Appended+sum.AlreadyImported != int64(b.N) {
				b.Fatalf("import: %d lines, %d appended, %d bad, %v", sum.Lines, sum.Appended, sum.Bad, err)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "lines/s")
		})
	}
}

func connectB(b *testing.B) env {
	b.Helper()
	return connect(b, testkit.NATS(b))
}
