package dataplane

import (
	"net"
	"net/netip"
	"path/filepath"
	"testing"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stratus-cloud/stratus/cni/nstest"
)

// TestListenerInNetns: a listener with a namespace binds its (non-loopback) address in
// that namespace, not here, and proxies from there to its targets.
func TestListenerInNetns(t *testing.T) {
	nstest.Require(t)
	rtr := nstest.New(t, "dplb")
	vip := "198.18.250.5"
	for _, args := range [][]string{{"link", "set", "lo", "up"}, {"addr", "add", vip + "/32", "dev", "lo"}} {
		out, err := rtr.Run("ip", args...)
		require.NoError(t, err, out)
	}
	b := startTCPBackend(t, "a")
	dp := newDP(t)
	addr := netip.AddrPortFrom(netip.MustParseAddr(vip), 8080)
	require.NoError(t, dp.Apply(Spec{Listeners: []ListenerSpec{{ID: "l1", Protocol: TCP, Address: addr,
		Netns: filepath.Join("/var/run/netns", rtr.Name), Targets: []TargetSpec{target(b, 10)}}}}))

	err := ns.WithNetNSPath(filepath.Join("/var/run/netns", rtr.Name), func(ns.NetNS) error {
		c, err := dial(t, addr)
		if err != nil {
			return err
		}
		assert.Equal(t, "a", c.Name, "the target answered through the listener in the namespace")
		return nil
	})
	require.NoError(t, err)
	// Here the address is no one's: the socket is in the other namespace.
	l, err := net.Listen("tcp", addr.String())
	if err == nil {
		l.Close()
	}
	assert.Error(t, err, "%s is not an address of this namespace", vip)
}

// TestReachableTargets: a non-loopback target is kept only inside the listener's
// reachable prefixes; a namespace-less listener still binds loopback only.
func TestReachableTargets(t *testing.T) {
	dp := newDP(t)
	in := netip.MustParseAddrPort("10.0.1.11:30080")
	out := netip.MustParseAddrPort("192.168.7.7:30080")
	ls := tcpListener(t, "l1", TargetSpec{Address: in, Weight: 10}, TargetSpec{Address: out, Weight: 10})
	ls.Reachable = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/16")}
	require.NoError(t, dp.Apply(Spec{Listeners: []ListenerSpec{ls}}))
	_, ok := dp.TargetHealth("l1", in)
	assert.True(t, ok, "a target inside a reachable prefix is kept")
	_, ok = dp.TargetHealth("l1", out)
	assert.False(t, ok, "a target outside every reachable prefix is refused")

	bad := tcpListener(t, "l2")
	bad.Address = netip.MustParseAddrPort("198.18.250.6:80")
	assert.ErrorContains(t, dp.Apply(Spec{Listeners: []ListenerSpec{ls, bad}}), "not a loopback address", "without a namespace only loopback binds")
}
