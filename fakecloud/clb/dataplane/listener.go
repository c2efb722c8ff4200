package dataplane

import (
	"context"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"k8s.io/klog/v2"
)

// listener is one running listener: a socket, its targets and their health checks.
type listener struct {
	id       string
	protocol string
	addr     netip.AddrPort
	netns    string
	opts     *Options

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	tcp *net.TCPListener
	udp *net.UDPConn

	mu       sync.Mutex
	spec     ListenerSpec
	backends map[netip.AddrPort]*backend
	order    []*backend // spec order, for deterministic scheduling
	sessions map[netip.Addr]session
	flows    map[netip.AddrPort]*flow // UDP only
	stopped  bool
}

// backend is one target. It outlives spec updates that keep its address, so its health,
// its connection count and its connections survive a weight change or a new neighbour.
type backend struct {
	addr netip.AddrPort

	// Guarded by listener.mu.
	weight  int
	current int // smooth WRR state
	active  int
	removed bool
	conns   map[*proxied]struct{}

	health atomic.Int32 // Health
	// checker state, owned by the checker goroutine
	checkSpec   HealthSpec
	checkCancel context.CancelFunc
}

type session struct {
	b       *backend
	expires time.Time
}

func startListener(ls *ListenerSpec, opts *Options) (*listener, error) {
	l := &listener{
		id:       ls.ID,
		protocol: ls.Protocol,
		addr:     ls.Address,
		opts:     opts,
		backends: map[netip.AddrPort]*backend{},
		sessions: map[netip.Addr]session{},
		flows:    map[netip.AddrPort]*flow{},
	}
	listen := func() error {
		var err error
		switch ls.Protocol {
		case TCP:
			l.tcp, err = net.ListenTCP("tcp", net.TCPAddrFromAddrPort(ls.Address))
		case UDP:
			l.udp, err = net.ListenUDP("udp", net.UDPAddrFromAddrPort(ls.Address))
		}
		return err
	}
	var err error
	if ls.Netns != "" {
		err = inNetns(ls.Netns, listen)
	} else {
		err = listen()
	}
	if err != nil {
		return nil, err
	}
	l.netns = ls.Netns
	l.ctx, l.cancel = context.WithCancel(context.Background())
	l.update(ls)
	l.wg.Add(1)
	switch ls.Protocol {
	case TCP:
		go l.serveTCP()
	case UDP:
		go l.serveUDP()
		l.wg.Add(1)
		go l.reapFlows()
	}
	return l, nil
}

// update swaps in a new spec: new targets join, gone targets leave (their connections
// are reset only when the spec asks for it), weights and health checks change in place.
func (l *listener) update(ls *ListenerSpec) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.stopped {
		return
	}
	l.spec = *ls
	l.spec.Targets = nil
	seen := map[netip.AddrPort]bool{}
	l.order = l.order[:0]
	for _, ts := range ls.Targets {
		if seen[ts.Address] {
			continue
		}
		seen[ts.Address] = true
		if !ts.Address.IsValid() || !ls.reachable(ts.Address.Addr()) || ts.Address.Port() == 0 {
			klog.ErrorS(nil, "Data plane ignores a target that is neither a loopback address nor in a reachable prefix", "listener", l.id, "target", ts.Address)
			continue
		}
		b, ok := l.backends[ts.Address]
		if !ok {
			b = &backend{addr: ts.Address, conns: map[*proxied]struct{}{}}
			l.backends[ts.Address] = b
		}
		b.weight = max(ts.Weight, 0)
		l.order = append(l.order, b)
	}
	for addr, b := range l.backends {
		if seen[addr] && ls.reachable(addr.Addr()) {
			continue
		}
		b.removed = true
		delete(l.backends, addr)
		l.stopCheckLocked(b)
		if ls.ResetOnDeregister {
			for p := range b.conns {
				p.reset()
			}
		}
		for client, f := range l.flows {
			if f.b == b {
				f.close()
				delete(l.flows, client)
			}
		}
	}
	for _, b := range l.order {
		l.syncCheckLocked(b)
	}
}

// stop closes the socket, every connection and every health check.
func (l *listener) stop() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.stopped {
		return
	}
	l.stopped = true
	l.cancel()
	if l.tcp != nil {
		_ = l.tcp.Close()
	}
	if l.udp != nil {
		_ = l.udp.Close()
	}
	for _, b := range l.backends {
		b.removed = true
		l.stopCheckLocked(b)
		for p := range b.conns {
			p.close()
		}
	}
	for client, f := range l.flows {
		f.close()
		delete(l.flows, client)
	}
}

func (l *listener) eligibleLocked(b *backend) bool {
	if b.removed || b.weight <= 0 {
		return false
	}
	return !l.spec.Health.Enabled || Health(b.health.Load()) != Unhealthy
}

// pick chooses a target for a new connection from client, skipping the ones in tried,
// and counts the connection as active on it. Nil means no target is eligible.
func (l *listener) pick(client netip.Addr, tried map[*backend]bool) *backend {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.stopped {
		return nil
	}
	now := time.Now()
	var b *backend
	if l.spec.SessionExpire > 0 {
		if s, ok := l.sessions[client]; ok && now.Before(s.expires) && l.eligibleLocked(s.b) && !tried[s.b] {
			b = s.b
		}
	}
	if b == nil {
		switch l.spec.Scheduler {
		case LeastConn:
			b = l.leastConnLocked(tried)
		default:
			b = l.wrrLocked(tried)
		}
	}
	if b == nil {
		return nil
	}
	b.active++
	if l.spec.SessionExpire > 0 {
		l.sessions[client] = session{b: b, expires: now.Add(l.spec.SessionExpire)}
		if len(l.sessions) > 4096 {
			for ip, s := range l.sessions {
				if now.After(s.expires) {
					delete(l.sessions, ip)
				}
			}
		}
	}
	return b
}

// wrrLocked is nginx's smooth weighted round robin: over any window of total-weight picks
// each target gets exactly its weight, interleaved rather than in bursts.
func (l *listener) wrrLocked(tried map[*backend]bool) *backend {
	total := 0
	var best *backend
	for _, b := range l.order {
		if !l.eligibleLocked(b) || tried[b] {
			continue
		}
		b.current += b.weight
		total += b.weight
		if best == nil || b.current > best.current {
			best = b
		}
	}
	if best != nil {
		best.current -= total
	}
	return best
}

func (l *listener) leastConnLocked(tried map[*backend]bool) *backend {
	var best *backend
	for _, b := range l.order {
		if !l.eligibleLocked(b) || tried[b] {
			continue
		}
		// active/weight < best.active/best.weight, without division.
		if best == nil || b.active*best.weight < best.active*b.weight {
			best = b
		}
	}
	return best
}

func (l *listener) release(b *backend) {
	l.mu.Lock()
	defer l.mu.Unlock()
	b.active--
}

func (l *listener) health(target netip.AddrPort) (Health, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	b, ok := l.backends[target]
	if !ok {
		return HealthUnknown, false
	}
	if !l.spec.Health.Enabled {
		return Healthy, true
	}
	return Health(b.health.Load()), true
}

// admits reports whether the listener's current spec accepts a client at src.
func (l *listener) admits(src netip.Addr) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.spec.admits(src)
}
