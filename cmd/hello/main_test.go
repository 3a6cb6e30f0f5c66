package main

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/messages-io/messages/internal/devstack"
)

// The program runs as the README shows it, directly and through the
// gateway, and prints what it posted, newest first, with the right count.
func TestHello(t *testing.T) {
	stack, err := devstack.Start(t.TempDir(), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stack.Close)
	token, err := stack.Token("bob")
	if err != nil {
		t.Fatal(err)
	}
	line := regexp.MustCompile(`^\d\d:\d\d:\d\d (alice|bob) (Hello|from|Go)$`)
	for i, door := range []struct {
		url, token, user string
	}{{stack.URL, "", "alice"}, {stack.GatewayURL, token, "bob"}} {
		t.Setenv("MESSAGES_URL", door.url)
		t.Setenv("MESSAGES_TOKEN", door.token)
		out := captureStdout(t, main)
		lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
		// Every run lists every message of the day under the tag.
		want := 3*(i+1) + 1
		if len(lines) != want {
			t.Fatalf("printed %d lines, want %d:\n%s", len(lines), want, out)
		}
		for j, text := range []string{"Go", "from", "Hello"} {
			m := line.FindStringSubmatch(lines[j])
			if m == nil || m[1] != door.user || m[2] != text {
				t.Errorf("line %d %q, want %s's %q", j, lines[j], door.user, text)
			}
		}
		if last := lines[len(lines)-1]; last != fmt.Sprintf(`%d today under #hello; the last: "Go"`, 3*(i+1)) {
			t.Errorf("last line %q", last)
		}
	}
}

// The README shows this program as it is.
func TestREADMEShowsTheProgram(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	src, err := os.ReadFile("main.go")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(readme, []byte("```go\n"+string(src)+"```\n")) {
		t.Error("README.md does not show cmd/hello/main.go as it is")
	}
}

func captureStdout(t *testing.T, f func()) string {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout := os.Stdout
	os.Stdout = w
	done := make(chan string)
	go func() {
		b, _ := io.ReadAll(r)
		done <- string(b)
	}()
	f()
	os.Stdout = stdout
	w.Close()
	return <-done
}
