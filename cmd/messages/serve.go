package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/messages-io/messages/web"
	oklogrun "github.com/oklog/run"
)

// servingGroup is the lifecycle group of a process that serves HTTP: the
// server is one actor, the end of the process's context another. When any
// actor returns, the server stops taking requests and finishes those in
// flight within the shutdown timeout, and every other actor is stopped.
type servingGroup struct {
	oklogrun.Group
	// Addr is the address the server listens on.
	Addr string
	// stop ends when the group stops.
	stop   context.Context
	cancel context.CancelFunc
}

// serveHTTP listens with h as f says and returns the group that serves it
// until ctx ends; add the process's other actors, then Run it.
func serveHTTP(ctx context.Context, log *slog.Logger, f serverFlags, h http.Handler) (*servingGroup, error) {
	srv, err := web.Listen(f.addr, h)
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", f.addr, err)
	}
	g := &servingGroup{Addr: srv.Addr().String()}
	g.stop, g.cancel = context.WithCancel(ctx)
	g.Add(func() error { <-g.stop.Done(); return nil }, func(error) { g.cancel() })
	g.Add(srv.Serve, func(error) {
		if err := srv.Shutdown(f.shutdownTimeout); err != nil {
			log.Warn("shutdown", "err", err)
		}
	})
	return g, nil
}

// Run runs every actor until the first returns, stops the others, and
// returns the first one's error.
func (g *servingGroup) Run() error {
	defer g.cancel()
	return g.Group.Run()
}
