package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/containernetworking/cni/pkg/types"
	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vishvananda/netlink"

	"github.com/stratus-cloud/stratus/cni"
	"github.com/stratus-cloud/stratus/cni/agent"
	"github.com/stratus-cloud/stratus/cni/nstest"
)

func TestTwoPodsOnOneNodeReachEachOtherAndTheGateway(t *testing.T) {
	t.Parallel()
	node := newNode(t, "10.244.7.0/24", withPlugin("mtu", 1400))
	a, b := newPod(t), newPod(t)
	resA, resB := node.add(t, a), node.add(t, b)
	ipA, ipB := podIP(t, resA), podIP(t, resB)
	require.NotEqual(t, ipA.String(), ipB.String())
	for _, ip := range []net.IP{ipA, ipB} {
		assert.True(t, node.Subnet.Contains(ip), "%s in %s", ip, node.Subnet)
		assert.NotEqual(t, node.Gateway.String(), ip.String())
	}
	assert.Equal(t, node.Gateway.String(), resA.IPs[0].Gateway.String())

	// The bridge carries the gateway, the pod the MTU, DAD is off, and the default
	// route points at the gateway.
	require.NoError(t, node.Do(func(ns.NetNS) error {
		br, err := netlink.LinkByName(node.Bridge)
		require.NoError(t, err)
		assert.Equal(t, "bridge", br.Type())
		addrs, err := netlink.AddrList(br, netlink.FAMILY_V4)
		require.NoError(t, err)
		require.Len(t, addrs, 1)
		assert.Equal(t, node.Gateway.String()+"/24", addrs[0].IPNet.String())
		return nil
	}))
	link := podLink(t, a, "eth0")
	assert.Equal(t, 1400, link.Attrs().MTU)
	require.NoError(t, a.Do(func(ns.NetNS) error {
		out, err := exec.Command("cat", "/proc/sys/net/ipv6/conf/eth0/accept_dad").Output()
		if err == nil {
			assert.Equal(t, "0", strings.TrimSpace(string(out)), "DAD must be off in the pod")
		}
		routes, err := netlink.RouteList(link, netlink.FAMILY_V4)
		require.NoError(t, err)
		var gw []string
		for _, r := range routes {
			if r.Gw != nil {
				gw = append(gw, r.Gw.String())
			}
		}
		assert.Equal(t, []string{node.Gateway.String()}, gw)
		return nil
	}))

	// Pod to pod, both ways, with the sender's address intact.
	seen, err := dial(a, listen(t, b, ipB))
	require.NoError(t, err)
	assert.Equal(t, ipA.String(), seen)
	seen, err = dial(b, listen(t, a, ipA))
	require.NoError(t, err)
	assert.Equal(t, ipB.String(), seen)
	// Pod to gateway (a listener on the node's bridge address).
	seen, err = dial(a, listen(t, node, node.Gateway))
	require.NoError(t, err)
	assert.Equal(t, ipA.String(), seen)

	// Reachability is through the plugin's wiring: with B's veth gone, A cannot
	// reach B any more.
	require.NoError(t, node.RT.Del(ctx(t), b.RC))
	_, err = dial(a, net.JoinHostPort(ipB.String(), "9"))
	require.Error(t, err)
}

func TestResultsForEverySpecVersion(t *testing.T) {
	t.Parallel()
	for _, v := range []string{"0.3.1", "0.4.0", "1.0.0", "1.1.0"} {
		t.Run(v, func(t *testing.T) {
			t.Parallel()
			node := newNode(t, "10.244.9.0/24", withVersion(v))
			p := newPod(t)
			raw, err := node.RT.AddRaw(ctx(t), p.RC)
			require.NoError(t, err)
			assert.Equal(t, v, raw.Version())
			var buf bytes.Buffer
			require.NoError(t, raw.PrintTo(&buf))
			var out struct {
				CNIVersion string `json:"cniVersion"`
				IPs        []struct {
					Version   string `json:"version"`
					Address   string `json:"address"`
					Gateway   string `json:"gateway"`
					Interface *int   `json:"interface"`
				} `json:"ips"`
				Interfaces []struct {
					Name    string `json:"name"`
					Sandbox string `json:"sandbox"`
				} `json:"interfaces"`
			}
			require.NoError(t, json.Unmarshal(buf.Bytes(), &out), buf.String())
			assert.Equal(t, v, out.CNIVersion)
			require.Len(t, out.IPs, 1, buf.String())
			assert.Equal(t, "10.244.9.1", out.IPs[0].Gateway)
			assert.Contains(t, out.IPs[0].Address, "10.244.9.")
			require.NotNil(t, out.IPs[0].Interface)
			assert.Equal(t, "eth0", out.Interfaces[*out.IPs[0].Interface].Name)
			assert.Equal(t, p.Path(), out.Interfaces[*out.IPs[0].Interface].Sandbox)
			if v == "0.3.1" {
				assert.Equal(t, "4", out.IPs[0].Version)
			} else {
				require.NoError(t, node.RT.Check(ctx(t), p.RC), "CHECK at %s", v)
			}
			require.NoError(t, node.RT.Del(ctx(t), p.RC))
			assert.Empty(t, node.allocations(t))
		})
	}
}

func TestCheckCatchesDeletedVethAndRemovedAddress(t *testing.T) {
	t.Parallel()
	node := newNode(t, "10.244.10.0/24", withPlugin("ipMasq", true))
	a, b := newPod(t), newPod(t)
	resA := node.add(t, a)
	node.add(t, b)
	require.NoError(t, node.RT.Check(ctx(t), a.RC))
	require.NoError(t, node.RT.Check(ctx(t), b.RC))

	// Remove A's address inside the pod.
	require.NoError(t, a.Do(func(ns.NetNS) error {
		l, err := netlink.LinkByName("eth0")
		require.NoError(t, err)
		return netlink.AddrDel(l, &netlink.Addr{IPNet: &resA.IPs[0].Address})
	}))
	err := node.RT.Check(ctx(t), a.RC)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "address")

	// Delete B's veth (from the pod side; the pair goes with it).
	require.NoError(t, b.Do(func(ns.NetNS) error {
		l, err := netlink.LinkByName("eth0")
		require.NoError(t, err)
		return netlink.LinkDel(l)
	}))
	err = node.RT.Check(ctx(t), b.RC)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "veth")

	// A third pod, intact, until someone removes the masquerade jump.
	c := newPod(t)
	node.add(t, c)
	require.NoError(t, node.RT.Check(ctx(t), c.RC))
	var jump string
	for _, r := range node.natRules(t) {
		if strings.HasPrefix(r, "-A POSTROUTING") {
			jump = r
		}
	}
	require.NotEmpty(t, jump)
	_, err = node.Run("sh", "-c", "iptables -w -t nat "+strings.Replace(jump, "-A ", "-D ", 1))
	require.NoError(t, err)
	err = node.RT.Check(ctx(t), c.RC)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "masquerade")
}

func TestDelRemovesVethAndAllocationAndIsIdempotent(t *testing.T) {
	t.Parallel()
	node := newNode(t, "10.244.11.0/24")
	a, b := newPod(t), newPod(t)
	node.add(t, a)
	resB := node.add(t, b)
	require.Len(t, node.veths(t), 2)
	require.Len(t, node.allocations(t), 2)

	require.NoError(t, node.RT.Del(ctx(t), a.RC))
	assert.Len(t, node.veths(t), 1)
	assert.Equal(t, []string{podIP(t, resB).String()}, node.allocations(t))
	require.NoError(t, a.Do(func(ns.NetNS) error {
		_, err := netlink.LinkByName("eth0")
		assert.Error(t, err, "pod interface must be gone")
		return nil
	}))
	// Again, and for a container nobody ever added: both succeed.
	require.NoError(t, node.RT.Del(ctx(t), a.RC))
	require.NoError(t, node.RT.Del(ctx(t), nstest.Pod("never-added", "", "eth0")))
	// DEL after the pod's namespace is gone.
	require.NoError(t, b.Delete())
	require.NoError(t, node.RT.Del(ctx(t), b.RC))
	assert.Empty(t, node.veths(t))
	assert.Empty(t, node.allocations(t))
}

func TestManyPodsAddThenDelLeaveNothingBehind(t *testing.T) {
	t.Parallel()
	const pods = 110
	node := newNode(t, "10.244.12.0/24", withPlugin("ipMasq", true),
		withPlugin("nonMasqueradeCIDRs", []string{"10.244.0.0/16", "198.18.0.0/16"}), withPlugin("hairpinMode", true))
	var ps []*pod
	seen := map[string]bool{}
	for i := 0; i < pods; i++ {
		p := newPod(t)
		ip := podIP(t, node.add(t, p)).String()
		require.False(t, seen[ip], "IP %s handed out twice", ip)
		seen[ip] = true
		ps = append(ps, p)
	}
	assert.Len(t, node.veths(t), pods)
	assert.Len(t, node.allocations(t), pods)
	// One chain and one jump for the node, however many pods: the pod and
	// non-masquerade CIDRs return, the rest (but multicast) is masqueraded.
	rules := node.natRules(t)
	require.Len(t, rules, 6, "%v", rules)
	joined := strings.Join(rules, "\n")
	for _, want := range []string{"-A POSTROUTING -s 10.244.12.0/24 ", "-d 10.244.12.0/24 -j RETURN", "-d 10.244.0.0/16 -j RETURN", "-d 198.18.0.0/16 -j RETURN", "! -d 224.0.0.0/4 -j MASQUERADE"} {
		assert.Contains(t, joined, want)
	}
	// Hairpin is on for the pods' ports.
	require.NoError(t, node.Do(func(ns.NetNS) error {
		l := node.veths(t)[0]
		pi, err := netlink.LinkGetProtinfo(l)
		require.NoError(t, err)
		assert.True(t, pi.Hairpin)
		return nil
	}))

	for _, p := range ps {
		require.NoError(t, node.RT.Del(ctx(t), p.RC))
	}
	assert.Empty(t, node.veths(t))
	assert.Empty(t, node.allocations(t))
	assert.Empty(t, node.natRules(t), "no rule may outlive the last pod")
	assert.Empty(t, node.claims(t))
}

func TestParallelAddsGetDistinctIPs(t *testing.T) {
	t.Parallel()
	const n = 20
	node := newNode(t, "10.244.13.0/24", withPlugin("ipMasq", true))
	pods := make([]*pod, n)
	for i := range pods {
		pods[i] = newPod(t)
	}
	ips := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range pods {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := node.RT.Add(ctx(t), pods[i].RC)
			errs[i] = err
			if err == nil && len(res.IPs) == 1 {
				ips[i] = res.IPs[0].Address.IP.String()
			}
		}()
	}
	wg.Wait()
	uniq := map[string]bool{}
	for i := range pods {
		require.NoError(t, errs[i], "ADD %d", i)
		uniq[ips[i]] = true
	}
	assert.Len(t, uniq, n, "20 parallel ADDs must get 20 distinct IPs: %v", ips)
	assert.Len(t, node.allocations(t), n)
	assert.Len(t, node.veths(t), n)
	// One jump, however many ADDs raced to install it.
	jumps := 0
	for _, r := range node.natRules(t) {
		if strings.HasPrefix(r, "-A POSTROUTING") {
			jumps++
		}
	}
	assert.Equal(t, 1, jumps)
}

func TestBadInput(t *testing.T) {
	t.Parallel()
	requireNS(t)
	t.Run("malformed config is code 7 naming the field", func(t *testing.T) {
		t.Parallel()
		cases := map[string]nodeOpt{
			"mtu":                   withPlugin("mtu", "big"),
			"subnet":                withPlugin("subnet", "10.244.1.5/33"),
			"nonMasqueradeCIDRs[1]": withPlugin("nonMasqueradeCIDRs", []string{"10.0.0.0/8", "vpc"}),
			"hairpinMode":           withPlugin("hairpinMode", "yes"),
			"dataDir":               withPlugin("dataDir", "relative/dir"),
			"bridge":                withPlugin("bridge", "a-very-long-bridge-name"),
		}
		for field, opt := range cases {
			node := newNode(t, "10.244.14.0/24", opt)
			p := newPod(t)
			_, err := node.RT.Add(ctx(t), p.RC)
			var e *types.Error
			require.True(t, errors.As(err, &e), "field %s: %v", field, err)
			assert.Equal(t, types.ErrInvalidNetworkConfig, e.Code, "field %s: %v", field, e)
			assert.Contains(t, e.Msg, "field "+field, "error must name the field")
			assert.Empty(t, node.allocations(t))
		}
	})
	t.Run("missing environment is code 4", func(t *testing.T) {
		t.Parallel()
		cmd := exec.Command(binDir + "/stratus-bridge")
		cmd.Env = []string{"CNI_COMMAND=ADD", "CNI_PATH=" + binDir}
		cmd.Stdin = strings.NewReader(`{"cniVersion":"1.1.0","name":"x","type":"stratus-bridge","subnet":"10.1.0.0/24"}`)
		out, err := cmd.Output()
		require.Error(t, err, "must exit non-zero")
		var e types.Error
		require.NoError(t, json.Unmarshal(out, &e), string(out))
		assert.Equal(t, types.ErrInvalidEnvironmentVariables, e.Code)
		assert.Contains(t, e.Msg, "CNI_CONTAINERID")
	})
	t.Run("ADD over an existing interface fails and changes nothing", func(t *testing.T) {
		t.Parallel()
		node := newNode(t, "10.244.15.0/24", withPlugin("ipMasq", true))
		p := newPod(t)
		first := node.add(t, p)
		allocs, veths, rules := node.allocations(t), len(node.veths(t)), node.natRules(t)
		// Same sandbox, same ifname, a new container ID (a runtime retrying with a
		// new sandbox record): must not touch the existing interface.
		again := nstest.Pod("ctr-again", p.Path(), "eth0")
		_, err := node.RT.Add(ctx(t), again)
		require.Error(t, err)
		assert.Contains(t, err.Error(), "already exists")
		assert.Equal(t, allocs, node.allocations(t))
		assert.Equal(t, veths, len(node.veths(t)))
		assert.Equal(t, rules, node.natRules(t))
		addrs := podAddrs(t, p)
		assert.Equal(t, []string{first.IPs[0].Address.String()}, addrs)
		require.NoError(t, node.RT.Check(ctx(t), p.RC))

		// The same container ID and ifname again, in another namespace: the host
		// veth it would need exists, so it fails, and the live pod keeps its veth
		// and its address.
		other := newPod(t)
		_, err = node.RT.Add(ctx(t), nstest.Pod(p.RC.ContainerID, other.Path(), "eth0"))
		require.Error(t, err)
		assert.Contains(t, err.Error(), "already exists")
		assert.Equal(t, allocs, node.allocations(t))
		assert.Equal(t, veths, len(node.veths(t)))
		require.NoError(t, node.RT.Check(ctx(t), p.RC))
		require.NoError(t, other.Do(func(ns.NetNS) error {
			_, err := netlink.LinkByName("eth0")
			assert.Error(t, err, "nothing may be left in the other namespace")
			return nil
		}))
	})
}

func podAddrs(t *testing.T, p *pod) []string {
	t.Helper()
	var out []string
	require.NoError(t, p.Do(func(ns.NetNS) error {
		l, err := netlink.LinkByName("eth0")
		if err != nil {
			return err
		}
		addrs, err := netlink.AddrList(l, netlink.FAMILY_V4)
		for _, a := range addrs {
			out = append(out, a.IPNet.String())
		}
		return err
	}))
	return out
}

func TestStatus(t *testing.T) {
	t.Parallel()
	noCIDR := newNode(t, "")
	err := noCIDR.RT.Status(ctx(t))
	var e *types.Error
	require.True(t, errors.As(err, &e), "%v", err)
	assert.EqualValues(t, 50, e.Code)
	assert.Contains(t, e.Msg, "podCIDR")
	// ADD on such a node is refused as a config error naming subnet.
	_, err = noCIDR.RT.Add(ctx(t), newPod(t).RC)
	require.True(t, errors.As(err, &e), "%v", err)
	assert.Equal(t, types.ErrInvalidNetworkConfig, e.Code)
	assert.Contains(t, e.Msg, "subnet")

	ready := newNode(t, "10.244.16.0/24")
	require.NoError(t, ready.RT.Status(ctx(t)))
}

func TestExhaustionIsAClearError(t *testing.T) {
	t.Parallel()
	node := newNode(t, "10.244.17.0/29") // .2 to .6: five pods
	for i := 0; i < 5; i++ {
		node.add(t, newPod(t))
	}
	p := newPod(t)
	_, err := node.RT.Add(ctx(t), p.RC)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "exhausted")
	assert.Len(t, node.allocations(t), 5)
	assert.Len(t, node.veths(t), 5, "a failed ADD leaves no veth")
}

func TestCrashMidAddIsCleanedByGC(t *testing.T) {
	t.Parallel()
	for _, point := range []string{cni.CrashAfterAllocate, cni.CrashAfterVeth} {
		t.Run(point, func(t *testing.T) {
			t.Parallel()
			node := newNode(t, "10.244.18.0/24", withPlugin("ipMasq", true))
			survivor := newPod(t)
			survivorRes := node.add(t, survivor)

			victim := newPod(t)
			_, err := node.RT.WithEnv(cni.CrashPointEnv+"="+point).Add(ctx(t), victim.RC)
			require.Error(t, err, "the plugin must have died")
			assert.Contains(t, err.Error(), "killed")
			// The crash left an allocation (and after-veth, a veth) behind.
			require.Len(t, node.allocations(t), 2)
			if point == cni.CrashAfterVeth {
				require.Len(t, node.veths(t), 2)
			}

			// Until GC runs, the crashed ADD's address stays taken: a new pod gets
			// another one.
			var crashedIP string
			for _, ip := range node.allocations(t) {
				if ip != podIP(t, survivorRes).String() {
					crashedIP = ip
				}
			}
			third := newPod(t)
			thirdRes := node.add(t, third)
			assert.NotEqual(t, crashedIP, podIP(t, thirdRes).String(), "a crash must never hand one IP to two pods")

			require.NoError(t, node.RT.GC(ctx(t),
				types.GCAttachment{ContainerID: survivor.RC.ContainerID, IfName: "eth0"},
				types.GCAttachment{ContainerID: third.RC.ContainerID, IfName: "eth0"}))
			assert.ElementsMatch(t, []string{podIP(t, survivorRes).String(), podIP(t, thirdRes).String()}, node.allocations(t))
			assert.Len(t, node.veths(t), 2)
			require.NoError(t, node.RT.Check(ctx(t), survivor.RC), "GC must not touch a valid attachment")
			assert.NotEmpty(t, node.natRules(t), "rules stay while a pod needs them")
			assert.Empty(t, node.claims(t), "the crashed ADD's claim is swept")

			// The runtime retries the ADD; it works.
			node.add(t, victim)
			require.NoError(t, node.RT.Check(ctx(t), victim.RC))
		})
	}
}

func TestGCDuringAnInFlightADDLeavesItAlone(t *testing.T) {
	t.Parallel()
	node := newNode(t, "10.244.21.0/24")
	p := newPod(t)
	release := filepath.Join(t.TempDir(), "release")
	held := node.RT.WithEnv(cni.HoldPointEnv+"="+cni.CrashAfterVeth, cni.HoldFileEnv+"="+release)
	done := make(chan error, 1)
	go func() {
		_, err := held.Add(ctx(t), p.RC)
		done <- err
	}()
	// The ADD has allocated and created its veth, and waits.
	require.Eventually(t, func() bool { return len(node.allocations(t)) == 1 && len(node.veths(t)) == 1 },
		30*time.Second, 20*time.Millisecond)

	// The runtime does not know the attachment yet: GC with an empty list.
	require.NoError(t, node.RT.GC(ctx(t)))
	assert.Len(t, node.allocations(t), 1, "GC must not free an in-flight ADD's address")
	assert.Len(t, node.veths(t), 1, "GC must not delete an in-flight ADD's veth")

	require.NoError(t, os.WriteFile(release, nil, 0o600))
	require.NoError(t, <-done)
	require.NoError(t, node.RT.Check(ctx(t), p.RC))
	// Once the ADD is done and the runtime still does not list it, GC frees it.
	require.NoError(t, node.RT.GC(ctx(t)))
	assert.Empty(t, node.allocations(t))
	assert.Empty(t, node.veths(t))
	assert.Empty(t, node.claims(t))
}

func TestRebootIsRecoveredByGC(t *testing.T) {
	t.Parallel()
	node := newNode(t, "10.244.19.0/24", withPlugin("ipMasq", true))
	var before []*pod
	for i := 0; i < 3; i++ {
		p := newPod(t)
		node.add(t, p)
		before = append(before, p)
	}
	require.Len(t, node.allocations(t), 3)

	// Reboot: the pods' namespaces, the bridge and the iptables rules are gone;
	// the IPAM files on disk are not, and the runtime comes back with an empty
	// result cache.
	for _, p := range before {
		require.NoError(t, p.Delete())
	}
	_, err := node.Run("ip", "link", "del", node.Bridge)
	require.NoError(t, err)
	_, err = node.Run("sh", "-c", "iptables -w -t nat -F && iptables -w -t nat -X")
	require.NoError(t, err)
	// The kernel tears a deleted namespace down asynchronously; its veths go with it.
	require.Eventually(t, func() bool { return len(node.veths(t)) == 0 }, 30*time.Second, 20*time.Millisecond)
	require.Len(t, node.allocations(t), 3)

	rt, err := nstest.NewRuntime(node.NS, []string{binDir}, t.TempDir(),
		conflistJSON(t, node.Bridge, node.Subnet.String(), node.DataDir, withPlugin("ipMasq", true)))
	require.NoError(t, err)
	node.RT = rt
	require.NoError(t, node.RT.GC(ctx(t)))
	assert.Empty(t, node.allocations(t))
	assert.Empty(t, node.natRules(t))

	// The node works again.
	require.NoError(t, node.RT.Status(ctx(t)))
	p := newPod(t)
	ip := podIP(t, node.add(t, p))
	seen, err := dial(p, listen(t, node, node.Gateway))
	require.NoError(t, err)
	assert.Equal(t, ip.String(), seen)
	assert.NotEmpty(t, node.natRules(t))
}

func TestGCKeepsValidAndFreesTheRest(t *testing.T) {
	t.Parallel()
	node := newNode(t, "10.244.20.0/24")
	var ps []*pod
	for i := 0; i < 4; i++ {
		p := newPod(t)
		node.add(t, p)
		ps = append(ps, p)
	}
	// A fresh runtime cache, so only the plugin's own GC can free anything.
	rt, err := nstest.NewRuntime(node.NS, []string{binDir}, t.TempDir(),
		conflistJSON(t, node.Bridge, node.Subnet.String(), node.DataDir))
	require.NoError(t, err)
	valid := []types.GCAttachment{{ContainerID: ps[0].RC.ContainerID, IfName: "eth0"}, {ContainerID: ps[2].RC.ContainerID, IfName: "eth0"}}
	require.NoError(t, rt.GC(ctx(t), valid...))
	assert.Len(t, node.allocations(t), 2)
	assert.Len(t, node.veths(t), 2)
	require.NoError(t, node.RT.Check(ctx(t), ps[0].RC))
	require.NoError(t, node.RT.Check(ctx(t), ps[2].RC))
	require.Error(t, node.RT.Check(ctx(t), ps[1].RC))
}

// The conflist the agent writes is what drives the plugin on a real node.
func TestAgentConflistDrivesThePlugin(t *testing.T) {
	t.Parallel()
	requireNS(t)
	n := nstest.New(t, "node")
	bridge := "sbtest" + nstest.RandHex(4)
	dataDir := t.TempDir()
	conf, err := agent.Render(agent.Options{
		NetworkName: netName, Bridge: bridge, DataDir: dataDir, IPMasq: true, HairpinMode: true,
		NonMasqueradeCIDRs: []string{"10.244.0.0/16"},
	}, "10.244.22.0/24")
	require.NoError(t, err)
	rt, err := nstest.NewRuntime(n, []string{binDir}, t.TempDir(), conf)
	require.NoError(t, err)
	assert.Equal(t, "1.1.0", rt.List.CNIVersion)
	node := &testNode{NS: n, RT: rt, Bridge: bridge, DataDir: dataDir}

	require.NoError(t, rt.Status(ctx(t)))
	p := newPod(t)
	res := node.add(t, p)
	assert.Equal(t, "10.244.22.1", res.IPs[0].Gateway.String())
	require.NoError(t, rt.Check(ctx(t), p.RC))
	require.NoError(t, rt.GC(ctx(t), types.GCAttachment{ContainerID: p.RC.ContainerID, IfName: "eth0"}))
	require.NoError(t, rt.Check(ctx(t), p.RC))
	assert.NotEmpty(t, node.natRules(t))
	require.NoError(t, rt.Del(ctx(t), p.RC))
	assert.Empty(t, node.allocations(t))
	assert.Empty(t, node.veths(t))
	assert.Empty(t, node.natRules(t))
}
