package dataplane

import (
	"bufio"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// loopback returns a fresh address in 127.250.0.0/16 so tests never share a VIP.
func loopback(t *testing.T) netip.Addr {
	t.Helper()
	return netip.AddrFrom4([4]byte{127, 250, byte(rand.IntN(250) + 1), byte(rand.IntN(250) + 1)})
}

// tcpBackend is an echo server that first announces its name on a line of its own, so a
// client can tell which target answered.
type tcpBackend struct {
	name string
	addr netip.AddrPort
	ln   net.Listener
	mu   sync.Mutex
	hits int
}

func startTCPBackend(t *testing.T, name string) *tcpBackend {
	t.Helper()
	ln, err := net.Listen("tcp", netip.AddrPortFrom(loopback(t), 0).String())
	require.NoError(t, err)
	b := &tcpBackend{name: name, ln: ln, addr: netip.MustParseAddrPort(ln.Addr().String())}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			b.mu.Lock()
			b.hits++
			b.mu.Unlock()
			go func() {
				defer c.Close()
				if _, err := io.WriteString(c, name+"\n"); err != nil {
					return
				}
				_, _ = io.Copy(c, c)
			}()
		}
	}()
	t.Cleanup(func() { _ = ln.Close() })
	return b
}

func (b *tcpBackend) Hits() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.hits
}

// conn is a client connection through the data plane.
type conn struct {
	t    *testing.T
	c    net.Conn
	r    *bufio.Reader
	Name string // the target that answered
}

func dial(t *testing.T, addr netip.AddrPort) (*conn, error) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr.String(), 2*time.Second)
	if err != nil {
		return nil, err
	}
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	r := bufio.NewReader(c)
	name, err := r.ReadString('\n')
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("read banner: %w", err)
	}
	cc := &conn{t: t, c: c, r: r, Name: strings.TrimSpace(name)}
	t.Cleanup(func() { _ = c.Close() })
	return cc, nil
}

// echo sends msg and returns what came back.
func (c *conn) echo(msg string) (string, error) {
	if _, err := io.WriteString(c.c, msg+"\n"); err != nil {
		return "", err
	}
	got, err := c.r.ReadString('\n')
	return strings.TrimSpace(got), err
}

func mustDial(t *testing.T, addr netip.AddrPort) *conn {
	t.Helper()
	c, err := dial(t, addr)
	require.NoError(t, err)
	got, err := c.echo("ping")
	require.NoError(t, err)
	require.Equal(t, "ping", got)
	return c
}

func newDP(t *testing.T) *DataPlane {
	t.Helper()
	dp := New(Options{DialTimeout: time.Second, UDPIdleTimeout: time.Second})
	t.Cleanup(func() { require.NoError(t, dp.Close()) })
	return dp
}

func tcpListener(t *testing.T, id string, targets ...TargetSpec) ListenerSpec {
	return ListenerSpec{ID: id, Protocol: TCP, Address: netip.AddrPortFrom(loopback(t), 8080), Targets: targets}
}

func target(b *tcpBackend, weight int) TargetSpec { return TargetSpec{Address: b.addr, Weight: weight} }

// fastHealth checks every 20ms so tests see health changes within a fraction of a second.
// The timeout is generous: only a target that is really down fails (refused connections
// fail at once), never a live one that a loaded machine answered slowly.
func fastHealth(kind string) HealthSpec {
	return HealthSpec{Enabled: true, Type: kind, Interval: 20 * time.Millisecond, Timeout: 200 * time.Millisecond, HealthyThreshold: 2, UnhealthyThreshold: 2}
}

func names(t *testing.T, addr netip.AddrPort, n int) map[string]int {
	t.Helper()
	got := map[string]int{}
	for range n {
		c := mustDial(t, addr)
		got[c.Name]++
		_ = c.c.Close()
	}
	return got
}

func TestTCPEchoThroughListenerWithWeights(t *testing.T) {
	dp := newDP(t)
	a, b := startTCPBackend(t, "a"), startTCPBackend(t, "b")
	ls := tcpListener(t, "lbl-1", target(a, 1), target(b, 3))
	require.NoError(t, dp.Apply(Spec{Listeners: []ListenerSpec{ls}}))
	addr, ok := dp.Address("lbl-1")
	require.True(t, ok)
	assert.Equal(t, ls.Address, addr)

	// Smooth WRR gives each target exactly its share over a multiple of the total weight.
	assert.Equal(t, map[string]int{"a": 2, "b": 6}, names(t, ls.Address, 8))
}

func TestWeightZeroGetsNothing(t *testing.T) {
	dp := newDP(t)
	a, b := startTCPBackend(t, "a"), startTCPBackend(t, "b")
	ls := tcpListener(t, "lbl-1", target(a, 0), target(b, 10))
	require.NoError(t, dp.Apply(Spec{Listeners: []ListenerSpec{ls}}))
	assert.Equal(t, map[string]int{"b": 6}, names(t, ls.Address, 6))
	assert.Zero(t, a.Hits())

	// Every target at weight 0: the listener refuses new connections.
	ls.Targets = []TargetSpec{target(a, 0), target(b, 0)}
	require.NoError(t, dp.Apply(Spec{Listeners: []ListenerSpec{ls}}))
	_, err := dial(t, ls.Address)
	require.Error(t, err)
}

func TestUnhealthyTargetGetsNothingAndRecovers(t *testing.T) {
	dp := newDP(t)
	a := startTCPBackend(t, "a")
	// b's address has nothing listening: its checks fail.
	deadLn, err := net.Listen("tcp", netip.AddrPortFrom(loopback(t), 0).String())
	require.NoError(t, err)
	deadAddr := netip.MustParseAddrPort(deadLn.Addr().String())
	require.NoError(t, deadLn.Close())

	ls := tcpListener(t, "lbl-1", target(a, 10), TargetSpec{Address: deadAddr, Weight: 10})
	ls.Health = fastHealth(CheckTCP)
	require.NoError(t, dp.Apply(Spec{Listeners: []ListenerSpec{ls}}))
	require.Eventually(t, func() bool {
		hd, _ := dp.TargetHealth("lbl-1", deadAddr)
		ha, _ := dp.TargetHealth("lbl-1", a.addr)
		return hd == Unhealthy && ha == Healthy
	}, 5*time.Second, 10*time.Millisecond)
	assert.Equal(t, map[string]int{"a": 10}, names(t, ls.Address, 10))

	// The target comes up: after HealthyThreshold passing checks it gets traffic again.
	b := &tcpBackend{name: "b", addr: deadAddr}
	ln, err := net.Listen("tcp", deadAddr.String())
	require.NoError(t, err)
	b.ln = ln
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); _, _ = io.WriteString(c, "b\n"); _, _ = io.Copy(c, c) }()
		}
	}()
	require.Eventually(t, func() bool {
		h, _ := dp.TargetHealth("lbl-1", deadAddr)
		return h == Healthy
	}, 5*time.Second, 10*time.Millisecond)
	got := names(t, ls.Address, 10)
	assert.Equal(t, 5, got["b"], "a recovered target shares traffic again: %v", got)
}

// serveHealth answers HTTP health checks on addr with whatever status reports.
func serveHealth(t *testing.T, addr netip.AddrPort, status func() int) netip.AddrPort {
	t.Helper()
	ln, err := net.Listen("tcp", addr.String())
	require.NoError(t, err)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/healthz" || r.Host != "svc.example" || r.Method != http.MethodGet {
			w.WriteHeader(http.StatusNotFound)
			return
		}
		w.WriteHeader(status())
	})}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return netip.MustParseAddrPort(ln.Addr().String())
}

func TestHTTPHealthCheck(t *testing.T) {
	dp := newDP(t)
	a, b := startTCPBackend(t, "a"), startTCPBackend(t, "b")
	var mu sync.Mutex
	bStatus := http.StatusServiceUnavailable
	// The health endpoints listen on a separate port (CheckPort), the same on both hosts.
	hp := serveHealth(t, netip.AddrPortFrom(a.addr.Addr(), 0), func() int { return http.StatusOK })
	serveHealth(t, netip.AddrPortFrom(b.addr.Addr(), hp.Port()), func() int {
		mu.Lock()
		defer mu.Unlock()
		return bStatus
	})

	ls := tcpListener(t, "lbl-1", target(a, 10), target(b, 10))
	ls.Health = fastHealth(CheckHTTP)
	ls.Health.Port = hp.Port()
	ls.Health.HTTPPath = "/healthz"
	ls.Health.HTTPHost = "svc.example"
	ls.Health.HTTPMethod = http.MethodGet
	ls.Health.HTTPCodes = 2 // 2xx only
	require.NoError(t, dp.Apply(Spec{Listeners: []ListenerSpec{ls}}))
	require.Eventually(t, func() bool {
		ha, _ := dp.TargetHealth("lbl-1", a.addr)
		hb, _ := dp.TargetHealth("lbl-1", b.addr)
		return ha == Healthy && hb == Unhealthy
	}, 5*time.Second, 10*time.Millisecond)
	assert.Equal(t, map[string]int{"a": 4}, names(t, ls.Address, 4))

	mu.Lock()
	bStatus = http.StatusNoContent
	mu.Unlock()
	require.Eventually(t, func() bool {
		hb, _ := dp.TargetHealth("lbl-1", b.addr)
		return hb == Healthy
	}, 5*time.Second, 10*time.Millisecond)
	assert.Equal(t, map[string]int{"a": 2, "b": 2}, names(t, ls.Address, 4))
}

func TestRemovedTargetKeepsEstablishedConnection(t *testing.T) {
	dp := newDP(t)
	a, b := startTCPBackend(t, "a"), startTCPBackend(t, "b")
	ls := tcpListener(t, "lbl-1", target(a, 10), target(b, 10))
	require.NoError(t, dp.Apply(Spec{Listeners: []ListenerSpec{ls}}))
	var onA *conn
	for onA == nil {
		if c := mustDial(t, ls.Address); c.Name == "a" {
			onA = c
		}
	}
	ls.Targets = []TargetSpec{target(b, 10)}
	require.NoError(t, dp.Apply(Spec{Listeners: []ListenerSpec{ls}}))

	hitsA := a.Hits()
	assert.Equal(t, map[string]int{"b": 5}, names(t, ls.Address, 5), "new connections avoid the removed target")
	assert.Equal(t, hitsA, a.Hits())
	got, err := onA.echo("still there")
	require.NoError(t, err, "the established connection to the removed target keeps working")
	assert.Equal(t, "still there", got)
}

func TestRemovedTargetResetWhenAsked(t *testing.T) {
	dp := newDP(t)
	a, b := startTCPBackend(t, "a"), startTCPBackend(t, "b")
	ls := tcpListener(t, "lbl-1", target(a, 10))
	ls.ResetOnDeregister = true
	require.NoError(t, dp.Apply(Spec{Listeners: []ListenerSpec{ls}}))
	onA := mustDial(t, ls.Address)
	ls.Targets = []TargetSpec{target(b, 10)}
	require.NoError(t, dp.Apply(Spec{Listeners: []ListenerSpec{ls}}))
	_, err := onA.echo("gone?")
	require.Error(t, err, "DeregisterTargetRst ends established connections")
	assert.Equal(t, "b", mustDial(t, ls.Address).Name)
}

func TestLeastConn(t *testing.T) {
	dp := newDP(t)
	a, b := startTCPBackend(t, "a"), startTCPBackend(t, "b")
	ls := tcpListener(t, "lbl-1", target(a, 10), target(b, 10))
	ls.Scheduler = LeastConn
	require.NoError(t, dp.Apply(Spec{Listeners: []ListenerSpec{ls}}))
	first := mustDial(t, ls.Address) // held open
	for range 3 {
		c := mustDial(t, ls.Address)
		assert.NotEqual(t, first.Name, c.Name, "the target with fewer connections wins")
		_ = c.c.Close()
		// Wait until the proxy saw the close, so the counts are even again.
		require.Eventually(t, func() bool {
			dp.mu.Lock()
			l := dp.listeners["lbl-1"]
			dp.mu.Unlock()
			l.mu.Lock()
			defer l.mu.Unlock()
			total := 0
			for _, be := range l.backends {
				total += be.active
			}
			return total == 1
		}, 5*time.Second, 5*time.Millisecond)
	}
}

func TestSessionPersistence(t *testing.T) {
	dp := newDP(t)
	a, b := startTCPBackend(t, "a"), startTCPBackend(t, "b")
	ls := tcpListener(t, "lbl-1", target(a, 10), target(b, 10))
	ls.SessionExpire = time.Minute
	require.NoError(t, dp.Apply(Spec{Listeners: []ListenerSpec{ls}}))
	got := names(t, ls.Address, 6)
	assert.Len(t, got, 1, "one client IP sticks to one target: %v", got)
}

func TestRefusesNonLoopback(t *testing.T) {
	dp := newDP(t)
	a := startTCPBackend(t, "a")
	bad := ListenerSpec{ID: "lbl-bad", Protocol: TCP, Address: netip.MustParseAddrPort("192.0.2.1:80")}
	good := tcpListener(t, "lbl-good", target(a, 10), TargetSpec{Address: netip.MustParseAddrPort("192.0.2.7:80"), Weight: 100})
	err := dp.Apply(Spec{Listeners: []ListenerSpec{bad, good}})
	require.ErrorContains(t, err, "lbl-bad")
	_, ok := dp.Address("lbl-bad")
	assert.False(t, ok)
	// The good listener runs and never sends anything to the non-loopback target.
	assert.Equal(t, map[string]int{"a": 4}, names(t, good.Address, 4))
}

func TestListenerRemovedAndClose(t *testing.T) {
	dp := New(Options{})
	a := startTCPBackend(t, "a")
	l1, l2 := tcpListener(t, "lbl-1", target(a, 10)), tcpListener(t, "lbl-2", target(a, 10))
	require.NoError(t, dp.Apply(Spec{Listeners: []ListenerSpec{l1, l2}}))
	c := mustDial(t, l1.Address)
	mustDial(t, l2.Address)

	require.NoError(t, dp.Apply(Spec{Listeners: []ListenerSpec{l2}}))
	_, err := net.DialTimeout("tcp", l1.Address.String(), time.Second)
	require.Error(t, err, "a deleted listener stops listening")
	_, err = c.echo("x")
	require.Error(t, err, "and its connections end")
	mustDial(t, l2.Address)

	require.NoError(t, dp.Close())
	_, err = net.DialTimeout("tcp", l2.Address.String(), time.Second)
	require.Error(t, err, "Close stops every listener")
	require.Error(t, dp.Apply(Spec{}))
}

// udpEcho answers every datagram with "<name>:<datagram>".
func startUDPBackend(t *testing.T, name string) netip.AddrPort {
	t.Helper()
	pc, err := net.ListenPacket("udp", netip.AddrPortFrom(loopback(t), 0).String())
	require.NoError(t, err)
	t.Cleanup(func() { _ = pc.Close() })
	go func() {
		buf := make([]byte, 2048)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			_, _ = pc.WriteTo([]byte(name+":"+string(buf[:n])), from)
		}
	}()
	return netip.MustParseAddrPort(pc.LocalAddr().String())
}

func udpAsk(t *testing.T, c net.Conn, msg string) (string, error) {
	t.Helper()
	if _, err := c.Write([]byte(msg)); err != nil {
		return "", err
	}
	_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
	buf := make([]byte, 2048)
	n, err := c.Read(buf)
	return string(buf[:n]), err
}

func TestUDPEchoThroughListener(t *testing.T) {
	dp := newDP(t)
	a, b := startUDPBackend(t, "a"), startUDPBackend(t, "b")
	ls := ListenerSpec{ID: "lbl-u", Protocol: UDP, Address: netip.AddrPortFrom(loopback(t), 5353),
		Targets: []TargetSpec{{Address: a, Weight: 10}, {Address: b, Weight: 10}}, Health: fastHealth("")}
	require.NoError(t, dp.Apply(Spec{Listeners: []ListenerSpec{ls}}))

	seen := map[string]int{}
	for i := range 4 {
		c, err := net.Dial("udp", ls.Address.String())
		require.NoError(t, err)
		got, err := udpAsk(t, c, fmt.Sprint("hello", i))
		require.NoError(t, err)
		name, msg, _ := strings.Cut(got, ":")
		assert.Equal(t, fmt.Sprint("hello", i), msg)
		seen[name]++
		// A flow sticks to its target.
		again, err := udpAsk(t, c, "again")
		require.NoError(t, err)
		assert.Equal(t, name+":again", again)
		_ = c.Close()
	}
	assert.Equal(t, map[string]int{"a": 2, "b": 2}, seen)

	// Remove a: every flow, new or old, now lands on b.
	ls.Targets = []TargetSpec{{Address: b, Weight: 10}}
	require.NoError(t, dp.Apply(Spec{Listeners: []ListenerSpec{ls}}))
	for range 3 {
		c, err := net.Dial("udp", ls.Address.String())
		require.NoError(t, err)
		got, err := udpAsk(t, c, "x")
		require.NoError(t, err)
		assert.Equal(t, "b:x", got)
		_ = c.Close()
	}
}

func TestUDPHealthCheckSeesClosedPort(t *testing.T) {
	dp := newDP(t)
	a := startUDPBackend(t, "a")
	pc, err := net.ListenPacket("udp", netip.AddrPortFrom(loopback(t), 0).String())
	require.NoError(t, err)
	dead := netip.MustParseAddrPort(pc.LocalAddr().String())
	require.NoError(t, pc.Close())

	ls := ListenerSpec{ID: "lbl-u", Protocol: UDP, Address: netip.AddrPortFrom(loopback(t), 5353),
		Targets: []TargetSpec{{Address: a, Weight: 10}, {Address: dead, Weight: 10}}, Health: fastHealth("")}
	require.NoError(t, dp.Apply(Spec{Listeners: []ListenerSpec{ls}}))
	require.Eventually(t, func() bool {
		hd, _ := dp.TargetHealth("lbl-u", dead)
		ha, _ := dp.TargetHealth("lbl-u", a)
		return hd == Unhealthy && ha == Healthy
	}, 5*time.Second, 10*time.Millisecond)
	for range 4 {
		c, err := net.Dial("udp", ls.Address.String())
		require.NoError(t, err)
		got, err := udpAsk(t, c, "q")
		require.NoError(t, err)
		assert.Equal(t, "a:q", got)
		_ = c.Close()
	}
}

// A UDP service that never answers is up (its port is open) unless the check requires an
// answer, and a CUSTOM check judges the answer's content.
func TestUDPHealthCheckSilenceAndCustom(t *testing.T) {
	dp := newDP(t)
	mute, err := net.ListenPacket("udp", netip.AddrPortFrom(loopback(t), 0).String())
	require.NoError(t, err)
	t.Cleanup(func() { _ = mute.Close() })
	go func() {
		buf := make([]byte, 2048)
		for {
			if _, _, err := mute.ReadFrom(buf); err != nil {
				return
			}
		}
	}()
	muteAddr := netip.MustParseAddrPort(mute.LocalAddr().String())
	echo := startUDPBackend(t, "e")

	plain := ListenerSpec{ID: "lbl-plain", Protocol: UDP, Address: netip.AddrPortFrom(loopback(t), 5354),
		Targets: []TargetSpec{{Address: muteAddr, Weight: 10}}, Health: fastHealth("")}
	custom := ListenerSpec{ID: "lbl-custom", Protocol: UDP, Address: netip.AddrPortFrom(loopback(t), 5354),
		Targets: []TargetSpec{{Address: muteAddr, Weight: 10}, {Address: echo, Weight: 10}}, Health: fastHealth(CheckCustom)}
	custom.Health.Send, custom.Health.Recv = []byte("PING"), []byte("e:PING")
	require.NoError(t, dp.Apply(Spec{Listeners: []ListenerSpec{plain, custom}}))
	require.Eventually(t, func() bool {
		hp, _ := dp.TargetHealth("lbl-plain", muteAddr)
		hm, _ := dp.TargetHealth("lbl-custom", muteAddr)
		he, _ := dp.TargetHealth("lbl-custom", echo)
		return hp == Healthy && hm == Unhealthy && he == Healthy
	}, 5*time.Second, 10*time.Millisecond)
}
