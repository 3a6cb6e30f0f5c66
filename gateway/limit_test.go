package gateway

import (
	"fmt"
	"net/netip"
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
// keyed by its /64, since one host commonly holds a whole one. Behind a
// trusted proxy the client is the rightmost untrusted hop of
// X-Forwarded-For; a client's own X-Forwarded-For is not believed.
func TestClientAddr(t *testing.T) {
	proxies := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("2001:db8:ffff::/48")}
	tests := []struct {
		name    string
		remote  string
		xff     []string
		trusted []netip.Prefix
		want    string
	}{
		{"IPv4", "192.0.2.7:5555", nil, nil, "192.0.2.7"},
		{"IPv4, another port", "192.0.2.7:6666", nil, nil, "192.0.2.7"},
		{"IPv4 mapped in IPv6", "[::ffff:192.0.2.7]:5555", nil, nil, "192.0.2.7"},
		{"IPv6 by its /64", "[2001:db8:1:2:aaaa::1]:5555", nil, nil, "2001:db8:1:2::/64"},
		{"IPv6, another host of the /64", "[2001:db8:1:2:bbbb::9]:443", nil, nil, "2001:db8:1:2::/64"},
		{"IPv6, another /64", "[2001:db8:1:3::1]:5555", nil, nil, "2001:db8:1:3::/64"},
		{"IPv6 with a zone", "[fe80::1%eth0]:5555", nil, nil, "fe80::/64"},
		{"not an address", "not an address", nil, nil, "not an address"},
		{"X-Forwarded-For from an untrusted peer is ignored", "192.0.2.7:5555", []string{"198.51.100.1"}, proxies, "192.0.2.7"},
		{"X-Forwarded-For without trusted proxies is ignored", "10.1.2.3:5555", []string{"198.51.100.1"}, nil, "10.1.2.3"},
		{"behind a trusted proxy", "10.1.2.3:5555", []string{"198.51.100.1"}, proxies, "198.51.100.1"},
		{"rightmost untrusted hop, not a spoofed leftmost", "10.1.2.3:5555", []string{"203.0.113.66, 198.51.100.1, 10.9.9.9"}, proxies, "198.51.100.1"},
		{"hops over several headers", "10.1.2.3:5555", []string{"203.0.113.66", "198.51.100.1 , 10.9.9.9"}, proxies, "198.51.100.1"},
		{"IPv6 client behind an IPv6 proxy", "[2001:db8:ffff::1]:443", []string{"2001:db8:5:6::7"}, proxies, "2001:db8:5:6::/64"},
		{"only trusted hops: the leftmost", "10.1.2.3:5555", []string{"10.7.7.7, 10.8.8.8"}, proxies, "10.7.7.7"},
		{"a malformed hop ends the walk", "10.1.2.3:5555", []string{"198.51.100.1, garbage, 10.8.8.8"}, proxies, "10.8.8.8"},
		{"no X-Forwarded-For: the proxy", "10.1.2.3:5555", nil, proxies, "10.1.2.3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := clientAddr(tt.remote, tt.xff, tt.trusted); got != tt.want {
				t.Errorf("clientAddr(%q, %q) = %q, want %q", tt.remote, tt.xff, got, tt.want)
			}
		})
	}
}
