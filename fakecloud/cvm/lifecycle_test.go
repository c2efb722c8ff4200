package cvm_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stratus-cloud/stratus/cloudapi"
	cvmapi "github.com/stratus-cloud/stratus/cloudapi/cvm"
	"github.com/stratus-cloud/stratus/fakecloud/cvm"
)

func (e *env) state(t *testing.T, id string) string {
	t.Helper()
	out, err := e.cvm.DescribeInstances(context.Background(), &cvmapi.DescribeInstancesRequest{InstanceIds: []string{id}})
	require.NoError(t, err)
	if len(out.InstanceSet) == 0 {
		return ""
	}
	return out.InstanceSet[0].InstanceState
}

func TestStateMachineWithDelays(t *testing.T) {
	delays := &cvm.Delays{InstanceBoot: 10 * time.Second, InstanceStop: 5 * time.Second, Terminate: 7 * time.Second}
	e := newEnv(t, envOpts{delays: delays})
	ctx := context.Background()
	req := runReq(1)
	req.VirtualPrivateCloud.PrivateIpAddresses = []string{"10.0.1.50"}
	run, err := e.cvm.RunInstances(ctx, req)
	require.NoError(t, err)
	id := run.InstanceIdSet[0]
	ids := []string{id}

	expectCode := func(err error, code string) {
		t.Helper()
		require.Error(t, err)
		assert.Equal(t, code, cloudapi.ErrorCode(err), "%v", err)
	}
	assert.Equal(t, cvmapi.StatePending, e.state(t, id))
	_, err = e.cvm.StopInstances(ctx, &cvmapi.StopInstancesRequest{InstanceIds: ids})
	expectCode(err, "UnsupportedOperation.InstanceStatePending")
	_, err = e.cvm.TerminateInstances(ctx, &cvmapi.TerminateInstancesRequest{InstanceIds: ids})
	expectCode(err, "OperationDenied.InstanceOperationInProgress")

	e.clock.Advance(9 * time.Second)
	assert.Equal(t, cvmapi.StatePending, e.state(t, id))
	e.clock.Advance(time.Second)
	assert.Equal(t, cvmapi.StateRunning, e.state(t, id))
	_, err = e.cvm.StartInstances(ctx, &cvmapi.StartInstancesRequest{InstanceIds: ids})
	expectCode(err, "UnsupportedOperation.InstanceStateRunning")

	_, err = e.cvm.StopInstances(ctx, &cvmapi.StopInstancesRequest{InstanceIds: ids})
	require.NoError(t, err)
	assert.Equal(t, cvmapi.StateStopping, e.state(t, id))
	_, err = e.cvm.StopInstances(ctx, &cvmapi.StopInstancesRequest{InstanceIds: ids})
	expectCode(err, "UnsupportedOperation.InstanceStateStopping")
	e.clock.Advance(5 * time.Second)
	assert.Equal(t, cvmapi.StateStopped, e.state(t, id))
	_, err = e.cvm.StopInstances(ctx, &cvmapi.StopInstancesRequest{InstanceIds: ids})
	expectCode(err, "UnsupportedOperation.InstanceStateStopped")

	_, err = e.cvm.StartInstances(ctx, &cvmapi.StartInstancesRequest{InstanceIds: ids})
	require.NoError(t, err)
	assert.Equal(t, cvmapi.StateStarting, e.state(t, id))
	e.clock.Advance(10 * time.Second)
	assert.Equal(t, cvmapi.StateRunning, e.state(t, id))

	_, err = e.cvm.TerminateInstances(ctx, &cvmapi.TerminateInstancesRequest{InstanceIds: ids})
	require.NoError(t, err)
	assert.Equal(t, cvmapi.StateTerminating, e.state(t, id))
	_, err = e.cvm.TerminateInstances(ctx, &cvmapi.TerminateInstancesRequest{InstanceIds: ids})
	expectCode(err, "UnsupportedOperation.InstanceStateTerminating")
	// Its address is still held while it terminates.
	again := runReq(1)
	again.VirtualPrivateCloud.PrivateIpAddresses = []string{"10.0.1.50"}
	_, err = e.cvm.RunInstances(ctx, again)
	expectCode(err, "ResourceInUse.Address")

	e.clock.Advance(7 * time.Second)
	assert.Equal(t, "", e.state(t, id), "a terminated instance is gone")
	out, err := e.cvm.DescribeInstances(ctx, &cvmapi.DescribeInstancesRequest{Filters: []cloudapi.Filter{{Name: "private-ip-address", Values: []string{"10.0.1.50"}}}})
	require.NoError(t, err)
	assert.Zero(t, out.TotalCount)
	_, err = e.cvm.StopInstances(ctx, &cvmapi.StopInstancesRequest{InstanceIds: ids})
	expectCode(err, cloudapi.CodeInvalidInstanceNotFound)
	// ... and its address can be leased again.
	run2, err := e.cvm.RunInstances(ctx, again)
	require.NoError(t, err)
	assert.NotEqual(t, id, run2.InstanceIdSet[0])
	_, ok := e.cloud.World().Store.Dump()["cvm.instances"][id]
	assert.False(t, ok, "the record of a gone instance is reaped by the next write")
}

func TestZeroDelaysAreImmediate(t *testing.T) {
	e := newEnv(t, envOpts{})
	ctx := context.Background()
	run, err := e.cvm.RunInstances(ctx, runReq(1))
	require.NoError(t, err)
	id := run.InstanceIdSet[0]
	assert.Equal(t, cvmapi.StateRunning, e.state(t, id))
	_, err = e.cvm.StopInstances(ctx, &cvmapi.StopInstancesRequest{InstanceIds: []string{id}, StopType: "SOFT"})
	require.NoError(t, err)
	assert.Equal(t, cvmapi.StateStopped, e.state(t, id))
	_, err = e.cvm.StartInstances(ctx, &cvmapi.StartInstancesRequest{InstanceIds: []string{id}})
	require.NoError(t, err)
	assert.Equal(t, cvmapi.StateRunning, e.state(t, id))
	_, err = e.cvm.TerminateInstances(ctx, &cvmapi.TerminateInstancesRequest{InstanceIds: []string{id}})
	require.NoError(t, err)
	assert.Equal(t, "", e.state(t, id))
}

func TestLifecycleIsAllOrNothing(t *testing.T) {
	e := newEnv(t, envOpts{})
	ctx := context.Background()
	_, err := e.cvm.StopInstances(ctx, &cvmapi.StopInstancesRequest{InstanceIds: []string{"ins-node0001"}})
	require.NoError(t, err)
	cases := []struct {
		name string
		call func() error
		code string
	}{
		{"stop running+stopped", func() error {
			_, err := e.cvm.StopInstances(ctx, &cvmapi.StopInstancesRequest{InstanceIds: []string{"ins-node0002", "ins-node0001"}})
			return err
		}, "UnsupportedOperation.InstanceStateStopped"},
		{"start stopped+running", func() error {
			_, err := e.cvm.StartInstances(ctx, &cvmapi.StartInstancesRequest{InstanceIds: []string{"ins-node0001", "ins-node0002"}})
			return err
		}, "UnsupportedOperation.InstanceStateRunning"},
		{"terminate known+unknown", func() error {
			_, err := e.cvm.TerminateInstances(ctx, &cvmapi.TerminateInstancesRequest{InstanceIds: []string{"ins-node0002", "ins-nothere1"}})
			return err
		}, cloudapi.CodeInvalidInstanceNotFound},
		{"terminate malformed", func() error {
			_, err := e.cvm.TerminateInstances(ctx, &cvmapi.TerminateInstancesRequest{InstanceIds: []string{"i-123"}})
			return err
		}, "InvalidInstanceId.Malformed"},
		{"stop none", func() error {
			_, err := e.cvm.StopInstances(ctx, &cvmapi.StopInstancesRequest{})
			return err
		}, cloudapi.CodeMissingParameter},
		{"stop duplicate", func() error {
			_, err := e.cvm.StopInstances(ctx, &cvmapi.StopInstancesRequest{InstanceIds: []string{"ins-node0002", "ins-node0002"}})
			return err
		}, "InvalidParameterValue.Duplicate"},
		{"stop bad type", func() error {
			_, err := e.cvm.StopInstances(ctx, &cvmapi.StopInstancesRequest{InstanceIds: []string{"ins-node0002"}, StopType: "GENTLY"})
			return err
		}, cloudapi.CodeInvalidParameterValue},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			require.Error(t, err)
			assert.Equal(t, tc.code, cloudapi.ErrorCode(err), "%v", err)
			assert.Equal(t, cvmapi.StateStopped, e.state(t, "ins-node0001"))
			assert.Equal(t, cvmapi.StateRunning, e.state(t, "ins-node0002"))
		})
	}
}

func TestPrepaidTerminationShutsDownFirst(t *testing.T) {
	e := newEnv(t, envOpts{delays: &cvm.Delays{Terminate: time.Minute}})
	ctx := context.Background()
	req := runReq(1)
	req.InstanceChargeType = "PREPAID"
	req.InstanceChargePrepaid = &cvmapi.InstanceChargePrepaid{Period: cloudapi.Int64(1), RenewFlag: "NOTIFY_AND_AUTO_RENEW"}
	run, err := e.cvm.RunInstances(ctx, req)
	require.NoError(t, err)
	_, err = e.cvm.TerminateInstances(ctx, &cvmapi.TerminateInstancesRequest{InstanceIds: run.InstanceIdSet})
	require.NoError(t, err)
	assert.Equal(t, cvmapi.StateShutdown, e.state(t, run.InstanceIdSet[0]))
	_, err = e.cvm.StartInstances(ctx, &cvmapi.StartInstancesRequest{InstanceIds: run.InstanceIdSet})
	assert.Equal(t, "UnsupportedOperation.InstanceStateShutdown", cloudapi.ErrorCode(err))
	e.clock.Advance(time.Minute)
	assert.Equal(t, "", e.state(t, run.InstanceIdSet[0]))
}

func TestEffectiveState(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	in := &cvm.Instance{State: cvmapi.StateStopping, NextState: cvmapi.StateStopped, NextAt: t0.Add(time.Second)}
	assert.Equal(t, cvmapi.StateStopping, cvm.EffectiveState(in, t0))
	assert.Equal(t, cvmapi.StateStopped, cvm.EffectiveState(in, t0.Add(time.Second)))
	assert.True(t, cvm.Exists(in, t0.Add(time.Hour)))

	term := &cvm.Instance{State: cvmapi.StateTerminating, NextState: "TERMINATED", NextAt: t0.Add(time.Second)}
	assert.Equal(t, cvmapi.StateTerminating, cvm.EffectiveState(term, t0))
	assert.True(t, cvm.Exists(term, t0))
	assert.Equal(t, "", cvm.EffectiveState(term, t0.Add(2*time.Second)))
	assert.False(t, cvm.Exists(term, t0.Add(2*time.Second)))
}
