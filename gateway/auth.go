package gateway

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/golang-jwt/jwt/v5"
	"github.com/messages-io/messages/message"
)

// Signing algorithms the gateway accepts.
const (
	algHS256 = "HS256"
	algRS256 = "RS256"
	algES256 = "ES256"
)

// errCritical: the token's header lists extensions in crit, none of which
// the gateway understands (RFC 7515, section 4.1.11).
var errCritical = errors.New("the token's crit header names extensions the gateway does not understand")

// identity is who a verified token says the caller is.
type identity struct {
	user  string
	roles []string
}

func (id identity) has(role string) bool { return slices.Contains(id.roles, role) }

// authError is why a request was not authenticated.
type authError struct {
	reason string // the metric label, one of the reason* constants
	detail string // for the caller: the problem's detail and the challenge's error_description
}

func (e *authError) Error() string { return e.detail }

// authenticator verifies bearer tokens.
type authenticator struct {
	parser    *jwt.Parser
	secret    []byte  // HS256, when configured
	keys      *keySet // RS256 and ES256, when configured
	roleClaim string
}

func newAuthenticator(cfg Config, keys *keySet) *authenticator {
	var methods []string
	if len(cfg.Secret) > 0 {
		methods = append(methods, algHS256)
	}
	if keys != nil {
		methods = append(methods, algRS256, algES256)
	}
	opts := []jwt.ParserOption{
		jwt.WithValidMethods(methods),
		// One token for one signature: a lenient decoder ignores the
		// unused low bits of a segment's last character, so a token
		// changed in them would verify as the original.
		jwt.WithStrictDecoding(),
		jwt.WithExpirationRequired(),
		jwt.WithLeeway(cfg.Leeway),
		jwt.WithTimeFunc(cfg.Now),
	}
	if cfg.Issuer != "" {
		opts = append(opts, jwt.WithIssuer(cfg.Issuer))
	}
	if cfg.Audience != "" {
		opts = append(opts, jwt.WithAudience(cfg.Audience))
	}
	return &authenticator{parser: jwt.NewParser(opts...), secret: cfg.Secret, keys: keys, roleClaim: cfg.RoleClaim}
}

// authenticate verifies the request's bearer token and returns its identity.
// The error is an *authError, or wraps errNoKeys when no token signed with a
// key set can be checked yet.
func (a *authenticator) authenticate(r *http.Request) (identity, error) {
	values := r.Header.Values("Authorization")
	if len(values) == 0 {
		return identity{}, &authError{reasonMissing, "a bearer token is required"}
	}
	scheme, token, ok := strings.Cut(values[0], " ")
	if len(values) > 1 || !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(token) == "" {
		return identity{}, &authError{reasonMalformed, "the Authorization header must be one bearer token"}
	}
	claims := jwt.MapClaims{}
	_, err := a.parser.ParseWithClaims(strings.TrimSpace(token), claims, func(t *jwt.Token) (any, error) {
		return a.key(r.Context(), t)
	})
	if err != nil {
		if errors.Is(err, errNoKeys) {
			return identity{}, err
		}
		return identity{}, tokenError(err)
	}
	sub, _ := claims["sub"].(string)
	if !message.ValidUserID(sub) {
		return identity{}, &authError{reasonSubject, "the token's sub must be a user id of 1-128 characters of A-Z a-z 0-9 . _ : @ -"}
	}
	return identity{user: sub, roles: roles(claims[a.roleClaim])}, nil
}

// key returns the key that checks t's signature, by its algorithm (already
// one of those accepted) and, for a key set, its kid. A token whose header
// has crit is refused before any key is looked up: the gateway implements
// no extension, and RFC 7515 requires refusing a token that names one it
// does not understand, or a crit that is empty or not a list.
func (a *authenticator) key(ctx context.Context, t *jwt.Token) (any, error) {
	if _, ok := t.Header["crit"]; ok {
		return nil, errCritical
	}
	alg := t.Method.Alg()
	if alg == algHS256 {
		return a.secret, nil
	}
	kid, _ := t.Header["kid"].(string)
	return a.keys.key(ctx, kid, alg)
}

// tokenError says why the parser refused a token.
func tokenError(err error) *authError {
	switch {
	case errors.Is(err, jwt.ErrTokenMalformed):
		return &authError{reasonMalformed, "the token is not a well-formed JWT"}
	case errors.Is(err, errCritical):
		return &authError{reasonCritical, "the token's header names critical extensions (crit) that are not supported"}
	case errors.Is(err, errUnknownKey):
		return &authError{reasonUnknownKey, "the token is signed with an unknown key"}
	case errors.Is(err, jwt.ErrTokenSignatureInvalid), errors.Is(err, jwt.ErrTokenUnverifiable):
		return &authError{reasonSignature, "the token's signature or algorithm is not accepted"}
	case errors.Is(err, jwt.ErrTokenExpired):
		return &authError{reasonExpired, "the token has expired"}
	case errors.Is(err, jwt.ErrTokenNotValidYet):
		return &authError{reasonExpired, "the token is not valid yet"}
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		return &authError{reasonClaims, "the token lacks a required claim (exp, or iss and aud when required)"}
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		return &authError{reasonClaims, "the token's issuer is not accepted"}
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		return &authError{reasonClaims, "the token's audience is not accepted"}
	}
	return &authError{reasonClaims, "the token's claims are not valid"}
}

// roles reads a role claim: a JSON array of strings, or one string of roles
// separated by spaces (as OAuth's scope is).
func roles(claim any) []string {
	switch v := claim.(type) {
	case string:
		return strings.Fields(v)
	case []any:
		var out []string
		for _, r := range v {
			if s, ok := r.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

// challenge is the WWW-Authenticate header of a 401 (RFC 6750, section 3).
func challenge(err *authError) string {
	if err.reason == reasonMissing {
		return `Bearer realm="messages"`
	}
	return fmt.Sprintf(`Bearer realm="messages", error="invalid_token", error_description=%q`, err.detail)
}
