package importer

import "testing"

func TestWatermark(t *testing.T) {
	for _, tc := range []struct {
		name      string
		start     int64
		done      []int64
		want      int64
		wantAhead int // lines done after a gap still open
	}{
		{"nothing done", 0, nil, 0, 0},
		{"in order", 0, []int64{1, 2, 3}, 3, 0},
		{"a gap holds it", 0, []int64{1, 3, 4}, 1, 2},
		{"the gap closes", 0, []int64{3, 4, 1, 2}, 4, 0},
		{"backwards", 0, []int64{5, 4, 3, 2, 1}, 5, 0},
		{"from an earlier import", 10, []int64{12, 11}, 12, 0},
		{"lines already done", 10, []int64{3, 10, 11}, 11, 0},
		{"a line done twice", 0, []int64{2, 2, 1, 1}, 2, 0},
		{"two gaps, one closed", 0, []int64{2, 4, 6, 1, 3}, 4, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newWatermark(tc.start)
			for _, line := range tc.done {
				w.done(line)
			}
			if got, ahead := w.line(), len(w.ahead); got != tc.want || ahead != tc.wantAhead {
				t.Errorf("after %v from %d: line %d with %d ahead, want %d with %d", tc.done, tc.start, got, ahead, tc.want, tc.wantAhead)
			}
		})
	}
}
