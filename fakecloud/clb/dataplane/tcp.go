package dataplane

import (
	"errors"
	"io"
	"net"
	"net/netip"
	"sync"
	"time"

	"k8s.io/klog/v2"
)

// proxied is one client connection and its upstream connection.
type proxied struct {
	client, upstream *net.TCPConn
	once             sync.Once
}

func (p *proxied) close() {
	p.once.Do(func() {
		_ = p.client.Close()
		_ = p.upstream.Close()
	})
}

// reset ends the connection with an RST to the client, as DeregisterTargetRst asks.
func (p *proxied) reset() {
	p.once.Do(func() {
		_ = p.client.SetLinger(0)
		_ = p.client.Close()
		_ = p.upstream.SetLinger(0)
		_ = p.upstream.Close()
	})
}

func (l *listener) serveTCP() {
	defer l.wg.Done()
	var backoff time.Duration
	for {
		c, err := l.tcp.AcceptTCP()
		if err != nil {
			if l.ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of file descriptors and the like: wait instead of spinning.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			klog.ErrorS(err, "Data plane accept failed", "listener", l.id)
			time.Sleep(backoff)
			continue
		}
		backoff = 0
		l.wg.Add(1)
		go l.handleTCP(c)
	}
}

func (l *listener) handleTCP(client *net.TCPConn) {
	defer l.wg.Done()
	clientIP := netip.Addr{}
	if ap, err := netip.ParseAddrPort(client.RemoteAddr().String()); err == nil {
		clientIP = ap.Addr().Unmap()
	}
	if !l.admits(clientIP) {
		// A source the listener's security groups do not accept gets no connection to
		// any target: reset it before a byte is proxied.
		_ = client.SetLinger(0)
		_ = client.Close()
		return
	}
	tried := map[*backend]bool{}
	for {
		b := l.pick(clientIP, tried)
		if b == nil {
			// Nothing can serve: refuse the way a real LB does, with a reset.
			_ = client.SetLinger(0)
			_ = client.Close()
			return
		}
		d := net.Dialer{Timeout: l.opts.DialTimeout}
		up, err := d.DialContext(l.ctx, "tcp", b.addr.String())
		if err != nil {
			l.release(b)
			tried[b] = true
			klog.V(3).InfoS("Data plane could not reach target; trying another", "listener", l.id, "target", b.addr, "err", err)
			continue
		}
		p := &proxied{client: client, upstream: up.(*net.TCPConn)}
		if !l.track(b, p) {
			p.close()
			l.release(b)
			return
		}
		splice(p)
		l.untrack(b, p)
		l.release(b)
		return
	}
}

// track registers p on b so a deregistration with RST or a stop can end it; false when
// b left (or the listener stopped) while the upstream connection was being made.
func (l *listener) track(b *backend, p *proxied) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.stopped || (b.removed && l.spec.ResetOnDeregister) {
		return false
	}
	b.conns[p] = struct{}{}
	return true
}

func (l *listener) untrack(b *backend, p *proxied) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(b.conns, p)
}

// splice copies both ways until both directions ended, passing half-closes through so
// protocols that signal the end of a request with a FIN keep working.
func splice(p *proxied) {
	done := make(chan struct{}, 2)
	pipe := func(dst, src *net.TCPConn) {
		_, _ = io.Copy(dst, src) // TCPConn.ReadFrom uses splice(2) on Linux
		_ = dst.CloseWrite()
		done <- struct{}{}
	}
	go pipe(p.upstream, p.client)
	go pipe(p.client, p.upstream)
	<-done
	<-done
	p.close()
}
