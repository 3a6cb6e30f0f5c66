package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/messages-io/messages/client"
	"github.com/messages-io/messages/internal/testkit"
)

// cli runs a command with args and returns what it printed and its error.
func cli(t *testing.T, environ map[string]string, args ...string) (string, string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err := run(t.Context(), args, env{
		getenv: func(k string) string { return environ[k] },
		stdout: &out, stderr: &errOut,
	})
	return out.String(), errOut.String(), err
}

// jsonLines decodes each line of out as a message.
func jsonLines(t *testing.T, out string) []map[string]string {
	t.Helper()
	var ms []map[string]string
	for _, line := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		if line == "" {
			continue
		}
		var m map[string]string
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("line %q: %v", line, err)
		}
		ms = append(ms, m)
	}
	return ms
}

var tableRow = regexp.MustCompile(`^([0-9A-HJKMNP-TV-Z]{26})\s+(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z)\s+(\S+)\s+(\S+)\s+(.*)$`)

// post, list and count call the API directly and through the gateway, print
// a table or JSON Lines, and page through everything with --all.
func TestAPICommands(t *testing.T) {
	dev, _ := startDev(t, t.TempDir(), nil)
	gw := startGatewayCmd(t, dev, dev)
	token := mintToken(t, "--user", "cli-gw")

	for _, door := range []struct {
		name string
		who  []string
		user string
	}{
		{"direct", []string{"--url", dev, "--user", "cli-user"}, "cli-user"},
		{"gateway", []string{"--url", gw, "--token", token}, "cli-gw"},
	} {
		t.Run(door.name, func(t *testing.T) {
			checkAPICommandsAs(t, door.who, door.user)
		})
	}

	t.Run("from the environment", func(t *testing.T) {
		out, _, err := cli(t, map[string]string{"MESSAGES_URL": gw, "MESSAGES_TOKEN": token}, "count", "--until", "2020-01-01")
		if err != nil || out != "0\n" {
			t.Errorf("count = %q, %v", out, err)
		}
	})

	t.Run("errors", func(t *testing.T) {
		checkAPICommandErrors(t, dev, gw)
	})
}

// checkAPICommandsAs posts five messages of a new tag with the CLI as the
// caller the flags who name, user, then lists and counts them in every form.
func checkAPICommandsAs(t *testing.T, who []string, user string) {
	t.Helper()
	tag := fmt.Sprintf("cli%d", time.Now().UnixNano())
	ids := postFive(t, tag, who, user)
	slices.Reverse(ids) // newest first
	// Each post waited until reads show it.
	if out, _, err := cli(t, nil, append([]string{"count", "--tag", tag}, who...)...); err != nil || out != "5\n" {
		t.Fatalf("count printed %q, %v; want 5", out, err)
	}

	// Every message, in pages of two.
	out, _, err := cli(t, nil, append([]string{"list", "--tag", tag, "--all", "--limit", "2", "--json"}, who...)...)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, m := range jsonLines(t, out) {
		got = append(got, m["id"])
	}
	if !slices.Equal(got, ids) {
		t.Errorf("list --all --json: %v, want %v", got, ids)
	}
	// Every message, in the default pages.
	out, _, err = cli(t, nil, append([]string{"list", "--tag", tag, "--all"}, who...)...)
	if err != nil {
		t.Fatal(err)
	}
	if rows := tableIDs(t, out); !slices.Equal(rows, ids) {
		t.Errorf("list --all: %v, want %v", rows, ids)
	}
	// The newest three.
	out, _, err = cli(t, nil, append([]string{"list", "--tag", tag, "--limit", "3"}, who...)...)
	if err != nil {
		t.Fatal(err)
	}
	if rows := tableIDs(t, out); !slices.Equal(rows, ids[:3]) {
		t.Errorf("list --limit 3: %v, want %v", rows, ids[:3])
	}
	// Dates, in both forms.
	today := time.Now().UTC().Format(time.DateOnly)
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"--since", today, "--until", today}, "5"},
		{[]string{"--until", "2020-01-01T00:00:00Z"}, "0"},
		{[]string{"--since", time.Now().Add(time.Hour).UTC().Format(time.RFC3339)}, "0"},
	} {
		args := append(append([]string{"count", "--tag", tag}, tt.args...), who...)
		out, _, err := cli(t, nil, args...)
		if err != nil || out != tt.want+"\n" {
			t.Errorf("%s printed %q, %v; want %s", strings.Join(args, " "), out, err, tt.want)
		}
		out, _, err = cli(t, nil, append(args, "--json")...)
		if err != nil || out != `{"count":`+tt.want+"}\n" {
			t.Errorf("%s --json printed %q, %v", strings.Join(args, " "), out, err)
		}
	}
}

// postFive posts five messages of tag with the CLI as who, user, alternately
// as JSON and as a table, checks what it printed, and returns their ids,
// oldest first.
func postFive(t *testing.T, tag string, who []string, user string) []string {
	t.Helper()
	var ids []string
	for i := range 5 {
		args := append([]string{"post", "--tag", "#" + strings.ToUpper(tag)}, who...)
		if i%2 == 0 {
			args = append(args, "--json")
		}
		out, _, err := cli(t, nil, append(args, "message", strconv.Itoa(i))...)
		if err != nil {
			t.Fatalf("post: %v", err)
		}
		if i%2 == 0 {
			m := jsonLines(t, out)
			if len(m) != 1 || m[0]["text"] != fmt.Sprintf("message %d", i) || m[0]["tag"] != tag || m[0]["userId"] != user {
				t.Fatalf("post --json printed %q", out)
			}
			ids = append(ids, m[0]["id"])
			continue
		}
		lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
		if len(lines) != 2 || !strings.HasPrefix(lines[0], "ID") {
			t.Fatalf("post printed %q, want a header and a row", out)
		}
		row := tableRow.FindStringSubmatch(lines[1])
		if row == nil || row[3] != user || row[4] != tag || row[5] != fmt.Sprintf("message %d", i) {
			t.Fatalf("post printed the row %q", lines[1])
		}
		ids = append(ids, row[1])
	}
	return ids
}

// checkAPICommandErrors checks the exit status and the error line of the
// CLI's failures, against the dev stack at dev and the gateway at gw.
func checkAPICommandErrors(t *testing.T, dev, gw string) {
	t.Helper()
	for _, tt := range []struct {
		name string
		args []string
		code int
		line string // the start of the error line main prints
	}{
		{"bad tag", []string{"post", "--url", dev, "--user", "u", "--tag", "no spaces", "hi"}, 1, "post: 400 Bad Request: tag must be"},
		{"no user", []string{"count", "--url", dev}, 1, "count: say who calls"},
		{"no token at the gateway", []string{"list", "--url", gw, "--user", "u"}, 1, "list: 401 Unauthorized"},
		{"start after end", []string{"count", "--url", dev, "--user", "u", "--since", "2026-02-01", "--until", "2026-01-01"}, 1, "count: 400 Bad Request: dateStart"},
		{"nothing listening", []string{"count", "--url", "http://127.0.0.1:1", "--user", "u", "--timeout", "1s"}, 1, "count: messages: GET /v1/messages"},
		{"no text", []string{"post", "--url", dev, "--user", "u", "--tag", "a"}, 2, ""},
		{"bad date", []string{"list", "--url", dev, "--user", "u", "--since", "yesterday"}, 2, ""},
		{"page too large", []string{"list", "--url", dev, "--user", "u", "--all", "--limit", "1001"}, 1, "list: --limit 1001"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := cli(t, nil, tt.args...)
			if code := exitCode(err); code != tt.code {
				t.Fatalf("exit %d (%v), want %d", code, err, tt.code)
			}
			if tt.line != "" && (err == nil || !strings.HasPrefix(err.Error(), tt.line) || strings.Contains(err.Error(), "\n")) {
				t.Errorf("error line %q, want one line starting %q", err, tt.line)
			}
		})
	}
}

// tableIDs returns the ids of a table's rows, after checking its header.
func tableIDs(t *testing.T, out string) []string {
	t.Helper()
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) == 0 || !strings.HasPrefix(lines[0], "ID ") {
		t.Fatalf("table %q has no header", out)
	}
	var ids []string
	for _, l := range lines[1:] {
		m := tableRow.FindStringSubmatch(l)
		if m == nil {
			t.Fatalf("row %q", l)
		}
		ids = append(ids, m[1])
	}
	return ids
}

// watch prints the messages posted under its tag as they come, from after
// the position it is given, until it is interrupted.
func TestWatchCommand(t *testing.T) {
	dev, _ := startDev(t, t.TempDir(), nil)
	gw := startGatewayCmd(t, dev, dev)
	token := mintToken(t, "--user", "watcher")
	for _, door := range []struct {
		name string
		who  []string
	}{
		{"direct", []string{"--url", dev, "--user", "watcher"}},
		{"gateway", []string{"--url", gw, "--token", token}},
	} {
		t.Run(door.name, func(t *testing.T) {
			tag := fmt.Sprintf("watch%d", time.Now().UnixNano())
			cl, err := client.New(dev, client.WithUserID("poster"))
			if err != nil {
				t.Fatal(err)
			}
			var start string
			if _, err := cl.Post(context.Background(), client.NewMessage{Text: "before", Tag: tag}, client.ConsistencyToken(&start)); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var out syncBuffer
			done := make(chan error, 1)
			go func() {
				done <- run(ctx, append([]string{"watch", "--tag", tag, "--json", "--after", start}, door.who...),
					env{getenv: noEnv, stdout: &out, stderr: logWriter{t}})
			}()
			var ids []string
			for _, text := range []string{"one", "two"} {
				m, err := cl.Post(context.Background(), client.NewMessage{Text: text, Tag: tag})
				if err != nil {
					t.Fatal(err)
				}
				ids = append(ids, m.ID)
			}
			testkit.Eventually(t, 15*time.Second, 20*time.Millisecond, func() error {
				if n := strings.Count(out.String(), "\n"); n < 2 {
					return fmt.Errorf("%d lines: %q", n, out.String())
				}
				return nil
			})
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("watch ended with %v, want nil when interrupted", err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("watch did not end within 10s of its interrupt")
			}
			var got []string
			for _, m := range jsonLines(t, out.String()) {
				got = append(got, m["id"])
			}
			if !slices.Equal(got, ids) {
				t.Errorf("watch printed %v, want %v", got, ids)
			}
		})
	}

	t.Run("a 4xx ends it", func(t *testing.T) {
		_, _, err := cli(t, nil, "watch", "--url", gw, "--user", "u")
		if exitCode(err) != 1 || !strings.HasPrefix(err.Error(), "watch: messages: subscribe: 401 Unauthorized") {
			t.Errorf("watch without a token: %v", err)
		}
	})
}
