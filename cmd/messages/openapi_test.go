package main

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/messages-io/messages/api"
	"github.com/messages-io/messages/internal/testkit"
	"github.com/pb33f/libopenapi"
	validator "github.com/pb33f/libopenapi-validator"
	verrors "github.com/pb33f/libopenapi-validator/errors"
)

// contract validates requests and responses against the OpenAPI document.
type contract struct {
	v validator.Validator
}

func loadContract(t *testing.T) contract {
	t.Helper()
	doc, err := libopenapi.NewDocument(api.Document())
	if err != nil {
		t.Fatalf("parse the OpenAPI document: %v", err)
	}
	if v := doc.GetVersion(); v != "3.1.0" {
		t.Fatalf("OpenAPI version = %q, want 3.1.0", v)
	}
	v, errs := validator.NewValidator(doc)
	if len(errs) > 0 {
		t.Fatalf("build a validator: %v", errs)
	}
	if ok, verrs := v.ValidateDocument(); !ok {
		t.Fatalf("the document is not valid OpenAPI 3.1:\n%s", describe(verrs))
	}
	return contract{v: v}
}

func describe(errs []*verrors.ValidationError) string {
	var b strings.Builder
	for _, e := range errs {
		fmt.Fprintf(&b, "  %s: %s\n", e.Message, e.Reason)
		for _, f := range e.SchemaValidationErrors {
			fmt.Fprintf(&b, "    at %s: %s\n", f.FieldPath, f.Reason)
		}
	}
	return b.String()
}

// exchange is one request and the answer it got.
type exchange struct {
	req    *http.Request
	res    *http.Response
	body   []byte
	reqDoc []byte // the request body sent
}

// do sends a request and keeps its body and the answer's for validation.
func do(t *testing.T, method, url string, header http.Header, body string) exchange {
	t.Helper()
	res, b := send(t, method, url, header, body)
	return exchange{req: res.Request, res: res, body: b, reqDoc: []byte(body)}
}

// check validates x's response against the document, and its request too
// when the request is one the document allows.
func (c contract) check(t *testing.T, x exchange, validRequest bool) []*verrors.ValidationError {
	t.Helper()
	x.res.Body = io.NopCloser(bytes.NewReader(x.body))
	x.req.Body = io.NopCloser(bytes.NewReader(x.reqDoc))
	var errs []*verrors.ValidationError
	if validRequest {
		_, errs = c.v.ValidateHttpRequestResponse(x.req, x.res)
	} else {
		_, errs = c.v.ValidateHttpResponse(x.req, x.res)
	}
	return errs
}

// Real answers of the gateway and of the services behind it match the OpenAPI
// document, status by status.
func TestOpenAPIConformance(t *testing.T) {
	c := loadContract(t)
	dev, _ := startDev(t, t.TempDir(), nil)
	gw := startGatewayCmd(t, dev, dev, "--count-role", "counter", "--rate", "1000", "--burst", "1000")
	limited := startGatewayCmd(t, dev, dev, "--rate", "0.001", "--burst", "1")
	guessed := startGatewayCmd(t, dev, dev, "--auth-failure-rate", "0.001", "--auth-failure-burst", "1")
	down := startGatewayDown(t)

	token := mintToken(t, "--user", "openapi", "--role", "counter")
	tag := fmt.Sprintf("oa-%d", time.Now().UnixNano())
	auth := func(h ...string) http.Header {
		out := bearer(token)
		for i := 0; i < len(h); i += 2 {
			out.Set(h[i], h[i+1])
		}
		return out
	}
	asJSON := auth("Content-Type", "application/json")

	// Three messages, so that a page of one has a next page.
	var location string
	for i := range 3 {
		x := do(t, http.MethodPost, gw+"/v1/messages", asJSON, fmt.Sprintf(`{"text":"message %d","tag":"#%s"}`, i, tag))
		if x.res.StatusCode != http.StatusCreated {
			t.Fatalf("POST = %d %s", x.res.StatusCode, x.body)
		}
		location = x.res.Header.Get("Location")
	}
	testkit.Eventually(t, 15*time.Second, 20*time.Millisecond, func() error {
		x := do(t, http.MethodGet, gw+"/v1/messages?count=1&tag="+tag, auth(), "")
		if strings.TrimSpace(string(x.body)) != "3" {
			return fmt.Errorf("count = %s", x.body)
		}
		return nil
	})

	tests := conformanceCases(t, conformanceTargets{gw: gw, dev: dev, limited: limited, guessed: guessed, down: down, tag: tag, location: location, auth: auth})
	// The rate-limited gateway lets one request through first.
	do(t, http.MethodGet, limited+"/v1/messages", auth(), "")
	// The other one refuses every token from this address after one failure.
	do(t, http.MethodGet, guessed+"/v1/messages", bearer("e30.e30.x"), "")

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			x := do(t, tt.method, tt.url, tt.header, tt.body)
			if x.res.StatusCode != tt.status {
				t.Fatalf("status = %d %s, want %d", x.res.StatusCode, x.body, tt.status)
			}
			if tt.wantHeader != "" && x.res.Header.Get(tt.wantHeader) == "" {
				t.Errorf("no %s header", tt.wantHeader)
			}
			if errs := c.check(t, x, tt.validRequest); len(errs) > 0 {
				t.Errorf("%s %s answered %d, which the document does not allow:\n%s\nbody: %.300s", tt.method, tt.url, x.res.StatusCode, describe(errs), x.body)
			}
		})
	}

	// The validation is not blind: answers that break the document fail it.
	t.Run("broken answers are caught", func(t *testing.T) {
		checkBrokenAnswersCaught(t, c, gw+"/v1/messages", asJSON, `{"text":"x","tag":"`+tag+`"}`)
	})
}

// conformanceCase is one request of the conformance test and the answer it
// must get.
type conformanceCase struct {
	name         string
	method, url  string
	header       http.Header
	body         string
	status       int
	validRequest bool // the request itself keeps the document
	wantHeader   string
}

// conformanceTargets are what the conformance cases address: the gateways,
// the dev stack behind them, the tag of the test's messages, the location
// of one, and the headers of a caller with a token.
type conformanceTargets struct {
	gw, dev, limited, guessed, down string
	tag, location                   string
	auth                            func(h ...string) http.Header
}

// conformanceCases are the requests of the conformance test, one of every
// answer the document describes.
func conformanceCases(t *testing.T, to conformanceTargets) []conformanceCase {
	t.Helper()
	gw, dev, limited, guessed, down, tag, location, auth := to.gw, to.dev, to.limited, to.guessed, to.down, to.tag, to.location, to.auth
	asJSON := auth("Content-Type", "application/json")
	idem := auth("Content-Type", "application/json", "Idempotency-Key", "key-"+tag)
	return []conformanceCase{
		{name: "create", method: "POST", url: gw + "/v1/messages", header: asJSON, body: `{"text":"hello","tag":"` + tag + `"}`, status: 201, validRequest: true, wantHeader: "Location"},
		{name: "create with a key", method: "POST", url: gw + "/v1/messages", header: idem, body: `{"text":"once","tag":"` + tag + `"}`, status: 201, validRequest: true},
		{name: "create replayed", method: "POST", url: gw + "/v1/messages", header: idem, body: `{"text":"once","tag":"` + tag + `"}`, status: 201, validRequest: true, wantHeader: "Idempotent-Replayed"},
		{name: "key reused for another message", method: "POST", url: gw + "/v1/messages", header: idem, body: `{"text":"twice","tag":"` + tag + `"}`, status: 409, validRequest: true},
		{name: "bad tag", method: "POST", url: gw + "/v1/messages", header: asJSON, body: `{"text":"hi","tag":"no spaces"}`, status: 400},
		{name: "unknown field", method: "POST", url: gw + "/v1/messages", header: asJSON, body: `{"text":"hi","tag":"a","x":1}`, status: 400},
		{name: "not JSON", method: "POST", url: gw + "/v1/messages", header: auth("Content-Type", "text/plain"), body: "hi", status: 415},
		{name: "compressed body", method: "POST", url: gw + "/v1/messages", header: auth("Content-Type", "application/json", "Content-Encoding", "gzip"), body: "\x1f\x8b", status: 415, wantHeader: "Accept-Encoding"},
		{name: "compressed body, behind the gateway", method: "POST", url: dev + "/v1/messages", header: http.Header{"Content-Type": {"application/json"}, "Content-Encoding": {"br"}, "X-User-Id": {"openapi"}}, body: `{"text":"hi","tag":"a"}`, status: 415, wantHeader: "Accept-Encoding"},
		{name: "too large", method: "POST", url: gw + "/v1/messages", header: asJSON, body: `{"text":"` + strings.Repeat("b", 70<<10) + `","tag":"a"}`, status: 413},
		{name: "create without a token", method: "POST", url: gw + "/v1/messages", header: http.Header{"Content-Type": {"application/json"}}, body: `{"text":"hi","tag":"a"}`, status: 401, wantHeader: "WWW-Authenticate"},
		{name: "create without a user, behind the gateway", method: "POST", url: dev + "/v1/messages", header: http.Header{"Content-Type": {"application/json"}}, body: `{"text":"hi","tag":"a"}`, status: 403},
		{name: "create with a user, behind the gateway", method: "POST", url: dev + "/v1/messages", header: http.Header{"Content-Type": {"application/json"}, "X-User-Id": {"openapi"}}, body: `{"text":"direct","tag":"` + tag + `"}`, status: 201, validRequest: true},
		{name: "no healthy dispatcher", method: "POST", url: down + "/v1/messages", header: asJSON, body: `{"text":"hi","tag":"a"}`, status: 503, validRequest: true, wantHeader: "Retry-After"},

		{name: "list", method: "GET", url: gw + "/v1/messages?tag=" + tag, header: auth(), status: 200, validRequest: true},
		{name: "page with a next", method: "GET", url: gw + "/v1/messages?limit=1&tag=" + strings.ToUpper(tag), header: auth(), status: 200, validRequest: true, wantHeader: "Link"},
		{name: "list by dates", method: "GET", url: gw + "/v1/messages?dateStart=2020-01-01&dateEnd=" + time.Now().UTC().Add(time.Hour).Format(time.RFC3339), header: auth(), status: 200, validRequest: true},
		{name: "empty list", method: "GET", url: gw + "/v1/messages?tag=nothing-" + tag, header: auth(), status: 200, validRequest: true},
		{name: "count", method: "GET", url: gw + "/v1/messages?count=1&tag=" + tag, header: auth(), status: 200, validRequest: true},
		{name: "count without the role", method: "GET", url: gw + "/v1/messages?count=1", header: bearer(mintToken(t, "--user", "plain")), status: 403, validRequest: true},
		{name: "start after end", method: "GET", url: gw + "/v1/messages?dateStart=2026-02-01&dateEnd=2026-01-01", header: auth(), status: 400, validRequest: true},
		{name: "lower-case t and z", method: "GET", url: gw + "/v1/messages?dateStart=2020-01-01t00:00:00z&tag=" + tag, header: auth(), status: 200, validRequest: true},
		{name: "leap second", method: "GET", url: gw + "/v1/messages?dateEnd=2016-12-31T23:59:60Z", header: auth(), status: 400},
		{name: "offset past 23:59", method: "GET", url: gw + "/v1/messages?dateEnd=2026-01-01T00:00:00%2B24:00", header: auth(), status: 400},
		{name: "malformed query", method: "GET", url: gw + "/v1/messages?tag=x%zz", header: auth(), status: 400},
		{name: "query with a semicolon", method: "GET", url: gw + "/v1/messages?tag=x;x=1", header: auth(), status: 400},
		{name: "too many failed authentications", method: "GET", url: guessed + "/v1/messages", header: auth(), status: 429, validRequest: true, wantHeader: "Retry-After"},
		{name: "unknown parameter", method: "GET", url: gw + "/v1/messages?colour=red", header: auth(), status: 400},
		{name: "list without a token", method: "GET", url: gw + "/v1/messages", header: nil, status: 401, wantHeader: "WWW-Authenticate"},
		{name: "list with a bad token", method: "GET", url: gw + "/v1/messages", header: bearer("e30.e30.x"), status: 401, wantHeader: "WWW-Authenticate"},
		{name: "rate limited", method: "GET", url: limited + "/v1/messages", header: auth(), status: 429, validRequest: true, wantHeader: "Retry-After"},
		{name: "no healthy query instance", method: "GET", url: down + "/v1/messages", header: auth(), status: 503, validRequest: true, wantHeader: "Retry-After"},

		{name: "by id", method: "GET", url: gw + location, header: auth(), status: 200, validRequest: true},
		{name: "by id in lower case", method: "GET", url: gw + strings.ToLower(location), header: auth(), status: 200, validRequest: true},
		{name: "no such id", method: "GET", url: gw + "/v1/messages/01HQ3Z5Y8K6J9M2N4P7R0S1T2V", header: auth(), status: 404, validRequest: true},
		{name: "not an id", method: "GET", url: gw + "/v1/messages/nope", header: auth(), status: 400, validRequest: true},
		{name: "by id without a user, behind the gateway", method: "GET", url: dev + location, header: nil, status: 403},
	}
}

// checkBrokenAnswersCaught holds the validation to catching answers that
// break the document: the answer to a POST of body to url, broken in
// several ways, must each fail it.
func checkBrokenAnswersCaught(t *testing.T, c contract, url string, header http.Header, body string) {
	t.Helper()
	created := do(t, http.MethodPost, url, header, body)
	breakages := map[string]func(x *exchange){
		"no Location":          func(x *exchange) { x.res.Header.Del("Location") },
		"no X-Request-ID":      func(x *exchange) { x.res.Header.Del("X-Request-ID") },
		"an extra field":       func(x *exchange) { x.body = bytes.Replace(x.body, []byte(`{`), []byte(`{"likes":3,`), 1) },
		"a tag in upper case":  func(x *exchange) { x.body = bytes.Replace(x.body, []byte(`"tag":"oa-`), []byte(`"tag":"OA-`), 1) },
		"an undocumented code": func(x *exchange) { x.res.StatusCode = http.StatusAccepted },
	}
	for name, breakIt := range breakages {
		x := created
		x.res = new(http.Response)
		*x.res = *created.res
		x.res.Header = created.res.Header.Clone()
		x.body = bytes.Clone(created.body)
		breakIt(&x)
		if errs := c.check(t, x, true); len(errs) == 0 {
			t.Errorf("%s: the validator accepted it", name)
		}
	}
}

// The document is served by the gateway and by every process with the query
// API.
func TestOpenAPIServed(t *testing.T) {
	dev, _ := startDev(t, t.TempDir(), nil)
	gw := startGatewayCmd(t, dev, dev)
	for _, base := range []string{gw, dev} {
		x := do(t, http.MethodGet, base+api.DocumentPath, nil, "")
		if x.res.StatusCode != http.StatusOK || !bytes.Equal(x.body, api.Document()) {
			t.Errorf("GET %s%s = %d, %d bytes; want 200 and the document", base, api.DocumentPath, x.res.StatusCode, len(x.body))
		}
		if ct := x.res.Header.Get("Content-Type"); ct != "application/yaml" {
			t.Errorf("GET %s%s Content-Type = %q, want application/yaml", base, api.DocumentPath, ct)
		}
	}
}

// startGatewayDown runs a gateway whose upstreams refuse every connection;
// it is up but not ready.
func startGatewayDown(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + ln.Addr().String()
	ln.Close()
	a, _ := startCommand(t, secretEnv, nil, "gateway", "--addr", "127.0.0.1:0", "--dispatcher-urls", closed, "--query-urls", closed, "--log-level", "error")
	return "http://" + a.API
}
