package audit

import (
	"fmt"
	"testing"
)

func TestBloomNeverMissesARepeat(t *testing.T) {
	const n = 100000
	b := newBloom(n, 0.001)
	falseRepeats := 0
	for i := range n {
		if b.add(fmt.Sprint("id-", i)) {
			falseRepeats++
		}
	}
	for i := 0; i < n; i += 97 {
		if !b.add(fmt.Sprint("id-", i)) {
			t.Fatalf("id-%d added twice, not recognised", i)
		}
	}
	// About one in a thousand is taken for a repeat; allow three times that.
	if falseRepeats > 3*n/1000 {
		t.Errorf("%d of %d new ids taken for repeats", falseRepeats, n)
	}
	if bytes := len(b.bits) * 8; bytes > 2*n {
		t.Errorf("filter of %d ids takes %d bytes", n, bytes)
	}
}
