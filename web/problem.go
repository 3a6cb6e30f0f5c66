package web

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// MaxBodyBytes is the largest request body the API takes: the write API
// refuses a larger one with 413, and the gateway buffers one up to this size
// to send it again to another dispatcher.
const MaxBodyBytes = 64 << 10

// Problem is an RFC 9457 problem document.
type Problem struct {
	Type      string `json:"type"`
	Title     string `json:"title"`
	Status    int    `json:"status"`
	Detail    string `json:"detail,omitempty"`
	Instance  string `json:"instance,omitempty"`
	RequestID string `json:"requestId,omitempty"`
}

// WriteProblem answers with a problem document for status, its detail saying
// what went wrong in words fit for the caller.
func WriteProblem(w http.ResponseWriter, r *http.Request, status int, detail string) {
	WriteProblemType(w, r, "about:blank", status, detail)
}

// WriteProblemType is WriteProblem for a problem type of the service's own,
// one whose answer promises more than its status does.
func WriteProblemType(w http.ResponseWriter, r *http.Request, typ string, status int, detail string) {
	p := Problem{
		Type:      typ,
		Title:     http.StatusText(status),
		Status:    status,
		Detail:    detail,
		Instance:  r.URL.Path,
		RequestID: w.Header().Get(RequestIDHeader),
	}
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(p)
}

// WriteUnavailable answers 503 with Retry-After, for a dependency that is
// down or slow; the caller may retry after the given delay.
func WriteUnavailable(w http.ResponseWriter, r *http.Request, retryAfter time.Duration, detail string) {
	WriteUnavailableType(w, r, "about:blank", retryAfter, detail)
}

// WriteUnavailableType is WriteUnavailable for a problem type of the
// service's own.
func WriteUnavailableType(w http.ResponseWriter, r *http.Request, typ string, retryAfter time.Duration, detail string) {
	SetRetryAfter(w.Header(), retryAfter)
	WriteProblemType(w, r, typ, http.StatusServiceUnavailable, detail)
}

// SetRetryAfter sets Retry-After on h to d in whole seconds, rounded up, at
// least 1.
func SetRetryAfter(h http.Header, d time.Duration) {
	secs := int64((d + time.Second - 1) / time.Second)
	h.Set("Retry-After", strconv.FormatInt(max(secs, 1), 10))
}

// WriteJSON answers with v as JSON.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// ContentCoding returns the first content coding other than identity that
// h's Content-Encoding names, or "" when the body is sent as it is.
func ContentCoding(h http.Header) string {
	for _, v := range h.Values("Content-Encoding") {
		for _, c := range strings.Split(v, ",") {
			if c = strings.TrimSpace(c); c != "" && !strings.EqualFold(c, "identity") {
				return c
			}
		}
	}
	return ""
}

// WriteUnsupportedCoding answers 415 for a body in a content coding that is
// not decoded here, with Accept-Encoding: identity to say what is (RFC 9110,
// section 12.5.3). Passed on or read as it is, a compressed body would be
// taken for malformed JSON, or be a way around the limit on body size.
func WriteUnsupportedCoding(w http.ResponseWriter, r *http.Request, coding string) {
	w.Header().Set("Accept-Encoding", "identity")
	WriteProblem(w, r, http.StatusUnsupportedMediaType, fmt.Sprintf("Content-Encoding %q is not supported; send the body as it is (identity)", coding))
}
