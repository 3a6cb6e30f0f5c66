// Command hello posts three messages with the Go client, lists them across
// pages, counts them and reads one back: from `make run`, or through `make
// gateway` when MESSAGES_TOKEN holds a token. MESSAGES_URL overrides where.
package main

import (
	"context"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/messages-io/messages/client"
)

func main() {
	url, who := "http://localhost:8080", client.WithUserID("alice")
	if tok := os.Getenv("MESSAGES_TOKEN"); tok != "" {
		url, who = "http://localhost:8000", client.WithToken(tok)
	}
	if u := os.Getenv("MESSAGES_URL"); u != "" {
		url = u
	}
	// A session: this program's reads show its own posts at once.
	c, err := client.New(url, who, client.WithSession(&client.Session{}))
	check(err)
	ctx := context.Background()
	var last client.Message
	for _, text := range []string{"Hello", "from", "Go"} {
		last, err = c.Post(ctx, client.NewMessage{Text: text, Tag: "#Hello"})
		check(err)
	}
	today := client.DayOf(time.Now())
	for m, err := range c.List(ctx, client.Filter{Tag: "hello", Since: today, PageSize: 2}) {
		check(err)
		fmt.Println(m.CreatedAt.Format(time.TimeOnly), m.UserID, m.Text)
	}
	n, err := c.Count(ctx, client.Filter{Tag: "hello", Since: today, Until: today})
	check(err)
	m, err := c.Get(ctx, last.ID)
	check(err)
	fmt.Printf("%d today under #hello; the last: %q\n", n, m.Text)
}

func check(err error) {
	if err != nil {
		log.Fatal(err)
	}
}
