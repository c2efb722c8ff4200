package clbbackend_test

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	v1 "k8s.io/api/core/v1"

	"github.com/stratus-cloud/stratus/cloudapi"
	"github.com/stratus-cloud/stratus/cloudapi/clb"
	"github.com/stratus-cloud/stratus/cloudapi/vpc"
	"github.com/stratus-cloud/stratus/fakecloud/api"
	fcclb "github.com/stratus-cloud/stratus/fakecloud/clb"
	"github.com/stratus-cloud/stratus/loadbalancer"
)

var modes = []loadbalancer.Mode{loadbalancer.ModeNodePort, loadbalancer.ModeVIP}

func tp(m loadbalancer.Mode, port, nodePort int) int {
	if m == loadbalancer.ModeVIP {
		return port
	}
	return nodePort
}

func TestEnsureCreatesTaggedLoadBalancer(t *testing.T) {
	for _, mode := range modes {
		for _, delay := range []time.Duration{0, 300 * time.Millisecond} {
			t.Run(fmt.Sprintf("%s/task %s", mode, delay), func(t *testing.T) {
				e := newEnv(t, envOpts{delay: delay})
				svc := service("web", mode,
					v1.ServicePort{Name: "http", Protocol: v1.ProtocolTCP, Port: 80, NodePort: 30080},
					v1.ServicePort{Name: "dns", Protocol: v1.ProtocolUDP, Port: 53, NodePort: 30053})
				st := e.ensure(svc, nodes(1, 2))
				id := e.ownedBy(svc)
				lb := e.lb(id)
				assert.Equal(t, clb.TypeOpen, lb.LoadBalancerType)
				assert.Equal(t, "vpc-test1", lb.VpcId)
				assert.Equal(t, lb.LoadBalancerVips[0], st.Ingress[0].IP)
				tags := []clb.TagInfo{{TagKey: loadbalancer.TagCluster, TagValue: cluster}, {TagKey: loadbalancer.TagService, TagValue: "default/web"},
					{TagKey: loadbalancer.TagServiceUID, TagValue: "uid-web"}}
				if mode == loadbalancer.ModeVIP {
					tags = append(tags, clb.TagInfo{TagKey: loadbalancer.TagMode, TagValue: "vip"})
				}
				assert.ElementsMatch(t, tags, lb.Tags)
				assert.Equal(t, map[string][]string{
					"TCP/80": {fmt.Sprintf("ins-node0001:%d/10", tp(mode, 80, 30080)), fmt.Sprintf("ins-node0002:%d/10", tp(mode, 80, 30080))},
					"UDP/53": {fmt.Sprintf("ins-node0001:%d/10", tp(mode, 53, 30053)), fmt.Sprintf("ins-node0002:%d/10", tp(mode, 53, 30053))},
				}, e.targets(id))
				for _, l := range e.listeners(id) {
					assert.Equal(t, "stratus-uid-web", l.ListenerName)
					if l.Protocol == clb.ProtocolTCP {
						assert.Equal(t, clb.CheckHTTP, *l.HealthCheck.CheckType)
						assert.Equal(t, int64(10256), *l.HealthCheck.CheckPort, "kube-proxy's /healthz")
						assert.Equal(t, "/healthz", *l.HealthCheck.HttpCheckPath)
						assert.Equal(t, int64(2), *l.HealthCheck.HttpCode, "2xx only")
					}
				}
				calls := e.calls.Snapshot()
				assert.Equal(t, 1, calls["CreateLoadBalancer"])
				assert.Equal(t, 2, calls["CreateListener"], "one per protocol")
				assert.Equal(t, 1, calls["BatchRegisterTargets"], "every target of every listener in one call")

				e.calls.Reset()
				e.ensure(svc, nodes(2, 1))
				assert.Empty(t, e.calls.Snapshot(), "an unchanged Service costs no call")

				time.Sleep(2 * delay) // the last task of the creation is over
				require.NoError(t, e.engine.UpdateLoadBalancer(e.ctx, "", svc, nodes(1, 2, 3)))
				assert.Equal(t, map[string]int{"BatchRegisterTargets": 1}, e.calls.Snapshot(), "a node added: one write, no read")
				assert.Len(t, e.targets(id)["UDP/53"], 3)

				e.calls.Reset()
				time.Sleep(2 * delay)
				require.NoError(t, e.engine.UpdateLoadBalancer(e.ctx, "", svc, nodes(1, 3)))
				calls = e.calls.Snapshot()
				assert.Equal(t, 1, calls["BatchDeregisterTargets"])
				assert.Zero(t, calls["DescribeLoadBalancers"]+calls["DescribeListeners"]+calls["DescribeTargets"], "no read: %v", calls)

				// A restarted CCM rebuilds its cache and makes no second load balancer.
				e.engine = e.newEngine()
				e.calls.Reset()
				st2 := e.ensure(svc, nodes(1, 3))
				assert.Equal(t, st.Ingress[0].IP, st2.Ingress[0].IP)
				assert.Zero(t, e.calls.Count("CreateLoadBalancer"))
				assert.Len(t, e.lbs(), 1)

				require.NoError(t, e.engine.EnsureLoadBalancerDeleted(e.ctx, "", svc))
				assert.Empty(t, e.lbs())
			})
		}
	}
}

func TestManyTargetsStayWithinTheBatchLimit(t *testing.T) {
	e := newEnv(t, envOpts{seed: testSeed(600)})
	svc := service("big", loadbalancer.ModeNodePort)
	e.ensure(svc, nodeRange(600))
	assert.Equal(t, 2, e.calls.Count("BatchRegisterTargets"), "600 targets: 500 + 100")
	assert.Len(t, e.targets(e.ownedBy(svc))["TCP/80"], 600)
}

func TestManyListenersStayWithinTheDeleteLimit(t *testing.T) {
	e := newEnv(t, envOpts{})
	var ports []v1.ServicePort
	for i := range 45 {
		ports = append(ports, v1.ServicePort{Name: fmt.Sprintf("p%d", i), Protocol: v1.ProtocolTCP, Port: int32(8000 + i), NodePort: int32(30000 + i)})
	}
	svc := service("wide", loadbalancer.ModeNodePort, ports...)
	e.ensure(svc, nodes(1))
	id := e.ownedBy(svc)
	require.Len(t, e.listeners(id), 45)

	e.calls.Reset()
	svc.Spec.Ports = ports[:1]
	e.ensure(svc, nodes(1))
	assert.Len(t, e.listeners(id), 1)
	assert.Equal(t, 3, e.calls.Count("DeleteLoadBalancerListeners"), "44 listeners go 20 per call (DeleteLoadBalancerListeners' limit): 20 + 20 + 4")
}

func TestSourceRangesUseAnOwnedSecurityGroup(t *testing.T) {
	e := newEnv(t, envOpts{})
	svc := service("web", loadbalancer.ModeNodePort)
	svc.Spec.LoadBalancerSourceRanges = []string{"127.77.0.0/24", "10.0.0.0/8"}
	e.ensure(svc, nodes(1))
	id := e.ownedBy(svc)
	sgs := e.lb(id).SecureGroups
	require.Len(t, sgs, 1)
	groups, err := e.vpc.DescribeSecurityGroups(e.ctx, &vpc.DescribeSecurityGroupsRequest{SecurityGroupIds: sgs})
	require.NoError(t, err)
	assert.ElementsMatch(t, []cloudapi.Tag{{Key: loadbalancer.TagCluster, Value: cluster}, {Key: loadbalancer.TagService, Value: "default/web"},
		{Key: loadbalancer.TagServiceUID, Value: "uid-web"}}, groups.SecurityGroupSet[0].TagSet)
	pol, err := e.vpc.DescribeSecurityGroupPolicies(e.ctx, &vpc.DescribeSecurityGroupPoliciesRequest{SecurityGroupId: sgs[0]})
	require.NoError(t, err)
	var cidrs []string
	for _, p := range pol.SecurityGroupPolicySet.Ingress {
		cidrs = append(cidrs, p.CidrBlock+" "+p.Action)
	}
	assert.Equal(t, []string{"10.0.0.0/8 ACCEPT", "127.77.0.0/24 ACCEPT"}, cidrs)

	// Changing the ranges rewrites the rules in place; a restart reads them back.
	svc.Spec.LoadBalancerSourceRanges = []string{"127.78.0.0/24"}
	e.ensure(svc, nodes(1))
	assert.Equal(t, sgs, e.lb(id).SecureGroups)
	e.engine = e.newEngine()
	e.calls.Reset()
	e.ensure(svc, nodes(1))
	assert.Zero(t, e.calls.Count("ModifySecurityGroupPolicies"), "the rebuilt cache knows the ranges")

	// Removing them unbinds and deletes the group.
	svc.Spec.LoadBalancerSourceRanges = nil
	e.ensure(svc, nodes(1))
	assert.Empty(t, e.lb(id).SecureGroups)
	_, err = e.vpc.DescribeSecurityGroupPolicies(e.ctx, &vpc.DescribeSecurityGroupPoliciesRequest{SecurityGroupId: sgs[0]})
	assert.True(t, cloudapi.IsNotFound(err), "the group is gone: %v", err)

	// Deleting the Service deletes its group too.
	svc.Spec.LoadBalancerSourceRanges = []string{"10.0.0.0/8"}
	e.ensure(svc, nodes(1))
	require.NoError(t, e.engine.EnsureLoadBalancerDeleted(e.ctx, "", svc))
	left, err := e.vpc.DescribeSecurityGroups(e.ctx, &vpc.DescribeSecurityGroupsRequest{})
	require.NoError(t, err)
	assert.Zero(t, left.TotalCount)

	t.Run("internal load balancers cannot take them", func(t *testing.T) {
		in := service("private", loadbalancer.ModeNodePort)
		in.Annotations[loadbalancer.AnnotationInternalSubnet] = "subnet-gz1"
		in.Spec.LoadBalancerSourceRanges = []string{"10.0.0.0/8"}
		_, err := e.engine.EnsureLoadBalancer(e.ctx, "", in, nodes(1))
		require.Error(t, err)
		assert.Contains(t, err.Error(), "internal load balancers cannot filter sources")
		assert.Empty(t, e.lbs())
	})
}

func TestCloudErrorsCarryCodeAndLeaveNothing(t *testing.T) {
	for name, tc := range map[string]struct {
		seed  func(*api.Seed)
		mut   func(*v1.Service)
		code  string
		setup func(*env)
	}{
		"subnet does not exist": {
			mut:  func(s *v1.Service) { s.Annotations[loadbalancer.AnnotationInternalSubnet] = "subnet-nothere1" },
			code: "InvalidParameter.SubnetIdNotFound",
		},
		"load balancer quota": {
			seed: func(s *api.Seed) { s.Limits["clb-per-region"] = 1 },
			setup: func(e *env) {
				_, err := e.clb.CreateLoadBalancer(e.ctx, &clb.CreateLoadBalancerRequest{LoadBalancerType: clb.TypeOpen, VpcId: "vpc-test1"})
				require.NoError(e.t, err)
			},
			code: cloudapi.CodeLimitExceeded,
		},
		"listener quota: the new load balancer is rolled back": {
			seed: func(s *api.Seed) { s.Limits["clb-listeners-per-lb"] = 1 },
			mut: func(s *v1.Service) {
				s.Spec.Ports = append(s.Spec.Ports, v1.ServicePort{Name: "b", Protocol: v1.ProtocolUDP, Port: 81, NodePort: 30081})
			},
			code: cloudapi.CodeLimitExceeded,
		},
	} {
		t.Run(name, func(t *testing.T) {
			seed := testSeed(2)
			if tc.seed != nil {
				tc.seed(seed)
			}
			e := newEnv(t, envOpts{seed: seed})
			if tc.setup != nil {
				tc.setup(e)
			}
			before := len(e.lbs())
			svc := service("web", loadbalancer.ModeNodePort)
			if tc.mut != nil {
				tc.mut(svc)
			}
			_, err := e.engine.EnsureLoadBalancer(e.ctx, "", svc, nodes(1))
			require.Error(t, err)
			assert.Equal(t, tc.code, cloudapi.ErrorCode(err), "%v", err)
			assert.Contains(t, err.Error(), "RequestId", "the cloud's message and request id reach the event: %v", err)
			assert.Len(t, e.lbs(), before, "nothing half-made is left behind")
		})
	}

	t.Run("VIP pool exhausted", func(t *testing.T) {
		e := newEnv(t, envOpts{clbOpt: fcclb.Options{PublicPool: netip.MustParsePrefix("198.18.5.0/30")}}) // two addresses
		e.ensure(service("a", loadbalancer.ModeNodePort), nodes(1))
		e.ensure(service("b", loadbalancer.ModeNodePort), nodes(1))
		_, err := e.engine.EnsureLoadBalancer(e.ctx, "", service("c", loadbalancer.ModeNodePort), nodes(1))
		require.Error(t, err)
		assert.Equal(t, "ResourceInsufficient", cloudapi.ErrorCode(err), "%v", err)
		assert.Contains(t, err.Error(), "service default/c")
		assert.Len(t, e.lbs(), 2)
	})
}
