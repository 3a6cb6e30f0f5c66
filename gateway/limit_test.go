package gateway

import (
	"fmt"
	"testing"
	"time"
)

// Buckets of users gone quiet are forgotten once they would be full again,
// so that memory follows the active users only, and forgetting one changes
// nothing for its user.
func TestKeyLimitsForgetIdleKeys(t *testing.T) {
	l := newKeyLimits(2, 4) // full again 2s after the last request
	t0 := time.Unix(1_800_000_000, 0)
	for i := range 1000 {
		if ok, _ := l.allow(fmt.Sprintf("user-%d", i), t0); !ok {
			t.Fatalf("first request of user-%d refused", i)
		}
	}
	for range 4 {
		l.allow("busy", t0.Add(time.Second))
	}
	if ok, _ := l.allow("busy", t0.Add(time.Second)); ok {
		t.Fatal("busy's fifth request at once allowed, want refused")
	}
	if n := l.size(); n != 1001 {
		t.Fatalf("buckets = %d, want 1001", n)
	}
	// At 2s the quiet users' buckets are full: forgotten. busy's is not.
	l.allow("newcomer", t0.Add(2*time.Second))
	if n := l.size(); n != 2 {
		t.Errorf("buckets after the quiet users' refill time = %d, want 2 (busy and newcomer)", n)
	}
	// busy's bucket was kept: at 2s it holds 2 requests, not a full 4.
	allowed := 0
	for range 4 {
		if ok, _ := l.allow("busy", t0.Add(2*time.Second)); ok {
			allowed++
		}
	}
	if allowed != 2 {
		t.Errorf("busy was allowed %d requests at 2s, want 2 (its bucket must not be reset)", allowed)
	}
	// A forgotten user starts with a full bucket, as they would have had.
	allowed = 0
	for range 5 {
		if ok, _ := l.allow("user-7", t0.Add(3*time.Second)); ok {
			allowed++
		}
	}
	if allowed != 4 {
		t.Errorf("a forgotten user was allowed %d requests at once, want the burst, 4", allowed)
	}
}

// A client's key is its IP address without the port; an IPv6 client is
// keyed by its /64, since one host commonly holds a whole one.
func TestClientAddr(t *testing.T) {
	tests := []struct{ remote, want string }{
		{"192.0.2.7:5555", "192.0.2.7"},
		{"192.0.2.7:6666", "192.0.2.7"},
		{"[::ffff:192.0.2.7]:5555", "192.0.2.7"},
		{"[2001:db8:1:2:aaaa::1]:5555", "2001:db8:1:2::/64"},
		{"[2001:db8:1:2:bbbb::9]:443", "2001:db8:1:2::/64"},
		{"[2001:db8:1:3::1]:5555", "2001:db8:1:3::/64"},
		{"[fe80::1%eth0]:5555", "fe80::/64"},
		{"not an address", "not an address"},
	}
	for _, tt := range tests {
		if got := clientAddr(tt.remote); got != tt.want {
			t.Errorf("clientAddr(%q) = %q, want %q", tt.remote, got, tt.want)
		}
	}
}
