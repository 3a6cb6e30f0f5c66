package main

import (
	"bytes"
	"context"
	"errors"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/messages-io/messages/eventstore"
	"github.com/messages-io/messages/internal/testkit"
	"github.com/nats-io/nats.go/jetstream"
)

// A stream configuration that cannot work ends the command at once with a
// one-line reason and exit status 1, whether the flags say so by themselves
// or only the server can tell; it is not waited on as if the servers were
// down.
func TestStreamConfigThatCannotWorkExits(t *testing.T) {
	ns := testkit.NATS(t)
	url := ns.ClientURL()
	_, js := testkit.JetStream(t, ns)
	if _, err := eventstore.Open(t.Context(), js, eventstore.Config{Stream: "SHORT", SubjectPrefix: "short", DuplicateWindow: 2 * time.Second}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"too many partitions", []string{"--partitions", "2000"}, "partitions 2000: want 1-1024"},
		{"too many replicas", []string{"--replicas", "7"}, "replicas 7: want 1-5"},
		{"duplicate window too short", []string{"--dedup-window", "500ms"}, "duplicate window 500ms: want at least 1s"},
		{"duplicate window within the append timeout", []string{"--dedup-window", "2s", "--append-timeout", "3s"}, "--dedup-window 2s must be longer than --append-timeout 3s"},
		{"the stream's duplicate window within the append timeout", []string{"--stream", "SHORT", "--subject-prefix", "short", "--append-timeout", "3s"},
			"stream SHORT: invalid event store configuration: duplicate window 2s is not longer than 3s, the longest an append is repeated"},
		{"a new stream's window within the append timeout", []string{"--stream", "FRESH", "--append-timeout", "15m"},
			"stream FRESH: invalid event store configuration: duplicate window 10m0s is not longer than 15m0s"},
		{"replicas the server cannot place", []string{"--replicas", "3"}, "replicas > 1 not supported in non-clustered mode"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			var stderr syncBuffer
			args := append([]string{"dispatcher", "--nats-url", url, "--addr", "127.0.0.1:0", "--stream", "CFG"}, tt.args...)
			start := time.Now()
			err := run(ctx, args, env{getenv: func(string) string { return "" }, stdout: &stderr, stderr: &stderr})
			if took := time.Since(start); took > 10*time.Second {
				t.Errorf("took %v to give up, want at once", took)
			}
			if code := exitCode(err); code != 1 {
				t.Errorf("exit status %d (%v), want 1", code, err)
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) || strings.Contains(err.Error(), "\n") {
				t.Errorf("error %q, want one line saying %q", err, tt.want)
			}
			if strings.Contains(stderr.String(), "waiting for") {
				t.Errorf("waited as for an unavailable server:\n%s", stderr.String())
			}
		})
	}
	if _, err := js.Stream(t.Context(), "FRESH"); !errors.Is(err, jetstream.ErrStreamNotFound) {
		t.Errorf("a stream was made for a window refused: %v", err)
	}
}

// A server that does not answer is waited for, until the command is stopped.
func TestUnavailableEventStoreIsWaitedFor(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "nats://" + ln.Addr().String()
	ln.Close() // nothing listens there now
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	var stderr syncBuffer
	start := time.Now()
	err = run(ctx, []string{"dispatcher", "--nats-url", url, "--addr", "127.0.0.1:0"},
		env{getenv: func(string) string { return "" }, stdout: &stderr, stderr: &stderr})
	if took := time.Since(start); took < 1500*time.Millisecond {
		t.Errorf("gave up after %v (%v), want to wait until stopped", took, err)
	}
	if !strings.Contains(stderr.String(), "waiting for event store") {
		t.Errorf("logged no wait:\n%s", stderr.String())
	}
}

// A flag that does not parse is told in one line on standard error, naming
// the flag and where the flags are listed, and the command exits with 2.
func TestBadFlagIsToldInOneLine(t *testing.T) {
	for _, args := range [][]string{
		{"count", "--since", "2026-99-01"},
		{"dev", "--nats-sync", "never"},
		{"query", "--no-such-flag"},
		{"events", "tail", "--from-seq", "x"},
		{"gateway", "--trusted-proxies", "10.0.0.0/33"},
	} {
		var out, errOut bytes.Buffer
		err := run(t.Context(), args, env{getenv: func(string) string { return "" }, stdout: &out, stderr: &errOut})
		i := slices.IndexFunc(args, func(a string) bool { return strings.HasPrefix(a, "--") })
		name, flagArg := strings.Join(args[:i], " "), strings.TrimLeft(args[i], "-")
		line := errOut.String()
		if code := exitCode(err); code != 2 || strings.Count(line, "\n") != 1 || !strings.HasSuffix(line, "\n") ||
			!strings.HasPrefix(line, "messages "+name+": ") || !strings.Contains(line, " --"+flagArg) ||
			!strings.Contains(line, "'messages "+name+" --help' lists the flags") {
			t.Errorf("messages %v: exit status %d, standard error %q; want 2 and one line naming --%s", args, code, line, flagArg)
		}
	}
}
