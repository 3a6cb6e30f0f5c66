package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/messages-io/messages/api"
	"github.com/messages-io/messages/dispatcher"
	"github.com/messages-io/messages/eventstore"
	"github.com/messages-io/messages/internal/backoff"
	"github.com/messages-io/messages/position"
	"github.com/messages-io/messages/readmodel"
	"github.com/messages-io/messages/readmodel/queryapi"
	"github.com/messages-io/messages/reducers"
	"github.com/messages-io/messages/web"
	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// roles selects the parts of the service one process runs.
type roles struct {
	dispatch, reduce, query bool
}

func (r roles) String() string {
	var names []string
	if r.dispatch {
		names = append(names, "dispatcher")
	}
	if r.reduce {
		names = append(names, "reducer")
	}
	if r.query {
		names = append(names, "query")
	}
	return strings.Join(names, "+")
}

// serviceFlags configure the roles of one process.
type serviceFlags struct {
	log        logFlags
	server     serverFlags
	stream     streamFlags
	store      storeFlags
	dispatch   dispatcher.Config
	query      queryapi.Config
	reducer    reducers.Config
	consumer   eventstore.ConsumerConfig
	onPoison   string
	stallAfter time.Duration
	writes     writeConcurrency
}

// register adds the flags of the given roles; withURLs adds the addresses of
// NATS and MongoDB, which dev runs itself.
func (s *serviceFlags) register(fs *flag.FlagSet, r roles, addr string, withURLs bool) {
	s.log.register(fs)
	s.server.register(fs, addr)
	s.stream.register(fs, withURLs)
	if r.reduce || r.query {
		s.store.register(fs, withURLs)
	}
	dispatch, query, reducer, consumer := dispatcher.DefaultConfig(), queryapi.DefaultConfig(), reducers.DefaultConfig(), eventstore.DefaultConsumerConfig()
	if r.dispatch {
		fs.DurationVar(&s.dispatch.AppendTimeout, "append-timeout", dispatch.AppendTimeout, "how long a POST waits for the event store before answering 503")
	}
	if r.query {
		fs.DurationVar(&s.query.Timeout, "query-timeout", query.Timeout, "how long a GET waits for the read model before answering 503")
		fs.DurationVar(&s.query.ConsistencyWait, "consistency-wait", query.ConsistencyWait,
			"how long a GET with a Consistency-Token waits for the read model to fold it before answering 503; at most 10s")
		fs.IntVar(&s.query.Streams.PerUser, "streams-per-user", 8, "live streams (text/event-stream) one user may hold open at once")
		fs.IntVar(&s.query.Streams.Total, "streams", 10000, "live streams this process holds open at once")
	}
	if r.reduce {
		fs.IntVar(&s.reducer.BatchSize, "batch-size", reducer.BatchSize, "most events a reducer folds in one write")
		fs.StringVar(&s.consumer.Name, "consumer", consumer.Name, "name prefix of the durable consumers, one per partition")
		fs.DurationVar(&s.consumer.AckWait, "ack-wait", consumer.AckWait, "how long an unacknowledged event waits before redelivery")
		fs.DurationVar(&s.consumer.PinnedTTL, "takeover-after", consumer.PinnedTTL,
			"how long a reducer may fall silent before another takes its partition over; a reducer restarted after a crash waits this long (more than 2s)")
		fs.IntVar(&s.reducer.MaxAttempts, "max-attempts", reducer.MaxAttempts, "times an event that cannot be folded is tried before it is parked")
		fs.DurationVar(&s.stallAfter, "stall-after", time.Minute, "a partition with events waiting and no progress for this long fails /readyz")
		fs.StringVar(&s.onPoison, "on-poison", "park", "for an event that cannot be folded: park it in the dead-letter stream and move on, or halt the partition")
		s.writes = autoWrites
		fs.Var(&s.writes, "write-concurrency",
			"partitions of this process that write a batch at once, 0 for all of them; auto: 1 on FerretDB, whose SQLite takes one writer at a time, else all")
	}
}

// validate reports the first flag of the roles r that cannot work, before
// any server is asked.
func (s serviceFlags) validate(r roles) error {
	if w := s.query.ConsistencyWait; r.query && (w <= 0 || w > queryapi.MaxConsistencyWait) {
		return fmt.Errorf("--consistency-wait %s: want more than 0 and at most %s", w, queryapi.MaxConsistencyWait)
	}
	if r.query && (s.query.Streams.PerUser < 1 || s.query.Streams.Total < 1) {
		return errors.New("--streams-per-user and --streams: want at least 1")
	}
	if !r.dispatch && !r.reduce {
		return nil
	}
	if err := s.stream.cfg.Validate(); err != nil {
		return err
	}
	// A POST whose acknowledgement was lost is published again with the
	// same message id until its append timeout; only the duplicate window
	// makes that store one event.
	if w := s.stream.cfg.DuplicateWindow; r.dispatch && w != 0 && w <= s.dispatch.AppendTimeout {
		return fmt.Errorf("--dedup-window %s must be longer than --append-timeout %s", s.stream.cfg.DuplicateWindow, s.dispatch.AppendTimeout)
	}
	return nil
}

// service is one process's running roles and the connections they share.
type service struct {
	log      *slog.Logger
	reg      *prometheus.Registry
	checks   map[string]web.Check
	nc       *nats.Conn
	ncClosed chan struct{} // closed once nc is closed
	events   *eventstore.Store
	mongo    *mongo.Client
	rm       *readmodel.Live
	reducers []*reducers.Reducer // the reducer of partition i at index i
	feed     *queryapi.Feed
	metrics  *reducers.Metrics
}

// serve runs the roles r until ctx ends, then shuts them down in order: the
// HTTP server stops taking requests and finishes those in flight, reducers
// finish and acknowledge their batch, and connections close last.
func serve(ctx context.Context, log *slog.Logger, r roles, f serviceFlags, natsURL, mongoURI string, e env, addrs Addrs) error {
	s := &service{log: log, reg: prometheus.NewRegistry(), checks: map[string]web.Check{}}
	s.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	defer s.close()
	if r.dispatch || r.reduce {
		if err := s.openEvents(ctx, natsURL, eventsConfig(f, r), r); err != nil {
			return err
		}
	}
	if r.query || r.reduce {
		if err := s.openReadModel(ctx, mongoURI, f.store.db); err != nil {
			return err
		}
	}
	rt := web.NewRouter(log, s.reg, s.reg, s.checks)
	if f.server.pprof {
		rt.Profiling()
	}
	if r.dispatch {
		if err := s.routeDispatcher(rt, f.dispatch, e); err != nil {
			return err
		}
	}
	if r.query {
		f.query.Layout = s.layout(f.stream.cfg)
		f.query.Registerer = s.reg
		if err := s.openFeed(natsURL, f.stream.cfg, &f.query); err != nil {
			return err
		}
		queryapi.New(s.rm, log.With("component", "query"), f.query).Routes(rt)
		api.Routes(rt) // the OpenAPI document, beside the API it describes
	}
	if r.reduce {
		if err := s.startReducers(ctx, f); err != nil {
			return err
		}
	}
	g, err := serveHTTP(ctx, log, f.server, rt.Root())
	if err != nil {
		return err
	}
	addrs.API = g.Addr
	log.Info("serving", "roles", r.String(), "addr", addrs.API)
	if e.ready != nil {
		e.ready(addrs)
	}
	if s.rm != nil {
		// Follow a switch of the read model's generation by a replay.
		fctx, stopFollowing := context.WithCancel(ctx)
		defer stopFollowing()
		g.Add(func() error { return s.rm.Follow(fctx, time.Second) }, func(error) { stopFollowing() })
	}
	if s.feed != nil {
		// Live streams close at once when the process is told to stop, so
		// that their clients reconnect elsewhere.
		fctx, stopFeed := context.WithCancel(ctx)
		defer stopFeed()
		g.Add(func() error { return s.feed.Run(fctx) }, func(error) { stopFeed() })
	}
	if len(s.reducers) > 0 {
		// Reducers stop on their own context: they finish their batch after
		// the process is told to stop.
		rctx, stopReducers := context.WithCancel(context.WithoutCancel(ctx))
		defer stopReducers()
		for p, red := range s.reducers {
			g.Add(func() error {
				// A partition handed back is no longer reported from here.
				defer s.metrics.Release(p)
				return red.Run(rctx)
			}, func(error) { stopReducers() })
		}
	}
	err = g.Run()
	log.Info("stopped", "roles", r.String())
	return err
}

// eventsConfig is the stream the roles r open. A dispatcher repeats a POST's
// append until its timeout, so the stream's window must be longer.
func eventsConfig(f serviceFlags, r roles) eventstore.Config {
	cfg := f.stream.cfg
	if r.dispatch {
		cfg.WindowAbove = f.dispatch.AppendTimeout
	}
	return cfg
}

// routeDispatcher adds the dispatcher's routes to rt.
func (s *service) routeDispatcher(rt *web.Router, cfg dispatcher.Config, e env) error {
	cfg.Now = e.now
	writes, err := dispatcher.New(s.events, s.log.With("component", "dispatcher"), s.reg, cfg)
	if err != nil {
		return err
	}
	writes.Routes(rt)
	return nil
}

func (s *service) openEvents(ctx context.Context, url string, cfg eventstore.Config, r roles) error {
	s.ncClosed = make(chan struct{})
	nc, js, err := dialJetStream(url, r.String(),
		nats.RetryOnFailedConnect(true),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250*time.Millisecond),
		// While disconnected, an append fails at once instead of waiting in
		// a client buffer to be sent after the caller was answered 503.
		nats.ReconnectBufSize(-1),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				s.log.Warn("nats disconnected", "err", err)
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) { s.log.Info("nats reconnected", "url", nc.ConnectedUrlRedacted()) }),
		nats.ClosedHandler(func(*nats.Conn) { close(s.ncClosed) }),
	)
	if err != nil {
		return err
	}
	s.nc = nc
	s.events, err = retryStart(ctx, s.log, "event store at "+url, func(ctx context.Context) (*eventstore.Store, error) {
		return eventstore.Open(ctx, js, cfg)
	})
	if err != nil {
		return err
	}
	s.checks["events"] = func(ctx context.Context) error {
		if !nc.IsConnected() {
			return errors.New("nats: " + nc.Status().String())
		}
		return s.events.Ping(ctx)
	}
	return nil
}

func (s *service) openReadModel(ctx context.Context, uri, db string) error {
	client, err := mongo.Connect(options.Client().ApplyURI(uri).
		SetAppName("messages").
		SetServerSelectionTimeout(2 * time.Second).
		SetTimeout(10 * time.Second))
	if err != nil {
		return fmt.Errorf("mongodb %s: %w", uri, err)
	}
	s.mongo = client
	s.rm, err = retryStart(ctx, s.log, "read model at "+uri, func(ctx context.Context) (*readmodel.Live, error) {
		gens, err := readmodel.OpenGenerations(ctx, client.Database(db))
		if err != nil {
			return nil, err
		}
		return readmodel.NewLive(ctx, gens, s.log.With("component", "readmodel"))
	})
	if err != nil {
		return err
	}
	s.checks["readmodel"] = s.rm.Ping
	if old, err := s.rm.Current().Unslotted(ctx); err == nil && old {
		s.log.Warn("the read model was folded before slots existed: lists are empty and counts with RFC 3339 edges are 0 until `messages replay` rebuilds it",
			"generation", s.rm.Current().Generation())
	}
	return nil
}

func (s *service) startReducers(ctx context.Context, f serviceFlags) error {
	switch f.onPoison {
	case "park":
		f.reducer.Park = s.events.Park
	case "halt":
	default:
		return fmt.Errorf("--on-poison %q: want park or halt", f.onPoison)
	}
	writes := int(f.writes)
	if f.writes == autoWrites {
		writes = 0
		if s.singleWriter(ctx) {
			writes = 1
		}
	}
	if writes > 0 {
		f.reducer.Writes = make(chan struct{}, writes)
	}
	// Live streams learn of each batch folded from its notice, at once and
	// without reading its messages back.
	s.rm.Notify(func(n position.Folded) { _ = s.events.PublishFolded(n) })
	s.log.Info("reducer writes", "write_concurrency", writes, "takeover_after", f.consumer.PinnedTTL)
	metrics := reducers.NewMetrics(s.reg)
	for p := range s.events.Partitions() {
		cons, err := retryStart(ctx, s.log, fmt.Sprintf("consumer of partition %d", p), func(ctx context.Context) (*eventstore.PartitionConsumer, error) {
			return s.events.Consumer(ctx, p, f.consumer)
		})
		if err != nil {
			return err
		}
		red, err := reducers.New(cons, func() reducers.Sink { return s.rm.Current() }, s.log, metrics, f.reducer)
		if err != nil {
			return err
		}
		metrics.Serve(p)
		s.reducers = append(s.reducers, red)
	}
	s.metrics = metrics
	s.checks["reducers"] = func(context.Context) error {
		var stalled []string
		for _, red := range s.reducers {
			if err := red.Stalled(f.stallAfter); err != nil {
				stalled = append(stalled, err.Error())
			}
		}
		if len(stalled) > 0 {
			return fmt.Errorf("stalled: %s", strings.Join(stalled, "; "))
		}
		return nil
	}
	return nil
}

// writeConcurrency is how many partitions of a process write at once: a
// number, 0 for all, or autoWrites.
type writeConcurrency int

// autoWrites chooses the write concurrency from the store: one writer on
// FerretDB, all partitions on MongoDB.
const autoWrites writeConcurrency = -1

func (w *writeConcurrency) String() string {
	if *w == autoWrites {
		return "auto"
	}
	return strconv.Itoa(int(*w))
}

func (w *writeConcurrency) Set(v string) error {
	if v == "auto" {
		*w = autoWrites
		return nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return errors.New("want auto or a number, 0 or more")
	}
	*w = writeConcurrency(n)
	return nil
}

// singleWriter tells whether the read model's server is FerretDB, which
// names itself in its buildInfo answer: its SQLite backend takes one writer
// at a time, so that partitions writing at once only contend for the lock.
func (s *service) singleWriter(ctx context.Context) bool {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	var info bson.M
	if err := s.mongo.Database("admin").RunCommand(ctx, bson.D{{Key: "buildInfo", Value: 1}}).Decode(&info); err != nil {
		s.log.Warn("cannot tell the read model's server; every partition writes at once", "err", err)
		return false
	}
	_, ferret := info["ferretdbVersion"]
	return ferret
}

func (s *service) close() {
	if s.nc != nil {
		// Drain flushes the acknowledgements of the last batches.
		if err := s.nc.Drain(); err != nil {
			s.nc.Close()
		}
		select {
		case <-s.ncClosed:
		case <-time.After(10 * time.Second):
			s.nc.Close()
		}
	}
	if s.mongo != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = s.mongo.Disconnect(ctx)
	}
}

// retryStart calls open until it succeeds or ctx ends, so that a role may
// start before the servers it depends on. Only unavailability is waited out:
// an error that says the request itself is wrong ends the wait at once.
func retryStart[T any](ctx context.Context, log *slog.Logger, what string, open func(context.Context) (T, error)) (T, error) {
	v, err := backoff.Retry(ctx, backoff.Policy{Min: 250 * time.Millisecond, Max: 5 * time.Second}, func(ctx context.Context) (T, error) {
		octx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		v, err := open(octx)
		if permanent(err) {
			return v, backoff.Permanent(err)
		}
		return v, err
	}, func(err error, wait time.Duration) {
		log.Warn("waiting for "+what, "err", err, "retry_in", wait)
	})
	if err != nil {
		return v, fmt.Errorf("%s: %w", what, err)
	}
	return v, nil
}

// permanent tells the errors of opening a dependency that no retry can cure:
// a configuration no stream can take, a stream laid out otherwise, or an
// answer of JetStream that is not about its availability.
func permanent(err error) bool {
	return errors.Is(err, eventstore.ErrInvalidConfig) ||
		errors.Is(err, eventstore.ErrIncompatibleStream) ||
		errors.Is(err, eventstore.ErrRejected)
}
