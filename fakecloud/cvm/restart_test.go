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

func TestRestartKeepsState(t *testing.T) {
	dir := t.TempDir()
	clk := newClock()
	delays := &cvm.Delays{InstanceBoot: time.Second, InstanceStop: time.Second, Terminate: time.Minute}
	e := newEnv(t, envOpts{dataDir: dir, clock: clk, delays: delays})
	ctx := context.Background()
	req := runReq(2)
	req.ClientToken = "restart-token"
	req.VirtualPrivateCloud.PrivateIpAddresses = []string{"10.0.1.60", "10.0.1.61"}
	run, err := e.cvm.RunInstances(ctx, req)
	require.NoError(t, err)
	clk.Advance(time.Second)
	_, err = e.cvm.StopInstances(ctx, &cvmapi.StopInstancesRequest{InstanceIds: run.InstanceIdSet[:1]})
	require.NoError(t, err)
	_, err = e.cvm.TerminateInstances(ctx, &cvmapi.TerminateInstancesRequest{InstanceIds: []string{"ins-node0001"}})
	require.NoError(t, err)
	e.srv.Close()
	require.NoError(t, e.cloud.Close())

	// Restart on the same directory, the stop still in flight.
	e2 := newEnv(t, envOpts{dataDir: dir, clock: clk, delays: delays})
	assert.Equal(t, cvmapi.StateStopping, e2.state(t, run.InstanceIdSet[0]))
	assert.Equal(t, cvmapi.StateRunning, e2.state(t, run.InstanceIdSet[1]))
	assert.Equal(t, cvmapi.StateTerminating, e2.state(t, "ins-node0001"))
	clk.Advance(time.Second)
	assert.Equal(t, cvmapi.StateStopped, e2.state(t, run.InstanceIdSet[0]))
	assert.EqualValues(t, 6, e2.count(t), "the seed was not imported again")

	// Leases, tokens and the terminating instance's schedule survived too.
	again := runReq(1)
	again.VirtualPrivateCloud.PrivateIpAddresses = []string{"10.0.1.60"}
	_, err = e2.cvm.RunInstances(ctx, again)
	assert.Equal(t, "ResourceInUse.Address", cloudapi.ErrorCode(err))
	retry := runReq(2)
	retry.ClientToken = "restart-token"
	out, err := e2.cvm.RunInstances(ctx, retry)
	require.NoError(t, err)
	assert.Equal(t, run.InstanceIdSet, out.InstanceIdSet)
	clk.Advance(time.Minute)
	assert.Equal(t, "", e2.state(t, "ins-node0001"))
	assert.EqualValues(t, 5, e2.count(t))
}
