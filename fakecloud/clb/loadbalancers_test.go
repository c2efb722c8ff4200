package clb_test

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stratus-cloud/stratus/cloudapi"
	clbapi "github.com/stratus-cloud/stratus/cloudapi/clb"
	"github.com/stratus-cloud/stratus/fakecloud/clb"
	"github.com/stratus-cloud/stratus/fakecloud/store"
	"github.com/stratus-cloud/stratus/fakecloud/vpc"
)

func TestCreateOpenAndInternal(t *testing.T) {
	e := newEnv(t, envOpts{clock: newClock()})
	tags := []clbapi.TagInfo{{TagKey: "stratus.io/cluster", TagValue: "c1"}}
	open := e.createLB(t, &clbapi.CreateLoadBalancerRequest{LoadBalancerType: clbapi.TypeOpen, VpcId: "vpc-main0001",
		LoadBalancerName: "web", Tags: tags, MasterZoneId: "ap-guangzhou-2"})
	internal := e.createLB(t, &clbapi.CreateLoadBalancerRequest{LoadBalancerType: clbapi.TypeInternal, SubnetId: "subnet-gz2", LoadBalancerName: "api"})

	o := e.describeLB(t, open)
	assert.Equal(t, "web", o.LoadBalancerName)
	assert.Equal(t, clbapi.TypeOpen, o.LoadBalancerType)
	assert.Equal(t, tags, o.Tags)
	assert.Equal(t, clbapi.StatusNormal, o.Status, "LBTask delay 0: ready at once")
	assert.Equal(t, "vpc-main0001", o.VpcId)
	assert.Equal(t, uint64(1), o.Forward)
	assert.Equal(t, "BGP", o.VipIsp)
	require.Len(t, o.LoadBalancerVips, 1)
	assert.True(t, netip.MustParsePrefix("198.18.0.0/16").Contains(netip.MustParseAddr(o.LoadBalancerVips[0])), o.LoadBalancerVips[0])
	require.NotNil(t, o.MasterZone)
	assert.Equal(t, "ap-guangzhou-2", o.MasterZone.Zone)
	assert.Equal(t, uint64(100002), o.MasterZone.ZoneId)
	assert.Equal(t, api2(e.clock.Now()), o.CreateTime)

	i := e.describeLB(t, internal)
	assert.Equal(t, clbapi.TypeInternal, i.LoadBalancerType)
	assert.Equal(t, "vpc-main0001", i.VpcId, "an INTERNAL load balancer takes its subnet's VPC")
	assert.Equal(t, "subnet-gz2", i.SubnetId)
	require.Len(t, i.LoadBalancerVips, 1)
	vip := i.LoadBalancerVips[0]
	assert.True(t, netip.MustParsePrefix("10.0.2.0/24").Contains(netip.MustParseAddr(vip)), vip)
	require.NoError(t, e.cloud.World().Store.View(func(tx *store.Tx) error {
		assert.True(t, vpc.IPLeased(tx, "subnet-gz2", vip), "the VIP is leased from the subnet")
		return nil
	}))
	assert.Equal(t, "ap-guangzhou-2", i.MasterZone.Zone)

	// Each load balancer has its own loopback address for the data plane.
	lo, ok := clb.LoopbackVIP(e.cloud.World(), open)
	require.True(t, ok)
	li, ok := clb.LoopbackVIP(e.cloud.World(), internal)
	require.True(t, ok)
	assert.True(t, lo.IsLoopback() && li.IsLoopback())
	assert.NotEqual(t, lo, li)
	_, ok = clb.LoopbackVIP(e.cloud.World(), "lb-nothere")
	assert.False(t, ok)

	// A wanted VIP in the subnet is honoured; a taken one is refused.
	want := e.createLB(t, &clbapi.CreateLoadBalancerRequest{LoadBalancerType: clbapi.TypeInternal, SubnetId: "subnet-gz1", Vip: "10.0.1.200"})
	assert.Equal(t, []string{"10.0.1.200"}, e.describeLB(t, want).LoadBalancerVips)
	_, err := e.clb.CreateLoadBalancer(e.ctx, &clbapi.CreateLoadBalancerRequest{LoadBalancerType: clbapi.TypeInternal, SubnetId: "subnet-gz1", Vip: "10.0.1.11"})
	requireCode(t, err, vpc.CodeAddressInUse)

	// A name already used is replaced by a generated one, as the cloud does.
	dup := e.openLB(t, "web")
	assert.Equal(t, dup, e.describeLB(t, dup).LoadBalancerName)

	// Number creates several at once.
	out, err := e.clb.CreateLoadBalancer(e.ctx, &clbapi.CreateLoadBalancerRequest{LoadBalancerType: clbapi.TypeOpen, Number: ptr(uint64(3))})
	require.NoError(t, err)
	assert.Len(t, out.LoadBalancerIds, 3)
	assert.Equal(t, uint64(7), e.lbCount(t))
}

func api2(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05Z") }

func TestCreateClientTokenIdempotent(t *testing.T) {
	e := newEnv(t, envOpts{})
	in := &clbapi.CreateLoadBalancerRequest{LoadBalancerType: clbapi.TypeOpen, ClientToken: "tok-1"}
	a := e.createLB(t, in)
	b := e.createLB(t, &clbapi.CreateLoadBalancerRequest{LoadBalancerType: clbapi.TypeOpen, ClientToken: "tok-1"})
	assert.Equal(t, a, b, "the same token gives the same load balancer")
	assert.Equal(t, uint64(1), e.lbCount(t))
	c := e.createLB(t, &clbapi.CreateLoadBalancerRequest{LoadBalancerType: clbapi.TypeOpen, ClientToken: "tok-2"})
	assert.NotEqual(t, a, c)
	// The client fills an empty token, so two calls without one make two.
	e.createLB(t, &clbapi.CreateLoadBalancerRequest{LoadBalancerType: clbapi.TypeOpen})
	assert.Equal(t, uint64(3), e.lbCount(t))
}

func TestCreateLoadBalancerErrors(t *testing.T) {
	e := newEnv(t, envOpts{limits: map[string]int{"clb-per-region": 2}})
	e.openLB(t, "first")
	before := e.stateDump(t)
	long := make([]clbapi.TagInfo, 51)
	for i := range long {
		long[i] = clbapi.TagInfo{TagKey: string(rune('a'+i%26)) + itoa(int64(i)), TagValue: "v"}
	}
	cases := []struct {
		name string
		in   clbapi.CreateLoadBalancerRequest
		code string
	}{
		{"no type", clbapi.CreateLoadBalancerRequest{}, cloudapi.CodeMissingParameter},
		{"bad type", clbapi.CreateLoadBalancerRequest{LoadBalancerType: "PUBLIC"}, cloudapi.CodeInvalidParameterValue},
		{"internal without subnet", clbapi.CreateLoadBalancerRequest{LoadBalancerType: clbapi.TypeInternal}, cloudapi.CodeMissingParameter},
		{"unknown subnet", clbapi.CreateLoadBalancerRequest{LoadBalancerType: clbapi.TypeInternal, SubnetId: "subnet-nothere"}, "InvalidParameter.SubnetIdNotFound"},
		{"subnet of another vpc", clbapi.CreateLoadBalancerRequest{LoadBalancerType: clbapi.TypeInternal, SubnetId: "subnet-oth1", VpcId: "vpc-main0001"}, cloudapi.CodeInvalidParameterValue},
		{"vip outside subnet", clbapi.CreateLoadBalancerRequest{LoadBalancerType: clbapi.TypeInternal, SubnetId: "subnet-gz1", Vip: "10.0.2.5"}, vpc.CodeAddressOutOfSubnet},
		{"open with subnet", clbapi.CreateLoadBalancerRequest{LoadBalancerType: clbapi.TypeOpen, SubnetId: "subnet-gz1"}, cloudapi.CodeInvalidParameterValue},
		{"unknown vpc", clbapi.CreateLoadBalancerRequest{LoadBalancerType: clbapi.TypeOpen, VpcId: "vpc-nothere1"}, "InvalidParameter.VpcIdNotFound"},
		{"unknown zone", clbapi.CreateLoadBalancerRequest{LoadBalancerType: clbapi.TypeOpen, MasterZoneId: "ap-guangzhou-9"}, cloudapi.CodeInvalidParameterValue},
		{"zone for internal", clbapi.CreateLoadBalancerRequest{LoadBalancerType: clbapi.TypeInternal, SubnetId: "subnet-gz1", ZoneId: "ap-guangzhou-1"}, cloudapi.CodeInvalidParameterValue},
		{"bad name", clbapi.CreateLoadBalancerRequest{LoadBalancerType: clbapi.TypeOpen, LoadBalancerName: "has space"}, cloudapi.CodeInvalidParameterValue},
		{"classic", clbapi.CreateLoadBalancerRequest{LoadBalancerType: clbapi.TypeOpen, Forward: ptr(int64(0))}, cloudapi.CodeUnsupportedOperation},
		{"ipv6", clbapi.CreateLoadBalancerRequest{LoadBalancerType: clbapi.TypeOpen, AddressIPVersion: "IPV6"}, cloudapi.CodeUnsupportedOperation},
		{"number 0", clbapi.CreateLoadBalancerRequest{LoadBalancerType: clbapi.TypeOpen, Number: ptr(uint64(0))}, cloudapi.CodeInvalidParameterValue},
		{"too many tags", clbapi.CreateLoadBalancerRequest{LoadBalancerType: clbapi.TypeOpen, Tags: long}, cloudapi.CodeInvalidParameterValue},
		{"empty tag key", clbapi.CreateLoadBalancerRequest{LoadBalancerType: clbapi.TypeOpen, Tags: []clbapi.TagInfo{{TagValue: "v"}}}, cloudapi.CodeInvalidParameterValue},
		{"duplicate tag", clbapi.CreateLoadBalancerRequest{LoadBalancerType: clbapi.TypeOpen, Tags: []clbapi.TagInfo{{TagKey: "k", TagValue: "1"}, {TagKey: "k", TagValue: "2"}}}, clbapi.CodeDuplicate},
		{"empty tag value", clbapi.CreateLoadBalancerRequest{LoadBalancerType: clbapi.TypeOpen, Tags: []clbapi.TagInfo{{TagKey: "k"}}}, cloudapi.CodeInvalidParameterValue},
		{"name with a dot", clbapi.CreateLoadBalancerRequest{LoadBalancerType: clbapi.TypeOpen, LoadBalancerName: "web.prod"}, cloudapi.CodeInvalidParameterValue},
		{"name 61 characters", clbapi.CreateLoadBalancerRequest{LoadBalancerType: clbapi.TypeOpen, LoadBalancerName: strings.Repeat("负", 61)}, cloudapi.CodeInvalidParameterValue},
		{"lower-case ipv4", clbapi.CreateLoadBalancerRequest{LoadBalancerType: clbapi.TypeOpen, AddressIPVersion: "ipv4"}, cloudapi.CodeInvalidParameterValue},
		{"single-ISP vip", clbapi.CreateLoadBalancerRequest{LoadBalancerType: clbapi.TypeOpen, VipIsp: "CMCC"}, cloudapi.CodeUnsupportedOperation},
		{"token not ASCII", clbapi.CreateLoadBalancerRequest{LoadBalancerType: clbapi.TypeOpen, ClientToken: "令牌"}, cloudapi.CodeInvalidParameterValue},
		{"public vip outside pool", clbapi.CreateLoadBalancerRequest{LoadBalancerType: clbapi.TypeOpen, Vip: "8.8.8.8"}, cloudapi.CodeInvalidParameterValue},
		{"over the region limit", clbapi.CreateLoadBalancerRequest{LoadBalancerType: clbapi.TypeOpen, Number: ptr(uint64(2))}, cloudapi.CodeLimitExceeded},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := e.clb.CreateLoadBalancer(e.ctx, &c.in)
			requireCode(t, err, c.code)
			assert.Equal(t, before, e.stateDump(t), "a refused create changes nothing")
		})
	}
	// The limit counts what exists: one more fits, then none.
	e.openLB(t, "second")
	_, err := e.clb.CreateLoadBalancer(e.ctx, &clbapi.CreateLoadBalancerRequest{LoadBalancerType: clbapi.TypeOpen})
	requireCode(t, err, cloudapi.CodeLimitExceeded)
}

func TestInternalVIPExhaustsSubnet(t *testing.T) {
	e := newEnv(t, envOpts{})
	// 10.0.3.0/29: 8 addresses, 3 reserved -> 5 VIPs.
	for range 5 {
		e.createLB(t, &clbapi.CreateLoadBalancerRequest{LoadBalancerType: clbapi.TypeInternal, SubnetId: "subnet-tiny"})
	}
	_, err := e.clb.CreateLoadBalancer(e.ctx, &clbapi.CreateLoadBalancerRequest{LoadBalancerType: clbapi.TypeInternal, SubnetId: "subnet-tiny"})
	requireCode(t, err, vpc.CodeSubnetExhausted)
}

func TestDescribeLoadBalancersFilters(t *testing.T) {
	e := newEnv(t, envOpts{clock: newClock()})
	cluster := func(c string) clbapi.TagInfo { return clbapi.TagInfo{TagKey: "stratus.io/cluster", TagValue: c} }
	var ids []string
	for i, c := range []string{"c1", "c1", "c2"} {
		ids = append(ids, e.openLB(t, "lb-"+itoa(int64(i)), cluster(c)))
		e.clock.Advance(time.Second)
	}
	internal := e.createLB(t, &clbapi.CreateLoadBalancerRequest{LoadBalancerType: clbapi.TypeInternal, SubnetId: "subnet-gz1", LoadBalancerName: "zz-internal"})
	e.clock.Advance(time.Second)

	list := func(in clbapi.DescribeLoadBalancersRequest) ([]string, uint64) {
		t.Helper()
		out, err := e.clb.DescribeLoadBalancers(e.ctx, &in)
		require.NoError(t, err)
		var got []string
		for _, lb := range out.LoadBalancerSet {
			got = append(got, lb.LoadBalancerId)
		}
		return got, out.TotalCount
	}
	got, total := list(clbapi.DescribeLoadBalancersRequest{})
	assert.Equal(t, []string{internal, ids[2], ids[1], ids[0]}, got, "newest first by default")
	assert.Equal(t, uint64(4), total)

	got, _ = list(clbapi.DescribeLoadBalancersRequest{OrderType: ptr(int64(0))})
	assert.Equal(t, []string{ids[0], ids[1], ids[2], internal}, got)

	got, total = list(clbapi.DescribeLoadBalancersRequest{Filters: []cloudapi.Filter{{Name: "tag:stratus.io/cluster", Values: []string{"c1"}}}, OrderType: ptr(int64(0))})
	assert.Equal(t, []string{ids[0], ids[1]}, got)
	assert.Equal(t, uint64(2), total)

	got, _ = list(clbapi.DescribeLoadBalancersRequest{Filters: []cloudapi.Filter{{Name: "tag-key", Values: []string{"stratus.io/cluster"}}}})
	assert.Len(t, got, 3)

	got, _ = list(clbapi.DescribeLoadBalancersRequest{LoadBalancerType: clbapi.TypeInternal})
	assert.Equal(t, []string{internal}, got)

	got, _ = list(clbapi.DescribeLoadBalancersRequest{LoadBalancerIds: []string{ids[1], "lb-nothere"}})
	assert.Equal(t, []string{ids[1]}, got, "unknown ids are simply not listed")

	got, _ = list(clbapi.DescribeLoadBalancersRequest{LoadBalancerName: "lb-2"})
	assert.Equal(t, []string{ids[2]}, got)

	vip := e.describeLB(t, ids[0]).LoadBalancerVips[0]
	got, _ = list(clbapi.DescribeLoadBalancersRequest{LoadBalancerVips: []string{vip}})
	assert.Equal(t, []string{ids[0]}, got)

	got, _ = list(clbapi.DescribeLoadBalancersRequest{OrderBy: "LoadBalancerName", OrderType: ptr(int64(0))})
	assert.Equal(t, []string{ids[0], ids[1], ids[2], internal}, got)

	got, total = list(clbapi.DescribeLoadBalancersRequest{Offset: ptr(int64(1)), Limit: ptr(int64(2))})
	assert.Equal(t, []string{ids[2], ids[1]}, got)
	assert.Equal(t, uint64(4), total, "TotalCount ignores the page")

	// Backend filters: only the load balancer with a target on node-3 matches.
	l := e.listener(t, ids[1], clbapi.ProtocolTCP, 80, nil)
	_, err := e.clb.RegisterTargets(e.ctx, &clbapi.RegisterTargetsRequest{LoadBalancerId: ids[1], ListenerId: l, Targets: []clbapi.Target{insTarget("ins-node0003", 30080)}})
	require.NoError(t, err)
	got, _ = list(clbapi.DescribeLoadBalancersRequest{BackendPrivateIps: []string{"10.0.2.11"}})
	assert.Equal(t, []string{ids[1]}, got)
	got, _ = list(clbapi.DescribeLoadBalancersRequest{BackendPublicIps: []string{"203.0.113.77"}})
	assert.Equal(t, []string{ids[1]}, got)
	got, _ = list(clbapi.DescribeLoadBalancersRequest{WithRs: ptr(int64(1))})
	assert.Equal(t, []string{ids[1]}, got)
	_, total = list(clbapi.DescribeLoadBalancersRequest{WithRs: ptr(int64(0))})
	assert.Equal(t, uint64(3), total)

	for _, bad := range []clbapi.DescribeLoadBalancersRequest{
		{Limit: ptr(int64(101))},
		{Offset: ptr(int64(-1))},
		{Filters: []cloudapi.Filter{{Name: "color", Values: []string{"red"}}}},
		{OrderBy: "Size"},
		{OrderType: ptr(int64(2))},
		{WithRs: ptr(int64(5))},
	} {
		_, err := e.clb.DescribeLoadBalancers(e.ctx, &bad)
		requireCode(t, err, cloudapi.CodeInvalidParameterValue)
	}
}

func TestDeleteLoadBalancer(t *testing.T) {
	e := newEnv(t, envOpts{})
	keep := e.openLB(t, "keep")
	lb := e.createLB(t, &clbapi.CreateLoadBalancerRequest{LoadBalancerType: clbapi.TypeInternal, SubnetId: "subnet-gz1", Vip: "10.0.1.100"})
	l := e.listener(t, lb, clbapi.ProtocolTCP, 80, nil)
	_, err := e.clb.RegisterTargets(e.ctx, &clbapi.RegisterTargetsRequest{LoadBalancerId: lb, ListenerId: l, Targets: []clbapi.Target{insTarget("ins-node0001", 80)}})
	require.NoError(t, err)

	// A list with one unknown id deletes nothing.
	before := e.stateDump(t)
	_, err = e.clb.DeleteLoadBalancer(e.ctx, &clbapi.DeleteLoadBalancerRequest{LoadBalancerIds: []string{lb, "lb-nothere"}})
	requireCode(t, err, clbapi.CodeLBNotFound)
	assert.True(t, cloudapi.IsNotFound(err))
	assert.Equal(t, before, e.stateDump(t))
	_, err = e.clb.DeleteLoadBalancer(e.ctx, &clbapi.DeleteLoadBalancerRequest{})
	requireCode(t, err, cloudapi.CodeMissingParameter)

	out, err := e.clb.DeleteLoadBalancer(e.ctx, &clbapi.DeleteLoadBalancerRequest{LoadBalancerIds: []string{lb}})
	require.NoError(t, err)
	require.NoError(t, e.clb.WaitTask(e.ctx, out.RequestId))
	_, err = e.clb.DescribeListeners(e.ctx, &clbapi.DescribeListenersRequest{LoadBalancerId: lb})
	requireCode(t, err, clbapi.CodeLBNotFound)
	assert.Empty(t, e.cloud.World().Store.Dump()["clb.listeners"], "listeners (and their targets) go with the load balancer")
	assert.Equal(t, uint64(1), e.lbCount(t))
	e.describeLB(t, keep)

	// The internal VIP went back to the subnet: it can be asked for again.
	again := e.createLB(t, &clbapi.CreateLoadBalancerRequest{LoadBalancerType: clbapi.TypeInternal, SubnetId: "subnet-gz1", Vip: "10.0.1.100"})
	assert.Equal(t, []string{"10.0.1.100"}, e.describeLB(t, again).LoadBalancerVips)

	_, err = e.clb.DeleteLoadBalancer(e.ctx, &clbapi.DeleteLoadBalancerRequest{LoadBalancerIds: []string{lb}})
	requireCode(t, err, clbapi.CodeLBNotFound)
}
