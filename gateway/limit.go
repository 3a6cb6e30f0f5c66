package gateway

import (
	"math"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// userLimits holds one token bucket per user. A bucket left alone for as long
// as it takes to refill is full again, the same as a new one, so it is
// forgotten: memory grows with the users active in that window, not with all
// users ever seen.
type userLimits struct {
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

func newUserLimits(perSecond float64, burst int) *userLimits {
	idle := time.Duration(float64(burst) / perSecond * float64(time.Second))
	return &userLimits{
		rate:    rate.Limit(perSecond),
		burst:   burst,
		idle:    max(idle, time.Second),
		buckets: map[string]*bucket{},
	}
}

// allow takes one request from user's bucket at now. When the bucket is
// empty it returns false and how long until it holds a request again.
func (l *userLimits) allow(user string, now time.Time) (bool, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.lastSweep) >= l.idle {
		l.sweep(now)
	}
	b, ok := l.buckets[user]
	if !ok {
		b = &bucket{lim: rate.NewLimiter(l.rate, l.burst)}
		l.buckets[user] = b
	}
	b.used = now
	if b.lim.AllowN(now, 1) {
		return true, 0
	}
	missing := 1 - b.lim.TokensAt(now)
	wait := time.Duration(math.Ceil(missing / float64(l.rate) * float64(time.Second)))
	return false, max(wait, time.Nanosecond)
}

// sweep forgets the buckets unused for at least the refill time.
func (l *userLimits) sweep(now time.Time) {
	for user, b := range l.buckets {
		if now.Sub(b.used) >= l.idle {
			delete(l.buckets, user)
		}
	}
	l.lastSweep = now
}

// size is the number of buckets held.
func (l *userLimits) size() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.buckets)
}
