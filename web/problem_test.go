package web_test

import (
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/messages-io/messages/web"
)

func TestWriteProblem(t *testing.T) {
	tests := []struct {
		name      string
		status    int
		detail    string
		path      string
		requestID string // set on the response before the problem is written
	}{
		{name: "bad request", status: http.StatusBadRequest, detail: "tag must be 1-64 characters", path: "/v1/messages", requestID: "req-1"},
		{name: "forbidden", status: http.StatusForbidden, detail: "no user", path: "/v1/messages"},
		{name: "not found", status: http.StatusNotFound, detail: "no such message", path: "/v1/messages/01HQ3Z5Y8K6J9M2N4P7R0S1T2V", requestID: "01HQ3Z5Y8K6J9M2N4P7R0S1T2V"},
		{name: "too large", status: http.StatusRequestEntityTooLarge, detail: "body over 64 KiB", path: "/v1/messages"},
		{name: "unsupported media type", status: http.StatusUnsupportedMediaType, detail: `Content-Type "text/plain" is not JSON`, path: "/v1/messages"},
		{name: "internal error", status: http.StatusInternalServerError, detail: "internal error", path: "/"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			if tt.requestID != "" {
				rec.Header().Set(web.RequestIDHeader, tt.requestID)
			}
			web.WriteProblem(rec, httptest.NewRequest(http.MethodPost, tt.path, nil), tt.status, tt.detail)
			res := rec.Result()
			defer res.Body.Close()
			p := readProblem(t, res, tt.status)
			if p.Type != "about:blank" {
				t.Errorf("type = %q, want about:blank (the title is the status text)", p.Type)
			}
			if p.Detail != tt.detail {
				t.Errorf("detail = %q, want %q", p.Detail, tt.detail)
			}
			if p.Instance != tt.path {
				t.Errorf("instance = %q, want %q", p.Instance, tt.path)
			}
			if p.RequestID != tt.requestID {
				t.Errorf("requestId = %q, want %q", p.RequestID, tt.requestID)
			}
			if cc := res.Header.Get("Cache-Control"); cc != "no-store" {
				t.Errorf("Cache-Control = %q, want no-store", cc)
			}
		})
	}
}

func TestWriteUnavailable(t *testing.T) {
	tests := []struct {
		name       string
		retryAfter time.Duration
		want       string
	}{
		{name: "zero", retryAfter: 0, want: "1"},
		{name: "negative", retryAfter: -5 * time.Second, want: "1"},
		{name: "one nanosecond", retryAfter: time.Nanosecond, want: "1"},
		{name: "under half a second", retryAfter: 300 * time.Millisecond, want: "1"},
		{name: "one second", retryAfter: time.Second, want: "1"},
		{name: "one and a half seconds", retryAfter: 1500 * time.Millisecond, want: "2"},
		{name: "two seconds", retryAfter: 2 * time.Second, want: "2"},
		{name: "thirty seconds", retryAfter: 30 * time.Second, want: "30"},
		{name: "one hour", retryAfter: time.Hour, want: "3600"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			web.WriteUnavailable(rec, httptest.NewRequest(http.MethodPost, "/v1/messages", nil), tt.retryAfter, "event store unreachable")
			res := rec.Result()
			defer res.Body.Close()
			p := readProblem(t, res, http.StatusServiceUnavailable)
			if p.Detail != "event store unreachable" {
				t.Errorf("detail = %q, want %q", p.Detail, "event store unreachable")
			}
			got := res.Header.Values("Retry-After")
			if len(got) != 1 {
				t.Fatalf("Retry-After = %q, want exactly one", got)
			}
			secs, err := strconv.Atoi(got[0])
			if err != nil || secs < 1 {
				t.Fatalf("Retry-After = %q, want an integer number of seconds, at least 1", got[0])
			}
			if got[0] != tt.want {
				t.Errorf("Retry-After = %q for %s, want %q", got[0], tt.retryAfter, tt.want)
			}
		})
	}
}

func TestWriteJSON(t *testing.T) {
	rec := httptest.NewRecorder()
	web.WriteJSON(rec, http.StatusCreated, map[string]string{"id": "01HQ3Z5Y8K6J9M2N4P7R0S1T2V"})
	res := rec.Result()
	defer res.Body.Close()
	var got map[string]string
	readJSON(t, res, http.StatusCreated, &got)
	if len(got) != 1 || got["id"] != "01HQ3Z5Y8K6J9M2N4P7R0S1T2V" {
		t.Errorf("body = %v, want {id: 01HQ3Z5Y8K6J9M2N4P7R0S1T2V}", got)
	}
}

func TestWriteUnavailableType(t *testing.T) {
	rec := httptest.NewRecorder()
	web.WriteUnavailableType(rec, httptest.NewRequest(http.MethodPost, "/v1/messages", nil), "urn:example:problem:maybe", 2*time.Second, "may be stored")
	res := rec.Result()
	defer res.Body.Close()
	p := readProblem(t, res, http.StatusServiceUnavailable)
	if p.Type != "urn:example:problem:maybe" || p.Detail != "may be stored" || res.Header.Get("Retry-After") != "2" {
		t.Errorf("problem %+v, Retry-After %q; want the given type and detail, Retry-After 2", p, res.Header.Get("Retry-After"))
	}
	rec = httptest.NewRecorder()
	web.WriteUnavailable(rec, httptest.NewRequest(http.MethodPost, "/v1/messages", nil), time.Second, "not stored")
	if p := readProblem(t, rec.Result(), http.StatusServiceUnavailable); p.Type != "about:blank" {
		t.Errorf("plain 503 of type %q, want about:blank", p.Type)
	}
}

func TestContentCoding(t *testing.T) {
	tests := []struct {
		name   string
		values []string // Content-Encoding headers; nil for none
		want   string
	}{
		{name: "none", want: ""},
		{name: "empty", values: []string{""}, want: ""},
		{name: "identity", values: []string{"identity"}, want: ""},
		{name: "identity in capitals", values: []string{"IDENTITY"}, want: ""},
		{name: "gzip", values: []string{"gzip"}, want: "gzip"},
		{name: "br", values: []string{"br"}, want: "br"},
		{name: "identity then gzip in a list", values: []string{"identity, gzip"}, want: "gzip"},
		{name: "gzip in a second header", values: []string{"identity", " deflate "}, want: "deflate"},
		{name: "empty list members", values: []string{" , ,identity"}, want: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			for _, v := range tt.values {
				h.Add("Content-Encoding", v)
			}
			if got := web.ContentCoding(h); got != tt.want {
				t.Errorf("ContentCoding(%q) = %q, want %q", tt.values, got, tt.want)
			}
		})
	}
}

func TestWriteUnsupportedCoding(t *testing.T) {
	rec := httptest.NewRecorder()
	web.WriteUnsupportedCoding(rec, httptest.NewRequest(http.MethodPost, "/v1/messages", nil), "gzip")
	res := rec.Result()
	defer res.Body.Close()
	p := readProblem(t, res, http.StatusUnsupportedMediaType)
	if ae := res.Header.Get("Accept-Encoding"); ae != "identity" {
		t.Errorf("Accept-Encoding = %q, want identity", ae)
	}
	if !strings.Contains(p.Detail, `"gzip"`) || !strings.Contains(p.Detail, "Content-Encoding") {
		t.Errorf("detail = %q, want it to name Content-Encoding and the coding", p.Detail)
	}
}
