package clb_test

import (
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	clbapi "github.com/stratus-cloud/stratus/cloudapi/clb"
	"github.com/stratus-cloud/stratus/fakecloud/clb"
	"github.com/stratus-cloud/stratus/fakecloud/vpc"
)

// recordingRouter is a vpc.VIPRouter that routes vpc-main0001 and keeps the last spec.
type recordingRouter struct {
	mu   sync.Mutex
	last *vpc.VIPSpec
}

func (r *recordingRouter) Namespace(vpcID string) (string, bool) {
	// A path no namespace has: an L4 listener there cannot bind, which this test does
	// not need (the sandbox's e2e tests carry real traffic through a real router).
	return "/nonexistent/router-of-" + vpcID, vpcID == "vpc-main0001"
}

func (r *recordingRouter) ApplyVIPs(s vpc.VIPSpec) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.last = &s
	return nil
}

func (r *recordingRouter) spec() vpc.VIPSpec {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.last == nil {
		return vpc.VIPSpec{}
	}
	return *r.last
}

// TestVIPRouter: the public load balancers of a routed VPC are served in its router: an
// L4 one at its VIP, answered by the router itself; one tagged for an L3 VIP as a
// multipath route across its running target instances' private IPs, with no proxy.
func TestVIPRouter(t *testing.T) {
	opts, _ := dpOptions()
	rr := &recordingRouter{}
	opts.VIPRouter = rr
	e := newEnv(t, envOpts{clb: opts})

	l4 := e.openLB(t, "web-l4")
	l3 := e.openLB(t, "web-l3", clbapi.TagInfo{TagKey: clb.ModeTag, TagValue: clb.ModeVIP})
	l4l := e.listener(t, l4, clbapi.ProtocolTCP, 80, nil)
	l3l := e.listener(t, l3, clbapi.ProtocolTCP, 80, nil)
	register(t, e, l4, l4l, insTarget("ins-node0001", 30080), insTarget("ins-node0003", 30080))
	register(t, e, l3, l3l, insTarget("ins-node0001", 80), insTarget("ins-node0002", 80))

	vip4 := netip.MustParseAddr(e.describeLB(t, l4).LoadBalancerVips[0])
	vip3 := netip.MustParseAddr(e.describeLB(t, l3).LoadBalancerVips[0])
	want := vpc.VIPSpec{VPCs: []vpc.VIPVPC{{
		VpcID:  "vpc-main0001",
		Local:  []netip.Addr{vip4},
		Routes: []vpc.VIPRoute{{VIP: vip3, NextHops: []netip.Addr{netip.MustParseAddr("10.0.1.11"), netip.MustParseAddr("10.0.1.12")}}},
	}}}
	require.Eventually(t, func() bool { return assert.ObjectsAreEqual(want, rr.spec()) }, 5*time.Second, 20*time.Millisecond,
		"the router gets the L4 VIP as its own and the L3 VIP as a route; last: %+v", rr.spec())
	_, served := e.mod.DataPlane().Address(l3l)
	assert.False(t, served, "an L3 VIP has no proxy listener")

	// A target that leaves leaves the route; the last one takes the route with it.
	_, err := e.clb.DeregisterTargets(e.ctx, &clbapi.DeregisterTargetsRequest{LoadBalancerId: l3, ListenerId: l3l, Targets: []clbapi.Target{insTarget("ins-node0002", 80)}})
	require.NoError(t, err)
	want.VPCs[0].Routes[0].NextHops = []netip.Addr{netip.MustParseAddr("10.0.1.11")}
	require.Eventually(t, func() bool { return assert.ObjectsAreEqual(want, rr.spec()) }, 5*time.Second, 20*time.Millisecond, "last: %+v", rr.spec())
	_, err = e.clb.DeregisterTargets(e.ctx, &clbapi.DeregisterTargetsRequest{LoadBalancerId: l3, ListenerId: l3l, Targets: []clbapi.Target{insTarget("ins-node0001", 80)}})
	require.NoError(t, err)
	want.VPCs[0].Routes = nil
	require.Eventually(t, func() bool { return assert.ObjectsAreEqual(want, rr.spec()) }, 5*time.Second, 20*time.Millisecond, "last: %+v", rr.spec())
}
