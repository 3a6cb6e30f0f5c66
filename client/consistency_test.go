package client_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/messages-io/messages/client"
)

// A read given the consistency tokens of posts reflects them at once.
func TestReadAfter(t *testing.T) {
	ctx := context.Background()
	for _, base := range []string{baseURL, gatewayURL} {
		c := newClient(t, base, "ryw")
		tag := uniqueTag(t)
		var tokens []string
		for n := 1; n <= 20; n++ {
			var tok string
			m, err := c.Post(ctx, client.NewMessage{Text: fmt.Sprint("ryw ", n), Tag: tag}, client.ConsistencyToken(&tok))
			if err != nil {
				t.Fatal(err)
			}
			if tok == "" {
				t.Fatal("a post without a consistency token")
			}
			tokens = append(tokens, tok)
			got, err := c.Count(ctx, client.Filter{Tag: tag}, client.ReadAfter(tok))
			if err != nil || got != int64(n) {
				t.Fatalf("count after post %d: %d, %v", n, got, err)
			}
			if _, err := c.Get(ctx, m.ID, client.ReadAfter(tok)); err != nil {
				t.Fatalf("get after post %d: %v", n, err)
			}
		}
		n := 0
		for _, err := range c.List(ctx, client.Filter{Tag: tag}, client.ReadAfter(tokens...)) {
			if err != nil {
				t.Fatal(err)
			}
			n++
		}
		if n != len(tokens) {
			t.Errorf("listed %d, want %d", n, len(tokens))
		}
	}
}
