package cvm_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stratus-cloud/stratus/cloudapi"
	"github.com/stratus-cloud/stratus/cloudapi/cvm"
	"github.com/stratus-cloud/stratus/fakecloud"
	"github.com/stratus-cloud/stratus/fakecloud/api"
	"github.com/stratus-cloud/stratus/fakecloud/vpc"
)

// TestRunInstancesRetryCreatesOnce loses the answer of a RunInstances call that the
// cloud executed (a proxy's 502 after the fact): the client retries with the ClientToken
// it filled in, and the cloud answers the same instance without making a second one.
func TestRunInstancesRetryCreatesOnce(t *testing.T) {
	seed := &api.Seed{Region: "ap-guangzhou", Zones: []string{"ap-guangzhou-1"}}
	vpc.SetSeed(seed, []vpc.SeedVPC{{
		VpcID: "vpc-client01", CidrBlock: "10.0.0.0/16",
		Subnets: []vpc.SeedSubnet{{SubnetID: "subnet-client01", CidrBlock: "10.0.1.0/24", Zone: "ap-guangzhou-1"}},
	}})
	cloud, err := fakecloud.New(fakecloud.Config{Seed: seed, RateLimit: -1})
	require.NoError(t, err)
	t.Cleanup(func() { _ = cloud.Close() })
	var runs atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-TC-Action") == "RunInstances" && runs.Add(1) == 1 {
			cloud.ServeHTTP(httptest.NewRecorder(), r) // executed, answer lost
			http.Error(w, "bad gateway", http.StatusBadGateway)
			return
		}
		cloud.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	id, key := cloud.Credentials()
	cl, err := cloudapi.New(cloudapi.Config{Endpoint: srv.URL, Region: cloud.Region(), Credentials: cloudapi.Credentials{SecretID: id, SecretKey: key},
		RateLimit: -1, BackoffBase: time.Millisecond, BackoffMax: time.Millisecond})
	require.NoError(t, err)
	c := cvm.New(cl)
	ctx := context.Background()

	req := &cvm.RunInstancesRequest{
		Placement: &cvm.Placement{Zone: "ap-guangzhou-1"}, InstanceType: "S5.LARGE8", ImageId: "img-client01",
		VirtualPrivateCloud: &cvm.VirtualPrivateCloud{VpcId: "vpc-client01", SubnetId: "subnet-client01"},
	}
	out, err := c.RunInstances(ctx, req)
	require.NoError(t, err)
	require.Len(t, out.InstanceIdSet, 1)
	assert.EqualValues(t, 2, runs.Load(), "the first answer was lost and retried")
	assert.Empty(t, req.ClientToken, "the client sets the token on its own copy of the request")

	all, err := c.DescribeInstances(ctx, &cvm.DescribeInstancesRequest{})
	require.NoError(t, err)
	assert.EqualValues(t, 1, all.TotalCount, "exactly one instance exists")
	assert.Equal(t, out.InstanceIdSet[0], all.InstanceSet[0].InstanceId)
}
