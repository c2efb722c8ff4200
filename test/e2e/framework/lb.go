package framework

import (
	"bufio"
	"context"
	"crypto/rand"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// LBNetwork is where one test's load balancer traffic lives on this machine, all inside
// 127.0.0.0/8: the VPC's 10.0.0.0/16 mapped onto TargetMap (so node 10.0.1.11 is served
// at 127.T.1.11), public VIPs from PublicPool, other VIPs from LoopbackPool. The octets
// are drawn at random so tests (and other packages' tests) running at the same time on
// the machine rarely share an address.
type LBNetwork struct {
	TargetMap    netip.Prefix // a /16 the VPC 10.0.0.0/16 is mapped onto
	PublicPool   netip.Prefix // a /24
	LoopbackPool netip.Prefix // a /24
	// ClientNet is a /24 to bind client sockets in; OtherClientNet another one.
	ClientNet, OtherClientNet netip.Prefix
}

func randByte(t testing.TB, lo, hi int) byte {
	t.Helper()
	n, err := rand.Int(rand.Reader, big.NewInt(int64(hi-lo+1)))
	if err != nil {
		t.Fatalf("random: %v", err)
	}
	return byte(lo + int(n.Int64()))
}

// NewLBNetwork draws the prefixes: the target map in 127.{100..199}.0.0/16, the pools in
// 127.244-127.245 and the client networks in 127.246-127.247, clear of fakecloud's
// default loopback pool 127.240.0.0/16.
func NewLBNetwork(t testing.TB) *LBNetwork {
	t.Helper()
	a, b, c := randByte(t, 0, 255), randByte(t, 0, 255), randByte(t, 0, 254)
	return &LBNetwork{
		TargetMap:      netip.PrefixFrom(netip.AddrFrom4([4]byte{127, randByte(t, 100, 199), 0, 0}), 16),
		PublicPool:     netip.PrefixFrom(netip.AddrFrom4([4]byte{127, 244, a, 0}), 24),
		LoopbackPool:   netip.PrefixFrom(netip.AddrFrom4([4]byte{127, 245, b, 0}), 24),
		ClientNet:      netip.PrefixFrom(netip.AddrFrom4([4]byte{127, 246, c, 0}), 24),
		OtherClientNet: netip.PrefixFrom(netip.AddrFrom4([4]byte{127, 247, c, 0}), 24),
	}
}

// FakecloudArgs are the `fakecloud serve` flags that turn the data plane on for this
// network.
func (n *LBNetwork) FakecloudArgs() []string {
	return []string{"--dataplane", "--lb-target-map=10.0.0.0/16=" + n.TargetMap.String(),
		"--lb-public-pool=" + n.PublicPool.String(), "--lb-loopback-pool=" + n.LoopbackPool.String()}
}

// Mapped is where the data plane reaches VPC address vpcIP (inside 10.0.0.0/16).
func (n *LBNetwork) Mapped(vpcIP string) netip.Addr {
	v := netip.MustParseAddr(vpcIP).As4()
	t := n.TargetMap.Addr().As4()
	return netip.AddrFrom4([4]byte{t[0], t[1], v[2], v[3]})
}

// Client is an address to connect from, inside ClientNet (other: OtherClientNet).
func (n *LBNetwork) Client(other bool) netip.Addr {
	p := n.ClientNet
	if other {
		p = n.OtherClientNet
	}
	a := p.Addr().As4()
	a[3] = 10
	return netip.AddrFrom4(a)
}

// NodeServer plays a node's network side on its mapped loopback address: TCP ports that
// answer the node's name on a line, UDP ports that answer the node's name, and HTTP
// /healthz ports (kube-proxy's, a Service's healthCheckNodePort) answering 200 while
// healthy and 503 otherwise. It runs inside the test process.
type NodeServer struct {
	Name string
	Addr netip.Addr

	t       testing.TB
	healthy atomic.Bool
	mu      sync.Mutex
	closers map[string]func()
}

// NewNodeServer returns a healthy NodeServer for node name at addr; t.Cleanup stops it.
func NewNodeServer(t testing.TB, name string, addr netip.Addr) *NodeServer {
	s := &NodeServer{Name: name, Addr: addr, t: t, closers: map[string]func(){}}
	s.healthy.Store(true)
	t.Cleanup(s.Close)
	return s
}

// SetHealthy makes the /healthz ports answer 200 (true) or 503.
func (s *NodeServer) SetHealthy(ok bool) { s.healthy.Store(ok) }

func (s *NodeServer) add(key string, closer func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if old, ok := s.closers[key]; ok {
		old()
	}
	s.closers[key] = closer
}

// ServeTCP answers the node's name to every connection on port.
func (s *NodeServer) ServeTCP(port int) {
	s.t.Helper()
	ln, err := net.Listen("tcp", netip.AddrPortFrom(s.Addr, uint16(port)).String())
	if err != nil {
		s.t.Fatalf("node %s: listen on tcp %s:%d: %v", s.Name, s.Addr, port, err)
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_, _ = fmt.Fprintln(c, s.Name)
			_ = c.Close()
		}
	}()
	s.add(fmt.Sprintf("tcp/%d", port), func() { _ = ln.Close() })
}

// ServeUDP answers the node's name to every datagram on port.
func (s *NodeServer) ServeUDP(port int) {
	s.t.Helper()
	pc, err := net.ListenPacket("udp", netip.AddrPortFrom(s.Addr, uint16(port)).String())
	if err != nil {
		s.t.Fatalf("node %s: listen on udp %s:%d: %v", s.Name, s.Addr, port, err)
	}
	go func() {
		buf := make([]byte, 1500)
		for {
			_, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			_, _ = pc.WriteTo([]byte(s.Name+"\n"), from)
		}
	}()
	s.add(fmt.Sprintf("udp/%d", port), func() { _ = pc.Close() })
}

// ServeHealth answers GET /healthz on port: 200 while healthy, 503 otherwise.
func (s *NodeServer) ServeHealth(port int) {
	s.t.Helper()
	ln, err := net.Listen("tcp", netip.AddrPortFrom(s.Addr, uint16(port)).String())
	if err != nil {
		s.t.Fatalf("node %s: listen on %s:%d for /healthz: %v", s.Name, s.Addr, port, err)
	}
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/healthz" || !s.healthy.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusOK)
	})}
	go func() { _ = srv.Serve(ln) }()
	s.add(fmt.Sprintf("health/%d", port), func() { _ = srv.Close() })
}

// Stop closes what listens on key ("tcp/80", "udp/53", "health/10256").
func (s *NodeServer) Stop(key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c, ok := s.closers[key]; ok {
		c()
		delete(s.closers, key)
	}
}

// Close stops every server.
func (s *NodeServer) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, c := range s.closers {
		c()
		delete(s.closers, k)
	}
}

// AskTCP connects from src (port 0) to addr and returns the line the server answered:
// the name of the node the load balancer picked.
func AskTCP(ctx context.Context, src netip.Addr, addr netip.AddrPort) (string, error) {
	d := net.Dialer{Timeout: 2 * time.Second, LocalAddr: net.TCPAddrFromAddrPort(netip.AddrPortFrom(src, 0))}
	c, err := d.DialContext(ctx, "tcp", addr.String())
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(3 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return "", fmt.Errorf("read from %s: %w", addr, err)
	}
	return strings.TrimSpace(line), nil
}

// AskUDP sends a datagram from src to addr and returns the answer.
func AskUDP(src netip.Addr, addr netip.AddrPort) (string, error) {
	c, err := net.DialUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(src, 0)), net.UDPAddrFromAddrPort(addr))
	if err != nil {
		return "", err
	}
	defer c.Close()
	if _, err := c.Write([]byte("who\n")); err != nil {
		return "", err
	}
	_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
	buf := make([]byte, 1500)
	k, err := c.Read(buf)
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(buf[:k])), nil
}

// Spread asks n times (TCP, or UDP when udp) and counts who answered; failures count
// under "".
func Spread(ctx context.Context, src netip.Addr, addr netip.AddrPort, n int, udp bool) map[string]int {
	got := map[string]int{}
	for range n {
		var name string
		var err error
		if udp {
			name, err = AskUDP(src, addr)
		} else {
			name, err = AskTCP(ctx, src, addr)
		}
		if err != nil {
			name = ""
		}
		got[name]++
	}
	return got
}
