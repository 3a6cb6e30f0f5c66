// Package fault names the failures whose meaning crosses packages: a
// dependency that is unavailable, a write whose outcome is unknown, a thing
// that is not there. A package keeps sentinels of its own, in its own words,
// made with New so that each matches one of these kinds; package web answers
// every kind over HTTP in one place. It imports nothing of the service.
package fault

import "errors"

// The kinds of failure.
var (
	// ErrUnavailable means a dependency could not be reached or did not
	// answer in time, and nothing was done: the caller may retry later.
	ErrUnavailable = errors.New("unavailable")
	// ErrOutcomeUnknown means a write was sent and no acknowledgement came:
	// it may or may not have taken effect.
	ErrOutcomeUnknown = errors.New("outcome unknown")
	// ErrNotFound means no such thing is stored.
	ErrNotFound = errors.New("not found")
)

// New returns a sentinel error that says text and matches kind, one of this
// package's errors, with errors.Is.
func New(text string, kind error) error { return &sentinel{text: text, kind: kind} }

type sentinel struct {
	text string
	kind error
}

func (s *sentinel) Error() string { return s.text }

func (s *sentinel) Is(target error) bool { return target == s.kind }
