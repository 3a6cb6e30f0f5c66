// Package devstack runs every role of the service in one process on embedded
// NATS and FerretDB, with a gateway in front, for the examples and tests of
// what calls the HTTP API from outside: the Go client and the API
// documentation. It wires the roles as `messages dev` and `messages gateway`
// do, on random ports.
package devstack

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"path/filepath"
	"sync"
	"time"

	"github.com/messages-io/messages/api"
	"github.com/messages-io/messages/dispatcher"
	"github.com/messages-io/messages/embedded"
	"github.com/messages-io/messages/eventstore"
	"github.com/messages-io/messages/gateway"
	"github.com/messages-io/messages/position"
	"github.com/messages-io/messages/readmodel"
	"github.com/messages-io/messages/readmodel/queryapi"
	"github.com/messages-io/messages/reducers"
	"github.com/messages-io/messages/web"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// Secret is the HS256 secret of the stack's gateway.
const Secret = "devstack-secret-devstack-secret-0123456789"

// Stack is a running service.
type Stack struct {
	// URL is the base URL of the services, which trust X-User-ID.
	URL string
	// GatewayURL is the base URL of the gateway in front of them, which
	// takes tokens signed with Secret.
	GatewayURL string

	cancel  context.CancelFunc
	wg      sync.WaitGroup
	servers []*web.Server
	closers []func()
}

// Start runs the service with its data under dir until Close. log receives
// the roles' logs.
func Start(dir string, log *slog.Logger) (st *Stack, err error) {
	ctx, cancel := context.WithCancel(context.Background())
	s := &Stack{cancel: cancel}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	ns, err := embedded.StartNATS(embedded.NATSConfig{Listen: "127.0.0.1:0", StoreDir: filepath.Join(dir, "nats")})
	if err != nil {
		return nil, err
	}
	s.closers = append(s.closers, func() { ns.Shutdown(); ns.WaitForShutdown() })
	mg, err := embedded.StartMongo(embedded.MongoConfig{Listen: "127.0.0.1:0", Dir: filepath.Join(dir, "mongo"), Logger: log})
	if err != nil {
		return nil, err
	}
	s.closers = append(s.closers, mg.Close)
	events, err := s.openEvents(ctx, ns)
	if err != nil {
		return nil, err
	}
	rm, err := s.openReadModel(ctx, mg.URI())
	if err != nil {
		return nil, err
	}

	reg := prometheus.NewRegistry()
	rt := web.NewRouter(log, reg, reg, map[string]web.Check{"events": events.Ping, "readmodel": rm.Ping})
	write, err := dispatcher.New(events, log, reg, dispatcher.Config{})
	if err != nil {
		return nil, err
	}
	write.Routes(rt)
	feed := queryapi.NewFeed(events, rm, log, queryapi.FeedConfig{Registerer: reg})
	s.wg.Go(func() { _ = feed.Run(ctx) })
	queryapi.New(rm, log, queryapi.Config{Layout: events.Layout(), Registerer: reg, Streams: queryapi.StreamConfig{Feed: feed}}).Routes(rt)
	api.Routes(rt)
	if s.URL, err = s.listen(rt.Root()); err != nil {
		return nil, err
	}
	if err := s.startReducers(ctx, events, rm, log, reg); err != nil {
		return nil, err
	}

	greg := prometheus.NewRegistry()
	gw, err := gateway.New(log, greg, gateway.Config{
		Dispatchers: []string{s.URL}, Queries: []string{s.URL},
		Secret: []byte(Secret), HealthInterval: 200 * time.Millisecond,
	})
	if err != nil {
		return nil, err
	}
	if s.GatewayURL, err = s.listen(gw.Handler(web.NewRouter(log, greg, greg, gw.Checks()))); err != nil {
		return nil, err
	}
	s.wg.Go(func() { _ = gw.Run(ctx) })
	if err := s.waitReady(ctx, s.GatewayURL); err != nil {
		return nil, err
	}
	return s, nil
}

// Token returns a token for user that the stack's gateway takes.
func (s *Stack) Token(user string) (string, error) {
	return gateway.Token{Subject: user, TTL: time.Hour}.SignHS256([]byte(Secret), time.Now())
}

// Close stops the service and waits for it.
func (s *Stack) Close() {
	for _, srv := range s.servers {
		_ = srv.Shutdown(5 * time.Second)
	}
	s.servers = nil
	s.cancel()
	s.wg.Wait()
	for i := len(s.closers) - 1; i >= 0; i-- {
		s.closers[i]()
	}
	s.closers = nil
}

func (s *Stack) openEvents(ctx context.Context, ns *server.Server) (*eventstore.Store, error) {
	nc, err := nats.Connect(ns.ClientURL(), nats.ReconnectBufSize(-1))
	if err != nil {
		return nil, err
	}
	s.closers = append(s.closers, nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, err
	}
	octx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	return eventstore.Open(octx, js, eventstore.Config{Partitions: 4, DuplicateWindow: time.Minute})
}

func (s *Stack) openReadModel(ctx context.Context, uri string) (*readmodel.Live, error) {
	mc, err := mongo.Connect(options.Client().ApplyURI(uri).SetServerSelectionTimeout(5 * time.Second))
	if err != nil {
		return nil, err
	}
	s.closers = append(s.closers, func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = mc.Disconnect(ctx)
	})
	octx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	gens, err := readmodel.OpenGenerations(octx, mc.Database("messages"))
	if err != nil {
		return nil, err
	}
	return readmodel.NewLive(octx, gens, slog.New(slog.DiscardHandler))
}

func (s *Stack) startReducers(ctx context.Context, events *eventstore.Store, rm *readmodel.Live, log *slog.Logger, reg prometheus.Registerer) error {
	metrics := reducers.NewMetrics(reg)
	// FerretDB's SQLite takes one writer at a time.
	writes := make(chan struct{}, 1)
	rm.Notify(func(n position.Folded) { _ = events.PublishFolded(n) })
	for p := range events.Partitions() {
		cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		cons, err := events.Consumer(cctx, p, eventstore.ConsumerConfig{})
		cancel()
		if err != nil {
			return err
		}
		red, err := reducers.New(cons, func() reducers.Sink { return rm.Current() }, log, metrics, reducers.Config{Writes: writes})
		if err != nil {
			return err
		}
		s.wg.Go(func() { _ = red.Run(ctx) })
	}
	return nil
}

// listen serves h on a random port until Close and returns its base URL.
func (s *Stack) listen(h http.Handler) (string, error) {
	srv, err := web.Listen("127.0.0.1:0", h)
	if err != nil {
		return "", err
	}
	s.wg.Go(func() { _ = srv.Serve() })
	s.servers = append(s.servers, srv)
	return "http://" + srv.Addr().String(), nil
}

// waitReady waits until the gateway finds its upstreams ready.
func (s *Stack) waitReady(ctx context.Context, base string) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		res, err := http.Get(base + "/readyz")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return nil
			}
			err = errors.New(res.Status)
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("gateway not ready within 30s: %w", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
