package web

import (
	"cmp"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/messages-io/messages/fault"
)

// Kind is what the error of a failed request means to its caller, and so how
// the request is answered.
type Kind int

// The kinds of failure, as Classify tells them apart.
const (
	// KindInternal: none of the others; 500.
	KindInternal Kind = iota
	// KindCanceled: the client abandoned the request. It gets no answer
	// and is recorded as 499 (StatusClientClosedRequest).
	KindCanceled
	// KindNotFound: no such thing is stored (fault.ErrNotFound); 404.
	KindNotFound
	// KindUnavailable: a dependency could not be reached or did not answer
	// in time, and nothing was done (fault.ErrUnavailable, or a deadline
	// that passed); 503 with Retry-After.
	KindUnavailable
	// KindOutcomeUnknown: a write was sent and not acknowledged, so it may
	// have taken effect (fault.ErrOutcomeUnknown); 503 with Retry-After, of
	// type OutcomeUnknownType.
	KindOutcomeUnknown
	// KindUpstreamTimeout: the instance behind a gateway did not answer in
	// time (ErrUpstreamTimeout); 504.
	KindUpstreamTimeout
	// KindBadGateway: the instance behind a gateway failed to answer
	// (ErrBadGateway); 502.
	KindBadGateway
)

// String is the kind's label in metrics and logs. KindInternal and
// KindBadGateway are both "failed": the request failed for a reason that is
// none of the others.
func (k Kind) String() string {
	if k < KindInternal || k > KindBadGateway {
		return "Kind(" + strconv.Itoa(int(k)) + ")"
	}
	return [...]string{
		KindInternal:        "failed",
		KindCanceled:        "canceled",
		KindNotFound:        "not_found",
		KindUnavailable:     "unavailable",
		KindOutcomeUnknown:  "unknown",
		KindUpstreamTimeout: "timeout",
		KindBadGateway:      "failed",
	}[k]
}

// Errors of a gateway's upstream, which it wraps in what its transport
// returns.
var (
	// ErrUpstreamTimeout means the upstream did not answer in time.
	ErrUpstreamTimeout = errors.New("upstream timed out")
	// ErrBadGateway means the upstream failed to answer.
	ErrBadGateway = errors.New("upstream failed")
)

// OutcomeUnknownType is the problem type of a 503 to a write whose effect
// is unknown: it was sent, not acknowledged, and nothing more could be
// learned before the deadline. A plain 503 (about:blank) promises that
// nothing was done.
const OutcomeUnknownType = "urn:messages:problem:append-outcome-unknown"

// Classify says what err, the failure of r, means to r's caller. A request
// whose client went away is KindCanceled whatever the error, since its
// cancellation may surface as any error underneath; an error that is none
// of the known kinds is KindInternal.
func Classify(r *http.Request, err error) Kind {
	switch {
	case errors.Is(r.Context().Err(), context.Canceled):
		return KindCanceled
	case errors.Is(err, fault.ErrOutcomeUnknown):
		return KindOutcomeUnknown
	case errors.Is(err, ErrUpstreamTimeout):
		return KindUpstreamTimeout
	case errors.Is(err, fault.ErrUnavailable), errors.Is(err, context.DeadlineExceeded):
		return KindUnavailable
	case errors.Is(err, fault.ErrNotFound):
		return KindNotFound
	case errors.Is(err, ErrBadGateway):
		return KindBadGateway
	}
	return KindInternal
}

// Failure is how a role answers its failed requests: in a problem document
// whose detail, in words fit for the caller, is the one given for the
// failure's kind, with Retry-After on a 503, and one log record.
type Failure struct {
	// Log takes a record of each failed request: "<What> failed" with its
	// kind and error, at warn level (error for KindInternal, info for
	// KindCanceled, debug for KindNotFound).
	Log  *slog.Logger
	What string
	// RetryAfter is what a 503 tells the caller to wait.
	RetryAfter time.Duration
	// The detail of the problem document for each kind.
	NotFound, Unavailable, OutcomeUnknown, UpstreamTimeout, BadGateway, Internal string
	// UnavailableType is the problem type of a KindUnavailable answer that
	// promises more than its status, such as that the caller's writes will
	// be visible after Retry-After. Default about:blank.
	UnavailableType string
}

// Answer answers r, which failed with err, and returns what err meant to
// r's caller, for the role's metrics. This is where the service decides
// every status that an error causes.
func (f Failure) Answer(w http.ResponseWriter, r *http.Request, err error) Kind {
	k := Classify(r, err)
	level := slog.LevelWarn
	switch k {
	case KindCanceled:
		// No one is waiting for an answer; Observe records the request
		// as 499.
		level = slog.LevelInfo
	case KindNotFound:
		level = slog.LevelDebug
		WriteProblem(w, r, http.StatusNotFound, f.NotFound)
	case KindUnavailable:
		WriteUnavailableType(w, r, cmp.Or(f.UnavailableType, "about:blank"), f.RetryAfter, f.Unavailable)
	case KindOutcomeUnknown:
		WriteUnavailableType(w, r, OutcomeUnknownType, f.RetryAfter, f.OutcomeUnknown)
	case KindUpstreamTimeout:
		WriteProblem(w, r, http.StatusGatewayTimeout, f.UpstreamTimeout)
	case KindBadGateway:
		WriteProblem(w, r, http.StatusBadGateway, f.BadGateway)
	default:
		level = slog.LevelError
		WriteProblem(w, r, http.StatusInternalServerError, f.Internal)
	}
	f.Log.Log(r.Context(), level, f.What+" failed", "kind", k.String(), "err", err, "request_id", RequestID(r.Context()))
	return k
}
