package client_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/messages-io/messages/api"
	"github.com/messages-io/messages/client"
	"github.com/pb33f/libopenapi"
	validator "github.com/pb33f/libopenapi-validator"
	"github.com/pb33f/libopenapi-validator/config"
	verrors "github.com/pb33f/libopenapi-validator/errors"
)

// exchange is one request the client sent and the answer it got.
type exchange struct {
	req       *http.Request
	reqBody   []byte
	res       *http.Response
	resBody   []byte
	operation string // method and path template, filled in by the drift test
}

// recorder is a transport that keeps every exchange.
type recorder struct {
	mu sync.Mutex
	xs []exchange
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	var reqBody []byte
	if req.Body != nil {
		b, err := io.ReadAll(req.Body)
		if err != nil {
			return nil, err
		}
		req.Body.Close()
		reqBody = b
		req.Body = io.NopCloser(bytes.NewReader(b))
	}
	res, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	if strings.HasPrefix(res.Header.Get("Content-Type"), "text/event-stream") {
		// A stream does not end: what the client read of it is kept when
		// it closes the stream.
		r.mu.Lock()
		i := len(r.xs)
		r.xs = append(r.xs, exchange{req: req, reqBody: reqBody, res: res})
		r.mu.Unlock()
		res.Body = &streamTee{ReadCloser: res.Body, keep: func(b []byte) {
			r.mu.Lock()
			r.xs[i].resBody = b
			r.mu.Unlock()
		}}
		return res, nil
	}
	resBody, err := io.ReadAll(res.Body)
	res.Body.Close()
	if err != nil {
		return nil, err
	}
	res.Body = io.NopCloser(bytes.NewReader(resBody))
	r.mu.Lock()
	r.xs = append(r.xs, exchange{req: req, reqBody: reqBody, res: res, resBody: resBody})
	r.mu.Unlock()
	return res, nil
}

// streamTee keeps what is read of a stream, and hands it to keep on Close.
type streamTee struct {
	io.ReadCloser
	read bytes.Buffer
	keep func([]byte)
}

func (s *streamTee) Read(p []byte) (int, error) {
	n, err := s.ReadCloser.Read(p)
	s.read.Write(p[:n])
	return n, err
}

func (s *streamTee) Close() error {
	s.keep(bytes.Clone(s.read.Bytes()))
	return s.ReadCloser.Close()
}

// firstEventData returns the data of a stream's first message event.
func firstEventData(stream []byte) ([]byte, error) {
	for _, block := range strings.Split(string(stream), "\n\n") {
		if !strings.Contains(block, "event: message\n") {
			continue
		}
		for _, line := range strings.Split(block, "\n") {
			if data, ok := strings.CutPrefix(line, "data: "); ok {
				return []byte(data), nil
			}
		}
	}
	return nil, fmt.Errorf("no message event in %q", stream)
}

// since returns the exchanges from the n-th on.
func (r *recorder) since(n int) []exchange {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.xs[n:])
}

func (r *recorder) len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.xs)
}

// newValidator builds a strict validator of doc: a query parameter or header
// the document does not declare is an error too.
func newValidator(t *testing.T, doc []byte) validator.Validator {
	t.Helper()
	d, err := libopenapi.NewDocument(doc)
	if err != nil {
		t.Fatal(err)
	}
	v, errs := validator.NewValidator(d, config.WithStrictMode())
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	return v
}

// validate checks x against v; the request only when it keeps the
// document.
func validate(v validator.Validator, x exchange, validRequest bool) []*verrors.ValidationError {
	x.req.Body = io.NopCloser(bytes.NewReader(x.reqBody))
	x.res.Body = io.NopCloser(bytes.NewReader(x.resBody))
	if validRequest {
		_, errs := v.ValidateHttpRequestResponse(x.req, x.res)
		return errs
	}
	_, errs := v.ValidateHttpResponse(x.req, x.res)
	return errs
}

func describeErrors(errs []*verrors.ValidationError) string {
	var b strings.Builder
	for _, e := range errs {
		fmt.Fprintf(&b, "  %s: %s\n", e.Message, e.Reason)
		for _, f := range e.SchemaValidationErrors {
			fmt.Fprintf(&b, "    at %s: %s\n", f.FieldPath, f.Reason)
		}
	}
	return b.String()
}

// sameJSON reports how the JSON of typed, what the client decoded, differs
// from raw, what the service sent: a field the client names otherwise, or
// lacks, differs. Times are compared as instants.
func sameJSON(raw []byte, typed any) error {
	var want, got any
	if err := json.Unmarshal(raw, &want); err != nil {
		return err
	}
	b, err := json.Marshal(typed)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, &got); err != nil {
		return err
	}
	return sameValue("$", want, got)
}

func sameValue(path string, want, got any) error {
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			return fmt.Errorf("%s: the client has %T, the service sent an object", path, got)
		}
		for k := range w {
			if _, ok := g[k]; !ok {
				return fmt.Errorf("%s: the service sent %q, which the client does not keep", path, k)
			}
		}
		for k := range g {
			if _, ok := w[k]; !ok {
				return fmt.Errorf("%s: the client has %q, which the service did not send", path, k)
			}
			if err := sameValue(path+"."+k, w[k], g[k]); err != nil {
				return err
			}
		}
		return nil
	case []any:
		g, ok := got.([]any)
		if !ok || len(g) != len(w) {
			return fmt.Errorf("%s: the client has %v, the service sent %d items", path, got, len(w))
		}
		for i := range w {
			if err := sameValue(fmt.Sprintf("%s[%d]", path, i), w[i], g[i]); err != nil {
				return err
			}
		}
		return nil
	case string:
		if g, ok := got.(string); ok {
			wt, werr := time.Parse(time.RFC3339Nano, w)
			gt, gerr := time.Parse(time.RFC3339Nano, g)
			if werr == nil && gerr == nil && wt.Equal(gt) {
				return nil
			}
		}
	}
	if !reflect.DeepEqual(want, got) {
		return fmt.Errorf("%s: the client has %v, the service sent %v", path, got, want)
	}
	return nil
}

// The drift test: every request the client can make, directly and through
// the gateway, is checked with its answer against api/openapi.yaml, and
// what the client decoded against what the service sent. A field renamed in
// the client or in the document fails it, and so does a parameter or an
// operation that one has and the other lacks.
func TestClientKeepsTheDocument(t *testing.T) {
	v := newValidator(t, api.Document())
	rec := &recorder{}
	hc := &http.Client{Transport: rec}
	d := &drift{t: t}
	for _, door := range []struct {
		name string
		base string
	}{{"direct", baseURL}, {"gateway", gatewayURL}} {
		d.tag = door.name + uniqueTag(t)
		d.key = "key-" + d.tag
		c := newClient(t, door.base, "drift", client.WithHTTPClient(hc), client.WithRetry(client.RetryPolicy{Attempts: 1}))
		anonymous, err := client.New(door.base, client.WithHTTPClient(hc))
		if err != nil {
			t.Fatal(err)
		}
		denied := 403
		if door.base == gatewayURL {
			denied = 401
		}
		all := append(d.calls(), driftCall{"count without credentials", func(*client.Client) (any, error) {
			return anonymous.Count(t.Context(), client.Filter{})
		}, denied, false})
		for _, cl := range all {
			t.Run(door.name+"/"+cl.name, func(t *testing.T) { checkCall(t, v, rec, c, cl) })
		}
	}

	t.Run("every operation and parameter is used", func(t *testing.T) {
		checkCoverage(t, rec.since(0))
	})
	// The checks are not blind: a field renamed on either side fails them.
	t.Run("renames are caught", func(t *testing.T) { checkRenamesCaught(t, v, rec) })
}

// drift is what the calls of the drift test share: the tag and the
// idempotency key of the door being called, and the post the reads look for.
type drift struct {
	t        *testing.T
	tag, key string
	posted   client.Message
	written  string // the post's consistency token
}

// driftCall is one request the client can make, with the status of its
// last answer and whether the request keeps the document.
type driftCall struct {
	name         string
	run          func(c *client.Client) (any, error)
	status       int
	validRequest bool
}

// calls are every request the client can make, in an order in which each
// finds what it reads.
func (d *drift) calls() []driftCall {
	ctx := d.t.Context()
	return []driftCall{
		{"post", func(c *client.Client) (any, error) {
			m, err := c.Post(ctx, client.NewMessage{Text: "drift 1", Tag: "#" + d.tag}, client.ConsistencyToken(&d.written))
			d.posted = m
			return m, err
		}, 201, true},
		{"post with a key and a request id", func(c *client.Client) (any, error) {
			return c.Post(ctx, client.NewMessage{Text: "drift 2", Tag: d.tag}, client.IdempotencyKey(d.key), client.RequestID("drift-"+d.tag))
		}, 201, true},
		{"post replayed", func(c *client.Client) (any, error) {
			return c.Post(ctx, client.NewMessage{Text: "drift 2", Tag: d.tag}, client.IdempotencyKey(d.key))
		}, 201, true},
		{"post, key reused", func(c *client.Client) (any, error) {
			return c.Post(ctx, client.NewMessage{Text: "drift 3", Tag: d.tag}, client.IdempotencyKey(d.key))
		}, 409, true},
		{"post, bad tag", func(c *client.Client) (any, error) {
			return c.Post(ctx, client.NewMessage{Text: "drift", Tag: "no spaces"})
		}, 400, false},
		{"get", func(c *client.Client) (any, error) {
			waitCount(d.t, c, client.Filter{Tag: d.tag}, 2)
			return c.Get(ctx, d.posted.ID, client.RequestID("drift-get"), client.ReadAfter(d.written))
		}, 200, true},
		{"get, no such message", func(c *client.Client) (any, error) {
			return c.Get(ctx, "01HQ3Z5Y8K6J9M2N4P7R0S1T2V")
		}, 404, true},
		{"get, not an id", func(c *client.Client) (any, error) { return c.Get(ctx, "nope") }, 400, true},
		{"count with every filter", func(c *client.Client) (any, error) {
			return c.Count(ctx, client.Filter{Tag: d.tag, Since: client.DayOf(d.posted.CreatedAt), Until: client.Instant(time.Now().Add(time.Hour))}, client.ReadAfter(d.written))
		}, 200, true},
		{"count, start after end", func(c *client.Client) (any, error) {
			return c.Count(ctx, client.Filter{Since: client.Day(2026, 2, 1), Until: client.Day(2026, 1, 1)})
		}, 400, true},
		{"subscribe", func(c *client.Client) (any, error) {
			sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			defer cancel()
			for e, err := range c.Subscribe(sctx, d.tag, client.ResumeAfter(d.written), client.RequestID("drift-subscribe")) {
				if err != nil {
					return nil, err
				}
				return e.Message, nil
			}
			return nil, sctx.Err()
		}, 200, true},
		{"list in pages", func(c *client.Client) (any, error) {
			var all []client.Message
			for m, err := range c.List(ctx, client.Filter{Tag: strings.ToUpper(d.tag), Since: client.Instant(d.posted.CreatedAt), Until: client.DayOf(time.Now()), PageSize: 1}, client.RequestID("drift-list")) {
				if err != nil {
					return nil, err
				}
				all = append(all, m)
			}
			if len(all) != 2 {
				return nil, fmt.Errorf("listed %d messages, want 2", len(all))
			}
			return all, nil
		}, 200, true},
	}
}

// checkCall makes the call with c and checks every request it sent and
// every answer against the document, and what the client made of them
// against what they said.
func checkCall(t *testing.T, v validator.Validator, rec *recorder, c *client.Client, cl driftCall) {
	from := rec.len()
	got, err := cl.run(c)
	xs := rec.since(from)
	if len(xs) == 0 {
		t.Fatalf("sent nothing (%v)", err)
	}
	last := xs[len(xs)-1]
	if last.res.StatusCode != cl.status {
		t.Fatalf("answered %d %s, want %d (%v)", last.res.StatusCode, last.resBody, cl.status, err)
	}
	for _, x := range xs {
		if errs := validate(v, x, cl.validRequest); len(errs) > 0 {
			t.Errorf("%s %s (%d) does not keep the document:\n%s\nsent %s\ngot %s", x.req.Method, x.req.URL, x.res.StatusCode, describeErrors(errs), x.reqBody, x.resBody)
		}
	}
	if cl.status >= 400 {
		if err == nil {
			t.Fatal("no error for a failure")
		}
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	// What the client made of the answers is what they said.
	if list, ok := got.([]client.Message); ok {
		var raw []json.RawMessage
		for _, x := range xs {
			var page []json.RawMessage
			if err := json.Unmarshal(x.resBody, &page); err != nil {
				t.Fatal(err)
			}
			raw = append(raw, page...)
		}
		joined, _ := json.Marshal(raw)
		if err := sameJSON(joined, list); err != nil {
			t.Error(err)
		}
		return
	}
	body := last.resBody
	if strings.HasPrefix(last.res.Header.Get("Content-Type"), "text/event-stream") {
		if body, err = firstEventData(body); err != nil {
			t.Fatal(err)
		}
	}
	if err := sameJSON(body, got); err != nil {
		t.Error(err)
	}
}

// checkRenamesCaught shows the checks are not blind: a field renamed in the
// document or in the client fails them.
func checkRenamesCaught(t *testing.T, v validator.Validator, rec *recorder) {
	var post exchange
	for _, x := range rec.since(0) {
		if x.req.Method == http.MethodPost && x.res.StatusCode == 201 {
			post = x
			break
		}
	}
	if post.res == nil {
		t.Fatal("no post recorded")
	}
	renamedDoc := bytes.Replace(api.Document(), []byte("\n        userId:\n          type: string\n          description: Who posted it."),
		[]byte("\n        authorId:\n          type: string\n          description: Who posted it."), 1)
	if bytes.Equal(renamedDoc, api.Document()) {
		t.Fatal("the document has no Message.userId to rename")
	}
	if errs := validate(newValidator(t, renamedDoc), post, true); len(errs) == 0 {
		t.Error("a document naming userId authorId accepted the answer")
	}
	renamedReq := bytes.Replace(api.Document(), []byte("required: [text, tag]"), []byte("required: [body, tag]"), 1)
	if errs := validate(newValidator(t, renamedReq), post, true); len(errs) == 0 {
		t.Error("a document naming text body accepted the request")
	}
	type renamedMessage struct {
		ID        string    `json:"id"`
		UserID    string    `json:"user"`
		Text      string    `json:"text"`
		Tag       string    `json:"tag"`
		CreatedAt time.Time `json:"createdAt"`
	}
	var m renamedMessage
	if err := json.Unmarshal(post.resBody, &m); err != nil {
		t.Fatal(err)
	}
	if err := sameJSON(post.resBody, m); err == nil {
		t.Error("a client naming userId user kept the answer")
	}
	renamed := post
	renamed.reqBody = []byte(`{"body":"drift","tag":"x"}`)
	if errs := validate(v, renamed, true); len(errs) == 0 {
		t.Error("a request naming text body kept the document")
	}
	query := post
	query.req = post.req.Clone(context.Background())
	query.req.Method = http.MethodGet
	query.req.URL.RawQuery = "since=2026-01-01"
	query.reqBody = nil
	if errs := validate(v, query, true); len(errs) == 0 {
		t.Error("a list with the parameter since kept the document")
	}
}

// notSent are the parameters of the document the client leaves to others,
// and why.
var notSent = map[string]string{
	"If-None-Match": "conditional reads are for a cache in front; the client reads afresh",
}

// pathParam matches a path template's parameter.
var pathParam = regexp.MustCompile(`\{[^}]+\}`)

// checkCoverage fails for an operation of the document under /v1 that no
// exchange called, or a parameter of one that no request sent.
func checkCoverage(t *testing.T, xs []exchange) {
	t.Helper()
	doc, err := libopenapi.NewDocument(api.Document())
	if err != nil {
		t.Fatal(err)
	}
	model, err := doc.BuildV3Model()
	if err != nil {
		t.Fatal(err)
	}
	for path, item := range model.Model.Paths.PathItems.FromOldest() {
		if !strings.HasPrefix(path, "/v1/") {
			continue // the document itself, which the client does not read
		}
		re := regexp.MustCompile("^" + pathParam.ReplaceAllString(path, `[^/]+`) + "$")
		for method, op := range item.GetOperations().FromOldest() {
			var sent []exchange
			for _, x := range xs {
				if strings.EqualFold(x.req.Method, method) && re.MatchString(x.req.URL.Path) {
					sent = append(sent, x)
				}
			}
			if len(sent) == 0 {
				t.Errorf("%s %s (%s): the client never calls it", strings.ToUpper(method), path, op.OperationId)
				continue
			}
			for _, p := range op.Parameters {
				if p.In == "header" && notSent[p.Name] != "" {
					continue
				}
				used := slices.ContainsFunc(sent, func(x exchange) bool {
					switch p.In {
					case "query":
						return x.req.URL.Query().Has(p.Name)
					case "header":
						return x.req.Header.Get(p.Name) != ""
					}
					return true // the path's own
				})
				if !used {
					t.Errorf("%s %s: the client never sends the %s parameter %s", strings.ToUpper(method), path, p.In, p.Name)
				}
			}
		}
	}
}
