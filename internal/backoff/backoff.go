// Package backoff retries an operation with exponentially growing waits until
// it succeeds, fails in a way marked permanent, runs out of attempts or its
// context ends. Every retry loop of the service waits through it, so that a
// dependency that is down is asked less and less often, and an error that no
// retry can cure ends the wait at once.
package backoff

import (
	"context"
	"errors"
	"time"
)

// Policy says how long to wait between attempts and how many to make.
type Policy struct {
	// Min is the wait after the first failed attempt; each further failure
	// doubles it, up to Max.
	Min, Max time.Duration
	// Attempts is the most attempts made; 0 makes them until success, a
	// permanent error or the end of the context.
	Attempts int
}

// Delay is the wait after failed attempt n, counted from 0: Min doubled n
// times, at most Max.
func (p Policy) Delay(n int) time.Duration {
	d := p.Min
	for range n {
		if d >= p.Max/2 {
			return p.Max
		}
		d *= 2
	}
	return min(d, p.Max)
}

// permanentError marks an error that no retry can cure.
type permanentError struct{ err error }

func (p permanentError) Error() string { return p.err.Error() }
func (p permanentError) Unwrap() error { return p.err }

// Permanent marks err as one that no retry can cure: Retry returns it at
// once. Permanent(nil) is nil.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return permanentError{err}
}

// IsPermanent reports whether err was marked by Permanent.
func IsPermanent(err error) bool {
	var p permanentError
	return errors.As(err, &p)
}

// Retry calls op until it returns no error, an error marked Permanent, or
// p.Attempts errors, or until ctx ends; before each wait it tells notify, when
// set, the error and how long it waits. It returns op's last result, with
// the error of the last attempt also when ctx ended during a wait.
func Retry[T any](ctx context.Context, p Policy, op func(context.Context) (T, error), notify func(err error, wait time.Duration)) (T, error) {
	for n := 0; ; n++ {
		v, err := op(ctx)
		if err == nil {
			return v, nil
		}
		if IsPermanent(err) || p.Attempts > 0 && n+1 >= p.Attempts || ctx.Err() != nil {
			return v, err
		}
		wait := p.Delay(n)
		if notify != nil {
			notify(err, wait)
		}
		if Sleep(ctx, wait) != nil {
			return v, err
		}
	}
}

// Sleep waits d, or until ctx ends, and then returns ctx's error. A d of 0
// or less returns at once.
func Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
