package gateway

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/messages-io/messages/fault"
)

// Errors of a key lookup.
var (
	// errUnknownKey: the key set has no key with the token's kid, even after
	// a refresh.
	errUnknownKey = errors.New("no key with this kid")
	// errNoKeys: no key set has been loaded yet, so no token can be checked.
	errNoKeys = fault.New("the key set is not loaded", fault.ErrUnavailable)
)

// maxJWKSBytes bounds a key set document.
const maxJWKSBytes = 1 << 20

// keySet holds the public keys of a JWKS document, by kid. It reloads them
// every refresh interval, and at once when a token names a kid it does not
// hold (at most once per minRefresh), so that keys can be rotated at the
// issuer without restarting the gateway. Lookups of known keys never wait for
// a load.
type keySet struct {
	source     string // file path or http(s) URL
	client     *http.Client
	log        *slog.Logger
	minRefresh time.Duration

	keys atomic.Pointer[map[string]publicKey] // nil until the first load

	// loadMu serialises loads.
	loadMu      sync.Mutex
	lastAttempt time.Time
}

// publicKey is one verification key of the set.
type publicKey struct {
	alg string // the JWK's alg when it names one; otherwise any algorithm for its type
	key any    // *rsa.PublicKey or *ecdsa.PublicKey
}

func newKeySet(source string, minRefresh time.Duration, log *slog.Logger) *keySet {
	return &keySet{
		source:     source,
		client:     &http.Client{Timeout: 10 * time.Second},
		log:        log,
		minRefresh: minRefresh,
	}
}

// key returns the key for a token signed with alg under kid. An unknown kid
// makes the set reload first, unless it did so less than minRefresh ago.
func (s *keySet) key(ctx context.Context, kid, alg string) (any, error) {
	if kid == "" {
		return nil, fmt.Errorf("%w: the token has no kid", errUnknownKey)
	}
	k, ok := s.lookup(kid)
	if !ok {
		s.reloadFor(ctx, kid)
		k, ok = s.lookup(kid)
	}
	if !ok {
		if s.keys.Load() == nil {
			return nil, errNoKeys
		}
		return nil, fmt.Errorf("%w %q", errUnknownKey, kid)
	}
	if k.alg != "" && k.alg != alg {
		return nil, fmt.Errorf("key %q is for %s, the token is signed with %s", kid, k.alg, alg)
	}
	switch pk := k.key.(type) {
	case *rsa.PublicKey:
		if alg != "RS256" {
			return nil, fmt.Errorf("key %q is an RSA key, the token is signed with %s", kid, alg)
		}
	case *ecdsa.PublicKey:
		if alg != "ES256" || pk.Curve != elliptic.P256() {
			return nil, fmt.Errorf("key %q is an EC key on %s, the token is signed with %s", kid, pk.Curve.Params().Name, alg)
		}
	}
	return k.key, nil
}

func (s *keySet) lookup(kid string) (publicKey, bool) {
	m := s.keys.Load()
	if m == nil {
		return publicKey{}, false
	}
	k, ok := (*m)[kid]
	return k, ok
}

// reloadFor reloads the set for a kid it lacks, unless another request just
// did, or the last attempt was less than minRefresh ago.
func (s *keySet) reloadFor(ctx context.Context, kid string) {
	s.loadMu.Lock()
	defer s.loadMu.Unlock()
	if _, ok := s.lookup(kid); ok || time.Since(s.lastAttempt) < s.minRefresh {
		return
	}
	if err := s.loadLocked(ctx); err != nil {
		s.log.Warn("jwks reload for an unknown kid failed", "kid", kid, "err", err)
	}
}

// load reads the key set now.
func (s *keySet) load(ctx context.Context) error {
	s.loadMu.Lock()
	defer s.loadMu.Unlock()
	return s.loadLocked(ctx)
}

// ready reports whether a key set has been loaded.
func (s *keySet) ready(context.Context) error {
	if s.keys.Load() == nil {
		return fmt.Errorf("jwks %s: %w", s.source, errNoKeys)
	}
	return nil
}

// loadLocked replaces the keys with those read from the source. On failure
// the keys held stay in use.
func (s *keySet) loadLocked(ctx context.Context) error {
	s.lastAttempt = time.Now()
	raw, err := s.read(ctx)
	if err != nil {
		return fmt.Errorf("jwks %s: %w", s.source, err)
	}
	keys, skipped, err := parseJWKS(raw)
	if err != nil {
		return fmt.Errorf("jwks %s: %w", s.source, err)
	}
	for _, reason := range skipped {
		s.log.Debug("jwks key skipped", "reason", reason)
	}
	if len(keys) == 0 {
		return fmt.Errorf("jwks %s: no usable RS256 or ES256 signing key (%d skipped)", s.source, len(skipped))
	}
	s.keys.Store(&keys)
	return nil
}

func (s *keySet) read(ctx context.Context) ([]byte, error) {
	if !strings.HasPrefix(s.source, "http://") && !strings.HasPrefix(s.source, "https://") {
		f, err := os.Open(s.source)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		return readAtMost(f, maxJWKSBytes)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.source, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/jwk-set+json, application/json")
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("answered %s", resp.Status)
	}
	return readAtMost(resp.Body, maxJWKSBytes)
}

func readAtMost(r io.Reader, n int64) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, n+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > n {
		return nil, fmt.Errorf("larger than %d bytes", n)
	}
	return b, nil
}

// jwk is one key of a JWKS document (RFC 7517), with the members of RSA and
// EC public keys (RFC 7518 section 6).
type jwk struct {
	Kty string `json:"kty"`
	Kid string `json:"kid"`
	Use string `json:"use"`
	Alg string `json:"alg"`
	N   string `json:"n"`
	E   string `json:"e"`
	Crv string `json:"crv"`
	X   string `json:"x"`
	Y   string `json:"y"`
}

// parseJWKS reads the RS256 and ES256 signing keys of a JWKS document, and
// says why it skipped each other key.
func parseJWKS(raw []byte) (map[string]publicKey, []string, error) {
	var doc struct {
		Keys []jwk `json:"keys"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		return nil, nil, fmt.Errorf("not a JWK set: %w", err)
	}
	keys := map[string]publicKey{}
	var skipped []string
	for i, k := range doc.Keys {
		pk, err := k.publicKey()
		switch {
		case err != nil:
			skipped = append(skipped, fmt.Sprintf("key %d (kid %q): %v", i, k.Kid, err))
		case k.Kid == "":
			skipped = append(skipped, fmt.Sprintf("key %d: no kid", i))
		case keys[k.Kid].key != nil:
			return nil, nil, fmt.Errorf("kid %q is used twice", k.Kid)
		default:
			keys[k.Kid] = pk
		}
	}
	return keys, skipped, nil
}

func (k jwk) publicKey() (publicKey, error) {
	if k.Use != "" && k.Use != "sig" {
		return publicKey{}, fmt.Errorf("use %q is not sig", k.Use)
	}
	switch k.Kty {
	case "RSA":
		if k.Alg != "" && k.Alg != "RS256" {
			return publicKey{}, fmt.Errorf("alg %s is not accepted", k.Alg)
		}
		n, err := b64Int(k.N)
		if err != nil {
			return publicKey{}, fmt.Errorf("n: %w", err)
		}
		e, err := b64Int(k.E)
		if err != nil {
			return publicKey{}, fmt.Errorf("e: %w", err)
		}
		if n.BitLen() < 2048 {
			return publicKey{}, fmt.Errorf("an RSA key of %d bits is too short; at least 2048", n.BitLen())
		}
		if !e.IsInt64() || e.Int64() < 3 || e.Int64() > 1<<31-1 || e.Bit(0) == 0 {
			return publicKey{}, errors.New("the RSA exponent is out of range")
		}
		return publicKey{alg: k.Alg, key: &rsa.PublicKey{N: n, E: int(e.Int64())}}, nil
	case "EC":
		if k.Alg != "" && k.Alg != "ES256" {
			return publicKey{}, fmt.Errorf("alg %s is not accepted", k.Alg)
		}
		if k.Crv != "P-256" {
			return publicKey{}, fmt.Errorf("curve %q is not accepted; ES256 needs P-256", k.Crv)
		}
		x, err := b64Fixed(k.X, 32)
		if err != nil {
			return publicKey{}, fmt.Errorf("x: %w", err)
		}
		y, err := b64Fixed(k.Y, 32)
		if err != nil {
			return publicKey{}, fmt.Errorf("y: %w", err)
		}
		pk, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), append(append([]byte{4}, x...), y...))
		if err != nil {
			return publicKey{}, err
		}
		return publicKey{alg: k.Alg, key: pk}, nil
	}
	return publicKey{}, fmt.Errorf("key type %q is not accepted", k.Kty)
}

func b64Int(s string) (*big.Int, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(b) == 0 {
		return nil, errors.New("not a base64url integer")
	}
	return new(big.Int).SetBytes(b), nil
}

func b64Fixed(s string, size int) ([]byte, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(b) != size {
		return nil, fmt.Errorf("not %d bytes of base64url", size)
	}
	return b, nil
}
