package client

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"time"
)

// RetryPolicy says when a call is sent again: after a connection error, or
// an answer of 502, 503 or 504, never after any other answer. Zero fields
// take their defaults.
type RetryPolicy struct {
	// Attempts is the most times one call is sent, the first included; 1
	// never sends it again. Default 4.
	Attempts int
	// MinWait and MaxWait bound the wait before each retry when the answer
	// names none: it doubles from MinWait, with jitter, up to MaxWait.
	// Defaults 250ms and 5s. An answer whose Retry-After asks for longer
	// than MaxWait, or for a wait that would end past the context's
	// deadline, is returned instead of waited out.
	MinWait, MaxWait time.Duration
}

func (p *RetryPolicy) setDefaults() {
	if p.Attempts == 0 {
		p.Attempts = 4
	}
	if p.MinWait == 0 {
		p.MinWait = 250 * time.Millisecond
	}
	if p.MaxWait == 0 {
		p.MaxWait = max(5*time.Second, p.MinWait)
	}
}

func (p RetryPolicy) validate() error {
	switch {
	case p.Attempts < 0:
		return fmt.Errorf("Attempts %d: want 1 or more, or 0 for the default", p.Attempts)
	case p.MinWait < 0 || p.MaxWait < 0:
		return errors.New("MinWait and MaxWait must not be negative")
	case p.MaxWait != 0 && p.MinWait > p.MaxWait:
		return fmt.Errorf("MinWait %s is over MaxWait %s", p.MinWait, p.MaxWait)
	}
	return nil
}

// wait returns how long to wait before the attempt after attempt, which
// failed with err, and whether to make it at all.
func (p RetryPolicy) wait(attempt int, err error) (time.Duration, bool) {
	if attempt >= p.Attempts {
		return 0, false
	}
	var prob *Problem
	if errors.As(err, &prob) {
		switch prob.Status {
		case http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		default:
			return 0, false
		}
		if prob.RetryAfter > 0 {
			return prob.RetryAfter, prob.RetryAfter <= p.MaxWait
		}
		return p.backoff(attempt), true
	}
	var perm permanentError
	var unknownAuthority x509.UnknownAuthorityError
	var hostname x509.HostnameError
	var verify *tls.CertificateVerificationError
	if errors.As(err, &perm) || errors.As(err, &unknownAuthority) || errors.As(err, &hostname) || errors.As(err, &verify) {
		return 0, false
	}
	return p.backoff(attempt), true
}

// backoff is the wait after the attempt-th failure: MinWait doubled for each
// attempt before, at most MaxWait, less up to half of it at random so that
// clients failed at once do not retry at once.
func (p RetryPolicy) backoff(attempt int) time.Duration {
	d := p.MinWait
	for i := 1; i < attempt && d < p.MaxWait; i++ {
		d *= 2
	}
	d = min(d, p.MaxWait)
	return d - rand.N(d/2+1)
}
