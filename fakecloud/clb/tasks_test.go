package clb_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stratus-cloud/stratus/cloudapi"
	clbapi "github.com/stratus-cloud/stratus/cloudapi/clb"
	"github.com/stratus-cloud/stratus/fakecloud/clb"
)

func TestTasksAreAsynchronous(t *testing.T) {
	clock := newClock()
	e := newEnv(t, envOpts{clock: clock, delays: &clb.Delays{Task: 10 * time.Second}})
	status := func(id string) int64 {
		t.Helper()
		out, err := e.clb.DescribeTaskStatus(e.ctx, &clbapi.DescribeTaskStatusRequest{TaskId: id})
		require.NoError(t, err)
		return out.Status
	}

	out, err := e.clb.CreateLoadBalancer(e.ctx, &clbapi.CreateLoadBalancerRequest{LoadBalancerType: clbapi.TypeOpen})
	require.NoError(t, err)
	lb := out.LoadBalancerIds[0]
	assert.Equal(t, clbapi.TaskRunning, status(out.RequestId))
	assert.Equal(t, clbapi.StatusCreating, e.describeLB(t, lb).Status)

	// A busy load balancer refuses writes and changes nothing.
	before := e.stateDump(t)
	_, err = e.clb.CreateListener(e.ctx, &clbapi.CreateListenerRequest{LoadBalancerId: lb, Protocol: "TCP", Ports: []int64{80}})
	requireCode(t, err, clbapi.CodeResourceInOperation)
	assert.True(t, clbapi.IsBusy(err))
	_, err = e.clb.DeleteLoadBalancer(e.ctx, &clbapi.DeleteLoadBalancerRequest{LoadBalancerIds: []string{lb}})
	requireCode(t, err, clbapi.CodeResourceInOperation)
	assert.Equal(t, before, e.stateDump(t))

	// A retried create (same token) reports a task that ends with the original one.
	tok, err := e.clb.CreateLoadBalancer(e.ctx, &clbapi.CreateLoadBalancerRequest{LoadBalancerType: clbapi.TypeOpen, ClientToken: "t1"})
	require.NoError(t, err)
	clock.Advance(4 * time.Second)
	assert.Equal(t, clbapi.TaskRunning, status(tok.RequestId))
	retry, err := e.clb.CreateLoadBalancer(e.ctx, &clbapi.CreateLoadBalancerRequest{LoadBalancerType: clbapi.TypeOpen, ClientToken: "t1"})
	require.NoError(t, err)
	assert.Equal(t, tok.LoadBalancerIds, retry.LoadBalancerIds)
	assert.NotEqual(t, tok.RequestId, retry.RequestId)
	assert.Equal(t, clbapi.TaskRunning, status(retry.RequestId))

	clock.Advance(6 * time.Second)
	assert.Equal(t, clbapi.TaskSucceeded, status(out.RequestId))
	assert.Equal(t, clbapi.StatusNormal, e.describeLB(t, lb).Status)
	assert.Equal(t, clbapi.TaskSucceeded, status(retry.RequestId), "the retry's task ends with the original")

	l, err := e.clb.CreateListener(e.ctx, &clbapi.CreateListenerRequest{LoadBalancerId: lb, Protocol: "TCP", Ports: []int64{80}})
	require.NoError(t, err)
	assert.Equal(t, clbapi.TaskRunning, status(l.RequestId))
	_, err = e.clb.DescribeListeners(e.ctx, &clbapi.DescribeListenersRequest{LoadBalancerId: lb})
	require.NoError(t, err, "reads are never refused")

	_, err = e.clb.DescribeTaskStatus(e.ctx, &clbapi.DescribeTaskStatusRequest{TaskId: "no-such-task"})
	requireCode(t, err, cloudapi.CodeResourceNotFound)
	_, err = e.clb.DescribeTaskStatus(e.ctx, &clbapi.DescribeTaskStatusRequest{})
	requireCode(t, err, cloudapi.CodeMissingParameter)
}

// WaitTask against the real clock: the task runs for LBTask, then the wait returns.
func TestWaitTaskAgainstFakecloud(t *testing.T) {
	e := newEnv(t, envOpts{delays: &clb.Delays{Task: 300 * time.Millisecond}})
	start := time.Now() // before the server's r.Now, so the task ends 300ms after it at the earliest
	out, err := e.clb.CreateLoadBalancer(e.ctx, &clbapi.CreateLoadBalancerRequest{LoadBalancerType: clbapi.TypeOpen})
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(e.ctx, 10*time.Second)
	defer cancel()
	require.NoError(t, e.clb.WaitTaskWith(ctx, out.RequestId, cloudapi.WaitOptions{MinDelay: 20 * time.Millisecond, MaxDelay: 100 * time.Millisecond}))
	assert.GreaterOrEqual(t, time.Since(start), 300*time.Millisecond, "the wait lasted until the task ended")
	assert.Equal(t, clbapi.StatusNormal, e.describeLB(t, out.LoadBalancerIds[0]).Status)

	// Too short a wait times out while the next task runs.
	l, err := e.clb.CreateListener(e.ctx, &clbapi.CreateListenerRequest{LoadBalancerId: out.LoadBalancerIds[0], Protocol: "TCP", Ports: []int64{80}})
	require.NoError(t, err)
	err = e.clb.WaitTaskWith(e.ctx, l.RequestId, cloudapi.WaitOptions{MinDelay: 5 * time.Millisecond, MaxDelay: 10 * time.Millisecond, Timeout: 30 * time.Millisecond})
	require.ErrorIs(t, err, cloudapi.ErrWaitTimeout)
}

// Tokens expire after a day: the same token then creates a new load balancer.
func TestClientTokenExpires(t *testing.T) {
	clock := newClock()
	e := newEnv(t, envOpts{clock: clock})
	a := e.createLB(t, &clbapi.CreateLoadBalancerRequest{LoadBalancerType: clbapi.TypeOpen, ClientToken: "old"})
	clock.Advance(23 * time.Hour)
	assert.Equal(t, a, e.createLB(t, &clbapi.CreateLoadBalancerRequest{LoadBalancerType: clbapi.TypeOpen, ClientToken: "old"}))
	clock.Advance(2 * time.Hour)
	assert.NotEqual(t, a, e.createLB(t, &clbapi.CreateLoadBalancerRequest{LoadBalancerType: clbapi.TypeOpen, ClientToken: "old"}))
}
