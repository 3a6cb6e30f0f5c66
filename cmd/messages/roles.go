package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"runtime/debug"

	"github.com/messages-io/messages/dispatcher"
	"github.com/messages-io/messages/embedded"
	"github.com/messages-io/messages/readmodel/queryapi"
	"github.com/messages-io/messages/reducers"
)

func roleCommand(name string) command {
	for _, c := range commands() {
		if c.name == name {
			return c
		}
	}
	panic("no command " + name)
}

// runRole runs one role against external NATS and MongoDB.
func runRole(ctx context.Context, name string, r roles, addr string, args []string, e env) error {
	c := roleCommand(name)
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	var f serviceFlags
	f.register(fs, r, addr, true)
	if err := parse(fs, c, args, e); err != nil {
		return err
	}
	if err := f.validate(r); err != nil {
		return err
	}
	log, err := f.log.logger(e.stderr)
	if err != nil {
		return err
	}
	return serve(ctx, log, r, f, f.stream.natsURL, f.store.uri, e, Addrs{})
}

func runDispatcher(ctx context.Context, args []string, e env) error {
	return runRole(ctx, "dispatcher", roles{dispatch: true}, dispatcher.DefaultAddr, args, e)
}

func runReducer(ctx context.Context, args []string, e env) error {
	return runRole(ctx, "reducer", roles{reduce: true}, reducers.DefaultAddr, args, e)
}

func runQuery(ctx context.Context, args []string, e env) error {
	return runRole(ctx, "query", roles{query: true}, queryapi.DefaultAddr, args, e)
}

// devAddr is the address of the API of `messages dev`, which a gateway
// started beside it reaches by default.
const devAddr = ":8080"

// devGCPercent is dev's garbage collection target unless GOGC sets one:
// the heap grows by half of what is live between collections, rather than
// by all of it. One dev process holds NATS, FerretDB and every role, and
// while it folds a backlog much of its heap is the garbage of large
// batches; a count-only bench run at 1,000,000 messages peaked at 340.9 MiB
// with it and at 459.9–535.8 MiB without it, folding as fast.
const devGCPercent = 50

// runDev runs every role in one process on embedded NATS and FerretDB, both
// listening so that other commands and tools can connect.
func runDev(ctx context.Context, args []string, e env) error {
	c := roleCommand("dev")
	fs := flag.NewFlagSet("dev", flag.ContinueOnError)
	all := roles{dispatch: true, reduce: true, query: true}
	var f serviceFlags
	f.register(fs, all, devAddr, false)
	dataDir := fs.String("data-dir", "./data", "directory of the embedded servers' data; kept across restarts")
	natsListen := fs.String("nats-listen", "127.0.0.1:4222", "address of the embedded NATS server")
	mongoListen := fs.String("mongo-listen", "127.0.0.1:27017", "address of the embedded MongoDB-wire server (FerretDB)")
	var sync syncFlag
	fs.Var(&sync, "nats-sync", "when the embedded NATS server fsyncs the log (its sync_interval): always, before every 201, "+
		"or a duration between fsyncs, within which a machine crash or power loss can lose acknowledged messages")
	if err := parse(fs, c, args, e); err != nil {
		return err
	}
	if err := f.validate(all); err != nil {
		return err
	}
	log, err := f.log.logger(e.stderr)
	if err != nil {
		return err
	}
	if e.getenv("GOGC") == "" {
		debug.SetGCPercent(devGCPercent)
	}
	ns, err := embedded.StartNATS(embedded.NATSConfig{
		Listen:     *natsListen,
		StoreDir:   filepath.Join(*dataDir, "nats"),
		ServerName: "messages-dev",
		Sync:       sync.Sync,
	})
	if err != nil {
		return err
	}
	defer func() {
		ns.Shutdown()
		ns.WaitForShutdown()
	}()
	mongo, err := embedded.StartMongo(embedded.MongoConfig{
		Listen: *mongoListen,
		Dir:    filepath.Join(*dataDir, "mongo"),
		Logger: slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: slog.LevelError})).With("component", "ferretdb"),
	})
	if err != nil {
		return err
	}
	defer mongo.Close()
	addrs := Addrs{NATS: ns.ClientURL(), Mongo: mongo.URI()}
	fmt.Fprintf(e.stdout, "messages dev: data in %s\n  NATS     %s (fsync %s)\n  MongoDB  %s (FerretDB over SQLite)\n",
		*dataDir, addrs.NATS, syncMeaning(ns), addrs.Mongo)
	ready := e.ready
	e.ready = func(a Addrs) {
		fmt.Fprintf(e.stdout, "  API      %s\n", httpURL(a.API))
		if ready != nil {
			ready(a)
		}
	}
	return serve(ctx, log, all, f, addrs.NATS, addrs.Mongo, e, addrs)
}

// httpURL is the URL a person would type for a listen address.
func httpURL(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "http://" + addr
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		host = "localhost"
	}
	return "http://" + net.JoinHostPort(host, port)
}
