package cvm_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stratus-cloud/stratus/cloudapi"
	cvmapi "github.com/stratus-cloud/stratus/cloudapi/cvm"
)

func runReq(n int64) *cvmapi.RunInstancesRequest {
	return &cvmapi.RunInstancesRequest{
		Placement:           &cvmapi.Placement{Zone: "ap-guangzhou-1"},
		InstanceType:        "S5.MEDIUM2",
		ImageId:             "img-abcd1234",
		InstanceCount:       cloudapi.Int64(n),
		InstanceName:        "web",
		VirtualPrivateCloud: &cvmapi.VirtualPrivateCloud{VpcId: "vpc-stratus1", SubnetId: "subnet-gz1"},
	}
}

func TestSeedImports(t *testing.T) {
	e := newEnv(t, envOpts{})
	ctx := context.Background()
	out, err := e.cvm.DescribeInstances(ctx, &cvmapi.DescribeInstancesRequest{})
	require.NoError(t, err)
	require.EqualValues(t, 4, out.TotalCount)
	byID := map[string]cvmapi.Instance{}
	for _, in := range out.InstanceSet {
		byID[in.InstanceId] = in
	}
	n3 := byID["ins-node0003"]
	assert.Equal(t, "node-3", n3.InstanceName)
	assert.Equal(t, "S5.LARGE8", n3.InstanceType)
	assert.EqualValues(t, 4, n3.CPU)
	assert.EqualValues(t, 8, n3.Memory)
	assert.Equal(t, "ap-guangzhou-2", n3.Placement.Zone)
	assert.Equal(t, []string{"10.0.2.11"}, n3.PrivateIpAddresses)
	assert.Equal(t, []string{"203.0.113.10"}, n3.PublicIpAddresses)
	assert.Equal(t, "vpc-stratus1", n3.VirtualPrivateCloud.VpcId)
	assert.Equal(t, "subnet-gz2", n3.VirtualPrivateCloud.SubnetId)
	assert.Equal(t, cvmapi.StateRunning, n3.InstanceState)
}

func TestRunAndDescribe(t *testing.T) {
	e := newEnv(t, envOpts{})
	ctx := context.Background()
	req := runReq(3)
	req.TagSpecification = []cvmapi.TagSpecification{{ResourceType: "instance", Tags: []cloudapi.Tag{{Key: "team", Value: "infra"}}}}
	req.InternetAccessible = &cvmapi.InternetAccessible{PublicIpAssigned: cloudapi.Bool(true), InternetMaxBandwidthOut: cloudapi.Int64(10)}
	run, err := e.cvm.RunInstances(ctx, req)
	require.NoError(t, err)
	require.Len(t, run.InstanceIdSet, 3)
	for _, id := range run.InstanceIdSet {
		assert.Regexp(t, `^ins-[a-z0-9]{8}$`, id)
	}
	out, err := e.cvm.DescribeInstances(ctx, &cvmapi.DescribeInstancesRequest{InstanceIds: run.InstanceIdSet})
	require.NoError(t, err)
	require.EqualValues(t, 3, out.TotalCount)
	ips := map[string]bool{}
	for i, in := range out.InstanceSet {
		assert.Equal(t, run.InstanceIdSet[i], in.InstanceId, "creation order")
		assert.Equal(t, cvmapi.StateRunning, in.InstanceState)
		assert.Equal(t, []cloudapi.Tag{{Key: "team", Value: "infra"}}, in.Tags)
		require.Len(t, in.PrivateIpAddresses, 1)
		assert.Regexp(t, `^10\.0\.1\.\d+$`, in.PrivateIpAddresses[0])
		assert.NotContains(t, []string{"10.0.1.0", "10.0.1.1", "10.0.1.11", "10.0.1.12", "10.0.1.255"}, in.PrivateIpAddresses[0])
		ips[in.PrivateIpAddresses[0]] = true
		require.Len(t, in.PublicIpAddresses, 1)
		assert.Regexp(t, `^(203\.0\.113|198\.51\.100)\.\d+$`, in.PublicIpAddresses[0])
		assert.NotEqual(t, "203.0.113.10", in.PublicIpAddresses[0], "seeded public IP is taken")
		assert.Equal(t, "web"+string(rune('1'+i)), in.InstanceName)
	}
	assert.Len(t, ips, 3, "distinct private IPs")
}

func TestConcurrentRunsLeaseDistinctAddresses(t *testing.T) {
	e := newEnv(t, envOpts{})
	ctx := context.Background()
	const workers, each = 8, 5
	errs := make(chan error, workers)
	for range workers {
		go func() {
			_, err := e.cvm.RunInstances(ctx, runReq(each))
			errs <- err
		}()
	}
	for range workers {
		require.NoError(t, <-errs)
	}
	out, err := e.cvm.DescribeInstances(ctx, &cvmapi.DescribeInstancesRequest{
		Filters: []cloudapi.Filter{{Name: "subnet-id", Values: []string{"subnet-gz1"}}}, Limit: cloudapi.Int64(100),
	})
	require.NoError(t, err)
	require.EqualValues(t, 2+workers*each, out.TotalCount)
	seen := map[string]string{}
	for _, in := range out.InstanceSet {
		ip := in.PrivateIpAddresses[0]
		require.Empty(t, seen[ip], "%s leased twice (%s and %s)", ip, seen[ip], in.InstanceId)
		seen[ip] = in.InstanceId
	}
	assert.EqualValues(t, 256-3-2-workers*each, e.freeIPs(t, "subnet-gz1"))
}
