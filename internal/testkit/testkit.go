// Package testkit starts the real servers the tests run against, an embedded
// NATS server with JetStream and an embedded MongoDB-wire server, each on a
// random port with its storage in the test's temporary directory, and waits
// for eventual consistency with a bounded poll.
package testkit

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/messages-io/messages/embedded"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// Logger is a logger that writes nothing.
func Logger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// NATS starts a NATS server with JetStream for the test; it is shut down when
// the test ends.
func NATS(t testing.TB) *server.Server {
	t.Helper()
	return NATSAt(t, "127.0.0.1:0", t.TempDir())
}

// NATSAt starts a NATS server on addr storing in dir, so that a test can stop
// a server and start it again in the same place.
func NATSAt(t testing.TB, addr, dir string) *server.Server {
	t.Helper()
	s, err := embedded.StartNATS(embedded.NATSConfig{Listen: addr, StoreDir: dir})
	if err != nil {
		t.Fatalf("start nats: %v", err)
	}
	t.Cleanup(func() {
		s.Shutdown()
		s.WaitForShutdown()
	})
	return s
}

// JetStream connects to s; the connection is closed when the test ends.
func JetStream(t testing.TB, s *server.Server) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	return JetStreamAt(t, s.ClientURL())
}

// JetStreamAt connects to the NATS server at url as the service does: no
// buffering while disconnected. The connection is closed when the test ends.
func JetStreamAt(t testing.TB, url string) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	nc, err := nats.Connect(url, nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond), nats.ReconnectBufSize(-1))
	if err != nil {
		t.Fatalf("connect nats: %v", err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatalf("jetstream: %v", err)
	}
	return nc, js
}

// Mongo starts a MongoDB-wire server for the test; it is stopped when the
// test ends.
func Mongo(t testing.TB) *embedded.Mongo {
	t.Helper()
	m, err := embedded.StartMongo(embedded.MongoConfig{Listen: "127.0.0.1:0", Dir: t.TempDir()})
	if err != nil {
		t.Fatalf("start mongo: %v", err)
	}
	t.Cleanup(m.Close)
	return m
}

// Database returns a fresh database, named after the test, on a MongoDB-wire
// server of its own; it is dropped when the test ends.
func Database(t testing.TB) *mongo.Database {
	t.Helper()
	return DatabaseOn(t, Mongo(t).URI())
}

// DatabaseOn returns a fresh database on the server at uri, dropped when the
// test ends.
func DatabaseOn(t testing.TB, uri string) *mongo.Database {
	t.Helper()
	client, err := mongo.Connect(options.Client().ApplyURI(uri).SetServerSelectionTimeout(2 * time.Second))
	if err != nil {
		t.Fatalf("connect mongo: %v", err)
	}
	name := strings.NewReplacer("/", "_", " ", "_", ".", "_").Replace(t.Name())
	if len(name) > 40 {
		name = name[:40]
	}
	db := client.Database(fmt.Sprintf("t_%s_%d", name, time.Now().UnixNano()%1e6))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = db.Drop(ctx)
		_ = client.Disconnect(ctx)
	})
	return db
}

// Eventually calls f every interval until it returns nil, and fails the test
// with f's last error if that has not happened within timeout.
func Eventually(t testing.TB, timeout, interval time.Duration, f func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not within %v: %v", timeout, err)
		}
		time.Sleep(interval)
	}
}

// Context returns a context canceled when the test ends.
//
// Deprecated: t.Context() is the test's own context; it ends before the
// test's cleanups run.
func Context(t testing.TB) context.Context {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	return ctx
}

// CheckProblem fails the test unless resp is an RFC 9457 problem document
// for status, with a type, the status text as title, the status and a
// detail, and returns its fields.
func CheckProblem(t testing.TB, resp *http.Response, body []byte, status int) map[string]any {
	t.Helper()
	if resp.StatusCode != status {
		t.Fatalf("status %d, want %d; body %s", resp.StatusCode, status, body)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/problem+json" {
		t.Errorf("Content-Type %q, want application/problem+json", ct)
	}
	var p map[string]any
	if err := json.Unmarshal(body, &p); err != nil {
		t.Fatalf("problem %s: %v", body, err)
	}
	if typ, _ := p["type"].(string); typ == "" {
		t.Errorf("problem type %v, want a URI reference", p["type"])
	}
	if title, _ := p["title"].(string); title != http.StatusText(status) {
		t.Errorf("problem title %v, want %q", p["title"], http.StatusText(status))
	}
	if st, _ := p["status"].(float64); int(st) != status {
		t.Errorf("problem status %v, want %d", p["status"], status)
	}
	if detail, _ := p["detail"].(string); strings.TrimSpace(detail) == "" {
		t.Errorf("problem detail %v, want words saying what went wrong", p["detail"])
	}
	return p
}

// Clock is a clock the test sets or moves; its zero value reads the zero
// time.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// NewClock returns a clock reading t.
func NewClock(t time.Time) *Clock { return &Clock{t: t} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Set moves the clock to t.
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

// Add moves the clock on by d.
func (c *Clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}
