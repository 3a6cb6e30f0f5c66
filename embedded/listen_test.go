package embedded

import (
	"net"
	"strings"
	"testing"
)

// A server asked to listen where another process listens says so at once,
// rather than failing to become ready.
func TestStartOnABusyAddress(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	busy := l.Addr().String()
	if s, err := StartNATS(NATSConfig{Listen: busy, StoreDir: t.TempDir()}); err == nil || !strings.Contains(err.Error(), "address already in use") {
		if s != nil {
			s.Shutdown()
		}
		t.Errorf("nats on %s: %v, want address already in use", busy, err)
	}
	if m, err := StartMongo(MongoConfig{Listen: busy, Dir: t.TempDir()}); err == nil || !strings.Contains(err.Error(), "address already in use") {
		if m != nil {
			m.Close()
		}
		t.Errorf("mongo on %s: %v, want address already in use", busy, err)
	}
}
