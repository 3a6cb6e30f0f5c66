package web

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"sync"
	"time"

	"github.com/julienschmidt/httprouter"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Check reports whether one dependency answers.
type Check func(ctx context.Context) error

// Router is an httprouter whose routes are observed, with the endpoints every
// role serves: /healthz, /readyz and /metrics.
type Router struct {
	*httprouter.Router
	metrics *HTTPMetrics
	log     *slog.Logger
}

// NewRouter returns a router serving health, readiness (every check must pass
// within a second) and the metrics gathered by gatherer.
func NewRouter(log *slog.Logger, reg prometheus.Registerer, gatherer prometheus.Gatherer, checks map[string]Check) *Router {
	rt := &Router{Router: httprouter.New(), metrics: NewHTTPMetrics(reg), log: log}
	rt.HandleMethodNotAllowed = true
	// A path is either a route or a 404 problem; no redirects to guesses.
	rt.RedirectTrailingSlash = false
	rt.RedirectFixedPath = false
	rt.NotFound = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		WriteProblem(w, r, http.StatusNotFound, "no such resource")
	})
	rt.MethodNotAllowed = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		WriteProblem(w, r, http.StatusMethodNotAllowed, r.Method+" is not allowed here")
	})
	rt.Route(http.MethodGet, "/healthz", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	}))
	rt.Route(http.MethodGet, "/readyz", readiness(checks))
	rt.Route(http.MethodGet, "/metrics", promhttp.HandlerFor(gatherer, promhttp.HandlerOpts{}))
	return rt
}

// Route serves h for method and path, observed under path as its route label.
func (rt *Router) Route(method, path string, h http.Handler) {
	rt.Router.Handler(method, path, Observe(rt.metrics, rt.log, path, h))
}

// Root wraps the router in the middleware every request passes.
func (rt *Router) Root() http.Handler { return RequestIDs(Users(rt.Router)) }

func readiness(checks map[string]Check) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), time.Second)
		defer cancel()
		status := map[string]string{}
		var mu sync.Mutex
		var wg sync.WaitGroup
		ready := true
		for name, check := range checks {
			wg.Add(1)
			go func() {
				defer wg.Done()
				err := check(ctx)
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					ready = false
					status[name] = err.Error()
					return
				}
				status[name] = "ok"
			}()
		}
		wg.Wait()
		code := http.StatusOK
		if !ready {
			code = http.StatusServiceUnavailable
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(code)
		_ = json.NewEncoder(w).Encode(map[string]any{"ready": ready, "checks": status})
	}
}

// Server is an HTTP server that drains in-flight requests when stopped.
type Server struct {
	srv *http.Server
	ln  net.Listener
}

// Listen binds addr and returns a server for h on it.
func Listen(addr string, h http.Handler) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	return &Server{ln: ln, srv: &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
	}}, nil
}

// Addr is the address the server listens on.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Serve answers requests until Shutdown.
func (s *Server) Serve() error {
	if err := s.srv.Serve(s.ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// Shutdown stops accepting connections and waits, up to timeout, for requests
// in flight to finish.
func (s *Server) Shutdown(timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return s.srv.Shutdown(ctx)
}

// Profiling serves the runtime's profiles under /debug/pprof/, as the go
// tool pprof reads them.
func (rt *Router) Profiling() {
	rt.Router.Handler(http.MethodGet, "/debug/pprof/*name", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch httprouter.ParamsFromContext(r.Context()).ByName("name") {
		case "/cmdline":
			pprof.Cmdline(w, r)
		case "/profile":
			pprof.Profile(w, r)
		case "/symbol":
			pprof.Symbol(w, r)
		case "/trace":
			pprof.Trace(w, r)
		default:
			pprof.Index(w, r) // the index, and every named profile
		}
	}))
}
