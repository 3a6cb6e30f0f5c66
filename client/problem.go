package client

import (
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Problem is an answer other than success: the RFC 9457 problem document the
// service sent, or one made from the status when the body was not one (as
// from a proxy in front of the service).
type Problem struct {
	// Type is a URI reference naming the kind of problem: about:blank
	// when the status says it all, or a more precise one such as
	// urn:messages:problem:append-outcome-unknown.
	Type string `json:"type"`
	// Title is the status text.
	Title string `json:"title"`
	// Status is the HTTP status of the answer.
	Status int `json:"status"`
	// Detail says what went wrong, in words fit for the caller.
	Detail string `json:"detail,omitempty"`
	// Instance is the request's path.
	Instance string `json:"instance,omitempty"`
	// RequestID is the id under which the service logged the request.
	RequestID string `json:"requestId,omitempty"`
	// RetryAfter is how long the answer asked the caller to wait before
	// trying again, zero when it did not say.
	RetryAfter time.Duration `json:"-"`
}

func (p *Problem) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d %s", p.Status, p.Title)
	if p.Detail != "" {
		fmt.Fprintf(&b, ": %s", p.Detail)
	}
	if p.RetryAfter > 0 {
		fmt.Fprintf(&b, " (retry after %s)", p.RetryAfter)
	}
	if p.RequestID != "" {
		fmt.Fprintf(&b, " [request %s]", p.RequestID)
	}
	return b.String()
}

// problemOf reads the problem of an answer that is not a success.
func problemOf(res *http.Response, body []byte) *Problem {
	p := new(Problem)
	mt, _, _ := mime.ParseMediaType(res.Header.Get("Content-Type"))
	switch {
	case mt == "application/problem+json" && json.Unmarshal(body, p) == nil:
	case strings.HasPrefix(mt, "text/plain") && utf8.Valid(body):
		p.Detail = strings.TrimSpace(string(body))
		if len(p.Detail) > 200 {
			p.Detail = p.Detail[:200] + "…"
		}
	}
	// The status line is what happened, whatever a body says.
	p.Status = res.StatusCode
	if p.Type == "" {
		p.Type = "about:blank"
	}
	if p.Title == "" {
		p.Title = http.StatusText(res.StatusCode)
	}
	if p.RequestID == "" {
		p.RequestID = res.Header.Get("X-Request-ID")
	}
	p.RetryAfter = retryAfter(res.Header.Get("Retry-After"), time.Now())
	return p
}

// retryAfter reads a Retry-After value: seconds, or an HTTP date.
func retryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if n, err := strconv.Atoi(v); err == nil {
		if n < 0 {
			return 0
		}
		return time.Duration(n) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}
