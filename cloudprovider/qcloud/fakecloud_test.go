package qcloud

import (
	"context"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	v1 "k8s.io/api/core/v1"
	cloudprovider "k8s.io/cloud-provider"

	"github.com/stratus-cloud/stratus/cloudapi"
	"github.com/stratus-cloud/stratus/cloudapi/cvm"
	"github.com/stratus-cloud/stratus/fakecloud"
)

// startFakecloud serves the example seed in-process over HTTP and returns a provider bound
// to it through the real cloudapi client, and a CVM client for the test to act as the
// cloud's user.
func startFakecloud(t *testing.T, batching bool, ttl time.Duration) (*Cloud, *fakecloud.Cloud, *cvm.Client, *cloudapi.CallCounter) {
	t.Helper()
	seed, err := fakecloud.LoadSeed(filepath.Join("..", "..", "examples", "fakecloud", "seed.yaml"))
	require.NoError(t, err)
	fc, err := fakecloud.New(fakecloud.Config{Seed: seed, RateLimit: -1})
	require.NoError(t, err)
	t.Cleanup(func() { _ = fc.Close() })
	srv := httptest.NewServer(fc)
	t.Cleanup(srv.Close)
	id, key := fc.Credentials()
	creds := cloudapi.Credentials{SecretID: id, SecretKey: key}

	cfg := (&Config{
		Region: fc.Region(), VpcID: "vpc-stratus1", ClusterID: "test", Endpoint: srv.URL,
		Instances: InstancesConfig{Batching: &batching},
	}).WithCredentials(creds)
	cfg.Instances.CacheTTL = durationPtr(ttl)
	counter := &cloudapi.CallCounter{}
	c, err := New(cfg, Options{Hooks: []cloudapi.CallHook{counter.Hook}})
	require.NoError(t, err)

	client, err := cloudapi.New(cloudapi.Config{Endpoint: srv.URL, Region: fc.Region(), Credentials: creds, RateLimit: -1})
	require.NoError(t, err)
	return c, fc, cvm.New(client), counter
}

func TestAgainstFakecloudNodeLifecycle(t *testing.T) {
	c, fc, user, counter := startFakecloud(t, true, 50*time.Millisecond)
	v2, _ := c.InstancesV2()
	ctx := context.Background()

	n3 := node("node-3", withInternalIP("10.0.2.11"))
	md, err := v2.InstanceMetadata(ctx, n3)
	require.NoError(t, err)
	assert.Equal(t, &cloudprovider.InstanceMetadata{
		ProviderID:   "qcloud:///ap-guangzhou-2/ins-node0003",
		InstanceType: "S5.LARGE8",
		NodeAddresses: []v1.NodeAddress{
			{Type: v1.NodeInternalIP, Address: "10.0.2.11"},
			{Type: v1.NodeExternalIP, Address: "203.0.113.10"},
			{Type: v1.NodeHostName, Address: "node-3"},
		},
		Zone:   "ap-guangzhou-2",
		Region: "ap-guangzhou",
	}, md)
	assert.Equal(t, 1, counter.Count("DescribeInstances"), "one listing page holds the whole seed")
	assert.Equal(t, 1, fc.Calls()["DescribeInstances"])

	n3.Spec.ProviderID = md.ProviderID
	_, err = user.StopInstances(ctx, &cvm.StopInstancesRequest{InstanceIds: []string{"ins-node0003"}})
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		down, err := v2.InstanceShutdown(ctx, n3)
		return err == nil && down
	}, 5*time.Second, 20*time.Millisecond, "STOPPED is shut down once the listing is refreshed")
	exists, err := v2.InstanceExists(ctx, n3)
	require.NoError(t, err)
	assert.True(t, exists)

	_, err = user.StartInstances(ctx, &cvm.StartInstancesRequest{InstanceIds: []string{"ins-node0003"}})
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		down, err := v2.InstanceShutdown(ctx, n3)
		return err == nil && !down
	}, 5*time.Second, 20*time.Millisecond)

	_, err = user.TerminateInstances(ctx, &cvm.TerminateInstancesRequest{InstanceIds: []string{"ins-node0003"}})
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		exists, err := v2.InstanceExists(ctx, n3)
		return err == nil && !exists
	}, 5*time.Second, 20*time.Millisecond)
}

func TestAgainstFakecloudErrorsPropagate(t *testing.T) {
	c, fc, _, _ := startFakecloud(t, true, time.Hour)
	v2, _ := c.InstancesV2()
	// Every DescribeInstances fails, retries included: the answer is an error, not "gone".
	fc.AddFault(fakecloud.FaultRule{Action: "DescribeInstances", ErrorRate: 1, Code: cloudapi.CodeInternalError})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	n := node("n1", withProviderID("qcloud:///ap-guangzhou-1/ins-node0001"))
	exists, err := v2.InstanceExists(ctx, n)
	require.Error(t, err)
	assert.True(t, cloudapi.HasCode(err, cloudapi.CodeInternalError), err.Error())
	assert.False(t, exists)

	fc.ClearFaults()
	exists, err = v2.InstanceExists(ctx, n)
	require.NoError(t, err)
	assert.True(t, exists)
}

func TestAgainstFakecloudBatchingMakesOneCallPerHundred(t *testing.T) {
	for _, batching := range []bool{true, false} {
		c, fc, user, _ := startFakecloud(t, batching, time.Minute)
		ctx := context.Background()
		var created []cvm.Instance
		for range 2 {
			out, err := user.RunInstances(ctx, &cvm.RunInstancesRequest{
				Placement: &cvm.Placement{Zone: "ap-guangzhou-1"}, InstanceType: "S5.MEDIUM2", ImageId: "img-12345678",
				VirtualPrivateCloud: &cvm.VirtualPrivateCloud{VpcId: "vpc-stratus1", SubnetId: "subnet-gz1"},
				InstanceCount:       cloudapi.Int64(75),
			})
			require.NoError(t, err)
			require.Len(t, out.InstanceIdSet, 75)
			desc, err := user.DescribeInstances(ctx, &cvm.DescribeInstancesRequest{InstanceIds: out.InstanceIdSet, Limit: cloudapi.Int64(100)})
			require.NoError(t, err)
			created = append(created, desc.InstanceSet...)
		}
		fc.ResetCalls()

		v2, _ := c.InstancesV2()
		for _, inst := range created {
			md, err := v2.InstanceMetadata(ctx, node("n", withInternalIP(inst.PrivateIpAddresses[0])))
			require.NoError(t, err)
			assert.Equal(t, inst.InstanceId, md.ProviderID[len(md.ProviderID)-len(inst.InstanceId):])
		}
		if batching {
			assert.Equal(t, 2, fc.Calls()["DescribeInstances"], "154 instances in the VPC: two pages")
		} else {
			assert.Equal(t, 150, fc.Calls()["DescribeInstances"])
		}
	}
}
