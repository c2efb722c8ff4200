package dataplane

import (
	"errors"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"k8s.io/klog/v2"
)

// flow is the UDP analogue of a connection: datagrams from one client address go to one
// target through one connected socket, whose answers go back to the client.
type flow struct {
	l      *listener
	client netip.AddrPort
	b      *backend
	conn   *net.UDPConn
	last   atomic.Int64 // unix nanos of the last datagram either way
	once   sync.Once
}

func (f *flow) close() {
	f.once.Do(func() {
		_ = f.conn.Close()
		f.l.releaseNoLock(f.b)
	})
}

// releaseNoLock is release for callers that already hold l.mu.
func (l *listener) releaseNoLock(b *backend) { b.active-- }

func (l *listener) serveUDP() {
	defer l.wg.Done()
	buf := make([]byte, 64<<10)
	for {
		n, client, err := l.udp.ReadFromUDPAddrPort(buf)
		if err != nil {
			if l.ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			klog.V(3).InfoS("Data plane UDP read failed", "listener", l.id, "err", err)
			continue
		}
		if !l.admits(client.Addr().Unmap()) {
			continue // refused by the security groups: dropped, as the cloud does
		}
		f := l.flowFor(client)
		if f == nil {
			continue // no eligible target: drop, as a real LB does
		}
		f.last.Store(time.Now().UnixNano())
		if _, err := f.conn.Write(buf[:n]); err != nil {
			klog.V(3).InfoS("Data plane UDP send to target failed", "listener", l.id, "target", f.b.addr, "err", err)
			l.dropFlow(f)
		}
	}
}

// flowFor returns the client's flow, making a new one when there is none or its target
// is no longer eligible (UDP has no connection to keep, so an unhealthy target's flows
// move at once).
func (l *listener) flowFor(client netip.AddrPort) *flow {
	l.mu.Lock()
	f, ok := l.flows[client]
	if ok && l.eligibleLocked(f.b) {
		l.mu.Unlock()
		return f
	}
	if ok {
		f.close()
		delete(l.flows, client)
	}
	l.mu.Unlock()

	tried := map[*backend]bool{}
	for {
		b := l.pick(client.Addr().Unmap(), tried)
		if b == nil {
			return nil
		}
		conn, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(b.addr))
		if err != nil {
			l.release(b)
			tried[b] = true
			continue
		}
		f := &flow{l: l, client: client, b: b, conn: conn}
		f.last.Store(time.Now().UnixNano())
		l.mu.Lock()
		if l.stopped || b.removed {
			l.mu.Unlock()
			_ = conn.Close()
			l.release(b)
			return nil
		}
		l.flows[client] = f
		l.wg.Add(1)
		l.mu.Unlock()
		go l.returnPath(f)
		return f
	}
}

// returnPath relays the target's answers to the client until the flow closes.
func (l *listener) returnPath(f *flow) {
	defer l.wg.Done()
	buf := make([]byte, 64<<10)
	for {
		n, err := f.conn.Read(buf)
		if err != nil {
			// ECONNREFUSED: the target's port is closed; let the next datagram pick again.
			l.dropFlow(f)
			return
		}
		f.last.Store(time.Now().UnixNano())
		if _, err := l.udp.WriteToUDPAddrPort(buf[:n], f.client); err != nil && l.ctx.Err() == nil {
			klog.V(3).InfoS("Data plane UDP reply failed", "listener", l.id, "client", f.client, "err", err)
		}
	}
}

func (l *listener) dropFlow(f *flow) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if cur, ok := l.flows[f.client]; ok && cur == f {
		delete(l.flows, f.client)
	}
	f.close()
}

// reapFlows ends flows idle for longer than UDPIdleTimeout.
func (l *listener) reapFlows() {
	defer l.wg.Done()
	idle := l.opts.UDPIdleTimeout
	t := time.NewTicker(max(idle/4, 10*time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-l.ctx.Done():
			return
		case <-t.C:
		}
		cutoff := time.Now().Add(-idle).UnixNano()
		l.mu.Lock()
		for client, f := range l.flows {
			if f.last.Load() < cutoff {
				f.close()
				delete(l.flows, client)
			}
		}
		l.mu.Unlock()
	}
}
