package gateway

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/messages-io/messages/api"
	"github.com/messages-io/messages/web"
	"github.com/prometheus/client_golang/prometheus"
)

// MinSecretBytes is the shortest HS256 secret accepted: as long as the hash
// (RFC 7518, section 3.2).
const MinSecretBytes = 32

// Config holds the gateway's options. Dispatchers, Queries, and Secret or
// JWKS are required.
type Config struct {
	// Dispatchers and Queries are the base URLs (http://host:port) of the
	// instances that take writes and reads.
	Dispatchers, Queries []string

	// Secret verifies HS256 tokens; at least MinSecretBytes long.
	Secret []byte
	// JWKS is a file path or http(s) URL of a JWK set that verifies RS256
	// and ES256 tokens, by their kid.
	JWKS string
	// JWKSRefresh is how often the JWK set is read again. Default 5m.
	JWKSRefresh time.Duration
	// JWKSMinRefresh is the least time between reloads caused by a token
	// with an unknown kid. Default 30s.
	JWKSMinRefresh time.Duration
	// Issuer and Audience, when set, must be the token's iss and one of its
	// aud.
	Issuer, Audience string
	// Leeway is the clock skew allowed when checking exp and nbf.
	Leeway time.Duration

	// Rate is the requests per second allowed to each user, Burst the most
	// at once. Rate 0 turns rate limiting off.
	Rate  float64
	Burst int

	// AuthFailureRate is the failed authentications per second allowed to
	// each client address, AuthFailureBurst the most at once, so that
	// guessing tokens costs time. An address that has used them up is
	// answered 429, without its token being checked, until it has one to
	// spare again; a request that authenticates spends nothing. Default 1
	// a second, burst 20; a negative rate turns the limit off.
	AuthFailureRate  float64
	AuthFailureBurst int
	// TrustedProxies are the proxies in front of the gateway. The client of
	// a request from one of them, for the limit on failed authentications,
	// is the rightmost address of X-Forwarded-For that is not a trusted
	// proxy. Default none: the connection's peer is the client.
	TrustedProxies []netip.Prefix

	// UpstreamTimeout bounds each request to an upstream, past it the answer
	// is 504. Default 10s. A live stream must begin within it, and may then
	// last as long as it is not silent for StreamIdleTimeout (default 60s;
	// the query API sends a heartbeat every 15s).
	UpstreamTimeout, StreamIdleTimeout time.Duration
	// HealthInterval is how often each upstream's /readyz is checked.
	// Default 2s; each check waits at most HealthTimeout (default 1.5s).
	HealthInterval, HealthTimeout time.Duration
	// RetryAfter is what a 503 tells the caller to wait. Default 1s.
	RetryAfter time.Duration

	// CountRole, when set, is the role a token needs for count=1; other
	// requests need no role.
	CountRole string
	// RoleClaim is the claim that lists a token's roles. Default "roles".
	RoleClaim string

	// Transport reaches the upstreams. Default: a transport of its own.
	Transport http.RoundTripper
	// Now is the clock that checks tokens and rates. Default time.Now.
	Now func() time.Time
}

func (c *Config) setDefaults() {
	if c.JWKSRefresh == 0 {
		c.JWKSRefresh = 5 * time.Minute
	}
	if c.JWKSMinRefresh == 0 {
		c.JWKSMinRefresh = 30 * time.Second
	}
	if c.UpstreamTimeout == 0 {
		c.UpstreamTimeout = 10 * time.Second
	}
	if c.StreamIdleTimeout == 0 {
		c.StreamIdleTimeout = time.Minute
	}
	if c.HealthInterval == 0 {
		c.HealthInterval = 2 * time.Second
	}
	if c.HealthTimeout == 0 {
		c.HealthTimeout = 1500 * time.Millisecond
	}
	if c.RetryAfter == 0 {
		c.RetryAfter = time.Second
	}
	if c.AuthFailureRate == 0 {
		c.AuthFailureRate = 1
	}
	if c.AuthFailureBurst == 0 {
		c.AuthFailureBurst = 20
	}
	if c.RoleClaim == "" {
		c.RoleClaim = "roles"
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Transport == nil {
		c.Transport = &http.Transport{
			Proxy:                 nil,
			DialContext:           (&net.Dialer{Timeout: 2 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConns:          256,
			MaxIdleConnsPerHost:   64,
			IdleConnTimeout:       90 * time.Second,
			ExpectContinueTimeout: time.Second,
		}
	}
}

// DefaultConfig holds the options a zero Config takes.
func DefaultConfig() Config {
	var c Config
	c.setDefaults()
	return c
}

// DefaultAddr is the address the gateway listens on unless told otherwise.
const DefaultAddr = ":8000"

// Validate reports the first option missing or out of range.
func (c Config) Validate() error {
	switch {
	case len(c.Secret) == 0 && c.JWKS == "":
		return errors.New("gateway: a JWT secret (HS256) or a JWKS (RS256, ES256) is required")
	case len(c.Secret) > 0 && len(c.Secret) < MinSecretBytes:
		return fmt.Errorf("gateway: the JWT secret must be at least %d bytes, it has %d", MinSecretBytes, len(c.Secret))
	case c.Rate < 0 || c.Rate > 0 && c.Burst < 1:
		return errors.New("gateway: the rate must not be negative, and the burst must be at least 1")
	case c.AuthFailureRate > 0 && c.AuthFailureBurst < 1:
		return errors.New("gateway: the burst of failed authentications must be at least 1")
	case c.JWKSRefresh < 0 || c.JWKSMinRefresh < 0 || c.Leeway < 0 || c.UpstreamTimeout < 0 || c.StreamIdleTimeout < 0 ||
		c.HealthInterval < 0 || c.HealthTimeout < 0 || c.RetryAfter < 0:
		return errors.New("gateway: durations must not be negative")
	case slices.ContainsFunc(c.TrustedProxies, func(p netip.Prefix) bool { return !p.IsValid() }):
		return errors.New("gateway: a trusted proxy prefix is not valid")
	case strings.ContainsAny(c.CountRole, " \t"):
		return errors.New("gateway: the count role must be one word")
	}
	return nil
}

// Gateway authenticates requests and passes them to the services.
type Gateway struct {
	cfg         Config
	log         *slog.Logger
	metrics     *metrics
	auth        *authenticator
	keys        *keySet    // nil without a JWKS
	limits      *keyLimits // per user; nil without a rate
	failures    *keyLimits // failed authentications per client address; nil when off
	dispatchers *pool
	queries     *pool
}

// New returns a gateway in front of the upstreams of cfg; Run keeps its view
// of them and of the key set current.
func New(log *slog.Logger, reg prometheus.Registerer, cfg Config) (*Gateway, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	dispatchers, err := parseUpstreams("dispatcher", cfg.Dispatchers)
	if err != nil {
		return nil, fmt.Errorf("gateway: %w", err)
	}
	queries, err := parseUpstreams("query", cfg.Queries)
	if err != nil {
		return nil, fmt.Errorf("gateway: %w", err)
	}
	g := &Gateway{cfg: cfg, log: log, metrics: newMetrics(reg)}
	if cfg.JWKS != "" {
		g.keys = newKeySet(cfg.JWKS, cfg.JWKSMinRefresh, log)
	}
	g.auth = newAuthenticator(cfg, g.keys)
	if cfg.Rate > 0 {
		g.limits = newKeyLimits(cfg.Rate, cfg.Burst)
	}
	if cfg.AuthFailureRate > 0 {
		g.failures = newKeyLimits(cfg.AuthFailureRate, cfg.AuthFailureBurst)
	}
	g.dispatchers = newPool("dispatcher", dispatchers, cfg.Transport, cfg.HealthTimeout, g.metrics, log)
	g.queries = newPool("query", queries, cfg.Transport, cfg.HealthTimeout, g.metrics, log)
	return g, nil
}

// Checks are the gateway's readiness checks: a healthy upstream of each
// kind, and a loaded key set when one is configured.
func (g *Gateway) Checks() map[string]web.Check {
	checks := map[string]web.Check{
		"dispatchers": g.dispatchers.ready,
		"queries":     g.queries.ready,
	}
	if g.keys != nil {
		checks["jwks"] = g.keys.ready
	}
	return checks
}

// Run checks the upstreams' health every HealthInterval and reloads the key
// set every JWKSRefresh, until ctx ends. The first checks run at once.
func (g *Gateway) Run(ctx context.Context) error {
	health := time.NewTicker(g.cfg.HealthInterval)
	defer health.Stop()
	var reload <-chan time.Time
	if g.keys != nil {
		t := time.NewTicker(g.cfg.JWKSRefresh)
		defer t.Stop()
		reload = t.C
		g.reloadKeys(ctx)
	}
	g.checkUpstreams(ctx)
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-health.C:
			g.checkUpstreams(ctx)
		case <-reload:
			g.reloadKeys(ctx)
		}
	}
}

func (g *Gateway) checkUpstreams(ctx context.Context) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		g.queries.check(ctx)
	}()
	g.dispatchers.check(ctx)
	<-done
}

func (g *Gateway) reloadKeys(ctx context.Context) {
	lctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := g.keys.load(lctx); err != nil && ctx.Err() == nil {
		g.log.Warn("jwks reload failed; the keys held stay in use", "err", err)
	}
}

// Handler registers the gateway's routes on rt, which serves /healthz,
// /readyz and /metrics already, and returns the handler to listen with.
// POST /v1/messages goes to the dispatchers, GET /v1/messages and
// GET /v1/messages/{id} to the query instances, each only with a valid
// token; the OpenAPI document is public; any other path is 404.
func (g *Gateway) Handler(rt *web.Router) http.Handler {
	write := g.proxy(g.dispatchers)
	read := g.proxy(g.queries)
	rt.Route(http.MethodPost, "/v1/messages", g.authorized(wellFormedQuery(identityBody(bufferBody(write)))))
	rt.Route(http.MethodGet, "/v1/messages", g.authorized(wellFormedQuery(g.countPolicy(read))))
	rt.Route(http.MethodGet, "/v1/messages/:id", g.authorized(wellFormedQuery(read)))
	api.Routes(rt)
	return web.RequestIDs(g.accessLog(rt.Router))
}

// authorized passes on only requests with a valid token and rate to spare,
// with X-User-ID set to the token's subject. A client address that has used
// up its failed authentications is refused before its token is checked.
func (g *Gateway) authorized(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		addr := clientAddr(r.RemoteAddr, r.Header.Values("X-Forwarded-For"), g.cfg.TrustedProxies)
		if g.failures != nil {
			if limited, wait := g.failures.exhausted(addr, g.cfg.Now()); limited {
				g.metrics.authLimited.Inc()
				web.SetRetryAfter(w.Header(), wait)
				web.WriteProblem(w, r, http.StatusTooManyRequests, "too many failed authentications from this address; retry after the time in Retry-After")
				return
			}
		}
		id, err := g.auth.authenticate(r)
		var aerr *authError
		switch {
		case errors.As(err, &aerr):
			g.metrics.authFailures.WithLabelValues(aerr.reason).Inc()
			if g.failures != nil {
				g.failures.allow(addr, g.cfg.Now())
			}
			w.Header().Set("WWW-Authenticate", challenge(aerr))
			web.WriteProblem(w, r, http.StatusUnauthorized, aerr.detail)
			return
		case err != nil:
			web.Failure{
				Log:         g.log,
				What:        "token check",
				RetryAfter:  g.cfg.RetryAfter,
				Unavailable: "the keys that check tokens are not available; retry later",
				Internal:    "the token could not be checked",
			}.Answer(w, r, err)
			return
		}
		if x := exchangeFrom(r.Context()); x != nil {
			x.user = id.user
		}
		if g.limits != nil {
			if ok, wait := g.limits.allow(id.user, g.cfg.Now()); !ok {
				g.metrics.rateLimited.Inc()
				web.SetRetryAfter(w.Header(), wait)
				web.WriteProblem(w, r, http.StatusTooManyRequests, "too many requests; retry after the time in Retry-After")
				return
			}
		}
		// What the services trust is set here, from the token alone. The
		// access log and the request metrics read it too.
		stripUserID(r.Header)
		r.Header.Set(web.UserIDHeader, id.user)
		next.ServeHTTP(w, r.WithContext(withIdentity(r.Context(), id)))
	})
}

// wellFormedQuery refuses, with 400, a query string that url.ParseQuery
// rejects: an invalid percent-escape, a semicolon, or more parameters than
// it allows. The query API rejects the same ones, but the reverse proxy
// would not pass them on as they are: it drops the pairs it cannot parse, so
// a filter the caller meant would be silently lost and the answer widened.
// Every query that passes is forwarded byte for byte.
func wellFormedQuery(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := url.ParseQuery(r.URL.RawQuery); err != nil {
			web.WriteProblem(w, r, http.StatusBadRequest, "the query string is malformed: "+err.Error())
			return
		}
		next.ServeHTTP(w, r)
	})
}

// countPolicy refuses count=1 to tokens without the count role, when one is
// configured.
func (g *Gateway) countPolicy(next http.Handler) http.Handler {
	if g.cfg.CountRole == "" {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The query API counts for exactly count=1 and rejects a repeated
		// parameter, but the policy does not rely on the latter: any
		// count=1 needs the role. wellFormedQuery has refused a query
		// that does not parse.
		params, err := url.ParseQuery(r.URL.RawQuery)
		if err != nil {
			web.WriteProblem(w, r, http.StatusBadRequest, "the query string is malformed: "+err.Error())
			return
		}
		for _, c := range params["count"] {
			if c == "1" && !identityFrom(r.Context()).has(g.cfg.CountRole) {
				g.metrics.policyDenied.Inc()
				web.WriteProblem(w, r, http.StatusForbidden, fmt.Sprintf("count=1 needs a token with the role %q", g.cfg.CountRole))
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// identityBody refuses, with 415, a body in a content coding (gzip, br…):
// the write API reads bodies as sent, and the gateway decodes none.
func identityBody(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if c := web.ContentCoding(r.Header); c != "" {
			web.WriteUnsupportedCoding(w, r, c)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// bufferBody reads a write's body, up to the write API's limit, so that it
// can be sent again to another dispatcher when the first refuses the
// connection. A larger body is passed on as it comes, for the dispatcher to
// refuse.
func bufferBody(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body == nil || r.Body == http.NoBody || r.ContentLength > web.MaxBodyBytes {
			next.ServeHTTP(w, r)
			return
		}
		buf, err := io.ReadAll(io.LimitReader(r.Body, web.MaxBodyBytes+1))
		if err != nil {
			web.WriteProblem(w, r, http.StatusBadRequest, "reading the body: "+err.Error())
			return
		}
		if len(buf) > web.MaxBodyBytes {
			r.Body = struct {
				io.Reader
				io.Closer
			}{io.MultiReader(bytes.NewReader(buf), r.Body), r.Body}
			next.ServeHTTP(w, r)
			return
		}
		r.ContentLength = int64(len(buf))
		r.Body = io.NopCloser(bytes.NewReader(buf))
		r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(buf)), nil }
		next.ServeHTTP(w, r)
	})
}

// proxy passes requests to p, within the upstream timeout.
func (g *Gateway) proxy(p *pool) http.Handler {
	rp := &httputil.ReverseProxy{
		Rewrite:   rewrite,
		Transport: p,
		ModifyResponse: func(resp *http.Response) error {
			// The gateway has set the request id on its response already.
			resp.Header.Del(web.RequestIDHeader)
			return nil
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			g.upstreamFailed(w, r, p, err)
		},
		ErrorLog: slog.NewLogLogger(g.log.Handler(), slog.LevelWarn),
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if streaming(r) {
			g.proxyStream(rp, p, w, r)
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), g.cfg.UpstreamTimeout)
		defer cancel()
		rp.ServeHTTP(w, r.WithContext(ctx))
	})
}

// rewrite makes the upstream request: the caller's path and query, the
// user and request ids from the gateway, no credentials, and the
// X-Forwarded-* headers. The query is the caller's as sent: the proxy's own
// clean-up of it, which drops what it cannot parse, never applies.
func rewrite(pr *httputil.ProxyRequest) {
	ctx := pr.In.Context()
	pr.Out.URL.RawQuery = pr.In.URL.RawQuery
	stripUserID(pr.Out.Header)
	pr.Out.Header.Set(web.UserIDHeader, identityFrom(ctx).user)
	pr.Out.Header.Set(web.RequestIDHeader, web.RequestID(ctx))
	pr.Out.Header.Del("Authorization")
	pr.Out.Host = ""
	pr.SetXForwarded()
}

// upstreamFailed answers for an upstream that did not: 503 when none is
// healthy, 504 when the one asked was too slow, 502 otherwise, and nothing
// when the caller went away.
func (g *Gateway) upstreamFailed(w http.ResponseWriter, r *http.Request, p *pool, err error) {
	kind := web.Failure{
		Log:             p.log,
		What:            "upstream",
		RetryAfter:      g.cfg.RetryAfter,
		Unavailable:     fmt.Sprintf("no %s instance is available; retry later", p.name),
		UpstreamTimeout: fmt.Sprintf("the %s instance did not answer within %s", p.name, g.cfg.UpstreamTimeout),
		BadGateway:      fmt.Sprintf("the %s instance failed to answer", p.name),
		Internal:        fmt.Sprintf("the %s instance failed to answer", p.name),
	}.Answer(w, r, upstreamError(err))
	if kind != web.KindCanceled {
		g.metrics.upstreamErrors.WithLabelValues(p.name, kind.String()).Inc()
	}
}

// upstreamError marks err, the failure of a proxied request, as the
// upstream's: a deadline that passed is the upstream timeout, any other
// error a failure to answer, unless it says no upstream was there to ask
// (fault.ErrUnavailable).
func upstreamError(err error) error {
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%w: %w", web.ErrUpstreamTimeout, err)
	}
	return fmt.Errorf("%w: %w", web.ErrBadGateway, err)
}

// stripUserID removes every X-User-ID a client sent, however spelled: the
// header's canonical form and any name that differs from it only in case or
// in '_' for '-'.
func stripUserID(h http.Header) {
	for name := range h {
		if strings.EqualFold(strings.ReplaceAll(name, "_", "-"), web.UserIDHeader) {
			delete(h, name)
		}
	}
}
