// Package client is a typed Go client of the messages HTTP API, v1.
//
// A Client calls either the gateway, with a bearer token (WithToken or
// WithTokenSource), or in development the services of `messages dev`
// directly, naming the user itself (WithUserID).
//
//	c, err := client.New("http://localhost:8080", client.WithUserID("alice"))
//	m, err := c.Post(ctx, client.NewMessage{Text: "Hello", Tag: "go"})
//	for m, err := range c.List(ctx, client.Filter{Tag: "go", Since: client.Day(2026, 12, 1)}) { … }
//
// # Errors
//
// An answer other than success is returned as a *Problem, the RFC 9457
// problem document the service sent (or one made from the status when the
// body was not one), with the request id and any Retry-After. Reach it with
// errors.As.
//
// # Retries
//
// Every call is sent again after a connection error, 502, 503 or 504, as the
// RetryPolicy allows: after the wait the answer's Retry-After asks for, or
// else after a backoff, and never past the context's deadline. A 4xx is
// never sent again. Reads are safe to repeat. A post is too, because every
// post carries an Idempotency-Key, the caller's or one generated for the
// call and kept across its attempts: the service stores one message for the
// user and key within its duplicate window, and answers a repeat with that
// message.
//
// # Reading your own writes
//
// The read side is eventually consistent: a message posted shows in reads
// a moment later. Each post's answer carries a consistency token, and a
// read that sends it back reflects that write. A client made WithSession
// does that by itself: its reads carry the tokens of its posts that no read
// has yet confirmed. ConsistencyToken and ReadAfter do the same for one
// call, for tokens carried elsewhere.
//
//	c, err := client.New(url, client.WithToken(tok), client.WithSession(&client.Session{}))
//	m, err := c.Post(ctx, client.NewMessage{Text: "Hello", Tag: "go"})
//	m, err = c.Get(ctx, m.ID) // found, at once
//
// # Live streams
//
// Subscribe follows the live stream of the messages posted under a tag, as
// they become visible to reads, reconnecting after a broken connection with
// Last-Event-ID so that nothing is missed or repeated.
//
// # Pages
//
// List is an iterator. It asks for the first page when the loop starts and
// for each next page, by the cursor of the answer's Link header, only when
// the loop has consumed the one before; breaking out of the loop asks for
// nothing more.
package client
