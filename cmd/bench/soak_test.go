package main

import (
	"math"
	"testing"
	"time"
)

func TestSlope(t *testing.T) {
	for _, tc := range []struct {
		xs, ys []float64
		want   float64
	}{
		{[]float64{0, 1, 2, 3}, []float64{5, 7, 9, 11}, 2},
		{[]float64{0, 1, 2, 3}, []float64{4, 4, 4, 4}, 0},
		{[]float64{1, 2, 3}, []float64{3, 1, 2}, -0.5},
		{[]float64{1}, []float64{3}, 0},
		{[]float64{2, 2}, []float64{1, 5}, 0},
	} {
		if got := slope(tc.xs, tc.ys); math.Abs(got-tc.want) > 1e-9 {
			t.Errorf("slope(%v, %v) = %v, want %v", tc.xs, tc.ys, got, tc.want)
		}
	}
}

// The warm-up minute is left out of the slope once three samples follow it.
func TestSteady(t *testing.T) {
	var ss []sample
	for i := range 10 {
		ss = append(ss, sample{at: time.Duration(i) * 10 * time.Second})
	}
	if got := steady(ss); len(got) != 4 || got[0].at != time.Minute {
		t.Errorf("steady of 10 samples 10s apart: %d from %v, want 4 from 1m", len(got), got[0].at)
	}
	if got := steady(ss[:8]); len(got) != 8 {
		t.Errorf("steady of 8 samples 10s apart: %d, want all 8", len(got))
	}
}
