package clb_test

import (
	"bufio"
	"math/rand/v2"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stratus-cloud/stratus/cloudapi"
	clbapi "github.com/stratus-cloud/stratus/cloudapi/clb"
	vpcapi "github.com/stratus-cloud/stratus/cloudapi/vpc"
	"github.com/stratus-cloud/stratus/fakecloud/clb"
)

func (e *env) vpcClient(t *testing.T) *vpcapi.Client {
	t.Helper()
	id, key := e.cloud.Credentials()
	cl, err := cloudapi.New(cloudapi.Config{Endpoint: e.srv.URL, Region: e.cloud.Region(),
		Credentials: cloudapi.Credentials{SecretID: id, SecretKey: key}, RateLimit: -1, MaxAttempts: 1, Now: e.now()})
	require.NoError(t, err)
	return vpcapi.New(cl)
}

// securityGroup creates a group whose inbound rules accept exactly the given CIDRs.
func (e *env) securityGroup(t *testing.T, accept ...string) string {
	t.Helper()
	v := e.vpcClient(t)
	out, err := v.CreateSecurityGroup(e.ctx, &vpcapi.CreateSecurityGroupRequest{GroupName: "sources", GroupDescription: "test"})
	require.NoError(t, err)
	set := vpcapi.SecurityGroupPolicySet{Egress: []vpcapi.SecurityGroupPolicy{}, Ingress: []vpcapi.SecurityGroupPolicy{}}
	for _, c := range accept {
		set.Ingress = append(set.Ingress, vpcapi.SecurityGroupPolicy{Protocol: "ALL", CidrBlock: c, Action: vpcapi.PolicyAccept})
	}
	_, err = v.ModifySecurityGroupPolicies(e.ctx, &vpcapi.ModifySecurityGroupPoliciesRequest{SecurityGroupId: out.SecurityGroup.SecurityGroupId, SecurityGroupPolicySet: set})
	require.NoError(t, err)
	return out.SecurityGroup.SecurityGroupId
}

func TestSetLoadBalancerSecurityGroups(t *testing.T) {
	e := newEnv(t, envOpts{})
	open := e.openLB(t, "web")
	internal := e.createLB(t, &clbapi.CreateLoadBalancerRequest{LoadBalancerType: clbapi.TypeInternal, SubnetId: "subnet-gz1"})
	sg1, sg2 := e.securityGroup(t, "10.0.0.0/8"), e.securityGroup(t)

	_, err := e.clb.SetLoadBalancerSecurityGroups(e.ctx, &clbapi.SetLoadBalancerSecurityGroupsRequest{LoadBalancerId: open, SecurityGroups: []string{sg2, sg1}})
	require.NoError(t, err)
	assert.Equal(t, []string{sg2, sg1}, e.describeLB(t, open).SecureGroups, "in priority order")
	out, err := e.clb.DescribeLoadBalancers(e.ctx, &clbapi.DescribeLoadBalancersRequest{SecurityGroup: sg1})
	require.NoError(t, err)
	require.Len(t, out.LoadBalancerSet, 1)
	assert.Equal(t, open, out.LoadBalancerSet[0].LoadBalancerId)

	// A bound group cannot be deleted; set semantics unbind it.
	_, err = e.vpcClient(t).DeleteSecurityGroup(e.ctx, &vpcapi.DeleteSecurityGroupRequest{SecurityGroupId: sg1})
	requireCode(t, err, cloudapi.CodeResourceInUse)
	_, err = e.clb.SetLoadBalancerSecurityGroups(e.ctx, &clbapi.SetLoadBalancerSecurityGroupsRequest{LoadBalancerId: open, SecurityGroups: []string{sg2}})
	require.NoError(t, err)
	assert.Equal(t, []string{sg2}, e.describeLB(t, open).SecureGroups)
	_, err = e.vpcClient(t).DeleteSecurityGroup(e.ctx, &vpcapi.DeleteSecurityGroupRequest{SecurityGroupId: sg1})
	require.NoError(t, err)

	for name, tc := range map[string]struct {
		lb     string
		groups []string
		code   string
	}{
		"internal load balancer": {internal, []string{sg2}, cloudapi.CodeUnsupportedOperation},
		"unknown group":          {open, []string{"sg-nothere1"}, "InvalidSecurityGroupID.NotFound"},
		"duplicate":              {open, []string{sg2, sg2}, clbapi.CodeDuplicate},
		"unknown load balancer":  {"lb-nothere1", []string{sg2}, clbapi.CodeLBNotFound},
	} {
		t.Run(name, func(t *testing.T) {
			before := e.stateDump(t)
			_, err := e.clb.SetLoadBalancerSecurityGroups(e.ctx, &clbapi.SetLoadBalancerSecurityGroupsRequest{LoadBalancerId: tc.lb, SecurityGroups: tc.groups})
			requireCode(t, err, tc.code)
			assert.Equal(t, before, e.stateDump(t))
		})
	}

	// Deleting the load balancer releases its groups.
	_, err = e.clb.DeleteLoadBalancer(e.ctx, &clbapi.DeleteLoadBalancerRequest{LoadBalancerIds: []string{open}})
	require.NoError(t, err)
	_, err = e.vpcClient(t).DeleteSecurityGroup(e.ctx, &vpcapi.DeleteSecurityGroupRequest{SecurityGroupId: sg2})
	require.NoError(t, err)
}

// dialFrom connects to addr from the local address src and reads the target's banner.
func dialFrom(src netip.Addr, addr netip.AddrPort) (string, error) {
	d := net.Dialer{Timeout: 2 * time.Second, LocalAddr: net.TCPAddrFromAddrPort(netip.AddrPortFrom(src, 0))}
	c, err := d.Dial("tcp", addr.String())
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(3 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	return strings.TrimSpace(line), err
}

func TestDataPlaneSourceFilter(t *testing.T) {
	opts, n := dpOptions()
	e := newEnv(t, envOpts{clb: opts})
	p1 := backend(t, mapped(n, 1, 11), "node-1")
	u1 := udpBackend(t, mapped(n, 1, 11), "node-1")
	lb := e.openLB(t, "web")
	l := e.listener(t, lb, clbapi.ProtocolTCP, 8080, nil)
	u := e.listener(t, lb, clbapi.ProtocolUDP, 5353, nil)
	register(t, e, lb, l, insTarget("ins-node0001", p1))
	register(t, e, lb, u, insTarget("ins-node0001", u1))
	addr := vipAddr(t, e, lb, 8080)

	// Client addresses: one inside the accepted range, one outside it.
	third := byte(rand.IntN(250))
	inside := netip.AddrFrom4([4]byte{127, 78, third, 5})
	outside := netip.AddrFrom4([4]byte{127, 79, third, 5})
	for _, src := range []netip.Addr{inside, outside} {
		got, err := dialFrom(src, addr)
		require.NoError(t, err, "no group bound: every source gets through (%s)", src)
		assert.Equal(t, "node-1", got)
	}

	sg := e.securityGroup(t, netip.PrefixFrom(inside, 24).Masked().String())
	_, err := e.clb.SetLoadBalancerSecurityGroups(e.ctx, &clbapi.SetLoadBalancerSecurityGroupsRequest{LoadBalancerId: lb, SecurityGroups: []string{sg}})
	require.NoError(t, err)
	got, err := dialFrom(inside, addr)
	require.NoError(t, err)
	assert.Equal(t, "node-1", got, "an accepted source is proxied")
	got, err = dialFrom(outside, addr)
	assert.Error(t, err, "a refused source gets no connection to a target")
	assert.Empty(t, got)

	udpFrom := func(src netip.Addr) error {
		c, err := net.DialUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(src, 0)), net.UDPAddrFromAddrPort(vipAddr(t, e, lb, 5353)))
		if err != nil {
			return err
		}
		defer c.Close()
		if _, err := c.Write([]byte("hi")); err != nil {
			return err
		}
		_ = c.SetReadDeadline(time.Now().Add(time.Second))
		buf := make([]byte, 64)
		_, err = c.Read(buf)
		return err
	}
	assert.NoError(t, udpFrom(inside))
	assert.Error(t, udpFrom(outside), "a refused UDP source is dropped")

	// Changing the group's rules takes effect without touching the load balancer.
	v := e.vpcClient(t)
	_, err = v.ModifySecurityGroupPolicies(e.ctx, &vpcapi.ModifySecurityGroupPoliciesRequest{SecurityGroupId: sg, SecurityGroupPolicySet: vpcapi.SecurityGroupPolicySet{
		Egress:  []vpcapi.SecurityGroupPolicy{},
		Ingress: []vpcapi.SecurityGroupPolicy{{Protocol: "TCP", Port: "8080", CidrBlock: netip.PrefixFrom(outside, 24).Masked().String(), Action: vpcapi.PolicyAccept}},
	}})
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		got, err := dialFrom(outside, addr)
		return err == nil && got == "node-1"
	}, 10*time.Second, 20*time.Millisecond)
	_, err = dialFrom(inside, addr)
	assert.Error(t, err, "the old range is refused now")
}

func TestPublicPoolOnLoopbackServesTheVIP(t *testing.T) {
	opts, n := dpOptions()
	opts.PublicPool = netip.PrefixFrom(netip.AddrFrom4([4]byte{127, 243, byte(rand.IntN(256)), 0}), 24)
	require.NoError(t, opts.Validate())
	e := newEnv(t, envOpts{clb: opts})
	p1 := backend(t, mapped(n, 1, 11), "node-1")
	lb := e.openLB(t, "web")
	l := e.listener(t, lb, clbapi.ProtocolTCP, 8080, nil)
	register(t, e, lb, l, insTarget("ins-node0001", p1))

	vip := netip.MustParseAddr(e.describeLB(t, lb).LoadBalancerVips[0])
	assert.True(t, opts.PublicPool.Contains(vip), "the VIP %s comes from the public pool", vip)
	lo, ok := clb.LoopbackVIP(e.cloud.World(), lb)
	require.True(t, ok)
	assert.Equal(t, vip, lo, "a loopback public VIP is served where it is")
	assert.Equal(t, map[string]int{"node-1": 2}, spread(t, netip.AddrPortFrom(vip, 8080), 2))

	// An internal load balancer still gets a subnet VIP, served from the loopback pool.
	in := e.createLB(t, &clbapi.CreateLoadBalancerRequest{LoadBalancerType: clbapi.TypeInternal, SubnetId: "subnet-gz1"})
	ilo, ok := clb.LoopbackVIP(e.cloud.World(), in)
	require.True(t, ok)
	assert.True(t, opts.LoopbackPool.Contains(ilo))
}

func TestPublicPoolValidation(t *testing.T) {
	for name, opts := range map[string]clb.Options{
		"overlaps loopback pool": {PublicPool: netip.MustParsePrefix("127.240.1.0/24")},
		"overlaps target map": {PublicPool: netip.MustParsePrefix("127.10.0.0/24"),
			TargetMap: []clb.PrefixMap{{From: netip.MustParsePrefix("10.0.0.0/16"), To: netip.MustParsePrefix("127.10.0.0/16")}}},
	} {
		t.Run(name, func(t *testing.T) { assert.Error(t, opts.Validate()) })
	}
	assert.NoError(t, clb.Options{PublicPool: netip.MustParsePrefix("127.241.0.0/24")}.Validate())
}
