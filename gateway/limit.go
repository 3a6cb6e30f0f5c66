package gateway

import (
	"math"
	"net/netip"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// keyLimits holds one token bucket per key: a user, or a client's address. A
// bucket left alone for as long as it takes to refill is full again, the same
// as a new one, so it is forgotten: memory grows with the keys active in that
// window, not with all keys ever seen.
type keyLimits struct {
	rate  rate.Limit
	burst int
	idle  time.Duration // how long an unused bucket takes to refill

	mu        sync.Mutex
	buckets   map[string]*bucket
	lastSweep time.Time
}

type bucket struct {
	lim  *rate.Limiter
	used time.Time
}

func newKeyLimits(perSecond float64, burst int) *keyLimits {
	idle := time.Duration(float64(burst) / perSecond * float64(time.Second))
	return &keyLimits{
		rate:    rate.Limit(perSecond),
		burst:   burst,
		idle:    max(idle, time.Second),
		buckets: map[string]*bucket{},
	}
}

// allow takes one request from key's bucket at now. When the bucket is
// empty it returns false and how long until it holds a request again.
func (l *keyLimits) allow(key string, now time.Time) (bool, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.lastSweep) >= l.idle {
		l.sweep(now)
	}
	b, ok := l.buckets[key]
	if !ok {
		b = &bucket{lim: rate.NewLimiter(l.rate, l.burst)}
		l.buckets[key] = b
	}
	b.used = now
	if b.lim.AllowN(now, 1) {
		return true, 0
	}
	return false, l.wait(b, now)
}

// exhausted reports whether key's bucket has no request left at now, without
// taking one, and if so how long until it holds one again. A key without a
// bucket has a full one.
func (l *keyLimits) exhausted(key string, now time.Time) (bool, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	b, ok := l.buckets[key]
	if !ok || b.lim.TokensAt(now) >= 1 {
		return false, 0
	}
	return true, l.wait(b, now)
}

// wait is how long until b holds a whole request, at least a nanosecond.
func (l *keyLimits) wait(b *bucket, now time.Time) time.Duration {
	missing := 1 - b.lim.TokensAt(now)
	wait := time.Duration(math.Ceil(missing / float64(l.rate) * float64(time.Second)))
	return max(wait, time.Nanosecond)
}

// sweep forgets the buckets unused for at least the refill time.
func (l *keyLimits) sweep(now time.Time) {
	for key, b := range l.buckets {
		if now.Sub(b.used) >= l.idle {
			delete(l.buckets, key)
		}
	}
	l.lastSweep = now
}

// size is the number of buckets held.
func (l *keyLimits) size() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.buckets)
}

// clientAddr is the key of a request's client for the limit on failed
// authentications: the client's IP address, or for IPv6 its /64, which one
// host commonly holds whole. The client is the connection's peer, unless the
// peer is one of the trusted proxies: then it is the rightmost address of
// X-Forwarded-For that is not a trusted proxy, since only the hops from the
// trusted proxies inward are known to be true. A malformed hop ends the walk
// at the last trusted one.
func clientAddr(remoteAddr string, forwardedFor []string, trusted []netip.Prefix) string {
	ap, err := netip.ParseAddrPort(remoteAddr)
	if err != nil {
		return remoteAddr
	}
	addr := ap.Addr().Unmap()
	if isTrusted(addr, trusted) {
		var hops []string
		for _, v := range forwardedFor {
			hops = append(hops, strings.Split(v, ",")...)
		}
		for i := len(hops) - 1; i >= 0; i-- {
			a, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
			if err != nil {
				break
			}
			addr = a.Unmap()
			if !isTrusted(addr, trusted) {
				break
			}
		}
	}
	if addr.Is6() {
		if p, err := addr.WithZone("").Prefix(64); err == nil {
			return p.String()
		}
	}
	return addr.WithZone("").String()
}

func isTrusted(a netip.Addr, trusted []netip.Prefix) bool {
	for _, p := range trusted {
		if p.Contains(a.WithZone("")) {
			return true
		}
	}
	return false
}
