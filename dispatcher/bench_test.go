package dispatcher

import "testing"

// BenchmarkDecode checks and decodes a typical POST body.
func BenchmarkDecode(b *testing.B) {
	body := []byte(`{"text":"Hello, event sourcing! \u00e9\ud83d\ude00","tag":"#CQRS"}`)
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if _, err := decode(body); err != nil {
			b.Fatal(err)
		}
	}
}
