package dispatcher_test

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/messages-io/messages/dispatcher"
	"github.com/messages-io/messages/eventstore"
	"github.com/messages-io/messages/internal/testkit"
	"github.com/messages-io/messages/message"
	"github.com/messages-io/messages/web"
	"github.com/nats-io/nats.go/jetstream"
)

// fixedNow is the injected clock: not UTC, and with more than millisecond
// precision, so that a message stamped in local time, or rounded rather than
// truncated, shows.
var fixedNow = time.Date(2031, 7, 15, 1, 59, 58, 987654321, time.FixedZone("UTC+4", 4*3600))

func fixedClock() time.Time { return fixedNow }

// padded is a well-formed body of exactly n bytes, padded with whitespace.
func padded(n int) string {
	b := body("padded", "pad")
	return b[:len(b)-1] + strings.Repeat(" ", n-len(b)) + "}"
}

// gzipped is s compressed with gzip.
func gzipped(s string) string {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	_, _ = zw.Write([]byte(s))
	_ = zw.Close()
	return buf.String()
}

func TestPostMessages(t *testing.T) {
	srv := testkit.NATS(t)
	_, js := testkit.JetStream(t, srv)
	for _, tc := range append(acceptedAndMalformedPosts(), rejectedPosts()...) {
		t.Run(tc.name, func(t *testing.T) {
			checkPost(t, js, tc)
		})
	}
}

// postCase is a POST of TestPostMessages and what it must be answered.
type postCase struct {
	name    string
	body    string
	chunked bool
	// header changes the well-formed headers of user alice.
	header func(http.Header)
	status int
	// For 201: the message that must come back and be stored.
	text, tag, user string
	// For 201: the X-Request-ID sent is malformed, so the one echoed is
	// generated and becomes the correlation id.
	generatedRequestID bool
	// For errors: words the problem's detail must contain.
	detail string
}

// setHeader and delHeader change the well-formed headers of a postCase.
func setHeader(key, value string) func(http.Header) {
	return func(h http.Header) { h.Set(key, value) }
}

func delHeader(key string) func(http.Header) {
	return func(h http.Header) { h.Del(key) }
}

// acceptedAndMalformedPosts are POSTs created, and POSTs whose body is not
// one JSON object of two strings.
func acceptedAndMalformedPosts() []postCase {
	set := setHeader
	return []postCase{
		// 201
		{name: "created", body: body("hello, world", "golang"), status: 201, text: "hello, world", tag: "golang"},
		{name: "tag lower-cased and # dropped", body: body("hi", "#Go_Lang-2"), status: 201, text: "hi", tag: "go_lang-2"},
		{name: "tag of 64 characters", body: body("hi", strings.Repeat("T", 64)), status: 201, text: "hi", tag: strings.Repeat("t", 64)},
		{name: "tag of # and 64 characters", body: body("hi", "#"+strings.Repeat("a", 64)), status: 201, text: "hi", tag: strings.Repeat("a", 64)},
		{name: "text of 1000 two-byte characters", body: body(strings.Repeat("é", 1000), "x"), status: 201, text: strings.Repeat("é", 1000), tag: "x"},
		{name: "text of 1000 four-byte characters", body: body(strings.Repeat("😀", 1000), "x"), status: 201, text: strings.Repeat("😀", 1000), tag: "x"},
		{name: "text with surrounding whitespace kept", body: body(" hi\n", "x"), status: 201, text: " hi\n", tag: "x"},
		{name: "text escaped in JSON", body: `{"text":"caf\u00e9 \"q\"","tag":"x"}`, status: 201, text: `café "q"`, tag: "x"},
		{name: "fields in any order", body: `{"tag":"x","text":"hi"}`, status: 201, text: "hi", tag: "x"},
		{name: "whitespace around every token", body: " {\n\t\"text\" :\t\"hi\" ,\r\n  \"tag\"  :  \"x\"\n}\n", status: 201, text: "hi", tag: "x"},
		{name: "field name escaped in JSON", body: `{"te\u0078t":"hi","\u0074ag":"x"}`, status: 201, text: "hi", tag: "x"},
		{name: "whitespace after the object", body: body("hi", "x") + " \r\n\t", status: 201, text: "hi", tag: "x"},
		{name: "Content-Encoding identity", body: body("hi", "x"), header: set("Content-Encoding", "identity"), status: 201, text: "hi", tag: "x"},
		{name: "charset utf-8", body: body("hi", "x"), header: set("Content-Type", "application/json; charset=utf-8"), status: 201, text: "hi", tag: "x"},
		{name: "charset UTF-8", body: body("hi", "x"), header: set("Content-Type", "application/json;charset=UTF-8"), status: 201, text: "hi", tag: "x"},
		{name: "body of exactly 64 KiB", body: padded(64 << 10), status: 201, text: "padded", tag: "pad"},
		{name: "body of exactly 64 KiB chunked", body: padded(64 << 10), chunked: true, status: 201, text: "padded", tag: "pad"},
		{name: "user id of 128 characters", body: body("hi", "x"), header: set(web.UserIDHeader, strings.Repeat("u", 128)), status: 201, text: "hi", tag: "x", user: strings.Repeat("u", 128)},
		{name: "user id of every allowed character", body: body("hi", "x"), header: set(web.UserIDHeader, "Az09._:@-"), status: 201, text: "hi", tag: "x", user: "Az09._:@-"},
		{name: "malformed request id replaced", body: body("hi", "x"), header: set(web.RequestIDHeader, "not a request id"), status: 201, text: "hi", tag: "x", generatedRequestID: true},

		// 400: not one JSON object of two strings
		{name: "not JSON", body: "text=hi&tag=x", status: 400, detail: "json"},
		{name: "empty body", body: "", status: 400, detail: "json"},
		{name: "JSON array", body: "[" + body("hi", "x") + "]", status: 400, detail: "json"},
		{name: "JSON string", body: `"hi"`, status: 400, detail: "json"},
		{name: "JSON null", body: `null`, status: 400},
		{name: "truncated object", body: `{"text":"hi","tag":"x"`, status: 400, detail: "json"},
		{name: "trailing garbage", body: body("hi", "x") + " x", status: 400},
		{name: "trailing comma", body: body("hi", "x") + ",", status: 400},
		{name: "two objects", body: body("hi", "x") + body("hi", "x"), status: 400},
		{name: "text a number", body: `{"text":1,"tag":"x"}`, status: 400, detail: "text"},
		{name: "text an object", body: `{"text":{"a":"b"},"tag":"x"}`, status: 400, detail: "text"},
		{name: "text null", body: `{"text":null,"tag":"x"}`, status: 400, detail: "text"},
		{name: "tag null", body: `{"text":"hi","tag":null}`, status: 400, detail: "tag"},
		{name: "tag an array", body: `{"text":"hi","tag":["x"]}`, status: 400, detail: "tag"},
		{name: "tag a boolean", body: `{"text":"hi","tag":true}`, status: 400, detail: "tag"},
		{name: "unknown field", body: `{"text":"hi","tag":"x","lang":"en"}`, status: 400, detail: "lang"},
		{name: "unknown field differing in case", body: `{"Text":"hi","TAG":"x"}`, status: 400},
		{name: "second tag differing in case", body: `{"text":"hi","tag":"x","Tag":"y"}`, status: 400},
		{name: "text given twice", body: `{"text":"hi","tag":"x","text":"bye"}`, status: 400, detail: "text"},
		{name: "tag given twice", body: `{"text":"hi","tag":"x","tag":"x"}`, status: 400, detail: "tag"},
		{name: "field without a value", body: `{"text":"hi","tag"}`, status: 400},
		{name: "missing comma", body: `{"text":"hi" "tag":"x"}`, status: 400},
		{name: "comma before the closing brace", body: `{"text":"hi","tag":"x",}`, status: 400},
		{name: "single-quoted strings", body: `{'text':'hi','tag':'x'}`, status: 400},
		{name: "text a nested object with the fields", body: `{"text":{"text":"hi"},"tag":"x"}`, status: 400, detail: "text"},
		{name: "missing text", body: `{"tag":"x"}`, status: 400, detail: "text"},
		{name: "missing tag", body: `{"text":"hi"}`, status: 400, detail: "tag"},
		{name: "empty object", body: `{}`, status: 400},
	}
}

// rejectedPosts are POSTs refused for their text, tag, user, media type or
// size.
func rejectedPosts() []postCase {
	set, del := setHeader, delHeader
	return []postCase{
		// 400: text
		{name: "text empty", body: body("", "x"), status: 400, detail: "text"},
		{name: "text blank", body: body("  \n\t", "x"), status: 400, detail: "text"},
		{name: "text of 1001 characters", body: body(strings.Repeat("a", 1001), "x"), status: 400, detail: "text"},
		{name: "text of 1001 two-byte characters", body: body(strings.Repeat("é", 1001), "x"), status: 400, detail: "text"},
		{name: "text not UTF-8", body: "{\"text\":\"caf\xe9\",\"tag\":\"x\"}", status: 400, detail: "utf-8"},
		{name: "text with a truncated UTF-8 sequence", body: "{\"text\":\"hi \xe2\x82\",\"tag\":\"x\"}", status: 400, detail: "utf-8"},

		// 400: tag
		{name: "tag empty", body: body("hi", ""), status: 400, detail: "tag"},
		{name: "tag #", body: body("hi", "#"), status: 400, detail: "tag"},
		{name: "tag ##x", body: body("hi", "##x"), status: 400, detail: "tag"},
		{name: "tag with a space", body: body("hi", "go lang"), status: 400, detail: "tag"},
		{name: "tag with # inside", body: body("hi", "go#lang"), status: 400, detail: "tag"},
		{name: "tag with a dot", body: body("hi", "go.lang"), status: 400, detail: "tag"},
		{name: "tag not ASCII", body: body("hi", "café"), status: 400, detail: "tag"},
		{name: "tag of 65 characters", body: body("hi", strings.Repeat("a", 65)), status: 400, detail: "tag"},
		{name: "tag of # and 65 characters", body: body("hi", "#"+strings.Repeat("a", 65)), status: 400, detail: "tag"},

		// 403
		{name: "no user id", body: body("hi", "x"), header: del(web.UserIDHeader), status: 403, detail: "X-User-ID"},
		{name: "empty user id", body: body("hi", "x"), header: set(web.UserIDHeader, ""), status: 403, detail: "X-User-ID"},
		{name: "user id with a space", body: body("hi", "x"), header: set(web.UserIDHeader, "alice smith"), status: 403, detail: "X-User-ID"},
		{name: "user id with a slash", body: body("hi", "x"), header: set(web.UserIDHeader, "alice/admin"), status: 403, detail: "X-User-ID"},
		{name: "user id of 129 characters", body: body("hi", "x"), header: set(web.UserIDHeader, strings.Repeat("u", 129)), status: 403, detail: "X-User-ID"},
		{name: "two user ids", body: body("hi", "x"), header: func(h http.Header) { h.Add(web.UserIDHeader, "mallory") }, status: 403, detail: "X-User-ID"},

		// 415
		{name: "text/plain", body: body("hi", "x"), header: set("Content-Type", "text/plain"), status: 415, detail: "Content-Type"},
		{name: "no Content-Type", body: body("hi", "x"), header: del("Content-Type"), status: 415, detail: "Content-Type"},
		{name: "form", body: body("hi", "x"), header: set("Content-Type", "application/x-www-form-urlencoded"), status: 415, detail: "Content-Type"},
		{name: "charset latin1", body: body("hi", "x"), header: set("Content-Type", "application/json; charset=latin1"), status: 415, detail: "charset"},
		{name: "gzip body", body: gzipped(body("hi", "x")), header: set("Content-Encoding", "gzip"), status: 415, detail: "Content-Encoding"},
		{name: "br", body: body("hi", "x"), header: set("Content-Encoding", "br"), status: 415, detail: "Content-Encoding"},
		{name: "identity then gzip", body: body("hi", "x"), header: set("Content-Encoding", "identity, gzip"), status: 415, detail: "gzip"},
		{name: "malformed Content-Type", body: body("hi", "x"), header: set("Content-Type", "application/json; charset"), status: 415},

		// 413
		{name: "body of 64 KiB and a byte", body: padded(64<<10 + 1), status: 413, detail: "bytes"},
		{name: "body of 64 KiB and a byte chunked", body: padded(64<<10 + 1), chunked: true, status: 413, detail: "bytes"},
		{name: "body of 200 KiB chunked", body: padded(200 << 10), chunked: true, status: 413, detail: "bytes"},
	}
}

// checkPost makes the POST of tc to a dispatcher of its own over js, and
// checks its answer and what it stored.
func checkPost(t *testing.T, js jetstream.JetStream, tc postCase) {
	t.Helper()
	store := openStore(t, js)
	api := serve(t, store, dispatcher.Config{Now: fixedClock})
	requestID := fmt.Sprintf("req-%x", time.Now().UnixNano())
	h := headers("alice", requestID)
	if tc.header != nil {
		tc.header(h)
	}
	var rd io.Reader = strings.NewReader(tc.body)
	if tc.chunked {
		rd = unsized{rd}
	}
	resp, got := post(t, api.url, h, rd)
	if cl := api.contentLength.Load(); tc.chunked != (cl == -1) {
		t.Fatalf("the server saw Content-Length %d; the test meant to send chunked=%v", cl, tc.chunked)
	}
	echoed := resp.Header.Get(web.RequestIDHeader)
	switch {
	case tc.generatedRequestID && (echoed == "" || echoed == h.Get(web.RequestIDHeader)):
		t.Errorf("X-Request-ID %q echoed for malformed %q, want a generated one", echoed, h.Get(web.RequestIDHeader))
	case !tc.generatedRequestID && echoed != requestID:
		t.Errorf("X-Request-ID %q echoed, want %q", echoed, requestID)
	}

	if tc.status != http.StatusCreated {
		p := checkProblem(t, resp, got, tc.status)
		if detail, _ := p["detail"].(string); !strings.Contains(strings.ToLower(detail), strings.ToLower(tc.detail)) {
			t.Errorf("problem detail %q does not mention %q", detail, tc.detail)
		}
		if seq := lastSequence(t, store); seq != 0 {
			t.Errorf("a rejected request appended: the stream's last sequence is %d", seq)
		}
		return
	}

	checkPosted(t, store, resp, got, tc, echoed)
}

// wantCreatedAt is the createdAt every created message of TestPostMessages
// carries, as JSON.
const wantCreatedAt = "2031-07-14T21:59:58.987Z"

// checkPosted checks the answer of a POST of tc that must be created, and
// the event it stored.
func checkPosted(t *testing.T, store *eventstore.Store, resp *http.Response, got []byte, tc postCase, echoed string) {
	t.Helper()
	m := checkCreated(t, resp, got)
	user := tc.user
	if user == "" {
		user = "alice"
	}
	want := message.Message{ID: m.ID, UserID: user, Text: tc.text, Tag: tc.tag, CreatedAt: fixedNow.Truncate(time.Millisecond)}
	if diff := sameMessage(m, want); diff != "" {
		t.Errorf("answered %s", diff)
	}
	if !strings.Contains(string(got), `"createdAt":"`+wantCreatedAt+`"`) {
		t.Errorf("body %.200s: want createdAt %s", got, wantCreatedAt)
	}
	if seq := lastSequence(t, store); seq != 1 {
		t.Fatalf("the stream's last sequence is %d, want 1 event", seq)
	}
	rec, ev := stored(t, store, 1)
	if diff := sameMessage(ev, want); diff != "" {
		t.Errorf("stored %s", diff)
	}
	if rec.CorrelationID != echoed {
		t.Errorf("stored correlation id %q, want the request id %q", rec.CorrelationID, echoed)
	}
	if rec.Type != message.EventCreated || rec.Version != message.CreatedSchema {
		t.Errorf("stored a %s v%d event, want %s v%d", rec.Type, rec.Version, message.EventCreated, message.CreatedSchema)
	}
}
