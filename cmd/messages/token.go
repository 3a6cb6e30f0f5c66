package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"time"

	"github.com/messages-io/messages/gateway"
)

// runToken prints a token signed with the gateway's HS256 secret, for local
// use and tests.
func runToken(ctx context.Context, args []string, e env) error {
	c := roleCommand("token")
	fs := flag.NewFlagSet("token", flag.ContinueOnError)
	var tf tokenFlags
	tf.register(fs, true)
	user := fs.String("user", "", "the token's subject: the user id the gateway passes on as X-User-ID (required)")
	var roles listFlag
	fs.Var(&roles, "role", "roles to grant, comma-separated (e.g. the gateway's --count-role)")
	ttl := fs.Duration("ttl", time.Hour, "how long the token is valid")
	if err := parse(fs, c, args, e); err != nil {
		return err
	}
	if *user == "" {
		return errors.New("token: --user is required")
	}
	if tf.secret == "" {
		return errors.New("token: set --jwt-secret or MESSAGES_JWT_SECRET, the same secret the gateway uses")
	}
	now := time.Now
	if e.now != nil {
		now = e.now
	}
	tok, err := gateway.Token{
		Subject:   *user,
		Roles:     roles,
		RoleClaim: tf.roleClaim,
		Issuer:    tf.issuer,
		Audience:  tf.audience,
		TTL:       *ttl,
	}.SignHS256([]byte(tf.secret), now())
	if err != nil {
		return fmt.Errorf("token: %w", err)
	}
	_, err = fmt.Fprintln(e.stdout, tok)
	return err
}
