package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/messages-io/messages/gateway"
	"github.com/messages-io/messages/web"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// tokenFlags describe the tokens the gateway accepts and the token command
// mints.
type tokenFlags struct {
	secret    string
	issuer    string
	audience  string
	roleClaim string
}

// register adds the flags; mint says they are for the token command, which
// writes what the gateway checks.
func (t *tokenFlags) register(fs *flag.FlagSet, mint bool) {
	fs.StringVar(&t.secret, "jwt-secret", "", fmt.Sprintf("shared secret of HS256 tokens, at least %d bytes; e.g. export MESSAGES_JWT_SECRET=$(openssl rand -hex 32)", gateway.MinSecretBytes))
	if mint {
		fs.StringVar(&t.issuer, "issuer", "", "iss of the token, for a gateway that checks it")
		fs.StringVar(&t.audience, "audience", "", "aud of the token, for a gateway that checks it")
		fs.StringVar(&t.roleClaim, "role-claim", gateway.DefaultConfig().RoleClaim, "claim that lists the token's roles")
		return
	}
	fs.StringVar(&t.issuer, "issuer", "", "the iss every token must carry; empty: not checked")
	fs.StringVar(&t.audience, "audience", "", "an aud every token must carry; empty: not checked")
	fs.StringVar(&t.roleClaim, "role-claim", gateway.DefaultConfig().RoleClaim, "claim that lists a token's roles: an array of strings, or one string of roles separated by spaces")
}

// listFlag is a comma-separated list.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }

func (l *listFlag) Set(s string) error {
	*l = nil
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			*l = append(*l, v)
		}
	}
	return nil
}

// prefixListFlag is a comma-separated list of CIDR prefixes; a bare address
// is the prefix of itself alone.
type prefixListFlag []netip.Prefix

func (l *prefixListFlag) String() string {
	var out []string
	for _, p := range *l {
		out = append(out, p.String())
	}
	return strings.Join(out, ",")
}

func (l *prefixListFlag) Set(s string) error {
	*l = nil
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v == "" {
			continue
		}
		if a, err := netip.ParseAddr(v); err == nil {
			*l = append(*l, netip.PrefixFrom(a, a.BitLen()))
			continue
		}
		p, err := netip.ParsePrefix(v)
		if err != nil {
			return fmt.Errorf("%q is neither an IP address nor a CIDR prefix", v)
		}
		*l = append(*l, p.Masked())
	}
	return nil
}

// gatewayFlags configure the gateway.
type gatewayFlags struct {
	log    logFlags
	server serverFlags
	token  tokenFlags
	cfg    gateway.Config
}

func (g *gatewayFlags) register(fs *flag.FlagSet) {
	g.log.register(fs)
	def := gateway.DefaultConfig()
	g.server.register(fs, gateway.DefaultAddr)
	g.token.register(fs, false)
	dev := "http://" + net.JoinHostPort("127.0.0.1", strings.TrimPrefix(devAddr, ":"))
	g.cfg.Dispatchers = listFlag{dev}
	g.cfg.Queries = listFlag{dev}
	fs.Var((*listFlag)(&g.cfg.Dispatchers), "dispatcher-urls", "base URLs of the dispatchers, comma-separated; POSTs go to the healthy ones in turn")
	fs.Var((*listFlag)(&g.cfg.Queries), "query-urls", "base URLs of the query instances, comma-separated; GETs go to the healthy ones in turn")
	fs.StringVar(&g.cfg.JWKS, "jwks", "", "file or http(s) URL of a JWK set whose keys verify RS256 and ES256 tokens, by kid")
	fs.DurationVar(&g.cfg.JWKSRefresh, "jwks-refresh", def.JWKSRefresh, "how often the JWK set is read again; a token with an unknown kid reads it at once, at most every 30s")
	fs.DurationVar(&g.cfg.Leeway, "clock-skew", 30*time.Second, "clock difference allowed when checking a token's exp and nbf")
	fs.Float64Var(&g.cfg.Rate, "rate", 20, "requests per second allowed to each user; 0: no limit")
	fs.IntVar(&g.cfg.Burst, "burst", 40, "requests each user may make at once, beyond the rate")
	fs.Float64Var(&g.cfg.AuthFailureRate, "auth-failure-rate", def.AuthFailureRate, "failed authentications per second allowed to each client address; past them it gets 429 and its tokens are not checked; -1: no limit")
	fs.IntVar(&g.cfg.AuthFailureBurst, "auth-failure-burst", def.AuthFailureBurst, "failed authentications each client address may make at once, beyond the rate")
	fs.Var((*prefixListFlag)(&g.cfg.TrustedProxies), "trusted-proxies", "addresses or CIDR prefixes of proxies in front of the gateway, comma-separated; behind them the client address is the rightmost untrusted hop of X-Forwarded-For")
	fs.DurationVar(&g.cfg.UpstreamTimeout, "upstream-timeout", def.UpstreamTimeout, "how long a request waits for a dispatcher or query instance before answering 504")
	fs.DurationVar(&g.cfg.StreamIdleTimeout, "stream-idle-timeout", def.StreamIdleTimeout, "how long a live stream (text/event-stream) may pass nothing, not even a heartbeat, before the gateway closes it")
	fs.DurationVar(&g.cfg.HealthInterval, "health-interval", def.HealthInterval, "how often each upstream's /readyz is checked")
	fs.StringVar(&g.cfg.CountRole, "count-role", "", "role a token needs for count=1; empty: counts are open to every token")
}

func runGateway(ctx context.Context, args []string, e env) error {
	c := roleCommand("gateway")
	fs := flag.NewFlagSet("gateway", flag.ContinueOnError)
	var f gatewayFlags
	f.register(fs)
	if err := parse(fs, c, args, e); err != nil {
		return err
	}
	log, err := f.log.logger(e.stderr)
	if err != nil {
		return err
	}
	cfg := f.cfg
	cfg.Secret = []byte(f.token.secret)
	cfg.Issuer, cfg.Audience, cfg.RoleClaim = f.token.issuer, f.token.audience, f.token.roleClaim
	if len(cfg.Secret) == 0 && cfg.JWKS == "" {
		return errors.New("gateway: set --jwt-secret (or MESSAGES_JWT_SECRET) for HS256 tokens, or --jwks for RS256/ES256 tokens")
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	gw, err := gateway.New(log.With("component", "gateway"), reg, cfg)
	if err != nil {
		return err
	}
	rt := web.NewRouter(log, reg, reg, gw.Checks())
	if f.server.pprof {
		rt.Profiling()
	}
	g, err := serveHTTP(ctx, log, f.server, gw.Handler(rt))
	if err != nil {
		return err
	}
	log.Info("serving", "roles", "gateway", "addr", g.Addr,
		"dispatchers", cfg.Dispatchers, "queries", cfg.Queries, "hs256", len(cfg.Secret) > 0, "jwks", cfg.JWKS)
	fmt.Fprintf(e.stdout, "messages gateway: %s\n", httpURL(g.Addr))
	if e.ready != nil {
		e.ready(Addrs{API: g.Addr})
	}
	g.Add(func() error { return gw.Run(g.stop) }, func(error) { g.cancel() })
	err = g.Run()
	log.Info("stopped", "roles", "gateway")
	return err
}
