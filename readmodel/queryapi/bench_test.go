package queryapi_test

import (
	"testing"

	"github.com/messages-io/messages/readmodel/queryapi"
)

func BenchmarkEncodeCursor(b *testing.B) {
	for b.Loop() {
		if queryapi.EncodeCursor("01JX4PZG7BF0W276Y3HTT505N7") == "" {
			b.Fatal("no cursor")
		}
	}
}

func BenchmarkDecodeCursor(b *testing.B) {
	c := queryapi.EncodeCursor("01JX4PZG7BF0W276Y3HTT505N7")
	for b.Loop() {
		if _, err := queryapi.DecodeCursor(c); err != nil {
			b.Fatal(err)
		}
	}
}
