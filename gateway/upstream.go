package gateway

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/messages-io/messages/fault"
	"github.com/prometheus/client_golang/prometheus"
)

// errNoUpstream: no upstream of a pool is healthy, or every one refused the
// connection.
var errNoUpstream = fault.New("no healthy upstream", fault.ErrUnavailable)

// upstream is one instance of a service behind the gateway.
type upstream struct {
	url     *url.URL
	healthy atomic.Bool
	up      prometheus.Gauge
}

func (u *upstream) set(healthy bool) (changed bool) {
	if healthy {
		u.up.Set(1)
	} else {
		u.up.Set(0)
	}
	return u.healthy.Swap(healthy) != healthy
}

// pool is the instances of one service. It is the transport of the pool's
// reverse proxy: each request goes to the next healthy upstream in turn, and
// to the one after when an upstream refuses the connection, since then the
// request was never sent. An active health check of each upstream's /readyz
// decides which are healthy; a refused connection marks one unhealthy until
// its next check passes.
type pool struct {
	name      string
	upstreams []*upstream
	next      atomic.Uint64
	transport http.RoundTripper
	checker   *http.Client
	log       *slog.Logger
}

// parseUpstreams checks a pool's upstream base URLs: http or https, a host,
// no path, query or user.
func parseUpstreams(name string, raw []string) ([]*url.URL, error) {
	if len(raw) == 0 {
		return nil, fmt.Errorf("no %s upstream", name)
	}
	var out []*url.URL
	for _, s := range raw {
		u, err := url.Parse(strings.TrimSpace(s))
		if err != nil {
			return nil, fmt.Errorf("%s upstream %q: %w", name, s, err)
		}
		if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
			return nil, fmt.Errorf("%s upstream %q: want http(s)://host:port, without path, query or user", name, s)
		}
		u.Path = ""
		out = append(out, u)
	}
	return out, nil
}

func newPool(name string, urls []*url.URL, transport http.RoundTripper, healthTimeout time.Duration, m *metrics, log *slog.Logger) *pool {
	p := &pool{
		name:      name,
		transport: transport,
		checker:   &http.Client{Transport: transport, Timeout: healthTimeout},
		log:       log.With("pool", name),
	}
	for _, u := range urls {
		up := &upstream{url: u, up: m.upstreamUp.WithLabelValues(name, u.String())}
		up.up.Set(0)
		p.upstreams = append(p.upstreams, up)
	}
	return p
}

// RoundTrip sends req to a healthy upstream; req's URL has no scheme and host
// yet.
func (p *pool) RoundTrip(req *http.Request) (*http.Response, error) {
	n := len(p.upstreams)
	start := int(p.next.Add(1) % uint64(n))
	var lastErr error
	for i := range n {
		u := p.upstreams[(start+i)%n]
		if !u.healthy.Load() {
			continue
		}
		out := req.Clone(req.Context())
		if lastErr != nil {
			if !replayable(req) {
				break
			}
			if req.GetBody != nil {
				body, err := req.GetBody()
				if err != nil {
					return nil, err
				}
				out.Body = body
			}
		}
		out.URL.Scheme = u.url.Scheme
		out.URL.Host = u.url.Host
		if x := exchangeFrom(req.Context()); x != nil {
			x.upstream = u.url.Host
		}
		resp, err := p.transport.RoundTrip(out)
		if err == nil {
			return resp, nil
		}
		if req.Context().Err() != nil || !refused(err) {
			return nil, err
		}
		if u.set(false) {
			p.log.Warn("upstream unhealthy", "upstream", u.url.String(), "err", err)
		}
		lastErr = err
	}
	if lastErr != nil {
		return nil, fmt.Errorf("%w: %v", errNoUpstream, lastErr)
	}
	return nil, errNoUpstream
}

// replayable reports whether req can be sent again: it has no body, or a way
// to read its body anew.
func replayable(req *http.Request) bool {
	return req.Body == nil || req.Body == http.NoBody || req.GetBody != nil
}

// refused reports whether err means no connection was made, so the request
// was never sent.
func refused(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// check asks every upstream's /readyz at once and records which answered 200.
func (p *pool) check(ctx context.Context) {
	var wg sync.WaitGroup
	for _, u := range p.upstreams {
		wg.Go(func() {
			err := p.probe(ctx, u)
			if ctx.Err() != nil {
				return
			}
			if u.set(err == nil) {
				if err != nil {
					p.log.Warn("upstream unhealthy", "upstream", u.url.String(), "err", err)
				} else {
					p.log.Info("upstream healthy", "upstream", u.url.String())
				}
			}
		})
	}
	wg.Wait()
}

func (p *pool) probe(ctx context.Context, u *upstream) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.url.JoinPath("/readyz").String(), nil)
	if err != nil {
		return err
	}
	req.Header.Set("User-Agent", "messages-gateway")
	resp, err := p.checker.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("/readyz answered %s", resp.Status)
	}
	return nil
}

// ready reports whether at least one upstream is healthy.
func (p *pool) ready(context.Context) error {
	for _, u := range p.upstreams {
		if u.healthy.Load() {
			return nil
		}
	}
	return fmt.Errorf("no healthy %s among %d", p.name, len(p.upstreams))
}
