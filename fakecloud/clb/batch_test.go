package clb_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stratus-cloud/stratus/cloudapi"
	clbapi "github.com/stratus-cloud/stratus/cloudapi/clb"
)

func TestDeleteLoadBalancerListeners(t *testing.T) {
	e := newEnv(t, envOpts{})
	lb := e.openLB(t, "web")
	l1 := e.listener(t, lb, clbapi.ProtocolTCP, 80, nil)
	l2 := e.listener(t, lb, clbapi.ProtocolTCP, 81, nil)
	l3 := e.listener(t, lb, clbapi.ProtocolUDP, 80, nil)
	other := e.listener(t, e.openLB(t, "other"), clbapi.ProtocolTCP, 80, nil)

	t.Run("unknown id changes nothing", func(t *testing.T) {
		before := e.stateDump(t)
		_, err := e.clb.DeleteLoadBalancerListeners(e.ctx, &clbapi.DeleteLoadBalancerListenersRequest{LoadBalancerId: lb, ListenerIds: []string{l1, other}})
		requireCode(t, err, clbapi.CodeListenerNotFound)
		assert.Equal(t, before, e.stateDump(t))
	})
	t.Run("duplicate", func(t *testing.T) {
		_, err := e.clb.DeleteLoadBalancerListeners(e.ctx, &clbapi.DeleteLoadBalancerListenersRequest{LoadBalancerId: lb, ListenerIds: []string{l1, l1}})
		requireCode(t, err, clbapi.CodeDuplicate)
	})

	_, err := e.clb.DeleteLoadBalancerListeners(e.ctx, &clbapi.DeleteLoadBalancerListenersRequest{LoadBalancerId: lb, ListenerIds: []string{l1, l3}})
	require.NoError(t, err)
	out, err := e.clb.DescribeListeners(e.ctx, &clbapi.DescribeListenersRequest{LoadBalancerId: lb})
	require.NoError(t, err)
	require.Len(t, out.Listeners, 1)
	assert.Equal(t, l2, out.Listeners[0].ListenerId)
}

func TestBatchModifyTargetWeight(t *testing.T) {
	e := newEnv(t, envOpts{})
	lb := e.openLB(t, "web")
	l := e.listener(t, lb, clbapi.ProtocolTCP, 80, nil)
	u := e.listener(t, lb, clbapi.ProtocolUDP, 53, nil)
	register(t, e, lb, l, insTarget("ins-node0001", 30080), insTarget("ins-node0002", 30080))
	register(t, e, lb, u, insTarget("ins-node0001", 30053))

	_, err := e.clb.BatchModifyTargetWeight(e.ctx, &clbapi.BatchModifyTargetWeightRequest{LoadBalancerId: lb, ModifyList: []clbapi.RsWeightRule{
		{ListenerId: l, Targets: []clbapi.Target{{InstanceId: ptr("ins-node0001"), Port: ptr(int64(30080)), Weight: ptr(int64(3))}, insTarget("ins-node0002", 30080)}, Weight: ptr(int64(0))},
		{ListenerId: u, Targets: []clbapi.Target{insTarget("ins-node0001", 30053)}, Weight: ptr(int64(100))},
	}})
	require.NoError(t, err)
	assert.Equal(t, []string{"ins-node0001:30080/3", "ins-node0002:30080/0"}, e.targets(t, lb, l), "a target's own weight wins over the rule's")
	assert.Equal(t, []string{"ins-node0001:30053/100"}, e.targets(t, lb, u))

	for name, rules := range map[string][]clbapi.RsWeightRule{
		"not bound":     {{ListenerId: l, Targets: []clbapi.Target{insTarget("ins-node0003", 30080)}, Weight: ptr(int64(5))}},
		"no weight":     {{ListenerId: l, Targets: []clbapi.Target{insTarget("ins-node0001", 30080)}}},
		"weight 101":    {{ListenerId: l, Targets: []clbapi.Target{insTarget("ins-node0001", 30080)}, Weight: ptr(int64(101))}},
		"unknown lstnr": {{ListenerId: "lbl-nothere1", Targets: []clbapi.Target{insTarget("ins-node0001", 30080)}, Weight: ptr(int64(5))}},
	} {
		t.Run(name, func(t *testing.T) {
			before := e.stateDump(t)
			_, err := e.clb.BatchModifyTargetWeight(e.ctx, &clbapi.BatchModifyTargetWeightRequest{LoadBalancerId: lb, ModifyList: rules})
			require.Error(t, err)
			assert.True(t, cloudapi.IsInvalidInput(err) || cloudapi.IsNotFound(err), "%v", err)
			assert.Equal(t, before, e.stateDump(t))
		})
	}

	t.Run("one past the limit", func(t *testing.T) {
		ts := make([]clbapi.Target, 501)
		for i := range ts {
			ts[i] = insTarget("ins-node0001", int64(1000+i))
		}
		_, err := e.clb.BatchModifyTargetWeight(e.ctx, &clbapi.BatchModifyTargetWeightRequest{LoadBalancerId: lb, ModifyList: []clbapi.RsWeightRule{{ListenerId: l, Targets: ts, Weight: ptr(int64(1))}}})
		requireCode(t, err, clbapi.CodeLength)
	})
}
