package gateway

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/messages-io/messages/message"
	"github.com/messages-io/messages/web"
	"github.com/prometheus/client_golang/prometheus"
)

// The seed corpora are in testdata/fuzz/<target>; plain go test replays them.
// Their tokens are signed with fuzzSecret and fuzzECKey, and valid at
// fuzzNow.

var (
	fuzzSecret = []byte("fuzz-secret-of-at-least-32-bytes!!")
	fuzzNow    = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
)

// fuzzECKey is a fixed P-256 key, so that ES256 tokens in the corpus verify.
func fuzzECKey(tb testing.TB) *ecdsa.PrivateKey {
	tb.Helper()
	d := sha256.Sum256([]byte("gateway fuzz EC key"))
	k, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), d[:])
	if err != nil {
		tb.Fatal(err)
	}
	return k
}

// fuzzAuthenticator accepts HS256 with fuzzSecret, and ES256 and RS256 by
// kid from a loaded key set that never reloads.
func fuzzAuthenticator(tb testing.TB, ec *ecdsa.PrivateKey, rs *rsa.PrivateKey) *authenticator {
	tb.Helper()
	keys := newKeySet("", time.Hour, slog.New(slog.DiscardHandler))
	keys.lastAttempt = time.Now()
	keys.keys.Store(&map[string]publicKey{
		"ec-1":  {alg: algES256, key: &ec.PublicKey},
		"rsa-1": {alg: algRS256, key: &rs.PublicKey},
	})
	cfg := Config{Secret: fuzzSecret, Now: func() time.Time { return fuzzNow }, RoleClaim: "roles"}
	return newAuthenticator(cfg, keys)
}

// FuzzAuthenticate feeds any Authorization header to the gateway's token
// check. It must not panic, must fail only with an *authError, and must
// accept a header only when a verification written apart from it agrees:
// one bearer token of three segments in strict base64url, no crit, a
// signature that checks with the key the header names, an exp after now,
// and a sub that is a user id, the one returned.
func FuzzAuthenticate(f *testing.F) {
	ec := fuzzECKey(f)
	rs, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		f.Fatal(err)
	}
	a := fuzzAuthenticator(f, ec, rs)
	claims := jwt.MapClaims{"sub": "alice", "exp": fuzzNow.Add(time.Hour).Unix(), "roles": []string{"counter"}}
	for _, seed := range []struct {
		method jwt.SigningMethod
		key    any
		kid    string
	}{
		{jwt.SigningMethodHS256, fuzzSecret, ""},
		{jwt.SigningMethodES256, ec, "ec-1"},
		{jwt.SigningMethodRS256, rs, "rsa-1"},
	} {
		tok := jwt.NewWithClaims(seed.method, claims)
		if seed.kid != "" {
			tok.Header["kid"] = seed.kid
		}
		s, err := tok.SignedString(seed.key)
		if err != nil {
			f.Fatal(err)
		}
		f.Add("Bearer " + s)
	}
	f.Fuzz(func(t *testing.T, header string) {
		r, err := http.NewRequestWithContext(context.Background(), http.MethodGet, "/v1/messages", nil)
		if err != nil {
			t.Fatal(err)
		}
		r.Header["Authorization"] = []string{header}
		id, err := a.authenticate(r)
		if err != nil {
			var aerr *authError
			if !errors.As(err, &aerr) || aerr.reason == "" || aerr.detail == "" {
				t.Fatalf("authenticate(%q): %v, want an *authError with a reason", header, err)
			}
			return
		}
		scheme, token, _ := strings.Cut(header, " ")
		if !strings.EqualFold(scheme, "Bearer") {
			t.Fatalf("authenticate(%q) accepted the scheme %q", header, scheme)
		}
		sub, why := verify(strings.TrimSpace(token), ec, rs)
		if why != "" {
			t.Fatalf("authenticate(%q) = %+v, but the token does not verify: %s", header, id, why)
		}
		if id.user != sub {
			t.Fatalf("authenticate(%q) = user %q, want the token's sub %q", header, id.user, sub)
		}
	})
}

// verify checks token apart from the gateway's code, and returns its sub, or
// why it must be refused.
func verify(token string, ec *ecdsa.PrivateKey, rs *rsa.PrivateKey) (sub, why string) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return "", "not three segments"
	}
	var seg [3][]byte
	for i, p := range parts {
		b, err := base64.RawURLEncoding.Strict().DecodeString(p)
		if err != nil {
			return "", "segment " + p + " is not strict base64url"
		}
		seg[i] = b
	}
	var header map[string]any
	if err := json.Unmarshal(seg[0], &header); err != nil {
		return "", "header not JSON"
	}
	if _, ok := header["crit"]; ok {
		return "", "crit present"
	}
	signed := []byte(parts[0] + "." + parts[1])
	sum := sha256.Sum256(signed)
	kid, _ := header["kid"].(string)
	switch header["alg"] {
	case "HS256":
		mac := hmac.New(sha256.New, fuzzSecret)
		mac.Write(signed)
		if !hmac.Equal(mac.Sum(nil), seg[2]) {
			return "", "HMAC differs"
		}
	case "ES256":
		if kid != "ec-1" || len(seg[2]) != 64 {
			return "", "not an ES256 signature by ec-1"
		}
		r, s := new(big.Int).SetBytes(seg[2][:32]), new(big.Int).SetBytes(seg[2][32:])
		if !ecdsa.Verify(&ec.PublicKey, sum[:], r, s) {
			return "", "ECDSA signature does not verify"
		}
	case "RS256":
		if kid != "rsa-1" || rsa.VerifyPKCS1v15(&rs.PublicKey, crypto.SHA256, sum[:], seg[2]) != nil {
			return "", "RSA signature does not verify"
		}
	default:
		return "", "alg not accepted"
	}
	var claims map[string]any
	if err := json.Unmarshal(seg[1], &claims); err != nil {
		return "", "claims not a JSON object"
	}
	exp, ok := claims["exp"].(float64)
	if !ok || exp < float64(fuzzNow.Unix()) {
		return "", "no exp, or exp past"
	}
	if nbf, ok := claims["nbf"].(float64); ok && nbf > float64(fuzzNow.Unix()) {
		return "", "nbf in the future"
	}
	sub, _ = claims["sub"].(string)
	if !message.ValidUserID(sub) {
		return "", "sub not a user id"
	}
	return sub, ""
}

// FuzzParseJWKS feeds any document to the JWK set parser. It must not
// panic; what it accepts must be keys the gateway can trust, each kept or
// skipped exactly once, and each must read back the same from the JWK that
// describes it.
func FuzzParseJWKS(f *testing.F) {
	ec := fuzzECKey(f)
	b64 := base64.RawURLEncoding.EncodeToString
	raw, err := ec.PublicKey.Bytes()
	if err != nil {
		f.Fatal(err)
	}
	f.Add([]byte(`{"keys":[{"kty":"EC","kid":"ec-1","use":"sig","crv":"P-256","x":"` + b64(raw[1:33]) + `","y":"` + b64(raw[33:]) + `"}]}`))
	f.Add([]byte(`{"keys":[{"kty":"RSA","kid":"r","n":"AQAB","e":"AQAB"},{"kty":"oct","k":"c2VjcmV0"}]}`))
	f.Add([]byte(`{"keys":[]}`))
	f.Add([]byte(`{"keys":null}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, doc []byte) {
		keys, skipped, err := parseJWKS(doc)
		if err != nil {
			if keys != nil || skipped != nil {
				t.Fatalf("parseJWKS(%q) failed (%v) but returned keys", doc, err)
			}
			return
		}
		var generic struct {
			Keys []json.RawMessage `json:"keys"`
		}
		if err := json.Unmarshal(doc, &generic); err != nil {
			t.Fatalf("parseJWKS(%q) accepted a document that is not a JWK set: %v", doc, err)
		}
		if len(keys)+len(skipped) != len(generic.Keys) {
			t.Fatalf("parseJWKS(%q): %d kept and %d skipped of %d", doc, len(keys), len(skipped), len(generic.Keys))
		}
		for kid, k := range keys {
			if kid == "" {
				t.Fatalf("parseJWKS(%q) kept a key without kid", doc)
			}
			var again jwk
			switch pk := k.key.(type) {
			case *rsa.PublicKey:
				if k.alg != "" && k.alg != algRS256 || pk.N.BitLen() < 2048 || pk.E < 3 || pk.E%2 == 0 {
					t.Fatalf("parseJWKS(%q) kept RSA key %q: alg %q, %d bits, e %d", doc, kid, k.alg, pk.N.BitLen(), pk.E)
				}
				again = jwk{Kty: "RSA", Kid: kid, Alg: k.alg, N: b64(pk.N.Bytes()), E: b64(big.NewInt(int64(pk.E)).Bytes())}
			case *ecdsa.PublicKey:
				if k.alg != "" && k.alg != algES256 || pk.Curve != elliptic.P256() {
					t.Fatalf("parseJWKS(%q) kept EC key %q: alg %q, curve %s", doc, kid, k.alg, pk.Curve.Params().Name)
				}
				if _, err := pk.ECDH(); err != nil {
					t.Fatalf("parseJWKS(%q) kept EC key %q, not a point of P-256: %v", doc, kid, err)
				}
				raw, err := pk.Bytes()
				if err != nil {
					t.Fatal(err)
				}
				again = jwk{Kty: "EC", Kid: kid, Alg: k.alg, Crv: "P-256", X: b64(raw[1:33]), Y: b64(raw[33:])}
			default:
				t.Fatalf("parseJWKS(%q) kept key %q of type %T", doc, kid, k.key)
			}
			back, err := again.publicKey()
			if err != nil {
				t.Fatalf("key %q of %q, written as a JWK again, is refused: %v", kid, doc, err)
			}
			if back.alg != k.alg || !back.key.(interface{ Equal(crypto.PublicKey) bool }).Equal(k.key) {
				t.Fatalf("key %q of %q reads back as another key", kid, doc)
			}
		}
	})
}

// upstreamRecorder is the transport of a gateway under fuzzing: its
// upstreams are ready, and it keeps the query string of each request that
// reaches them.
type upstreamRecorder struct {
	mu      sync.Mutex
	queries []string
}

func (u *upstreamRecorder) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.URL.Path != "/readyz" {
		u.mu.Lock()
		u.queries = append(u.queries, r.URL.RawQuery)
		u.mu.Unlock()
	}
	return &http.Response{
		StatusCode: http.StatusOK, Header: http.Header{"Content-Type": {"application/json"}},
		Body: io.NopCloser(strings.NewReader("[]")), Request: r,
	}, nil
}

func (u *upstreamRecorder) take() []string {
	u.mu.Lock()
	defer u.mu.Unlock()
	q := u.queries
	u.queries = nil
	return q
}

// FuzzQueryPassThrough sends any query string through the gateway: it is
// refused with 400 exactly when url.ParseQuery, which the query API reads it
// with, refuses it, and otherwise reaches the upstream byte for byte.
func FuzzQueryPassThrough(f *testing.F) {
	for _, s := range []string{
		"tag=go", "tag=x%zz", "tag=x;x=1", "dateEnd=2020-01-02%zz", "tag=go%2", "tag=%67%6F&&=&y", "a=%2f%2F+b",
	} {
		f.Add(s)
	}
	up := &upstreamRecorder{}
	log := slog.New(slog.DiscardHandler)
	reg := prometheus.NewRegistry()
	g, err := New(log, reg, Config{
		Dispatchers: []string{"http://upstream.test"}, Queries: []string{"http://upstream.test"},
		Secret: fuzzSecret, Now: func() time.Time { return fuzzNow }, AuthFailureRate: -1, Transport: up,
	})
	if err != nil {
		f.Fatal(err)
	}
	g.checkUpstreams(context.Background())
	h := g.Handler(web.NewRouter(log, reg, reg, g.Checks()))
	token, err := Token{Subject: "alice", TTL: time.Hour}.SignHS256(fuzzSecret, fuzzNow)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		// Only what can arrive in a request line: no space, control
		// character or '#'.
		if strings.ContainsFunc(raw, func(r rune) bool { return r <= ' ' || r == 0x7f || r == '#' }) {
			return
		}
		for _, path := range []string{"/v1/messages", "/v1/messages/01HQ3Z5Y8K6J9M2N4P7R0S1T2V"} {
			r := httptest.NewRequest(http.MethodGet, path, nil)
			r.URL.RawQuery = raw
			r.RequestURI = path + "?" + raw
			r.Header.Set("Authorization", "Bearer "+token)
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			got := up.take()
			if _, perr := url.ParseQuery(raw); perr != nil {
				if w.Code != http.StatusBadRequest || len(got) != 0 {
					t.Fatalf("GET %s?%q, which url.ParseQuery refuses (%v): %d, upstream got %q", path, raw, perr, w.Code, got)
				}
				continue
			}
			if w.Code != http.StatusOK || len(got) != 1 || got[0] != raw {
				t.Fatalf("GET %s?%q: %d, upstream got %q; want 200 and the query as sent", path, raw, w.Code, got)
			}
		}
	})
}
