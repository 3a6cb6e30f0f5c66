package client_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/messages-io/messages/client"
)

func Example() {
	ctx := context.Background()
	// baseURL is where `messages dev` serves, e.g. http://localhost:8080.
	c, err := client.New(baseURL, client.WithUserID("alice"))
	if err != nil {
		log.Fatal(err)
	}
	m, err := c.Post(ctx, client.NewMessage{Text: "Hello from Go", Tag: "#Greetings"})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(m.UserID, m.Tag, m.Text)
	// Output: alice greetings Hello from Go
}

func ExampleNew_gateway() {
	// gatewayURL is where `messages gateway` serves, e.g.
	// http://localhost:8000; the token comes from your identity provider, or
	// in development from `messages token --user alice`.
	token, err := stack.Token("alice")
	if err != nil {
		log.Fatal(err)
	}
	c, err := client.New(gatewayURL, client.WithToken(token))
	if err != nil {
		log.Fatal(err)
	}
	n, err := c.Count(context.Background(), client.Filter{Tag: "morning"})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(n)
	// Output: 3
}

func ExampleClient_List() {
	c, err := client.New(baseURL, client.WithUserID("alice"))
	if err != nil {
		log.Fatal(err)
	}
	// Two messages a page: the loop asks for the next page when it needs it.
	f := client.Filter{Tag: "morning", Since: client.DayOf(time.Now()), PageSize: 2}
	for m, err := range c.List(context.Background(), f) {
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(m.Text)
	}
	// Output:
	// Ship it
	// Coffee, then code
	// First light
}

func ExampleClient_Count() {
	c, err := client.New(baseURL, client.WithUserID("alice"))
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	today := client.DayOf(time.Now())
	n, err := c.Count(ctx, client.Filter{Tag: "MORNING", Since: today, Until: today})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("today:", n)
	// An instant as the end is exclusive.
	n, err = c.Count(ctx, client.Filter{Tag: "morning", Until: client.Instant(time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC))})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("before 2020:", n)
	// Output:
	// today: 3
	// before 2020: 0
}

func ExampleClient_Post_idempotencyKey() {
	c, err := client.New(baseURL, client.WithUserID("alice"))
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	// The same key, by this program or another, within the service's
	// duplicate window: one message.
	first, err := c.Post(ctx, client.NewMessage{Text: "Exactly once", Tag: "orders"}, client.IdempotencyKey("order-1234"))
	if err != nil {
		log.Fatal(err)
	}
	again, err := c.Post(ctx, client.NewMessage{Text: "Exactly once", Tag: "orders"}, client.IdempotencyKey("order-1234"))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(first.ID == again.ID)
	// Output: true
}

func ExampleProblem() {
	c, err := client.New(baseURL, client.WithUserID("alice"))
	if err != nil {
		log.Fatal(err)
	}
	_, err = c.Post(context.Background(), client.NewMessage{Text: "Hi", Tag: "no spaces"})
	var p *client.Problem
	if errors.As(err, &p) {
		fmt.Println(p.Status, p.Title)
		fmt.Println(p.Detail)
	}
	_, err = c.Get(context.Background(), "01HQ3Z5Y8K6J9M2N4P7R0S1T2V")
	if errors.As(err, &p) {
		fmt.Println(p.Status, p.Title)
	}
	// Output:
	// 400 Bad Request
	// tag must be 1-64 characters of A-Z a-z 0-9 _ - (one leading # allowed)
	// 404 Not Found
}

func ExampleWithSession() {
	// A session: what this client posts, its reads show at once.
	c, err := client.New(baseURL, client.WithUserID("alice"), client.WithSession(&client.Session{}))
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	m, err := c.Post(ctx, client.NewMessage{Text: "Read your writes", Tag: "session"})
	if err != nil {
		log.Fatal(err)
	}
	got, err := c.Get(ctx, m.ID)
	if err != nil {
		log.Fatal(err)
	}
	n, err := c.Count(ctx, client.Filter{Tag: "session"})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(got.Text, n)
	// Output: Read your writes 1
}

func ExampleClient_Subscribe() {
	c, err := client.New(baseURL, client.WithUserID("alice"))
	if err != nil {
		log.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// Start after this post: the stream sends what comes next.
	var start string
	if _, err := c.Post(ctx, client.NewMessage{Text: "Before", Tag: "live"}, client.ConsistencyToken(&start)); err != nil {
		log.Fatal(err)
	}
	for _, text := range []string{"First", "Second"} {
		if _, err := c.Post(ctx, client.NewMessage{Text: text, Tag: "live"}); err != nil {
			log.Fatal(err)
		}
	}
	n := 0
	for e, err := range c.Subscribe(ctx, "live", client.ResumeAfter(start)) {
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(e.UserID, e.Text)
		if n++; n == 2 {
			break
		}
	}
	// Output:
	// alice First
	// alice Second
}
