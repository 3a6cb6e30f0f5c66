package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/messages-io/messages/gateway"
	"github.com/messages-io/messages/internal/testkit"
	"github.com/messages-io/messages/message"
)

// testSecret is the HS256 secret of the gateways and tokens of these tests,
// given as MESSAGES_JWT_SECRET.
const testSecret = "an HS256 secret for tests, 32 bytes or more"

// secretEnv is an environment holding only the test secret.
func secretEnv(k string) string {
	if k == "MESSAGES_JWT_SECRET" {
		return testSecret
	}
	return ""
}

// startGatewayCmd runs `messages gateway` in-process in front of the given
// upstreams, with args added, and returns its base URL once it is ready.
func startGatewayCmd(t *testing.T, dispatchers, queries string, args ...string) string {
	t.Helper()
	a, _ := startCommand(t, secretEnv, nil, append([]string{"gateway", "--addr", "127.0.0.1:0",
		"--dispatcher-urls", dispatchers, "--query-urls", queries,
		"--health-interval", "50ms", "--log-level", "warn"}, args...)...)
	base := "http://" + a.API
	testkit.Eventually(t, 10*time.Second, 20*time.Millisecond, func() error {
		res, err := http.Get(base + "/readyz")
		if err != nil {
			return err
		}
		defer res.Body.Close()
		if res.StatusCode != http.StatusOK {
			b, _ := io.ReadAll(res.Body)
			return fmt.Errorf("/readyz = %d %s", res.StatusCode, b)
		}
		return nil
	})
	return base
}

// mintToken runs `messages token` with args and returns the token it prints.
func mintToken(t *testing.T, args ...string) string {
	t.Helper()
	var out bytes.Buffer
	err := run(t.Context(), append([]string{"token"}, args...), env{getenv: secretEnv, stdout: &out, stderr: logWriter{t}})
	if err != nil {
		t.Fatalf("messages token %s: %v", strings.Join(args, " "), err)
	}
	tok := strings.TrimSuffix(out.String(), "\n")
	if strings.Count(tok, ".") != 2 || strings.ContainsAny(tok, " \n") {
		t.Fatalf("messages token printed %q, want one JWT on one line", out.String())
	}
	return tok
}

// send makes a request with the given headers and body and returns the
// answer with its body.
func send(t *testing.T, method, url string, header http.Header, body string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res, b
}

func bearer(token string) http.Header {
	return http.Header{"Authorization": {"Bearer " + token}}
}

// The done-when of the gateway: with a token from `messages token` a client
// posts and reads through the gateway; without one, or with a forged
// X-User-ID, it gets nothing and stores nothing.
func TestGatewayEndToEnd(t *testing.T) {
	dev, _ := startDev(t, t.TempDir(), nil)
	gw := startGatewayCmd(t, dev, dev, "--rate", "1000", "--burst", "1000")
	alice := mintToken(t, "--user", "alice")
	tag := fmt.Sprintf("gw-e2e-%d", time.Now().UnixNano())
	post := func(header http.Header, text string) (*http.Response, []byte) {
		header = header.Clone()
		if header == nil {
			header = http.Header{}
		}
		header.Set("Content-Type", "application/json")
		return send(t, http.MethodPost, gw+"/v1/messages", header, fmt.Sprintf(`{"text":%q,"tag":%q}`, text, tag))
	}

	// A forged X-User-ID beside a valid token is ignored.
	forged := bearer(alice)
	forged.Set("X-User-ID", "mallory")
	forged.Set("X-Request-ID", "gw-e2e-1")
	res, body := post(forged, "first")
	if res.StatusCode != http.StatusCreated {
		t.Fatalf("POST with a token = %d %s, want 201", res.StatusCode, body)
	}
	var created message.Message
	if err := json.Unmarshal(body, &created); err != nil {
		t.Fatal(err)
	}
	if created.UserID != "alice" {
		t.Errorf("userId = %q, want alice (the token's subject, not the forged header)", created.UserID)
	}
	if rid := res.Header.Values("X-Request-ID"); len(rid) != 1 || rid[0] != "gw-e2e-1" {
		t.Errorf("X-Request-ID = %q, want gw-e2e-1 once", rid)
	}
	loc := res.Header.Get("Location")
	if loc != "/v1/messages/"+created.ID {
		t.Fatalf("Location = %q", loc)
	}

	// Read it back through the gateway, once the read model has it.
	var got message.Message
	testkit.Eventually(t, 15*time.Second, 20*time.Millisecond, func() error {
		res, body := send(t, http.MethodGet, gw+loc, bearer(alice), "")
		if res.StatusCode != http.StatusOK {
			return fmt.Errorf("GET %s = %d %s", loc, res.StatusCode, body)
		}
		return json.Unmarshal(body, &got)
	})
	if got.ID != created.ID || got.UserID != "alice" || got.Text != "first" || got.Tag != tag {
		t.Errorf("GET %s = %+v, want %+v", loc, got, created)
	}

	// Without a token, or with a bad one, nothing reaches the services.
	forgedOnly := http.Header{"X-User-ID": {"alice"}}
	wrongSecret := bearer(signWith(t, "another secret, also at least 32 bytes", "alice"))
	for name, h := range map[string]http.Header{"no token": nil, "forged X-User-ID only": forgedOnly, "token of another secret": wrongSecret} {
		res, body := post(h, "must not be stored: "+name)
		if res.StatusCode != http.StatusUnauthorized || !strings.HasPrefix(res.Header.Get("WWW-Authenticate"), "Bearer") {
			t.Errorf("POST with %s = %d %s, want 401 with WWW-Authenticate", name, res.StatusCode, body)
		}
		res, body = send(t, http.MethodGet, gw+"/v1/messages?tag="+tag, h, "")
		if res.StatusCode != http.StatusUnauthorized || strings.Contains(string(body), created.ID) {
			t.Errorf("GET with %s = %d %s, want 401 and no message", name, res.StatusCode, body)
		}
	}

	checkListedInOrder(t, gw, tag, alice, post)
}

// With the count policy on, counts need the role; lists do not.
// checkListedInOrder posts a second message through the gateway at gw
// with alice's token, after the one with text "first" of tag, and checks
// that both are listed and counted, newest first, as alice's.
func checkListedInOrder(t *testing.T, gw, tag, alice string, post func(http.Header, string) (*http.Response, []byte)) {
	t.Helper()
	// A second message fences the first: a tag's events are folded in
	// order, so once it shows, anything stored before it shows too.
	res, body := post(bearer(alice), "second")
	if res.StatusCode != http.StatusCreated {
		t.Fatalf("second POST = %d %s", res.StatusCode, body)
	}
	var list []message.Message
	testkit.Eventually(t, 15*time.Second, 20*time.Millisecond, func() error {
		res, body := send(t, http.MethodGet, gw+"/v1/messages?tag="+tag, bearer(alice), "")
		if res.StatusCode != http.StatusOK {
			return fmt.Errorf("list = %d %s", res.StatusCode, body)
		}
		if err := json.Unmarshal(body, &list); err != nil {
			return err
		}
		if len(list) < 2 {
			return fmt.Errorf("list has %d messages, want 2", len(list))
		}
		return nil
	})
	if len(list) != 2 || list[0].Text != "second" || list[1].Text != "first" {
		t.Errorf("list = %+v, want exactly second and first", list)
	}
	for _, m := range list {
		if m.UserID != "alice" {
			t.Errorf("message %s by %q, want alice", m.ID, m.UserID)
		}
	}
	// Counts are written just after the messages they count.
	testkit.Eventually(t, 15*time.Second, 20*time.Millisecond, func() error {
		res, body := send(t, http.MethodGet, gw+"/v1/messages?count=1&tag="+tag, bearer(alice), "")
		if res.StatusCode != http.StatusOK || strings.TrimSpace(string(body)) != "2" {
			return fmt.Errorf("count = %d %s, want 2", res.StatusCode, body)
		}
		return nil
	})
}

func TestGatewayCountPolicy(t *testing.T) {
	dev, _ := startDev(t, t.TempDir(), nil)
	gw := startGatewayCmd(t, dev, dev, "--count-role", "counter")
	plain := mintToken(t, "--user", "alice")
	counter := mintToken(t, "--user", "alice", "--role", "reader,counter", "--ttl", "5m")
	tests := []struct {
		name, token, query string
		status             int
	}{
		{"count without the role", plain, "?count=1", http.StatusForbidden},
		{"count with the role", counter, "?count=1", http.StatusOK},
		{"list without the role", plain, "?limit=5", http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, body := send(t, http.MethodGet, gw+"/v1/messages"+tt.query, bearer(tt.token), "")
			if res.StatusCode != tt.status {
				t.Errorf("status = %d %s, want %d", res.StatusCode, body, tt.status)
			}
		})
	}
}

func TestTokenCommand(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		getenv  func(string) string
		wantErr string
	}{
		{name: "no user", args: nil, getenv: secretEnv, wantErr: "--user"},
		{name: "no secret", args: []string{"--user", "alice"}, getenv: func(string) string { return "" }, wantErr: "MESSAGES_JWT_SECRET"},
		{name: "short secret", args: []string{"--user", "alice", "--jwt-secret", "short"}, getenv: secretEnv, wantErr: "at least 32 bytes"},
		{name: "bad user", args: []string{"--user", "alice smith"}, getenv: secretEnv, wantErr: "alice smith"},
		{name: "no lifetime", args: []string{"--user", "alice", "--ttl", "0s"}, getenv: secretEnv, wantErr: "lifetime"},
		{name: "unexpected argument", args: []string{"--user", "alice", "extra"}, getenv: secretEnv, wantErr: "usage"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			err := run(t.Context(), append([]string{"token"}, tt.args...), env{getenv: tt.getenv, stdout: &out, stderr: &errOut})
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("err = %v, want one about %q", err, tt.wantErr)
			}
			if out.Len() != 0 {
				t.Errorf("printed %q on an error", out.String())
			}
		})
	}
	var out bytes.Buffer
	if err := run(t.Context(), []string{"token", "--help"}, env{getenv: secretEnv, stdout: &out, stderr: io.Discard}); err == nil ||
		!strings.Contains(out.String(), "MESSAGES_JWT_SECRET") || !strings.Contains(out.String(), "--user") {
		t.Errorf("token --help: %v, printed %q", err, out.String())
	}
}

func TestGatewayCommandNeedsAKey(t *testing.T) {
	err := run(t.Context(), []string{"gateway", "--addr", "127.0.0.1:0"}, env{getenv: func(string) string { return "" }, stdout: io.Discard, stderr: io.Discard})
	if err == nil || !strings.Contains(err.Error(), "MESSAGES_JWT_SECRET") {
		t.Errorf("gateway without a key: %v, want an error naming MESSAGES_JWT_SECRET", err)
	}
}

// signWith mints a token for user signed with secret.
func signWith(t *testing.T, secret, user string) string {
	t.Helper()
	tok, err := gateway.Token{Subject: user, TTL: time.Hour}.SignHS256([]byte(secret), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// The gateway's flags reach its config: the limit on failed
// authentications and the trusted proxies, bare addresses included.
func TestGatewayFlagsLimitFailures(t *testing.T) {
	var f gatewayFlags
	fs := flag.NewFlagSet("gateway", flag.ContinueOnError)
	f.register(fs)
	if f.cfg.AuthFailureRate != 1 || f.cfg.AuthFailureBurst != 20 || len(f.cfg.TrustedProxies) != 0 {
		t.Errorf("defaults: rate %v, burst %d, proxies %v; want 1, 20 and none", f.cfg.AuthFailureRate, f.cfg.AuthFailureBurst, f.cfg.TrustedProxies)
	}
	if err := fs.Parse([]string{"--auth-failure-rate", "-1", "--auth-failure-burst", "5", "--trusted-proxies", "10.0.0.0/8, 192.0.2.1,2001:db8::1/48"}); err != nil {
		t.Fatal(err)
	}
	if f.cfg.AuthFailureRate != -1 || f.cfg.AuthFailureBurst != 5 {
		t.Errorf("rate %v, burst %d; want -1 and 5", f.cfg.AuthFailureRate, f.cfg.AuthFailureBurst)
	}
	if got := (*prefixListFlag)(&f.cfg.TrustedProxies).String(); got != "10.0.0.0/8,192.0.2.1/32,2001:db8::/48" {
		t.Errorf("trusted proxies = %s", got)
	}
	if err := fs.Parse([]string{"--trusted-proxies", "10.0.0.0/33"}); err == nil {
		t.Error("a prefix of 33 bits was accepted")
	}
}
