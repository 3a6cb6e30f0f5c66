package backoff_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/messages-io/messages/internal/backoff"
)

func TestDelay(t *testing.T) {
	p := backoff.Policy{Min: 100 * time.Millisecond, Max: time.Second}
	for _, tc := range []struct {
		n    int
		want time.Duration
	}{
		{0, 100 * time.Millisecond},
		{1, 200 * time.Millisecond},
		{3, 800 * time.Millisecond},
		{4, time.Second},
		{64, time.Second},
	} {
		if got := p.Delay(tc.n); got != tc.want {
			t.Errorf("Delay(%d) = %v, want %v", tc.n, got, tc.want)
		}
	}
}

var errDown = errors.New("down")

// failing returns an operation that fails with errs in turn, then succeeds
// with the number of calls, and the count of calls.
func failing(errs ...error) (func(context.Context) (int, error), *int) {
	calls := 0
	return func(context.Context) (int, error) {
		calls++
		if calls <= len(errs) {
			return 0, errs[calls-1]
		}
		return calls, nil
	}, &calls
}

var quick = backoff.Policy{Min: time.Microsecond, Max: 10 * time.Microsecond}

func TestRetry(t *testing.T) {
	perm := backoff.Permanent(errDown)
	for _, tc := range []struct {
		name      string
		policy    backoff.Policy
		errs      []error
		wantCalls int
		wantErr   error
		wantWaits []time.Duration
	}{
		{"success at once", quick, nil, 1, nil, nil},
		{"success after failures", quick, []error{errDown, errDown}, 3, nil, []time.Duration{time.Microsecond, 2 * time.Microsecond}},
		{"permanent error ends at once", quick, []error{errDown, perm}, 2, perm, []time.Duration{time.Microsecond}},
		{"wrapped permanent error", quick, []error{fmt.Errorf("open: %w", perm)}, 1, errDown, nil},
		{"attempts run out", backoff.Policy{Min: time.Microsecond, Max: time.Microsecond, Attempts: 2}, []error{errDown, errDown, errDown}, 2, errDown,
			[]time.Duration{time.Microsecond}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			op, calls := failing(tc.errs...)
			var waits []time.Duration
			v, err := backoff.Retry(t.Context(), tc.policy, op, func(err error, wait time.Duration) {
				if err == nil {
					t.Error("notified of a nil error")
				}
				waits = append(waits, wait)
			})
			if *calls != tc.wantCalls {
				t.Errorf("%d calls, want %d", *calls, tc.wantCalls)
			}
			if tc.wantErr == nil && (err != nil || v != tc.wantCalls) {
				t.Errorf("Retry = %d, %v; want %d, nil", v, err, tc.wantCalls)
			}
			if tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
				t.Errorf("Retry error %v, want %v", err, tc.wantErr)
			}
			if fmt.Sprint(waits) != fmt.Sprint(tc.wantWaits) {
				t.Errorf("waits %v, want %v", waits, tc.wantWaits)
			}
		})
	}
}

func TestRetryEndsWithTheContext(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	calls := 0
	_, err := backoff.Retry(ctx, backoff.Policy{Min: time.Hour, Max: time.Hour}, func(context.Context) (int, error) {
		calls++
		return 0, errDown
	}, func(error, time.Duration) { cancel() })
	if !errors.Is(err, errDown) || calls != 1 {
		t.Errorf("Retry = %v after %d calls; want the last error, %v, after 1", err, calls, errDown)
	}
}

func TestPermanent(t *testing.T) {
	if backoff.Permanent(nil) != nil {
		t.Error("Permanent(nil) is not nil")
	}
	err := fmt.Errorf("open: %w", backoff.Permanent(errDown))
	if !backoff.IsPermanent(err) || !errors.Is(err, errDown) || err.Error() != "open: down" {
		t.Errorf("%v: permanent %v, is errDown %v", err, backoff.IsPermanent(err), errors.Is(err, errDown))
	}
	if backoff.IsPermanent(errDown) {
		t.Error("an unmarked error is permanent")
	}
}

func TestSleep(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := backoff.Sleep(ctx, time.Hour); !errors.Is(err, context.Canceled) {
		t.Errorf("Sleep on an ended context = %v, want %v", err, context.Canceled)
	}
	if err := backoff.Sleep(ctx, 0); err != nil {
		t.Errorf("Sleep(0) = %v, want nil", err)
	}
	if err := backoff.Sleep(t.Context(), time.Microsecond); err != nil {
		t.Errorf("Sleep = %v, want nil", err)
	}
}
