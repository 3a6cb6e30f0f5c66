package testkit

import (
	"net"
	"sync"
	"testing"
)

// Proxy is a TCP proxy in front of a server that a test can pause in either
// direction, as a stopped process or a stalled network would: bytes are held,
// not lost, and delivered in order once the direction resumes.
type Proxy struct {
	ln     net.Listener
	target string

	mu       sync.Mutex
	cond     *sync.Cond
	requests bool // client to server paused
	replies  bool // server to client paused
	conns    []net.Conn
}

// NewProxy listens on a loopback port and forwards every connection to
// target; it stops when the test ends.
func NewProxy(t testing.TB, target string) *Proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("proxy: %v", err)
	}
	p := &Proxy{ln: ln, target: target}
	p.cond = sync.NewCond(&p.mu)
	done := make(chan struct{})
	go func() {
		defer close(done)
		p.accept()
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
		p.Resume()
		p.mu.Lock()
		for _, c := range p.conns {
			c.Close()
		}
		p.mu.Unlock()
	})
	return p
}

// Addr is the proxy's host:port.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// PauseReplies holds what the server sends until Resume: requests arrive and
// are served, their answers do not come.
func (p *Proxy) PauseReplies() { p.set(false, true) }

// Pause holds both directions until Resume, as a stopped server would.
func (p *Proxy) Pause() { p.set(true, true) }

// Break closes every connection open through the proxy, as a network that
// drops them would; it goes on accepting new ones.
func (p *Proxy) Break() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

// Resume delivers what was held and forwards again.
func (p *Proxy) Resume() { p.set(false, false) }

func (p *Proxy) set(requests, replies bool) {
	p.mu.Lock()
	p.requests, p.replies = requests, replies
	p.mu.Unlock()
	p.cond.Broadcast()
}

func (p *Proxy) accept() {
	for {
		client, err := p.ln.Accept()
		if err != nil {
			return
		}
		server, err := net.Dial("tcp", p.target)
		if err != nil {
			client.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, client, server)
		p.mu.Unlock()
		go p.forward(server, client, func() bool { return p.requests })
		go p.forward(client, server, func() bool { return p.replies })
	}
}

// forward copies from src to dst, waiting before each write while paused.
func (p *Proxy) forward(dst, src net.Conn, paused func() bool) {
	defer dst.Close()
	defer src.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			p.mu.Lock()
			for paused() {
				p.cond.Wait()
			}
			p.mu.Unlock()
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}
