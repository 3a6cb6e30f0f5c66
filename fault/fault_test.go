package fault_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/messages-io/messages/fault"
)

func TestNew(t *testing.T) {
	kinds := []error{fault.ErrUnavailable, fault.ErrOutcomeUnknown, fault.ErrNotFound}
	for _, kind := range kinds {
		t.Run(kind.Error(), func(t *testing.T) {
			own := fault.New("store unavailable", kind)
			if own.Error() != "store unavailable" {
				t.Errorf("Error() = %q, want the sentinel's own words", own.Error())
			}
			wrapped := fmt.Errorf("get 7: %w", own)
			if !errors.Is(wrapped, own) || !errors.Is(wrapped, kind) {
				t.Errorf("%v matches its sentinel %v, its kind %v: want both", wrapped, errors.Is(wrapped, own), errors.Is(wrapped, kind))
			}
			for _, other := range kinds {
				if other != kind && errors.Is(wrapped, other) {
					t.Errorf("%v matches %v, another kind", wrapped, other)
				}
			}
			if another := fault.New("store unavailable", kind); errors.Is(wrapped, another) {
				t.Error("a sentinel matches another made with the same words; want each its own")
			}
		})
	}
}
