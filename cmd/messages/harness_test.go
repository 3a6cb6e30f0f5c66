package main

import (
	"context"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/messages-io/messages/internal/testkit"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// logWriter sends a command's output to the test log.
type logWriter struct{ t *testing.T }

func (w logWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(b), "\n"))
	return len(b), nil
}

// syncBuffer is a buffer one goroutine writes while another reads it.
type syncBuffer = testkit.Logs

// noEnv is an empty environment.
func noEnv(string) string { return "" }

// startCommand runs `messages args…` in-process with the environment getenv
// and the clock now (time.Now when nil), and returns the addresses it serves
// on once it is ready, and a function that stops it gracefully. It is
// stopped when the test ends, unless stopped before.
func startCommand(t *testing.T, getenv func(string) string, now func() time.Time, args ...string) (Addrs, func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan Addrs, 1)
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, args, env{
			getenv: getenv,
			stdout: io.Discard,
			stderr: logWriter{t},
			now:    now,
			ready:  func(a Addrs) { ready <- a },
		})
	}()
	var stopped bool
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("messages %s stopped with %v", args[0], err)
			}
		case <-time.After(30 * time.Second):
			t.Errorf("messages %s did not stop within 30s", args[0])
		}
	}
	t.Cleanup(stop)
	select {
	case a := <-ready:
		return a, stop
	case err := <-done:
		t.Fatalf("messages %s exited: %v", args[0], err)
	case <-time.After(60 * time.Second):
		t.Fatalf("messages %s not serving within 60s", args[0])
	}
	return Addrs{}, nil
}

// startDev runs `messages dev` in-process on dataDir and returns the API's
// base URL and a function that stops it gracefully.
func startDev(t *testing.T, dataDir string, now func() time.Time) (string, func()) {
	t.Helper()
	a, stop := startDevAddrs(t, dataDir, now)
	return "http://" + a.API, stop
}

// startDevAddrs is startDev returning every address the stack listens on.
func startDevAddrs(t *testing.T, dataDir string, now func() time.Time) (Addrs, func()) {
	t.Helper()
	return startCommand(t, noEnv, now, "dev", "--data-dir", dataDir, "--addr", "127.0.0.1:0",
		"--nats-listen", "127.0.0.1:0", "--mongo-listen", "127.0.0.1:0",
		"--partitions", "4", "--log-level", "warn")
}

// startRole runs `messages <role>` in-process on a free loopback port and
// returns the address it serves on; it is stopped gracefully when the test
// ends.
func startRole(t *testing.T, role string, args ...string) string {
	t.Helper()
	a, _ := startCommand(t, noEnv, nil, append([]string{role, "--addr", "127.0.0.1:0", "--log-level", "warn"}, args...)...)
	return a.API
}

// childEnv carries what a child process of the test binary is to run, as
// JSON, to the test that runs it there.
const childEnv = "MESSAGES_TEST_CHILD"

// process is a test of this binary running in a process of its own, so
// that it can be killed as a crash would.
type process struct {
	name  string
	cmd   *exec.Cmd
	stdin io.Closer
	done  chan struct{}
}

// startChild runs the test named test in a child process, with what it is
// to run in the environment; the test reads that with childConfig. The
// child ends when its standard input closes: it is stopped gracefully when
// the test ends, unless killed first.
func startChild(t *testing.T, name, test string, config any) *process {
	t.Helper()
	b, err := json.Marshal(config)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^"+test+"$", "-test.timeout=10m")
	cmd.Env = append(os.Environ(), childEnv+"="+string(b))
	cmd.Stdout, cmd.Stderr = logWriter{t}, logWriter{t}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	c := &process{name: name, cmd: cmd, stdin: stdin, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(c.done) }()
	t.Cleanup(func() {
		stdin.Close()
		select {
		case <-c.done:
		case <-time.After(30 * time.Second):
			t.Errorf("%s did not stop within 30s", name)
			_ = cmd.Process.Kill()
			<-c.done
		}
	})
	return c
}

// kill ends the process as a crash would: it hands nothing back, flushes
// nothing and acknowledges nothing.
func (c *process) kill(t *testing.T) {
	t.Helper()
	if err := c.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatalf("kill %s: %v", c.name, err)
	}
	<-c.done
}

// childConfig reads what a child process is to run into v, and returns a
// context that ends when the child's standard input closes. In the test
// process itself, which has nothing to run, it skips the test.
func childConfig(t *testing.T, v any) context.Context {
	t.Helper()
	config := os.Getenv(childEnv)
	if config == "" {
		t.Skip("runs only in a process started by another test")
	}
	if err := json.Unmarshal([]byte(config), v); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		cancel()
	}()
	return ctx
}

// TestRoleProcess is not a test of its own: it runs `messages` with the
// arguments startProcess gave, in a process of its own, until its standard
// input closes or it is killed. A first argument that names one of
// serverCommands runs that embedded server instead.
func TestRoleProcess(t *testing.T) {
	var args []string
	ctx := childConfig(t, &args)
	if serve, ok := serverCommands()[args[0]]; ok {
		if err := serve(ctx, args[1:]); err != nil {
			t.Fatal(err)
		}
		return
	}
	if err := run(ctx, args, env{getenv: noEnv, stdout: os.Stdout, stderr: os.Stderr}); err != nil {
		t.Fatal(err)
	}
}

// startProcess runs `messages args…` in a child process; it is stopped
// gracefully when the test ends, unless killed first.
func startProcess(t *testing.T, args ...string) *process {
	t.Helper()
	return startChild(t, "messages "+args[0], "TestRoleProcess", args)
}

// connectJetStream connects the test to the NATS servers at urls,
// comma-separated, retrying until they answer.
func connectJetStream(t *testing.T, urls string) jetstream.JetStream {
	t.Helper()
	nc, err := nats.Connect(urls, nats.RetryOnFailedConnect(true), nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js
}
