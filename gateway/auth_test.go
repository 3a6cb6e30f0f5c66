package gateway_test

import (
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/messages-io/messages/gateway"
	"github.com/messages-io/messages/web"
)

func TestAuthentication(t *testing.T) {
	rsa1, ec1, rsaOther := rsaKey(t), ecKey(t), rsaKey(t)
	jwks := newJWKSServer(t, jwkOf(t, "rsa-1", rsa1), jwkOf(t, "ec-1", ec1))
	up := newUpstream(t)
	base := gateway.Config{
		Dispatchers: []string{up.URL}, Queries: []string{up.URL},
		Issuer: "https://issuer.test", Audience: "messages",
		// Refreshing for an unknown kid is tested on its own.
		JWKSMinRefresh: time.Hour,
		// So is the limit on failed authentications.
		AuthFailureRate: -1,
	}
	both := base
	both.Secret, both.JWKS = secret, jwks.URL
	keysOnly := base
	keysOnly.JWKS = jwks.URL
	gateways := map[string]*testGateway{
		"secret and keys": startGateway(t, both, true),
		"keys only":       startGateway(t, keysOnly, true),
	}

	for _, tt := range authCases(t, authKeys{rsa1: rsa1, ec1: ec1, rsaOther: rsaOther}) {
		t.Run(tt.name, func(t *testing.T) {
			checkAuth(t, gateways[tt.gateway], up, tt)
		})
	}
}

// authCase is an Authorization of TestAuthentication and what the gateway
// named must make of it.
type authCase struct {
	name    string
	gateway string
	header  []string // the Authorization header(s); nil for none
	// wantUser is the X-User-ID the upstream must see; empty for a 401
	// with reason.
	wantUser string
	reason   string
}

// authKeys are the keys of TestAuthentication: rsa1 and ec1 in the gateway's
// key set, rsaOther not.
type authKeys struct {
	rsa1, rsaOther *rsa.PrivateKey
	ec1            *ecdsa.PrivateKey
}

// authCases are the Authorization headers of TestAuthentication, signed
// with k.
func authCases(t *testing.T, k authKeys) []authCase {
	t.Helper()
	rsa1, ec1, rsaOther := k.rsa1, k.ec1, k.rsaOther
	ok := with(claims("alice"), "iss", "https://issuer.test", "aud", "messages")
	pubPEM := func() []byte {
		der, err := x509.MarshalPKIXPublicKey(&rsa1.PublicKey)
		if err != nil {
			t.Fatal(err)
		}
		return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	}()
	unsigned := func(c jwt.MapClaims) string { return unsignedToken(t, c) }
	withHeader := func(method jwt.SigningMethod, key any, c jwt.MapClaims, kv ...any) string {
		return signWithHeader(t, method, key, c, kv...)
	}
	return []authCase{
		{name: "HS256", gateway: "secret and keys", header: []string{"Bearer " + hs256(t, ok)}, wantUser: "alice"},
		{name: "RS256 by kid", gateway: "secret and keys", header: []string{"Bearer " + sign(t, jwt.SigningMethodRS256, rsa1, "rsa-1", ok)}, wantUser: "alice"},
		{name: "ES256 by kid", gateway: "keys only", header: []string{"Bearer " + sign(t, jwt.SigningMethodES256, ec1, "ec-1", ok)}, wantUser: "alice"},
		{name: "scheme in lower case", gateway: "secret and keys", header: []string{"bearer " + hs256(t, with(ok, "sub", "auth0:bob@x.y"))}, wantUser: "auth0:bob@x.y"},
		{name: "no token", gateway: "secret and keys", reason: "missing"},
		{name: "basic credentials", gateway: "secret and keys", header: []string{"Basic YWxpY2U6cHc="}, reason: "malformed"},
		{name: "bearer without token", gateway: "secret and keys", header: []string{"Bearer "}, reason: "malformed"},
		{name: "two tokens", gateway: "secret and keys", header: []string{"Bearer " + hs256(t, ok), "Bearer " + hs256(t, ok)}, reason: "malformed"},
		{name: "not a JWT", gateway: "secret and keys", header: []string{"Bearer not.a.jwt"}, reason: "malformed"},
		{name: "expired", gateway: "secret and keys", header: []string{"Bearer " + hs256(t, with(ok, "exp", time.Now().Add(-time.Minute).Unix()))}, reason: "expired"},
		{name: "not valid yet", gateway: "secret and keys", header: []string{"Bearer " + hs256(t, with(ok, "nbf", time.Now().Add(time.Hour).Unix()))}, reason: "expired"},
		{name: "no exp", gateway: "secret and keys", header: []string{"Bearer " + hs256(t, with(ok, "exp", nil))}, reason: "claims"},
		{name: "wrong issuer", gateway: "secret and keys", header: []string{"Bearer " + hs256(t, with(ok, "iss", "https://evil.test"))}, reason: "claims"},
		{name: "no issuer", gateway: "secret and keys", header: []string{"Bearer " + hs256(t, with(ok, "iss", nil))}, reason: "claims"},
		{name: "wrong audience", gateway: "secret and keys", header: []string{"Bearer " + hs256(t, with(ok, "aud", []string{"billing"}))}, reason: "claims"},
		{name: "alg none", gateway: "secret and keys", header: []string{"Bearer " + unsigned(ok)}, reason: "signature"},
		{name: "HS256 with another secret", gateway: "secret and keys", header: []string{"Bearer " + sign(t, jwt.SigningMethodHS256, []byte("another secret, also 32 bytes long"), "", ok)}, reason: "signature"},
		{name: "HS256 against keys only", gateway: "keys only", header: []string{"Bearer " + hs256(t, ok)}, reason: "signature"},
		{name: "HS256 keyed with the RSA public key", gateway: "keys only", header: []string{"Bearer " + sign(t, jwt.SigningMethodHS256, pubPEM, "rsa-1", ok)}, reason: "signature"},
		{name: "HS384", gateway: "secret and keys", header: []string{"Bearer " + sign(t, jwt.SigningMethodHS384, secret, "", ok)}, reason: "signature"},
		{name: "RS256 signed by another key", gateway: "secret and keys", header: []string{"Bearer " + sign(t, jwt.SigningMethodRS256, rsaOther, "rsa-1", ok)}, reason: "signature"},
		{name: "RS256 under an EC kid", gateway: "keys only", header: []string{"Bearer " + sign(t, jwt.SigningMethodRS256, rsa1, "ec-1", ok)}, reason: "signature"},
		{name: "unknown kid", gateway: "keys only", header: []string{"Bearer " + sign(t, jwt.SigningMethodRS256, rsaOther, "rsa-9", ok)}, reason: "unknown_key"},
		{name: "no kid", gateway: "keys only", header: []string{"Bearer " + sign(t, jwt.SigningMethodRS256, rsa1, "", ok)}, reason: "unknown_key"},
		{name: "crit naming an extension", gateway: "secret and keys", header: []string{"Bearer " + withHeader(jwt.SigningMethodHS256, secret, ok, "crit", []string{"exp"}, "exp", 1)}, reason: "critical"},
		{name: "crit b64 of RFC 7797", gateway: "secret and keys", header: []string{"Bearer " + withHeader(jwt.SigningMethodHS256, secret, ok, "crit", []string{"b64"}, "b64", true)}, reason: "critical"},
		{name: "crit with a key from the set", gateway: "keys only", header: []string{"Bearer " + withHeader(jwt.SigningMethodES256, ec1, ok, "kid", "ec-1", "crit", []string{"https://issuer.test/ext"}, "https://issuer.test/ext", "x")}, reason: "critical"},
		{name: "crit empty", gateway: "secret and keys", header: []string{"Bearer " + withHeader(jwt.SigningMethodHS256, secret, ok, "crit", []string{})}, reason: "critical"},
		{name: "crit not a list", gateway: "secret and keys", header: []string{"Bearer " + withHeader(jwt.SigningMethodHS256, secret, ok, "crit", "exp")}, reason: "critical"},
		{name: "crit null", gateway: "secret and keys", header: []string{"Bearer " + withHeader(jwt.SigningMethodHS256, secret, ok, "crit", nil)}, reason: "critical"},
		{name: "HS256 signature changed in unused bits", gateway: "secret and keys", header: []string{"Bearer " + unusedBitsChanged(hs256(t, ok))}, reason: "malformed"},
		{name: "ES256 signature changed in unused bits", gateway: "keys only", header: []string{"Bearer " + unusedBitsChanged(sign(t, jwt.SigningMethodES256, ec1, "ec-1", ok))}, reason: "malformed"},
		{name: "no sub", gateway: "secret and keys", header: []string{"Bearer " + hs256(t, with(ok, "sub", nil))}, reason: "subject"},
		{name: "sub not a user id", gateway: "secret and keys", header: []string{"Bearer " + hs256(t, with(ok, "sub", "alice smith"))}, reason: "subject"},
		{name: "sub not a string", gateway: "secret and keys", header: []string{"Bearer " + hs256(t, with(ok, "sub", 42))}, reason: "subject"},
	}
}

// unsignedToken is c as a token of alg none.
func unsignedToken(t *testing.T, c jwt.MapClaims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(jwt.SigningMethodNone, c).SignedString(jwt.UnsafeAllowNoneSignatureType)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// signWithHeader signs c as a token whose header has the given members
// besides alg and typ.
func signWithHeader(t *testing.T, method jwt.SigningMethod, key any, c jwt.MapClaims, kv ...any) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, c)
	for i := 0; i < len(kv); i += 2 {
		tok.Header[kv[i].(string)] = kv[i+1]
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// unusedBitsChanged is tok with the last character of its signature
// changed only in the bits that base64url decoding drops.
func unusedBitsChanged(tok string) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	i := strings.IndexByte(alphabet, tok[len(tok)-1])
	return tok[:len(tok)-1] + string(alphabet[i^1])
}

// checkAuth sends the Authorization of tt to the gateway g, on two paths,
// and checks what reaches the upstream up, the 401 otherwise, and the count
// of failures.
func checkAuth(t *testing.T, g *testGateway, up *upstream, tt authCase) {
	t.Helper()
	before := len(up.requests())
	failures := g.metric(t, "messages_gateway_auth_failures_total", map[string]string{"reason": tt.reason})
	h := http.Header{"Authorization": tt.header}
	for _, path := range []string{"/v1/messages", "/v1/messages/01HQ3Z5Y8K6J9M2N4P7R0S1T2V"} {
		res := g.do(t, http.MethodGet, path, "", h)
		if tt.wantUser != "" {
			if res.StatusCode != http.StatusOK {
				t.Fatalf("GET %s = %d %s, want 200", path, res.StatusCode, res.Body)
			}
			got := up.requests()
			if len(got) != before+1 {
				t.Fatalf("upstream got %d requests, want %d", len(got), before+1)
			}
			last := got[len(got)-1]
			if u := last.Header.Values(web.UserIDHeader); len(u) != 1 || u[0] != tt.wantUser {
				t.Errorf("upstream saw X-User-ID %q, want %q", u, tt.wantUser)
			}
			if a := last.Header.Values("Authorization"); len(a) != 0 {
				t.Errorf("upstream saw Authorization %q; credentials must stay at the gateway", a)
			}
			if last.Path != path {
				t.Errorf("upstream path = %q, want %q", last.Path, path)
			}
			before++
			continue
		}
		p := problem(t, res, http.StatusUnauthorized)
		if p.Instance != path {
			t.Errorf("instance = %q, want %q", p.Instance, path)
		}
		challenge := res.Header.Get("WWW-Authenticate")
		want := `Bearer realm="messages"`
		if tt.reason != "missing" {
			want += `, error="invalid_token", error_description="` + p.Detail + `"`
		}
		if challenge != want {
			t.Errorf("WWW-Authenticate = %q, want %q", challenge, want)
		}
		if n := len(up.requests()); n != before {
			t.Errorf("upstream got %d requests after a 401, want %d", n, before)
		}
	}
	if tt.reason != "" {
		if got := g.metric(t, "messages_gateway_auth_failures_total", map[string]string{"reason": tt.reason}); got != failures+2 {
			t.Errorf("auth failures {reason=%q} = %v, want %v", tt.reason, got, failures+2)
		}
	}
}

// A key set is checked for the algorithm of each key: no token gets through
// with a key meant for another algorithm, curve or use.
func TestKeySetKeysAreForTheirAlgorithm(t *testing.T) {
	rsa1, ec1 := rsaKey(t), ecKey(t)
	encryption := jwkOf(t, "rsa-enc", rsa1)
	encryption["use"] = "enc"
	rs512 := jwkOf(t, "rsa-512", rsa1)
	rs512["alg"] = "RS512"
	jwks := newJWKSServer(t, jwkOf(t, "ec-1", ec1), encryption, rs512)
	up := newUpstream(t)
	g := startGateway(t, gateway.Config{Dispatchers: []string{up.URL}, Queries: []string{up.URL}, JWKS: jwks.URL, JWKSMinRefresh: time.Hour}, true)
	for _, kid := range []string{"rsa-enc", "rsa-512"} {
		res := g.do(t, http.MethodGet, "/v1/messages", sign(t, jwt.SigningMethodRS256, rsa1, kid, claims("alice")), nil)
		problem(t, res, http.StatusUnauthorized)
	}
	if res := g.do(t, http.MethodGet, "/v1/messages", sign(t, jwt.SigningMethodES256, ec1, "ec-1", claims("alice")), nil); res.StatusCode != http.StatusOK {
		t.Errorf("ES256 with its key = %d %s, want 200", res.StatusCode, res.Body)
	}
}

// Keys rotate at the issuer: a token under a new kid makes the gateway read
// the key set again, and once it has, tokens under a removed kid are refused.
func TestJWKSRotation(t *testing.T) {
	old, next := rsaKey(t), ecKey(t)
	tests := []struct {
		name string
		// source returns the JWKS location and a function that replaces its
		// keys.
		source func(t *testing.T) (string, func(keys ...map[string]string))
	}{
		{
			name: "url",
			source: func(t *testing.T) (string, func(...map[string]string)) {
				s := newJWKSServer(t, jwkOf(t, "old", old))
				return s.URL, func(keys ...map[string]string) { s.set(t, keys...) }
			},
		},
		{
			name: "file",
			source: func(t *testing.T) (string, func(...map[string]string)) {
				path := filepath.Join(t.TempDir(), "jwks.json")
				write := func(keys ...map[string]string) {
					// Written beside and renamed, as a deploy would, so
					// that no read sees half a file.
					tmp := path + ".tmp"
					if err := os.WriteFile(tmp, jwksDoc(t, keys...), 0o600); err != nil {
						t.Fatal(err)
					}
					if err := os.Rename(tmp, path); err != nil {
						t.Fatal(err)
					}
				}
				write(jwkOf(t, "old", old))
				return path, write
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			source, rotate := tt.source(t)
			up := newUpstream(t)
			g := startGateway(t, gateway.Config{
				Dispatchers: []string{up.URL}, Queries: []string{up.URL},
				JWKS: source, JWKSRefresh: time.Hour, JWKSMinRefresh: time.Nanosecond,
			}, true)
			oldToken := sign(t, jwt.SigningMethodRS256, old, "old", claims("alice"))
			newToken := sign(t, jwt.SigningMethodES256, next, "new", claims("bob"))

			if res := g.do(t, http.MethodGet, "/v1/messages", oldToken, nil); res.StatusCode != http.StatusOK {
				t.Fatalf("old kid before rotation = %d %s, want 200", res.StatusCode, res.Body)
			}
			problem(t, g.do(t, http.MethodGet, "/v1/messages", newToken, nil), http.StatusUnauthorized)

			rotate(jwkOf(t, "new", next))
			res := g.do(t, http.MethodGet, "/v1/messages", newToken, nil)
			if res.StatusCode != http.StatusOK || !strings.Contains(res.Body, `"bob"`) {
				t.Fatalf("new kid after rotation = %d %s, want 200 for bob", res.StatusCode, res.Body)
			}
			problem(t, g.do(t, http.MethodGet, "/v1/messages", oldToken, nil), http.StatusUnauthorized)
			if got := g.metric(t, "messages_gateway_auth_failures_total", map[string]string{"reason": "unknown_key"}); got != 2 {
				t.Errorf("unknown_key failures = %v, want 2", got)
			}
		})
	}
}

// The key set is also read again on a timer, and a key set that cannot be
// read or holds no usable key leaves the keys held in use.
func TestJWKSPeriodicRefresh(t *testing.T) {
	old, next := rsaKey(t), rsaKey(t)
	jwks := newJWKSServer(t, jwkOf(t, "old", old))
	up := newUpstream(t)
	g := startGateway(t, gateway.Config{
		Dispatchers: []string{up.URL}, Queries: []string{up.URL},
		JWKS: jwks.URL, JWKSRefresh: 20 * time.Millisecond, JWKSMinRefresh: time.Hour,
	}, true)
	oldToken := sign(t, jwt.SigningMethodRS256, old, "old", claims("alice"))

	// Garbage and an empty set are refused; the old key stays.
	jwks.mu.Lock()
	jwks.doc = []byte("not json")
	jwks.mu.Unlock()
	fetched := jwks.fetches.Load()
	waitFetches(t, jwks, fetched+2)
	jwks.set(t)
	waitFetches(t, jwks, jwks.fetches.Load()+2)
	if res := g.do(t, http.MethodGet, "/v1/messages", oldToken, nil); res.StatusCode != http.StatusOK {
		t.Fatalf("old kid after unusable key sets = %d %s, want 200", res.StatusCode, res.Body)
	}

	jwks.set(t, jwkOf(t, "new", next))
	newToken := sign(t, jwt.SigningMethodRS256, next, "new", claims("bob"))
	eventually(t, func() error {
		if res := g.do(t, http.MethodGet, "/v1/messages", newToken, nil); res.StatusCode != http.StatusOK {
			return fmt.Errorf("new kid = %d", res.StatusCode)
		}
		return nil
	})
	problem(t, g.do(t, http.MethodGet, "/v1/messages", oldToken, nil), http.StatusUnauthorized)
}

// Tokens with unknown kids reload the key set at most once per
// JWKSMinRefresh, so that a stream of forged tokens cannot hammer the issuer.
func TestJWKSReloadForUnknownKidIsRateLimited(t *testing.T) {
	key := rsaKey(t)
	jwks := newJWKSServer(t, jwkOf(t, "k1", key))
	up := newUpstream(t)
	g := startGateway(t, gateway.Config{
		Dispatchers: []string{up.URL}, Queries: []string{up.URL},
		JWKS: jwks.URL, JWKSRefresh: time.Hour, JWKSMinRefresh: time.Hour,
	}, true)
	start := jwks.fetches.Load()
	for i := range 20 {
		tok := sign(t, jwt.SigningMethodRS256, key, "forged-"+string(rune('a'+i)), claims("mallory"))
		problem(t, g.do(t, http.MethodGet, "/v1/messages", tok, nil), http.StatusUnauthorized)
	}
	if n := jwks.fetches.Load() - start; n != 0 {
		t.Errorf("20 unknown kids within the minimum refresh fetched the key set %d times, want 0", n)
	}
}

// Until a key set has been read, a token it would check cannot be judged:
// the answer is 503, not 401, and the gateway is not ready.
func TestJWKSNotLoaded(t *testing.T) {
	jwks := newJWKSServer(t)
	up := newUpstream(t)
	key := rsaKey(t)
	g := startGateway(t, gateway.Config{
		Dispatchers: []string{up.URL}, Queries: []string{up.URL},
		JWKS: jwks.URL, JWKSRefresh: time.Hour, JWKSMinRefresh: time.Nanosecond,
	}, false)
	// The upstreams are healthy; only the keys are missing.
	eventually(t, func() error { return ready(g, 1) })
	res := g.do(t, http.MethodGet, "/v1/messages", sign(t, jwt.SigningMethodRS256, key, "k1", claims("alice")), nil)
	problem(t, res, http.StatusServiceUnavailable)
	if p := res.Body; !strings.Contains(p, "keys") {
		t.Errorf("503 body = %s, want it to be about the keys", p)
	}
	if res.Header.Get("Retry-After") == "" {
		t.Error("503 without Retry-After")
	}
	if res := g.do(t, http.MethodGet, "/readyz", "", nil); res.StatusCode != http.StatusServiceUnavailable || !strings.Contains(res.Body, "jwks") {
		t.Errorf("/readyz = %d %s, want 503 naming jwks", res.StatusCode, res.Body)
	}
	jwks.set(t, jwkOf(t, "k1", key))
	res = g.do(t, http.MethodGet, "/v1/messages", sign(t, jwt.SigningMethodRS256, key, "k1", claims("alice")), nil)
	if res.StatusCode != http.StatusOK {
		t.Errorf("after the key set is served = %d %s, want 200", res.StatusCode, res.Body)
	}
}
