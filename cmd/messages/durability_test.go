package main

import (
	"context"
	"strings"
	"testing"
	"time"
)

// dev runs its NATS server with the fsync policy of --nats-sync and says
// at start what a 201 promises under it; a policy NATS does not have is a
// usage error.
func TestDevNATSSync(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "fsync every 2m0s: a 201 survives a crash of this process, not of the machine"},
		{[]string{"--nats-sync", "always"}, "fsync always: a 201 is on disk"},
		{[]string{"--nats-sync", "1s"}, "fsync every 1s:"},
	} {
		ctx, cancel := context.WithCancel(context.Background())
		var out syncBuffer
		done := make(chan error, 1)
		args := append([]string{"dev", "--data-dir", t.TempDir(), "--addr", "127.0.0.1:0", "--nats-listen", "127.0.0.1:0",
			"--mongo-listen", "127.0.0.1:0", "--log-level", "warn"}, tc.args...)
		go func() {
			done <- run(ctx, args, env{getenv: func(string) string { return "" }, stdout: &out, stderr: logWriter{t},
				ready: func(Addrs) { cancel() }})
		}()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("dev %v: %v", tc.args, err)
			}
		case <-time.After(60 * time.Second):
			cancel()
			t.Fatalf("dev %v did not serve and stop within 60s", tc.args)
		}
		cancel()
		if !strings.Contains(out.String(), tc.want) {
			t.Errorf("dev %v printed %q, want %q", tc.args, out.String(), tc.want)
		}
	}

	var out, errOut syncBuffer
	err := run(t.Context(), []string{"dev", "--nats-sync", "never"}, env{getenv: func(string) string { return "" }, stdout: &out, stderr: &errOut})
	if exitCode(err) != 2 || !strings.Contains(errOut.String(), "--nats-sync") || !strings.Contains(errOut.String(), "want always or a duration") {
		t.Errorf("dev --nats-sync never: %v (exit status %d), printed %q", err, exitCode(err), errOut.String())
	}
}
