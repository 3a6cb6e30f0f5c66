package embedded

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/FerretDB/FerretDB/ferretdb"
	"github.com/nats-io/nats-server/v2/server"
)

// NATSConfig configures an embedded NATS server.
type NATSConfig struct {
	// Listen is the client address as host:port; port 0 picks a free one.
	Listen string
	// StoreDir holds the JetStream file store.
	StoreDir string
	// ServerName names the server; it must be unique within a cluster.
	ServerName string
	// Cluster joins the server to a JetStream cluster when set.
	Cluster *ClusterConfig
	// Sync is when the server writes JetStream's files through to disk.
	Sync Sync
}

// Sync is a NATS server's fsync policy for JetStream's file store, its
// sync_interval setting. JetStream acknowledges an append once the event is
// written to its files, which survives the server process's crash; only an
// fsync makes it survive the machine's (a power loss or a kernel panic).
// With Always every append is fsynced before it is acknowledged; otherwise
// the files are fsynced every Interval, and a machine that goes down loses
// what was acknowledged since the last one, unless a replica on another
// machine holds it.
type Sync struct {
	// Always fsyncs every write before it is acknowledged.
	Always bool
	// Interval is the time between two fsyncs when not Always; 0 is the
	// server's default, DefaultSyncInterval.
	Interval time.Duration
}

// DefaultSyncInterval is nats-server's own sync_interval.
const DefaultSyncInterval = 2 * time.Minute

// ParseSync reads a fsync policy as nats-server's sync_interval takes it:
// "always", or a duration such as 2m or 500ms.
func ParseSync(v string) (Sync, error) {
	if strings.EqualFold(v, "always") {
		return Sync{Always: true}, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		return Sync{}, fmt.Errorf("sync %q: want always or a positive duration such as 2m", v)
	}
	return Sync{Interval: d}, nil
}

// String is the policy as ParseSync reads it.
func (s Sync) String() string {
	switch {
	case s.Always:
		return "always"
	case s.Interval == 0:
		return DefaultSyncInterval.String()
	}
	return s.Interval.String()
}

// ClusterConfig places an embedded NATS server in a cluster of its peers.
type ClusterConfig struct {
	Name   string
	Listen string   // host:port for cluster routes
	Routes []string // nats-route://host:port of every peer
}

// StartNATS starts a NATS server with JetStream and waits until it accepts
// connections. Shut it down with Shutdown and WaitForShutdown.
func StartNATS(cfg NATSConfig) (*server.Server, error) {
	host, port, err := splitHostPort(cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("nats listen address: %w", err)
	}
	if port == 0 {
		port = server.RANDOM_PORT
	} else if err := free(cfg.Listen); err != nil {
		return nil, fmt.Errorf("nats server: %w", err)
	}
	opts := &server.Options{
		ServerName: cfg.ServerName,
		Host:       host,
		Port:       port,
		JetStream:  true,
		StoreDir:   cfg.StoreDir,
		NoSigs:     true,
		NoLog:      true,
		SyncAlways: cfg.Sync.Always,
	}
	if cfg.Sync.Interval > 0 {
		opts.SyncInterval = cfg.Sync.Interval
	}
	if cfg.Cluster != nil {
		chost, cport, err := splitHostPort(cfg.Cluster.Listen)
		if err != nil {
			return nil, fmt.Errorf("nats cluster address: %w", err)
		}
		opts.Cluster.Name = cfg.Cluster.Name
		opts.Cluster.Host = chost
		opts.Cluster.Port = cport
		opts.Routes = server.RoutesFromStr(joinRoutes(cfg.Cluster.Routes))
	}
	s, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("nats server: %w", err)
	}
	go s.Start()
	if !s.ReadyForConnections(30 * time.Second) {
		s.Shutdown()
		return nil, errors.New("nats server: not ready within 30s")
	}
	return s, nil
}

func joinRoutes(routes []string) string {
	out := ""
	for i, r := range routes {
		if i > 0 {
			out += ","
		}
		out += r
	}
	return out
}

// MongoConfig configures the embedded MongoDB-wire server.
type MongoConfig struct {
	// Listen is the address as host:port; port 0 picks a free one.
	Listen string
	// Dir holds the SQLite files, one per database.
	Dir string
	// Logger receives the server's own log lines.
	Logger *slog.Logger
}

// Mongo is a running embedded MongoDB-wire server.
type Mongo struct {
	uri    string
	cancel context.CancelFunc
	done   chan struct{}
}

// sqlitePragmas tune every connection to the SQLite files for folding,
// which rewrites the same slot and count documents many times over.
//
//   - synchronous=NORMAL: in WAL mode SQLite then syncs at checkpoints
//     rather than at every commit. The database stays consistent, but a
//     power loss can take its last commits. The read model then holds a
//     prefix of its writes, with a checkpoint behind what the reducers
//     acknowledged, and a reducer reads those events again from the log
//     when it starts (see package reducers). Folding is about twice as fast.
//   - wal_autocheckpoint=10000: commits gather in the write-ahead log until
//     it holds 10,000 pages (40 MB) rather than 1,000, and a page rewritten
//     meanwhile is copied into the database file once.
//   - temp_store=MEMORY: the journal of a statement, which FerretDB's
//     multi-row inserts keep, stays in memory instead of a temporary file.
//
// The last two fold history in random order about a quarter faster (see
// cmd/bench/notes.md); a power loss may take more commits, which are read
// again as above.
const sqlitePragmas = "_pragma=synchronous(normal)&_pragma=wal_autocheckpoint(10000)&_pragma=temp_store(memory)"

// StartMongo starts FerretDB with its SQLite backend, listening at once.
func StartMongo(cfg MongoConfig) (*Mongo, error) {
	dir, err := filepath.Abs(cfg.Dir)
	if err != nil {
		return nil, fmt.Errorf("mongo data dir: %w", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("mongo data dir: %w", err)
	}
	logger := slog.New(slog.DiscardHandler)
	if cfg.Logger != nil {
		logger = slog.New(lazyHandler{h: cfg.Logger.Handler()})
	}
	// Tables already there are indexed before the first client connects.
	indexed := indexIDs(context.Background(), dir)
	if err := free(cfg.Listen); err != nil {
		return nil, fmt.Errorf("mongo server: %w", err)
	}
	f, err := ferretdb.New(&ferretdb.Config{
		Listener:  ferretdb.ListenerConfig{TCP: cfg.Listen},
		Handler:   "sqlite",
		SQLiteURL: "file:" + dir + "/?" + sqlitePragmas,
		Logger:    logger,
	})
	if err != nil {
		return nil, fmt.Errorf("mongo server: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	m := &Mongo{uri: f.MongoDBURI(), cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(m.done)
		var wg sync.WaitGroup
		wg.Go(func() { keepIDIndexes(ctx, dir, logger, indexed) })
		_ = f.Run(ctx)
		wg.Wait()
	}()
	return m, nil
}

// URI is the mongodb:// connection string of the server.
func (m *Mongo) URI() string { return m.uri }

// Close stops the server and waits until its connections and files are closed.
func (m *Mongo) Close() {
	m.cancel()
	<-m.done
}

func splitHostPort(addr string) (string, int, error) {
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, err
	}
	port, err := strconv.Atoi(p)
	if err != nil || port < 0 || port > 65535 {
		return "", 0, fmt.Errorf("bad port %q", p)
	}
	return host, port, nil
}

// free reports why nothing can listen on addr, such as another process
// listening there: the servers would otherwise only fail to become ready.
func free(addr string) error {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	return l.Close()
}
