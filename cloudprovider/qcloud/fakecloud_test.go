package qcloud

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
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

// strictDescribeInstances passes every request to next, and fails the test on a
// DescribeInstances that the real API would refuse (tencentcloud-sdk-go v1.0.162
// cvm/v20170312: at most 100 InstanceIds, at most 10 Filters of at most 5 Values each,
// never InstanceIds with Filters, Limit at most 100). fakecloud may be looser than that
// in this branch; this is not.
func strictDescribeInstances(t *testing.T, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-TC-Action") == "DescribeInstances" {
			body, err := io.ReadAll(r.Body)
			if err != nil {
				t.Errorf("DescribeInstances: read body: %v", err)
			}
			r.Body = io.NopCloser(bytes.NewReader(body))
			var req cvm.DescribeInstancesRequest
			if err := json.Unmarshal(body, &req); err != nil {
				t.Errorf("DescribeInstances: decode %s: %v", body, err)
			} else if v := wireViolation(&req); v != "" {
				t.Errorf("DescribeInstances over the real limits: %s: %s", v, body)
			}
		}
		next.ServeHTTP(w, r)
	})
}

func wireViolation(req *cvm.DescribeInstancesRequest) string {
	switch {
	case len(req.InstanceIds) > 0 && len(req.Filters) > 0:
		return "InstanceIds and Filters in one request"
	case len(req.InstanceIds) > 100:
		return fmt.Sprintf("%d InstanceIds", len(req.InstanceIds))
	case len(req.Filters) > 10:
		return fmt.Sprintf("%d Filters", len(req.Filters))
	case req.Limit != nil && (*req.Limit > 100 || *req.Limit < 0):
		return fmt.Sprintf("Limit %d", *req.Limit)
	}
	for _, f := range req.Filters {
		if len(f.Values) > 5 {
			return fmt.Sprintf("filter %s with %d Values", f.Name, len(f.Values))
		}
	}
	return ""
}

// startFakecloud serves the example seed in-process over HTTP and returns a provider bound
// to it through the real cloudapi client, and a CVM client for the test to act as the
// cloud's user.
func startFakecloud(t *testing.T, batching bool, ttl time.Duration) (*Cloud, *fakecloud.Cloud, *cvm.Client, *cloudapi.CallCounter) {
	t.Helper()
	return startFakecloudWindow(t, batching, ttl, 0)
}

// startFakecloudWindow is startFakecloud with a batch window (0: the default).
func startFakecloudWindow(t *testing.T, batching bool, ttl, window time.Duration) (*Cloud, *fakecloud.Cloud, *cvm.Client, *cloudapi.CallCounter) {
	t.Helper()
	seed, err := fakecloud.LoadSeed(filepath.Join("..", "..", "examples", "fakecloud", "seed.yaml"))
	require.NoError(t, err)
	fc, err := fakecloud.New(fakecloud.Config{Seed: seed, RateLimit: -1})
	require.NoError(t, err)
	t.Cleanup(func() { _ = fc.Close() })
	srv := httptest.NewServer(strictDescribeInstances(t, fc))
	t.Cleanup(srv.Close)
	id, key := fc.Credentials()
	creds := cloudapi.Credentials{SecretID: id, SecretKey: key}

	cfg := (&Config{
		Region: fc.Region(), VpcID: "vpc-stratus1", ClusterID: "test", Endpoint: srv.URL,
		Instances: InstancesConfig{Batching: &batching},
	}).WithCredentials(creds)
	cfg.Instances.CacheTTL = durationPtr(ttl)
	if window > 0 {
		cfg.Instances.BatchWindow = durationPtr(window)
	}
	counter := &cloudapi.CallCounter{}
	c, err := New(cfg, Options{Hooks: []cloudapi.CallHook{counter.Hook}})
	require.NoError(t, err)
	t.Cleanup(c.Stop)

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

	// Once the cloud answers again, a retry (as the controllers make) finds the node;
	// within a second of the failed listing the lookup repeats the failure instead of
	// walking the VPC again.
	fc.ClearFaults()
	require.Eventually(t, func() bool {
		exists, err = v2.InstanceExists(ctx, n)
		return err == nil
	}, 20*time.Second, 50*time.Millisecond)
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

// TestAgainstFakecloudStaysWithinTheRealLimits drives every kind of lookup the provider
// makes, many at a time, through the real client to fakecloud behind the strict checker:
// a walk of several pages, InstanceIds batches, private-IP confirmations by walk and by
// filter. Every answer must be right and no request over the real limits.
func TestAgainstFakecloudStaysWithinTheRealLimits(t *testing.T) {
	// A long window so that concurrent misses share a confirmation whatever the load.
	c, fc, user, _ := startFakecloudWindow(t, true, time.Minute, time.Second)
	v2, _ := c.InstancesV2()
	ctx := context.Background()
	_, err := v2.InstanceMetadata(ctx, node("node-1", withInternalIP("10.0.1.11")))
	require.NoError(t, err, "the listing holds the seed's 4 instances: one page")

	// 250 instances the listing does not hold.
	var created []cvm.Instance
	for _, sub := range []struct {
		zone, subnet string
		n            int64
	}{{"ap-guangzhou-1", "subnet-gz1", 100}, {"ap-guangzhou-2", "subnet-gz2", 100}, {"ap-guangzhou-3", "subnet-gz3", 50}} {
		out, err := user.RunInstances(ctx, &cvm.RunInstancesRequest{
			Placement: &cvm.Placement{Zone: sub.zone}, InstanceType: "S5.MEDIUM2", ImageId: "img-12345678",
			VirtualPrivateCloud: &cvm.VirtualPrivateCloud{VpcId: "vpc-stratus1", SubnetId: sub.subnet},
			InstanceCount:       cloudapi.Int64(sub.n),
		})
		require.NoError(t, err)
		desc, err := user.DescribeInstances(ctx, &cvm.DescribeInstancesRequest{InstanceIds: out.InstanceIdSet, Limit: cloudapi.Int64(100)})
		require.NoError(t, err)
		created = append(created, desc.InstanceSet...)
	}
	require.Len(t, created, 250)

	// Every new instance is looked up by private IP and confirmed by id, all at once
	// (full batches go out at once; the window only holds the remainder).
	var wg sync.WaitGroup
	for _, inst := range created {
		wg.Go(func() {
			md, err := v2.InstanceMetadata(ctx, node("n", withInternalIP(inst.PrivateIpAddresses[0])))
			if assert.NoError(t, err) {
				assert.Equal(t, "qcloud:///"+inst.Placement.Zone+"/"+inst.InstanceId, md.ProviderID)
			}
			got, err := c.lookup.ConfirmByID(ctx, inst.InstanceId)
			if assert.NoError(t, err) {
				assert.Equal(t, inst.PrivateIpAddresses, got.PrivateIPs)
			}
		})
	}
	wg.Wait()

	// The listing now spans 3 pages: eight concurrent misses (seven new instances and an
	// address nobody has) cost filtered queries of at most 5 addresses, fewer than a walk.
	out, err := user.RunInstances(ctx, &cvm.RunInstancesRequest{
		Placement: &cvm.Placement{Zone: "ap-guangzhou-3"}, InstanceType: "S5.MEDIUM2", ImageId: "img-12345678",
		VirtualPrivateCloud: &cvm.VirtualPrivateCloud{VpcId: "vpc-stratus1", SubnetId: "subnet-gz3"},
		InstanceCount:       cloudapi.Int64(7),
	})
	require.NoError(t, err)
	desc, err := user.DescribeInstances(ctx, &cvm.DescribeInstancesRequest{InstanceIds: out.InstanceIdSet})
	require.NoError(t, err)
	require.Len(t, desc.InstanceSet, 7)
	fc.ResetCalls()
	for _, inst := range desc.InstanceSet {
		wg.Go(func() {
			md, err := v2.InstanceMetadata(ctx, node("late", withInternalIP(inst.PrivateIpAddresses[0])))
			if assert.NoError(t, err) {
				assert.Equal(t, "qcloud:///ap-guangzhou-3/"+inst.InstanceId, md.ProviderID)
			}
		})
	}
	wg.Go(func() {
		_, err := v2.InstanceMetadata(ctx, node("ghost", withInternalIP("10.0.3.250")))
		assert.ErrorIs(t, err, cloudprovider.InstanceNotFound)
	})
	wg.Wait()
	assert.LessOrEqual(t, fc.Calls()["DescribeInstances"], 2, "8 addresses: two filtered queries (fewer if late lookups hit)")
}
