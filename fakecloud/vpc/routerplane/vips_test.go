package routerplane_test

import (
	"fmt"
	"net"
	"net/netip"
	"slices"
	"testing"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/stratus-cloud/stratus/cni/nstest"
	"github.com/stratus-cloud/stratus/fakecloud/vpc"
	"github.com/stratus-cloud/stratus/fakecloud/vpc/routerplane"
)

// vipState lists the plane's load balancer state in a router: its local VIPs, its VIP
// routes ("vip via hop,hop") and whether the rule that consults them is there.
func vipState(t *testing.T, r *nstest.NS) (local, routes []string, rule bool) {
	t.Helper()
	h := handle(t, r)
	rs, err := h.RouteListFiltered(netlink.FAMILY_V4, &netlink.Route{Table: unix.RT_TABLE_UNSPEC, Protocol: routerplane.Proto},
		netlink.RT_FILTER_TABLE|netlink.RT_FILTER_PROTOCOL)
	require.NoError(t, err)
	for _, rt := range rs {
		switch {
		case rt.Table == unix.RT_TABLE_LOCAL && rt.Type == unix.RTN_LOCAL:
			local = append(local, rt.Dst.IP.String())
		case rt.Table == base+1000:
			var hops []string
			if rt.Gw != nil {
				hops = append(hops, rt.Gw.String())
			}
			for _, nh := range rt.MultiPath {
				hops = append(hops, nh.Gw.String())
			}
			slices.Sort(hops)
			routes = append(routes, fmt.Sprintf("%s via %v", rt.Dst.IP, hops))
		}
	}
	rules, err := h.RuleList(netlink.FAMILY_V4)
	require.NoError(t, err)
	for _, ru := range rules {
		if ru.Priority == prio-1 && ru.Table == base+1000 {
			rule = true
		}
	}
	return local, routes, rule
}

// TestApplyVIPs: an L4 VIP becomes an address of the router (a socket can bind it
// there), an L3 VIP a multipath route across its next hops; an empty spec removes both,
// and the route tables' state is not touched.
func TestApplyVIPs(t *testing.T) {
	r := router(t)
	p := newPlane(t, r)
	require.NoError(t, p.Apply(spec(vpc.RouterTable{RouteTableID: "rtb-1", Main: true, Routes: []vpc.RouterRoute{cvmRoute("10.244.1.0/24", "10.0.1.11")}})))
	before := kernelRoutes(t, r)

	a := netip.MustParseAddr
	require.NoError(t, p.ApplyVIPs(vpc.VIPSpec{VPCs: []vpc.VIPVPC{{VpcID: "vpc-test1",
		Local:  []netip.Addr{a("198.18.0.5")},
		Routes: []vpc.VIPRoute{{VIP: a("198.18.0.9"), NextHops: []netip.Addr{a("10.0.1.12"), a("10.0.1.11")}}, {VIP: a("198.18.0.10")}},
	}}}))
	local, routes, rule := vipState(t, r)
	assert.Equal(t, []string{"198.18.0.5"}, local)
	assert.Equal(t, []string{"198.18.0.9 via [10.0.1.11 10.0.1.12]"}, routes, "a VIP without next hops is not routed")
	assert.True(t, rule)
	err := ns.WithNetNSPath(nsPath(r), func(ns.NetNS) error {
		l, err := net.Listen("tcp", "198.18.0.5:8080")
		if err == nil {
			l.Close()
		}
		return err
	})
	assert.NoError(t, err, "the router has the L4 VIP: a proxy binds it")

	// Idempotent, then one hop less, then nothing.
	require.NoError(t, p.ApplyVIPs(vpc.VIPSpec{VPCs: []vpc.VIPVPC{{VpcID: "vpc-test1", Local: []netip.Addr{a("198.18.0.5")},
		Routes: []vpc.VIPRoute{{VIP: a("198.18.0.9"), NextHops: []netip.Addr{a("10.0.1.11")}}}}}}))
	local, routes, _ = vipState(t, r)
	assert.Equal(t, []string{"198.18.0.5"}, local)
	assert.Equal(t, []string{"198.18.0.9 via [10.0.1.11]"}, routes)
	require.NoError(t, p.ApplyVIPs(vpc.VIPSpec{}))
	local, routes, _ = vipState(t, r)
	assert.Empty(t, local)
	assert.Empty(t, routes)
	assert.Equal(t, before, kernelRoutes(t, r), "the route tables' routes are left alone")
}
