package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/messages-io/messages/eventstore"
	"github.com/messages-io/messages/internal/testkit"
)

// runImportCmd runs `messages import args…` and returns its error, standard
// output and standard error.
func runImportCmd(t *testing.T, environ map[string]string, args ...string) (error, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	err := run(t.Context(), append([]string{"import"}, args...), env{
		getenv: func(k string) string { return environ[k] },
		stdout: &stdout,
		stderr: &stderr,
		now:    func() time.Time { return time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC) },
	})
	return err, stdout.String(), stderr.String()
}

func writeFile(t *testing.T, content string) string {
	t.Helper()
	name := filepath.Join(t.TempDir(), "messages.jsonl")
	if err := os.WriteFile(name, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return name
}

func importLines(n int) string {
	var b strings.Builder
	for i := range n {
		at := time.Date(2025, 2, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(i) * time.Hour)
		fmt.Fprintf(&b, `{"userId":"u%d","text":"text %d","tag":"t%d","createdAt":%q}`+"\n", i%3, i, i%4, at.Format(time.RFC3339))
	}
	return b.String()
}

func TestImportCommand(t *testing.T) {
	ns := testkit.NATS(t)
	url := ns.ClientURL()
	file := writeFile(t, importLines(50)+`{"userId":"u","text":"x","tag":"bad tag","createdAt":"2025-02-01T00:00:00Z"}`+"\n"+`{}`+"\n")

	err, out, errOut := runImportCmd(t, nil, "--nats-url", url, "--partitions", "4", file)
	if err == nil || err.Error() != fmt.Sprintf("import %s: 2 bad lines", file) {
		t.Errorf("err = %v, want the count of bad lines", err)
	}
	if !regexp.MustCompile(`^imported .*messages.jsonl: 52 lines: 50 appended, 0 already imported, 2 bad in \S+ \(\d+ lines/s\)\n$`).MatchString(out) {
		t.Errorf("summary = %q", out)
	}
	wantErr := "line 51: tag must be 1-64 characters of A-Z a-z 0-9 _ - (one leading # allowed)\nline 52: userId is required\n"
	if errOut != wantErr {
		t.Errorf("stderr = %q, want %q", errOut, wantErr)
	}

	// Again, configured from the environment, with a JSON summary and the
	// file before the flags.
	environ := map[string]string{"MESSAGES_NATS_URL": url, "MESSAGES_PARTITIONS": "4"}
	err, out, _ = runImportCmd(t, environ, file, "--json")
	if err == nil {
		t.Error("re-run with bad lines succeeded")
	}
	var sum struct {
		File            string `json:"file"`
		Lines           int64  `json:"lines"`
		Appended        int64  `json:"appended"`
		AlreadyImported int64  `json:"alreadyImported"`
		Bad             int64  `json:"bad"`
		BadLines        []struct {
			Line   int64  `json:"line"`
			Reason string `json:"reason"`
		} `json:"badLines"`
	}
	if err := json.Unmarshal([]byte(out), &sum); err != nil {
		t.Fatalf("summary %q: %v", out, err)
	}
	if sum.File != file || sum.Lines != 52 || sum.Appended != 0 || sum.AlreadyImported != 50 || sum.Bad != 2 ||
		len(sum.BadLines) != 2 || sum.BadLines[1].Line != 52 {
		t.Errorf("JSON summary = %+v", sum)
	}

	_, js := testkit.JetStream(t, ns)
	st, err := eventstore.Open(t.Context(), js, eventstore.Config{Partitions: 4})
	if err != nil {
		t.Fatal(err)
	}
	if last, _ := st.LastSequence(t.Context()); last != 50 {
		t.Errorf("log holds %d events, want 50", last)
	}

	// A clean file exits zero; --quiet prints nothing.
	clean := writeFile(t, importLines(60))
	err, out, errOut = runImportCmd(t, nil, "--nats-url", url, "--partitions", "4", "--quiet", clean)
	if err != nil || out != "" || errOut != "" {
		t.Errorf("quiet clean import: err %v, stdout %q, stderr %q", err, out, errOut)
	}
	// Another file is another import: its first 50 lines, the messages
	// already imported, are appended again, for the read model to fold once.
	if last, _ := st.LastSequence(t.Context()); last != 110 {
		t.Errorf("log holds %d events, want 110 (50, then the 60 of another file)", last)
	}
}

func TestImportFromStandardInput(t *testing.T) {
	ns := testkit.NATS(t)
	content := importLines(20)
	feed := func() {
		t.Helper()
		r, w, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		go func() {
			_, _ = w.WriteString(content)
			w.Close()
		}()
		old := os.Stdin
		os.Stdin = r
		t.Cleanup(func() { os.Stdin = old; r.Close() })
	}
	feed()
	err, out, _ := runImportCmd(t, nil, "--nats-url", ns.ClientURL(), "-")
	if err != nil || !strings.Contains(out, "imported -: 20 lines: 20 appended, 0 already imported, 0 bad") {
		t.Fatalf("err %v, summary %q", err, out)
	}
	// The same content on standard input again is recognised.
	feed()
	err, out, _ = runImportCmd(t, nil, "--nats-url", ns.ClientURL(), "-")
	if err != nil || !strings.Contains(out, "20 lines: 0 appended, 20 already imported, 0 bad") {
		t.Errorf("err %v, summary %q", err, out)
	}
}

func TestImportCommandErrors(t *testing.T) {
	url := testkit.NATS(t).ClientURL()
	for _, tc := range []struct {
		name string
		args []string
		want string // the error, or the start of standard error for usage
	}{
		{"no file", []string{"--nats-url", url}, "messages import: want one FILE (or - for standard input), got 0\n"},
		{"two files", []string{"--nats-url", url, "a", "b"}, "messages import: want one FILE (or - for standard input), got 2\n"},
		{"missing file", []string{"--nats-url", url, "/nonexistent/messages.jsonl"}, "open /nonexistent/messages.jsonl: no such file or directory"},
		{"directory", []string{"--nats-url", url, t.TempDir()}, "is a directory"},
		{"no server", []string{"--nats-url", "nats://127.0.0.1:1", "--connect-timeout", "1s", writeFile(t, importLines(1))}, "nats nats://127.0.0.1:1: "},
		{"bad flag", []string{"--concurrency", "x", "f"}, "invalid value \"x\" for flag --concurrency"},
		{"bad concurrency", []string{"--nats-url", url, "--concurrency", "0", writeFile(t, importLines(1))}, "--concurrency 0: want 1-32"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err, _, errOut := runImportCmd(t, nil, tc.args...)
			if err == nil {
				t.Fatal("succeeded")
			}
			if errors.Is(err, errUsage) {
				if !strings.Contains(errOut, tc.want) {
					t.Errorf("stderr = %q, want %q", errOut, tc.want)
				}
				return
			}
			if !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
				t.Errorf("err = %q, want one line containing %q", err, tc.want)
			}
		})
	}
}

func TestImportHelp(t *testing.T) {
	err, out, _ := runImportCmd(t, nil, "--help")
	if !errors.Is(err, flag.ErrHelp) || !strings.Contains(out, "messages import [flags] FILE") || !strings.Contains(out, "MESSAGES_CONCURRENCY") {
		t.Errorf("err %v, help %q", err, out)
	}
}
