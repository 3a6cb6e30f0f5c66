package client_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/messages-io/messages/client"
	"github.com/messages-io/messages/internal/devstack"
)

// The service the examples and tests call, started once for the package:
// baseURL trusts X-User-ID as `messages dev` does, gatewayURL takes the
// bearer tokens of devstack.
var (
	baseURL    string
	gatewayURL string
	stack      *devstack.Stack
)

func TestMain(m *testing.M) {
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	dir, err := os.MkdirTemp("", "client-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	stack, err = devstack.Start(dir, slog.New(slog.DiscardHandler))
	if err != nil {
		fmt.Fprintln(os.Stderr, "start the service:", err)
		return 1
	}
	defer stack.Close()
	baseURL, gatewayURL = stack.URL, stack.GatewayURL
	if err := seed(); err != nil {
		fmt.Fprintln(os.Stderr, "seed the examples' messages:", err)
		return 1
	}
	return m.Run()
}

// seed posts the messages the examples list and count, and waits until the
// read model shows them.
func seed() error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := client.New(baseURL, client.WithUserID("alice"))
	if err != nil {
		return err
	}
	for _, text := range []string{"First light", "Coffee, then code", "Ship it"} {
		if _, err := c.Post(ctx, client.NewMessage{Text: text, Tag: "#Morning"}); err != nil {
			return err
		}
	}
	for {
		n, err := c.Count(ctx, client.Filter{Tag: "morning"})
		if err == nil && n == 3 {
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("count = %d, %v; want 3", n, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
