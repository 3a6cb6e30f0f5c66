package gateway

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/messages-io/messages/message"
)

// Token is what a token minted for local use says: who the caller is, their
// roles, and for how long it holds.
type Token struct {
	Subject string
	Roles   []string
	// RoleClaim names the claim that lists the roles. Default "roles".
	RoleClaim string
	// Issuer and Audience become iss and aud when set.
	Issuer, Audience string
	// TTL is how long the token is valid from its issue.
	TTL time.Duration
}

// SignHS256 returns t as a JWT signed with secret, the one a gateway with the
// same secret verifies, issued at now.
func (t Token) SignHS256(secret []byte, now time.Time) (string, error) {
	switch {
	case len(secret) < MinSecretBytes:
		return "", fmt.Errorf("the JWT secret must be at least %d bytes, it has %d", MinSecretBytes, len(secret))
	case !message.ValidUserID(t.Subject):
		return "", fmt.Errorf("user %q: want 1-128 characters of A-Z a-z 0-9 . _ : @ -", t.Subject)
	case t.TTL <= 0:
		return "", errors.New("the token's lifetime must be positive")
	}
	claims := jwt.MapClaims{
		"sub": t.Subject,
		"iat": now.Unix(),
		"exp": now.Add(t.TTL).Unix(),
	}
	if len(t.Roles) > 0 {
		for _, r := range t.Roles {
			if r == "" || strings.ContainsAny(r, " \t") {
				return "", fmt.Errorf("role %q: want one word", r)
			}
		}
		name := t.RoleClaim
		if name == "" {
			name = "roles"
		}
		claims[name] = t.Roles
	}
	if t.Issuer != "" {
		claims["iss"] = t.Issuer
	}
	if t.Audience != "" {
		claims["aud"] = t.Audience
	}
	return jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(secret)
}
