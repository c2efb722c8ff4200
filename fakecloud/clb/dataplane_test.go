package clb_test

import (
	"bufio"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	clbapi "github.com/stratus-cloud/stratus/cloudapi/clb"
	cvmapi "github.com/stratus-cloud/stratus/cloudapi/cvm"
	"github.com/stratus-cloud/stratus/fakecloud"
	"github.com/stratus-cloud/stratus/fakecloud/clb"
	"github.com/stratus-cloud/stratus/fakecloud/clb/dataplane"
	"github.com/stratus-cloud/stratus/fakecloud/cvm"
)

// dpOptions turns the data plane on with fast health checks (one API second = 20ms, so
// the default check runs every 100ms with a 40ms timeout and 3 strikes) and maps the VPC
// 10.0.0.0/16 onto 127.<n>.0.0/16, so instance node-1 (10.0.1.11) is served at
// 127.<n>.1.11. Each test gets its own n and its own loopback pool for VIPs, so test
// packages running at the same time never share an address.
func dpOptions() (clb.Options, byte) {
	n := byte(100 + rand.IntN(100))
	return clb.Options{
		DataPlane:        true,
		DataPlaneOptions: dataplane.Options{DialTimeout: time.Second},
		LoopbackPool:     netip.PrefixFrom(netip.AddrFrom4([4]byte{127, 241, byte(rand.IntN(256)), 0}), 24),
		TargetMap:        []clb.PrefixMap{{From: netip.MustParsePrefix("10.0.0.0/16"), To: netip.PrefixFrom(netip.AddrFrom4([4]byte{127, n, 0, 0}), 16)}},
		HealthTimeUnit:   20 * time.Millisecond,
		ResyncInterval:   50 * time.Millisecond,
	}, n
}

// backend is a TCP echo server on an instance's mapped address that first announces its
// name, so a client can tell which target answered.
func backend(t *testing.T, addr netip.Addr, name string) int64 {
	t.Helper()
	ln, err := net.Listen("tcp", netip.AddrPortFrom(addr, 0).String())
	require.NoError(t, err)
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_, _ = io.WriteString(c, name+"\n")
				_, _ = io.Copy(c, c)
			}()
		}
	}()
	return int64(netip.MustParseAddrPort(ln.Addr().String()).Port())
}

func udpBackend(t *testing.T, addr netip.Addr, name string) int64 {
	t.Helper()
	pc, err := net.ListenPacket("udp", netip.AddrPortFrom(addr, 0).String())
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
	return int64(netip.MustParseAddrPort(pc.LocalAddr().String()).Port())
}

type tcpClient struct {
	c    net.Conn
	r    *bufio.Reader
	name string
}

func dialVIP(t *testing.T, addr netip.AddrPort) (*tcpClient, error) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr.String(), 2*time.Second)
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { _ = c.Close() })
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	r := bufio.NewReader(c)
	name, err := r.ReadString('\n')
	if err != nil {
		return nil, fmt.Errorf("read banner: %w", err)
	}
	return &tcpClient{c: c, r: r, name: strings.TrimSpace(name)}, nil
}

func (c *tcpClient) echo(msg string) (string, error) {
	if _, err := io.WriteString(c.c, msg+"\n"); err != nil {
		return "", err
	}
	s, err := c.r.ReadString('\n')
	return strings.TrimSpace(s), err
}

// spread opens n connections and counts which target answered each.
func spread(t *testing.T, addr netip.AddrPort, n int) map[string]int {
	t.Helper()
	got, err := trySpread(t, addr, n)
	require.NoError(t, err)
	return got
}

// trySpread is spread for polling loops: it reports failures instead of failing the test.
func trySpread(t *testing.T, addr netip.AddrPort, n int) (map[string]int, error) {
	got := map[string]int{}
	for range n {
		c, err := dialVIP(t, addr)
		if err != nil {
			return nil, err
		}
		reply, err := c.echo("ping")
		_ = c.c.Close()
		if err != nil {
			return nil, err
		}
		if reply != "ping" {
			return nil, fmt.Errorf("echo answered %q", reply)
		}
		got[c.name]++
	}
	return got, nil
}

func vipAddr(t *testing.T, e *env, lb string, port uint16) netip.AddrPort {
	t.Helper()
	a, ok := clb.LoopbackVIP(e.cloud.World(), lb)
	require.True(t, ok)
	return netip.AddrPortFrom(a, port)
}

func mapped(n byte, third, fourth byte) netip.Addr {
	return netip.AddrFrom4([4]byte{127, n, third, fourth})
}

func register(t *testing.T, e *env, lb, l string, targets ...clbapi.Target) {
	t.Helper()
	_, err := e.clb.RegisterTargets(e.ctx, &clbapi.RegisterTargetsRequest{LoadBalancerId: lb, ListenerId: l, Targets: targets})
	require.NoError(t, err)
}

func TestDataPlaneTCPAndUDPEcho(t *testing.T) {
	opts, n := dpOptions()
	e := newEnv(t, envOpts{clb: opts})
	p1 := backend(t, mapped(n, 1, 11), "node-1")
	p2 := backend(t, mapped(n, 1, 12), "node-2")
	u1 := udpBackend(t, mapped(n, 1, 11), "node-1")

	lb := e.openLB(t, "web")
	l := e.listener(t, lb, clbapi.ProtocolTCP, 8080, nil)
	u := e.listener(t, lb, clbapi.ProtocolUDP, 5353, nil)
	register(t, e, lb, l, insTarget("ins-node0001", p1), insTarget("ins-node0002", p2))
	register(t, e, lb, u, insTarget("ins-node0001", u1))

	// The cloud VIP is what the API shows; the data plane serves it on its loopback twin.
	vip := e.describeLB(t, lb).LoadBalancerVips[0]
	assert.False(t, netip.MustParseAddr(vip).IsLoopback())
	assert.Equal(t, map[string]int{"node-1": 2, "node-2": 2}, spread(t, vipAddr(t, e, lb, 8080), 4))

	c, err := net.Dial("udp", vipAddr(t, e, lb, 5353).String())
	require.NoError(t, err)
	defer c.Close()
	_, err = c.Write([]byte("hello"))
	require.NoError(t, err)
	_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
	buf := make([]byte, 256)
	k, err := c.Read(buf)
	require.NoError(t, err)
	assert.Equal(t, "node-1:hello", string(buf[:k]))
}

func TestDataPlaneDeregisterKeepsEstablished(t *testing.T) {
	opts, n := dpOptions()
	e := newEnv(t, envOpts{clb: opts})
	p1 := backend(t, mapped(n, 1, 11), "node-1")
	p2 := backend(t, mapped(n, 1, 12), "node-2")
	lb := e.openLB(t, "web")
	l := e.listener(t, lb, clbapi.ProtocolTCP, 8080, nil)
	register(t, e, lb, l, insTarget("ins-node0001", p1), insTarget("ins-node0002", p2))
	addr := vipAddr(t, e, lb, 8080)

	var onNode1 *tcpClient
	for onNode1 == nil {
		c, err := dialVIP(t, addr)
		require.NoError(t, err)
		if c.name == "node-1" {
			onNode1 = c
		}
	}
	_, err := e.clb.DeregisterTargets(e.ctx, &clbapi.DeregisterTargetsRequest{LoadBalancerId: lb, ListenerId: l, Targets: []clbapi.Target{insTarget("ins-node0001", p1)}})
	require.NoError(t, err)
	assert.Equal(t, map[string]int{"node-2": 5}, spread(t, addr, 5), "new connections avoid the deregistered target")
	got, err := onNode1.echo("still here")
	require.NoError(t, err, "the established connection keeps working")
	assert.Equal(t, "still here", got)
}

func TestDataPlaneUnhealthyAndWeightZeroGetNothing(t *testing.T) {
	opts, n := dpOptions()
	e := newEnv(t, envOpts{clb: opts})
	p1 := backend(t, mapped(n, 1, 11), "node-1")
	p2 := backend(t, mapped(n, 1, 12), "node-2")
	// node-3's port has nothing listening: its health checks fail.
	ln, err := net.Listen("tcp", netip.AddrPortFrom(mapped(n, 2, 11), 0).String())
	require.NoError(t, err)
	dead := int64(netip.MustParseAddrPort(ln.Addr().String()).Port())
	require.NoError(t, ln.Close())

	lb := e.openLB(t, "web")
	l := e.listener(t, lb, clbapi.ProtocolTCP, 8080, nil) // default checks: 5s interval = 100ms here
	register(t, e, lb, l, insTarget("ins-node0001", p1), insTarget("ins-node0003", dead),
		clbapi.Target{InstanceId: ptr("ins-node0002"), Port: ptr(p2), Weight: ptr(int64(0))})
	require.Eventually(t, func() bool {
		h, _ := e.mod.DataPlane().TargetHealth(l, netip.AddrPortFrom(mapped(n, 2, 11), uint16(dead)))
		return h == dataplane.Unhealthy
	}, 10*time.Second, 10*time.Millisecond)
	assert.Equal(t, map[string]int{"node-1": 6}, spread(t, vipAddr(t, e, lb, 8080), 6),
		"neither the unhealthy target nor the weight-0 one gets traffic")

	// Switching checks off makes every target eligible; a weight makes node-2 one too.
	_, err = e.clb.ModifyListener(e.ctx, &clbapi.ModifyListenerRequest{LoadBalancerId: lb, ListenerId: l, HealthCheck: &clbapi.HealthCheck{HealthSwitch: ptr(int64(0))}})
	require.NoError(t, err)
	h, ok := e.mod.DataPlane().TargetHealth(l, netip.AddrPortFrom(mapped(n, 2, 11), uint16(dead)))
	require.True(t, ok)
	assert.Equal(t, dataplane.Healthy, h)
}

func TestDataPlaneFollowsDeletes(t *testing.T) {
	opts, n := dpOptions()
	e := newEnv(t, envOpts{clb: opts})
	p1 := backend(t, mapped(n, 1, 11), "node-1")
	lb := e.openLB(t, "web")
	l8080 := e.listener(t, lb, clbapi.ProtocolTCP, 8080, nil)
	l8081 := e.listener(t, lb, clbapi.ProtocolTCP, 8081, nil)
	register(t, e, lb, l8080, insTarget("ins-node0001", p1))
	register(t, e, lb, l8081, insTarget("ins-node0001", p1))
	spread(t, vipAddr(t, e, lb, 8080), 1)

	_, err := e.clb.DeleteListener(e.ctx, &clbapi.DeleteListenerRequest{LoadBalancerId: lb, ListenerId: l8080})
	require.NoError(t, err)
	_, err = net.DialTimeout("tcp", vipAddr(t, e, lb, 8080).String(), time.Second)
	require.Error(t, err, "a deleted listener no longer listens")
	spread(t, vipAddr(t, e, lb, 8081), 1)

	addr8081 := vipAddr(t, e, lb, 8081)
	_, err = e.clb.DeleteLoadBalancer(e.ctx, &clbapi.DeleteLoadBalancerRequest{LoadBalancerIds: []string{lb}})
	require.NoError(t, err)
	_, err = net.DialTimeout("tcp", addr8081.String(), time.Second)
	require.Error(t, err, "a deleted load balancer's listeners are gone")
}

// The data plane reconciles from the store when fakecloud starts on an existing data
// dir, and Close stops every listener.
func TestDataPlaneRestart(t *testing.T) {
	opts, n := dpOptions()
	dir := t.TempDir()
	e := newEnv(t, envOpts{clb: opts, dataDir: dir})
	p1 := backend(t, mapped(n, 1, 11), "node-1")
	lb := e.openLB(t, "web")
	l := e.listener(t, lb, clbapi.ProtocolTCP, 8080, nil)
	register(t, e, lb, l, insTarget("ins-node0001", p1))
	addr := vipAddr(t, e, lb, 8080)
	spread(t, addr, 1)

	e.srv.Close()
	require.NoError(t, e.cloud.Close())
	_, err := net.DialTimeout("tcp", addr.String(), time.Second)
	require.Error(t, err, "Close stops the listeners")

	var mod *clb.Module
	c, err := fakecloud.New(fakecloud.Config{DataDir: dir, Seed: testSeed(), RateLimit: -1,
		Modules: moduleList(t, opts, &mod)})
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	require.Eventually(t, func() bool {
		conn, err := net.DialTimeout("tcp", addr.String(), time.Second)
		if err == nil {
			_ = conn.Close()
		}
		return err == nil
	}, 10*time.Second, 20*time.Millisecond, "the restarted data plane serves the stored listener")
	assert.Equal(t, map[string]int{"node-1": 2}, spread(t, addr, 2))
}

// An instance marked Local is this machine: the data plane reaches it on 127.0.0.1.
func TestDataPlaneLocalInstance(t *testing.T) {
	opts, _ := dpOptions()
	opts.TargetMap = nil
	seed := testSeed()
	instances, err := cvm.SeedInstances(seed)
	require.NoError(t, err)
	cvm.SetSeed(seed, append(instances, cvm.SeedInstance{InstanceID: "ins-local001", Zone: "ap-guangzhou-1", SubnetID: "subnet-gz1", Local: true}))
	e := newEnv(t, envOpts{clb: opts, seed: seed})
	p := backend(t, netip.MustParseAddr("127.0.0.1"), "here")
	lb := e.openLB(t, "web")
	l := e.listener(t, lb, clbapi.ProtocolTCP, 8080, nil)
	register(t, e, lb, l, insTarget("ins-local001", p), insTarget("ins-node0001", p))
	// node-1 is not reachable from this machine (no TargetMap): only the local one serves.
	assert.Equal(t, map[string]int{"here": 3}, spread(t, vipAddr(t, e, lb, 8080), 3))
}

// A stopped instance serves nothing in the cloud, so the data plane stops sending it
// traffic (and resumes once it runs again), with or without health checks.
func TestDataPlaneStoppedInstanceGetsNothing(t *testing.T) {
	opts, n := dpOptions()
	e := newEnv(t, envOpts{clb: opts})
	p1 := backend(t, mapped(n, 1, 11), "node-1")
	p2 := backend(t, mapped(n, 1, 12), "node-2")
	lb := e.openLB(t, "web")
	l := e.listener(t, lb, clbapi.ProtocolTCP, 8080, func(r *clbapi.CreateListenerRequest) {
		r.HealthCheck = &clbapi.HealthCheck{HealthSwitch: ptr(int64(0))}
	})
	register(t, e, lb, l, insTarget("ins-node0001", p1), insTarget("ins-node0002", p2))
	addr := vipAddr(t, e, lb, 8080)
	assert.Equal(t, map[string]int{"node-1": 2, "node-2": 2}, spread(t, addr, 4))

	_, err := e.cvm.StopInstances(e.ctx, &cvmapi.StopInstancesRequest{InstanceIds: []string{"ins-node0002"}})
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		got, err := trySpread(t, addr, 2)
		return err == nil && got["node-1"] == 2
	}, 10*time.Second, 20*time.Millisecond, "the resync notices the stopped instance")
	assert.Equal(t, map[string]int{"node-1": 4}, spread(t, addr, 4))

	_, err = e.cvm.StartInstances(e.ctx, &cvmapi.StartInstancesRequest{InstanceIds: []string{"ins-node0002"}})
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		got, err := trySpread(t, addr, 2)
		return err == nil && got["node-2"] > 0
	}, 10*time.Second, 20*time.Millisecond, "a running instance gets traffic again")
}

// Listener settings made through the API reach the data plane: session persistence keeps
// a client on one target, and a CUSTOM check (here: the banner must say node-1) takes the
// other target out.
func TestDataPlaneListenerSettings(t *testing.T) {
	opts, n := dpOptions()
	e := newEnv(t, envOpts{clb: opts})
	p1 := backend(t, mapped(n, 1, 11), "node-1")
	p2 := backend(t, mapped(n, 1, 12), "node-2")
	lb := e.openLB(t, "web")
	l := e.listener(t, lb, clbapi.ProtocolTCP, 8080, func(r *clbapi.CreateListenerRequest) {
		r.SessionExpireTime = ptr(int64(30))
		r.HealthCheck = &clbapi.HealthCheck{HealthSwitch: ptr(int64(0))}
	})
	register(t, e, lb, l, insTarget("ins-node0001", p1), insTarget("ins-node0002", p2))
	addr := vipAddr(t, e, lb, 8080)
	assert.Len(t, spread(t, addr, 6), 1, "one client IP sticks to one target")

	_, err := e.clb.ModifyListener(e.ctx, &clbapi.ModifyListenerRequest{LoadBalancerId: lb, ListenerId: l, SessionExpireTime: ptr(int64(0))})
	require.NoError(t, err)
	assert.Equal(t, map[string]int{"node-1": 2, "node-2": 2}, spread(t, addr, 4), "without persistence, round robin")

	_, err = e.clb.ModifyListener(e.ctx, &clbapi.ModifyListenerRequest{LoadBalancerId: lb, ListenerId: l, HealthCheck: &clbapi.HealthCheck{
		HealthSwitch: ptr(int64(1)), CheckType: ptr("CUSTOM"), ContextType: ptr("HEX"),
		SendContext: ptr("50494E470A"), RecvContext: ptr("6E6F64652D31"), // "PING\n", "node-1"
	}})
	require.NoError(t, err)
	dp := e.mod.DataPlane()
	require.Eventually(t, func() bool {
		h1, _ := dp.TargetHealth(l, netip.AddrPortFrom(mapped(n, 1, 11), uint16(p1)))
		h2, _ := dp.TargetHealth(l, netip.AddrPortFrom(mapped(n, 1, 12), uint16(p2)))
		return h1 == dataplane.Healthy && h2 == dataplane.Unhealthy
	}, 10*time.Second, 10*time.Millisecond)
	assert.Equal(t, map[string]int{"node-1": 4}, spread(t, addr, 4))
}

// An admin reset forgets every load balancer; fakecloud restarts the modules after it, so
// the listeners are gone when Reset returns.
func TestDataPlaneReset(t *testing.T) {
	opts, n := dpOptions()
	e := newEnv(t, envOpts{clb: opts})
	p1 := backend(t, mapped(n, 1, 11), "node-1")
	lb := e.openLB(t, "web")
	l := e.listener(t, lb, clbapi.ProtocolTCP, 8080, nil)
	register(t, e, lb, l, insTarget("ins-node0001", p1))
	addr := vipAddr(t, e, lb, 8080)
	spread(t, addr, 1)

	require.NoError(t, e.cloud.Reset())
	_, err := net.DialTimeout("tcp", addr.String(), time.Second)
	require.Error(t, err)
	_, ok := e.mod.DataPlane().Address(l)
	assert.False(t, ok)
}

// Concurrent writes on different load balancers all land in the data plane: reconciles
// are serialized and each reads the newest state, so none undoes another.
func TestDataPlaneConcurrentWrites(t *testing.T) {
	opts, n := dpOptions()
	e := newEnv(t, envOpts{clb: opts})
	p1 := backend(t, mapped(n, 1, 11), "node-1")
	const lbs = 8
	ids := make([]string, lbs)
	errs := make(chan error, lbs)
	for i := range lbs {
		go func() {
			out, err := e.clb.CreateLoadBalancer(e.ctx, &clbapi.CreateLoadBalancerRequest{LoadBalancerType: clbapi.TypeOpen})
			if err != nil {
				errs <- err
				return
			}
			ids[i] = out.LoadBalancerIds[0]
			l, err := e.clb.CreateListener(e.ctx, &clbapi.CreateListenerRequest{LoadBalancerId: ids[i], Protocol: clbapi.ProtocolTCP, Ports: []int64{8080}})
			if err != nil {
				errs <- err
				return
			}
			_, err = e.clb.RegisterTargets(e.ctx, &clbapi.RegisterTargetsRequest{LoadBalancerId: ids[i], ListenerId: l.ListenerIds[0], Targets: []clbapi.Target{insTarget("ins-node0001", p1)}})
			errs <- err
		}()
	}
	for range lbs {
		require.NoError(t, <-errs)
	}
	for _, id := range ids {
		assert.Equal(t, map[string]int{"node-1": 1}, spread(t, vipAddr(t, e, id, 8080), 1), id)
	}
}
