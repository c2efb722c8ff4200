package clb_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stratus-cloud/stratus/cloudapi"
	clbapi "github.com/stratus-cloud/stratus/cloudapi/clb"
	cvmapi "github.com/stratus-cloud/stratus/cloudapi/cvm"
)

func TestRegisterDescribeDeregisterTargets(t *testing.T) {
	e := newEnv(t, envOpts{clock: newClock()})
	lb := e.openLB(t, "web")
	l := e.listener(t, lb, clbapi.ProtocolTCP, 80, nil)
	_, err := e.clb.RegisterTargets(e.ctx, &clbapi.RegisterTargetsRequest{LoadBalancerId: lb, ListenerId: l, Targets: []clbapi.Target{
		insTarget("ins-node0001", 30080),
		{InstanceId: ptr("ins-node0003"), Port: ptr(int64(30080)), Weight: ptr(int64(0))},
		{EniIp: ptr("10.0.1.50"), Port: ptr(int64(8080)), Weight: ptr(int64(100))},
	}})
	require.NoError(t, err)
	assert.Equal(t, []string{"ins-node0001:30080/10", "ins-node0003:30080/0", "10.0.1.50:8080/100"}, e.targets(t, lb, l))

	out, err := e.clb.DescribeTargets(e.ctx, &clbapi.DescribeTargetsRequest{LoadBalancerId: lb})
	require.NoError(t, err)
	require.Len(t, out.Listeners, 1)
	assert.Equal(t, clbapi.ListenerBackend{ListenerId: l, Protocol: "TCP", Port: 80, Targets: []clbapi.Backend{
		{Type: "CVM", InstanceId: "ins-node0001", Port: 30080, Weight: 10, InstanceName: "node-1", PrivateIpAddresses: []string{"10.0.1.11"}, PublicIpAddresses: []string{}, RegisteredTime: api2(e.clock.Now())},
		{Type: "CVM", InstanceId: "ins-node0003", Port: 30080, Weight: 0, InstanceName: "node-3", PrivateIpAddresses: []string{"10.0.2.11"}, PublicIpAddresses: []string{"203.0.113.77"}, RegisteredTime: api2(e.clock.Now())},
		{Type: "ENI", Port: 8080, Weight: 100, PrivateIpAddresses: []string{"10.0.1.50"}, PublicIpAddresses: []string{}, RegisteredTime: api2(e.clock.Now())},
	}}, out.Listeners[0])

	// The same instance on another port is another target.
	_, err = e.clb.RegisterTargets(e.ctx, &clbapi.RegisterTargetsRequest{LoadBalancerId: lb, ListenerId: l, Targets: []clbapi.Target{insTarget("ins-node0001", 30081)}})
	require.NoError(t, err)

	_, err = e.clb.DeregisterTargets(e.ctx, &clbapi.DeregisterTargetsRequest{LoadBalancerId: lb, ListenerId: l, Targets: []clbapi.Target{
		insTarget("ins-node0001", 30080), {EniIp: ptr("10.0.1.50"), Port: ptr(int64(8080))},
	}})
	require.NoError(t, err)
	assert.Equal(t, []string{"ins-node0003:30080/0", "ins-node0001:30081/10"}, e.targets(t, lb, l))

	// Filters of DescribeTargets.
	u := e.listener(t, lb, clbapi.ProtocolUDP, 53, nil)
	for _, in := range []clbapi.DescribeTargetsRequest{{ListenerIds: []string{u}}, {Protocol: "UDP"}, {Port: ptr(int64(53))}} {
		in.LoadBalancerId = lb
		out, err := e.clb.DescribeTargets(e.ctx, &in)
		require.NoError(t, err)
		require.Len(t, out.Listeners, 1)
		assert.Equal(t, u, out.Listeners[0].ListenerId)
		assert.Empty(t, out.Listeners[0].Targets)
	}
	_, err = e.clb.DescribeTargets(e.ctx, &clbapi.DescribeTargetsRequest{LoadBalancerId: "lb-nothere"})
	requireCode(t, err, clbapi.CodeLBNotFound)
}

func TestTargetErrors(t *testing.T) {
	e := newEnv(t, envOpts{})
	lb := e.openLB(t, "web")
	l := e.listener(t, lb, clbapi.ProtocolTCP, 80, nil)
	otherLB := e.openLB(t, "other")
	otherL := e.listener(t, otherLB, clbapi.ProtocolTCP, 80, nil)
	_, err := e.clb.RegisterTargets(e.ctx, &clbapi.RegisterTargetsRequest{LoadBalancerId: lb, ListenerId: l, Targets: []clbapi.Target{insTarget("ins-node0001", 80)}})
	require.NoError(t, err)
	before := e.stateDump(t)

	many := make([]clbapi.Target, 21)
	for i := range many {
		many[i] = insTarget("ins-node0002", int64(1000+i))
	}
	cases := []struct {
		name    string
		targets []clbapi.Target
		code    string
	}{
		{"unknown instance", []clbapi.Target{insTarget("ins-nothere", 80)}, cloudapi.CodeInvalidParameter},
		{"instance in another vpc", []clbapi.Target{insTarget("ins-other001", 80)}, cloudapi.CodeInvalidParameter},
		{"ip outside the vpc", []clbapi.Target{{EniIp: ptr("172.16.1.11"), Port: ptr(int64(80))}}, cloudapi.CodeInvalidParameter},
		{"bad ip", []clbapi.Target{{EniIp: ptr("10.0.1.x"), Port: ptr(int64(80))}}, cloudapi.CodeInvalidParameterValue},
		{"neither", []clbapi.Target{{Port: ptr(int64(80))}}, cloudapi.CodeInvalidParameter},
		{"both", []clbapi.Target{{InstanceId: ptr("ins-node0002"), EniIp: ptr("10.0.1.12"), Port: ptr(int64(80))}}, cloudapi.CodeInvalidParameter},
		{"no port", []clbapi.Target{{InstanceId: ptr("ins-node0002")}}, cloudapi.CodeMissingParameter},
		{"port 0", []clbapi.Target{insTarget("ins-node0002", 0)}, cloudapi.CodeInvalidParameterValue},
		{"weight 101", []clbapi.Target{{InstanceId: ptr("ins-node0002"), Port: ptr(int64(80)), Weight: ptr(int64(101))}}, cloudapi.CodeInvalidParameterValue},
		{"already bound", []clbapi.Target{insTarget("ins-node0002", 80), insTarget("ins-node0001", 80)}, cloudapi.CodeInvalidParameter},
		{"twice in the request", []clbapi.Target{insTarget("ins-node0002", 80), insTarget("ins-node0002", 80)}, clbapi.CodeDuplicate},
		{"21 targets", many, clbapi.CodeLength},
		{"none", nil, cloudapi.CodeMissingParameter},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := e.clb.RegisterTargets(e.ctx, &clbapi.RegisterTargetsRequest{LoadBalancerId: lb, ListenerId: l, Targets: c.targets})
			requireCode(t, err, c.code)
			assert.Equal(t, before, e.stateDump(t), "a refused register changes nothing")
		})
	}
	_, err = e.clb.RegisterTargets(e.ctx, &clbapi.RegisterTargetsRequest{LoadBalancerId: lb, ListenerId: otherL, Targets: []clbapi.Target{insTarget("ins-node0002", 80)}})
	requireCode(t, err, clbapi.CodeListenerNotFound)
	_, err = e.clb.RegisterTargets(e.ctx, &clbapi.RegisterTargetsRequest{LoadBalancerId: lb, Targets: []clbapi.Target{insTarget("ins-node0002", 80)}})
	requireCode(t, err, cloudapi.CodeMissingParameter)
	_, err = e.clb.RegisterTargets(e.ctx, &clbapi.RegisterTargetsRequest{LoadBalancerId: lb, ListenerId: l, LocationId: "loc-1", Targets: []clbapi.Target{insTarget("ins-node0002", 80)}})
	requireCode(t, err, cloudapi.CodeUnsupportedOperation)
	_, err = e.clb.RegisterTargets(e.ctx, &clbapi.RegisterTargetsRequest{LoadBalancerId: lb, ListenerId: l, Domain: "example.com", Url: "/", Targets: []clbapi.Target{insTarget("ins-node0002", 80)}})
	requireCode(t, err, cloudapi.CodeUnsupportedOperation)
	_, err = e.clb.DeregisterTargets(e.ctx, &clbapi.DeregisterTargetsRequest{LoadBalancerId: lb, ListenerId: l, Domain: "example.com", Url: "/", Targets: []clbapi.Target{insTarget("ins-node0001", 80)}})
	requireCode(t, err, cloudapi.CodeUnsupportedOperation)
	_, err = e.clb.DeregisterTargets(e.ctx, &clbapi.DeregisterTargetsRequest{LoadBalancerId: lb, ListenerId: l, Targets: []clbapi.Target{insTarget("ins-node0002", 80)}})
	requireCode(t, err, cloudapi.CodeInvalidParameter)
	_, err = e.clb.DeregisterTargets(e.ctx, &clbapi.DeregisterTargetsRequest{LoadBalancerId: "lb-nothere", ListenerId: l, Targets: []clbapi.Target{insTarget("ins-node0001", 80)}})
	requireCode(t, err, clbapi.CodeLBNotFound)
	assert.Equal(t, before, e.stateDump(t))
}

func TestBatchTargets(t *testing.T) {
	e := newEnv(t, envOpts{})
	lb := e.openLB(t, "web")
	l1 := e.listener(t, lb, clbapi.ProtocolTCP, 80, nil)
	l2 := e.listener(t, lb, clbapi.ProtocolUDP, 80, nil)
	bt := func(l, ins string, port int64) clbapi.BatchTarget {
		return clbapi.BatchTarget{ListenerId: ptr(l), InstanceId: ptr(ins), Port: ptr(port)}
	}
	out, err := e.clb.BatchRegisterTargets(e.ctx, &clbapi.BatchRegisterTargetsRequest{LoadBalancerId: lb, Targets: []clbapi.BatchTarget{
		bt(l1, "ins-node0001", 30080), bt(l1, "ins-node0002", 30080), bt(l2, "ins-node0001", 30053),
	}})
	require.NoError(t, err)
	assert.Empty(t, out.FailListenerIdSet)
	assert.Equal(t, []string{"ins-node0001:30080/10", "ins-node0002:30080/10"}, e.targets(t, lb, l1))
	assert.Equal(t, []string{"ins-node0001:30053/10"}, e.targets(t, lb, l2))

	// All or nothing: one bad target (here an unknown instance) and nothing is bound.
	before := e.stateDump(t)
	_, err = e.clb.BatchRegisterTargets(e.ctx, &clbapi.BatchRegisterTargetsRequest{LoadBalancerId: lb, Targets: []clbapi.BatchTarget{
		bt(l1, "ins-node0003", 30080), bt(l2, "ins-nothere", 30053),
	}})
	requireCode(t, err, cloudapi.CodeInvalidParameter)
	_, err = e.clb.BatchRegisterTargets(e.ctx, &clbapi.BatchRegisterTargetsRequest{LoadBalancerId: lb, Targets: []clbapi.BatchTarget{
		bt(l1, "ins-node0003", 30080), bt("lbl-nothere", "ins-node0003", 30053),
	}})
	requireCode(t, err, clbapi.CodeListenerNotFound)
	_, err = e.clb.BatchRegisterTargets(e.ctx, &clbapi.BatchRegisterTargetsRequest{LoadBalancerId: lb, Targets: []clbapi.BatchTarget{{InstanceId: ptr("ins-node0003"), Port: ptr(int64(1))}}})
	requireCode(t, err, cloudapi.CodeMissingParameter)
	many := make([]clbapi.BatchTarget, 501)
	for i := range many {
		many[i] = bt(l1, "ins-node0003", int64(1000+i))
	}
	_, err = e.clb.BatchRegisterTargets(e.ctx, &clbapi.BatchRegisterTargetsRequest{LoadBalancerId: lb, Targets: many})
	requireCode(t, err, clbapi.CodeLength)
	assert.Equal(t, before, e.stateDump(t))

	// 500 is allowed.
	_, err = e.clb.BatchRegisterTargets(e.ctx, &clbapi.BatchRegisterTargetsRequest{LoadBalancerId: lb, Targets: many[:500]})
	require.NoError(t, err)
	assert.Len(t, e.targets(t, lb, l1), 502)

	dout, err := e.clb.BatchDeregisterTargets(e.ctx, &clbapi.BatchDeregisterTargetsRequest{LoadBalancerId: lb, Targets: many[:500]})
	require.NoError(t, err)
	assert.Empty(t, dout.FailListenerIdSet)
	dout, err = e.clb.BatchDeregisterTargets(e.ctx, &clbapi.BatchDeregisterTargetsRequest{LoadBalancerId: lb, Targets: []clbapi.BatchTarget{bt(l2, "ins-node0001", 30053)}})
	require.NoError(t, err)
	assert.Empty(t, dout.FailListenerIdSet)
	assert.Equal(t, []string{"ins-node0001:30080/10", "ins-node0002:30080/10"}, e.targets(t, lb, l1))
	assert.Empty(t, e.targets(t, lb, l2))
	_, err = e.clb.BatchDeregisterTargets(e.ctx, &clbapi.BatchDeregisterTargetsRequest{LoadBalancerId: lb, Targets: []clbapi.BatchTarget{bt(l2, "ins-node0001", 30053)}})
	requireCode(t, err, cloudapi.CodeInvalidParameter)
}

// The cloud unbinds an instance that is terminated: it leaves DescribeTargets by itself.
func TestTerminatedInstanceLeavesTargets(t *testing.T) {
	e := newEnv(t, envOpts{})
	lb := e.openLB(t, "web")
	l := e.listener(t, lb, clbapi.ProtocolTCP, 80, nil)
	_, err := e.clb.RegisterTargets(e.ctx, &clbapi.RegisterTargetsRequest{LoadBalancerId: lb, ListenerId: l, Targets: []clbapi.Target{
		insTarget("ins-node0001", 80), insTarget("ins-node0002", 80)}})
	require.NoError(t, err)
	_, err = e.cvm.TerminateInstances(e.ctx, &cvmapi.TerminateInstancesRequest{InstanceIds: []string{"ins-node0002"}})
	require.NoError(t, err)
	assert.Equal(t, []string{"ins-node0001:80/10"}, e.targets(t, lb, l))
}
