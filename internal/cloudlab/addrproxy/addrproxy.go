// Package addrproxy is a fake cloud's movable address (an Elastic IP, a reserved IP) on a loopback
// address of this machine: a listener on each of its ports that forwards every connection to the
// instance holding the address when the connection arrives, as the cloud's network routes it. A
// connection made before a move stays with the instance it reached; a new one goes to the new
// holder; one that arrives while no instance holds the address is closed at once.
package addrproxy

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"
)

// Proxy serves one address. Its methods are safe for concurrent use.
type Proxy struct {
	addr      netip.Addr
	holder    func() netip.Addr
	listeners []net.Listener

	mu     sync.Mutex
	conns  map[net.Conn]bool
	closed bool
}

// Listen binds addr on each port and forwards each connection to port on holder(): the address
// the current holder is reached at, or an invalid Addr when no running instance holds it. holder
// is called once per connection, from the proxy's goroutines, and may take the fake's lock. A
// Listen that fails closes what it had bound.
func Listen(addr netip.Addr, ports []int, holder func() netip.Addr) (*Proxy, error) {
	p := &Proxy{addr: addr, holder: holder, conns: map[net.Conn]bool{}}
	for _, port := range ports {
		ln, err := net.Listen("tcp", netip.AddrPortFrom(addr, uint16(port)).String())
		if err != nil {
			p.Close()
			return nil, fmt.Errorf("addrproxy: %w", err)
		}
		p.listeners = append(p.listeners, ln)
		go p.serve(ln, port)
	}
	return p, nil
}

// Close stops the listeners and closes every forwarded connection; the proxy's goroutines end on
// their own. It does not wait for them, so a fake may close its proxies while holding the lock that
// holder takes. Closing a nil or closed Proxy does nothing.
func (p *Proxy) Close() {
	if p == nil {
		return
	}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed = true
	for _, ln := range p.listeners {
		ln.Close()
	}
	for conn := range p.conns {
		conn.Close()
	}
	p.mu.Unlock()
}

func (p *Proxy) serve(ln net.Listener, port int) {
	for {
		conn, err := ln.Accept()
		if errors.Is(err, net.ErrClosed) {
			return
		}
		if err != nil {
			continue // a connection that failed before it was accepted
		}
		target := p.holder()
		if !target.IsValid() || !p.track(conn) {
			conn.Close()
			continue
		}
		go p.forward(conn, netip.AddrPortFrom(target, uint16(port)))
	}
}

// forward copies between conn and a new connection to target until both directions are done.
func (p *Proxy) forward(conn net.Conn, target netip.AddrPort) {
	defer p.untrack(conn)
	up, err := net.Dial("tcp", target.String())
	if err != nil {
		return
	}
	if !p.track(up) {
		up.Close()
		return
	}
	defer p.untrack(up)
	done := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn) {
		_, _ = io.Copy(dst, src)
		if tc, ok := dst.(*net.TCPConn); ok {
			_ = tc.CloseWrite()
		}
		done <- struct{}{}
	}
	go pipe(up, conn)
	go pipe(conn, up)
	<-done
	<-done
}

func (p *Proxy) track(conn net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return false
	}
	p.conns[conn] = true
	return true
}

func (p *Proxy) untrack(conn net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.conns, conn)
	conn.Close()
}
