package gateway_test

import (
	"net/http"
	"strings"
	"testing"
)

// manyParams is a query of n parameters.
func manyParams(n int) string {
	return "tag=x" + strings.Repeat("&a=1", n-1)
}

// A query string the query API would refuse as malformed is refused at the
// gateway too, and never reaches an upstream: the reverse proxy would drop
// the pairs it cannot parse and pass on the rest, widening the answer.
func TestMalformedQueryIsRefused(t *testing.T) {
	up := newUpstream(t)
	cfg := config(up)
	cfg.CountRole = "counter"
	g := startGateway(t, cfg, true)
	token := hs256(t, with(claims("alice"), "roles", []string{"counter"}))
	for _, tt := range []struct{ name, query string }{
		{"bad escape in a value", "tag=x%zz"},
		{"bad escape beside a good pair", "tag=go&dateEnd=2020-01-02%zz"},
		{"bad escape in a name", "ta%g=go"},
		{"truncated escape", "tag=go%2"},
		{"semicolon", "tag=x;x=1"},
		{"semicolon as a separator", "tag=go;count=1"},
		{"bad pair before a count", "x=%zz&count=1"},
		{"more than 10,000 parameters", manyParams(10001)},
	} {
		for _, path := range []string{"/v1/messages", "/v1/messages/01HQ3Z5Y8K6J9M2N4P7R0S1T2V"} {
			t.Run(tt.name+" "+path, func(t *testing.T) {
				before := len(up.requests())
				p := problem(t, g.do(t, http.MethodGet, path+"?"+tt.query, token, nil), http.StatusBadRequest)
				if !strings.Contains(p.Detail, "query string") {
					t.Errorf("detail = %q, want it to say the query string is malformed", p.Detail)
				}
				if n := len(up.requests()); n != before {
					t.Errorf("the upstream got %q", up.requests()[n-1].Query)
				}
			})
		}
	}
	t.Run("POST", func(t *testing.T) {
		before := len(up.requests())
		problem(t, g.do(t, http.MethodPost, "/v1/messages?x=%zz", token, nil), http.StatusBadRequest)
		if n := len(up.requests()); n != before {
			t.Errorf("the upstream got a POST with a malformed query")
		}
	})
	// Without a token the answer is 401 whatever the query.
	problem(t, g.do(t, http.MethodGet, "/v1/messages?tag=x%zz", "", nil), http.StatusUnauthorized)
}

// A well-formed query reaches the upstream exactly as the caller wrote it:
// same order, same escapes, repeated and empty pairs kept.
func TestQueryForwardedByteForByte(t *testing.T) {
	up := newUpstream(t)
	g := startGateway(t, config(up), true)
	token := hs256(t, claims("alice"))
	for _, query := range []string{
		"tag=Go&dateStart=2026-01-05T01:00:00%2B02:00&limit=5",
		"limit=5&tag=go",
		"tag=%67%6F&tag=go",
		"tag=go+lang&x=%7e&&=&y",
		"dateEnd=2026-01-05T10:20:30.5Z&count=0",
		"tag=%E2%82%AC&a=%2f%2F",
		manyParams(10000),
	} {
		name := query
		if len(name) > 60 {
			name = name[:60] + "…"
		}
		t.Run(name, func(t *testing.T) {
			res := g.do(t, http.MethodGet, "/v1/messages?"+query, token, nil)
			if res.StatusCode != http.StatusOK {
				t.Fatalf("status = %d %s, want 200", res.StatusCode, res.Body)
			}
			got := up.requests()
			if last := got[len(got)-1]; last.Query != query {
				t.Errorf("upstream query = %q, want %q", last.Query, query)
			}
		})
	}
}

// A write whose body has a content coding is refused with 415 at the
// gateway and never reaches a dispatcher; identity is the body as sent.
func TestContentCodingRefused(t *testing.T) {
	up := newUpstream(t)
	g := startGateway(t, config(up), true)
	token := hs256(t, claims("alice"))
	for _, coding := range []string{"gzip", "br", "deflate", "identity, gzip"} {
		t.Run(coding, func(t *testing.T) {
			before := len(up.requests())
			res := g.do(t, http.MethodPost, "/v1/messages", token, http.Header{"Content-Encoding": {coding}})
			p := problem(t, res, http.StatusUnsupportedMediaType)
			if !strings.Contains(p.Detail, "Content-Encoding") {
				t.Errorf("detail = %q, want it to name Content-Encoding", p.Detail)
			}
			if ae := res.Header.Get("Accept-Encoding"); ae != "identity" {
				t.Errorf("Accept-Encoding = %q, want identity", ae)
			}
			if n := len(up.requests()); n != before {
				t.Errorf("a coded body reached the dispatcher")
			}
		})
	}
	t.Run("identity", func(t *testing.T) {
		res := g.do(t, http.MethodPost, "/v1/messages", token, http.Header{"Content-Encoding": {"identity"}})
		if res.StatusCode != http.StatusOK {
			t.Fatalf("status = %d %s, want 200", res.StatusCode, res.Body)
		}
		got := up.requests()
		if last := got[len(got)-1]; last.Body != `{"text":"hello","tag":"gw"}` {
			t.Errorf("dispatcher got body %q", last.Body)
		}
	})
	// Without a token the answer is 401, whatever the body.
	problem(t, g.do(t, http.MethodPost, "/v1/messages", "", http.Header{"Content-Encoding": {"gzip"}}), http.StatusUnauthorized)
}
