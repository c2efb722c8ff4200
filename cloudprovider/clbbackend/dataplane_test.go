package clbbackend_test

import (
	"bufio"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	v1 "k8s.io/api/core/v1"

	fcclb "github.com/stratus-cloud/stratus/fakecloud/clb"
	"github.com/stratus-cloud/stratus/fakecloud/clb/dataplane"
	"github.com/stratus-cloud/stratus/loadbalancer"
)

// nodeServer plays a node on its target-mapped loopback address: the traffic port
// answers the node's name, and kube-proxy's /healthz on 10256 answers 200 while healthy.
type nodeServer struct {
	name    string
	healthy atomic.Bool
}

func startNode(t *testing.T, addr netip.Addr, name string, port int) *nodeServer {
	t.Helper()
	n := &nodeServer{name: name}
	n.healthy.Store(true)
	ln, err := net.Listen("tcp", netip.AddrPortFrom(addr, uint16(port)).String())
	require.NoError(t, err)
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_, _ = fmt.Fprintln(c, name)
			_ = c.Close()
		}
	}()
	hl, err := net.Listen("tcp", netip.AddrPortFrom(addr, 10256).String())
	require.NoError(t, err)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" && n.healthy.Load() {
			w.WriteHeader(http.StatusOK)
			return
		}
		w.WriteHeader(http.StatusServiceUnavailable)
	})}
	go func() { _ = srv.Serve(hl) }()
	t.Cleanup(func() { _ = srv.Close() })
	return n
}

// ask connects to addr from src and returns who answered ("" when refused).
func ask(src netip.Addr, addr string) string {
	d := net.Dialer{Timeout: time.Second, LocalAddr: net.TCPAddrFromAddrPort(netip.AddrPortFrom(src, 0))}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		return ""
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	line, _ := bufio.NewReader(c).ReadString('\n')
	return strings.TrimSpace(line)
}

func answers(src netip.Addr, addr string, n int) map[string]int {
	got := map[string]int{}
	for range n {
		got[ask(src, addr)]++
	}
	return got
}

func TestExternalIPAnswersThroughTheDataPlane(t *testing.T) {
	for _, mode := range modes {
		t.Run(string(mode), func(t *testing.T) {
			n := byte(100 + rand.IntN(100))
			opts := fcclb.Options{
				DataPlane:        true,
				DataPlaneOptions: dataplane.Options{DialTimeout: time.Second},
				LoopbackPool:     netip.PrefixFrom(netip.AddrFrom4([4]byte{127, 241, byte(rand.IntN(256)), 0}), 24),
				PublicPool:       netip.PrefixFrom(netip.AddrFrom4([4]byte{127, 243, byte(rand.IntN(256)), 0}), 24),
				TargetMap:        []fcclb.PrefixMap{{From: netip.MustParsePrefix("10.0.0.0/16"), To: netip.PrefixFrom(netip.AddrFrom4([4]byte{127, n, 0, 0}), 16)}},
				HealthTimeUnit:   20 * time.Millisecond,
				ResyncInterval:   50 * time.Millisecond,
			}
			e := newEnv(t, envOpts{clbOpt: opts})
			port := tp(mode, 8080, 30080)
			n1 := startNode(t, netip.AddrFrom4([4]byte{127, n, 1, 11}), "node-1", port)
			startNode(t, netip.AddrFrom4([4]byte{127, n, 1, 12}), "node-2", port)

			svc := service("web", mode, v1.ServicePort{Name: "http", Protocol: v1.ProtocolTCP, Port: 8080, NodePort: 30080})
			st := e.ensure(svc, nodes(1, 2))
			ip := netip.MustParseAddr(st.Ingress[0].IP)
			require.True(t, opts.PublicPool.Contains(ip), "the external IP %s is from the loopback public pool", ip)
			addr := netip.AddrPortFrom(ip, 8080).String()
			client := netip.AddrFrom4([4]byte{127, 78, byte(rand.IntN(256)), 5})
			require.Eventually(t, func() bool {
				got := answers(client, addr, 6)
				return got["node-1"] > 0 && got["node-2"] > 0 && got[""] == 0
			}, 10*time.Second, 50*time.Millisecond, "every node answers on the external IP")

			// kube-proxy on node-1 stops reporting healthy: node-1 gets no more traffic.
			n1.healthy.Store(false)
			require.Eventually(t, func() bool { return answers(client, addr, 6)["node-2"] == 6 }, 10*time.Second, 50*time.Millisecond)
			n1.healthy.Store(true)

			// Only the allowed range connects.
			other := netip.AddrFrom4([4]byte{127, 79, client.As4()[2], 5})
			svc.Spec.LoadBalancerSourceRanges = []string{netip.PrefixFrom(client, 24).Masked().String()}
			e.ensure(svc, nodes(1, 2))
			require.Eventually(t, func() bool { return ask(other, addr) == "" && ask(client, addr) != "" }, 10*time.Second, 50*time.Millisecond)
			svc.Spec.LoadBalancerSourceRanges = nil
			e.ensure(svc, nodes(1, 2))
			require.Eventually(t, func() bool { return ask(other, addr) != "" }, 10*time.Second, 50*time.Millisecond)

			require.NoError(t, e.engine.EnsureLoadBalancerDeleted(e.ctx, "", svc))
			assert.Empty(t, ask(client, addr), "a deleted load balancer answers no more")
		})
	}
}

// TestModeTagIsWhatFakecloudReads: the tag the engine puts on an L3 VIP load balancer is
// the one fakecloud's VPC router reads to route the VIP instead of proxying it.
func TestModeTagIsWhatFakecloudReads(t *testing.T) {
	assert.Equal(t, fcclb.ModeTag, loadbalancer.TagMode)
	assert.Equal(t, fcclb.ModeVIP, string(loadbalancer.ModeVIP))
}
