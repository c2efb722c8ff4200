package vpc_test

import (
	"context"
	"net/http/httptest"
	"net/netip"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stratus-cloud/stratus/cloudapi"
	vpcapi "github.com/stratus-cloud/stratus/cloudapi/vpc"
	"github.com/stratus-cloud/stratus/fakecloud"
	"github.com/stratus-cloud/stratus/fakecloud/api"
	"github.com/stratus-cloud/stratus/fakecloud/cvm"
	"github.com/stratus-cloud/stratus/fakecloud/vpc"
)

// recorder is a Router that keeps every spec it is handed.
type recorder struct {
	mu    sync.Mutex
	specs []vpc.RouterSpec
}

func (r *recorder) Apply(s vpc.RouterSpec) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.specs = append(r.specs, s)
	return nil
}

func (r *recorder) last(t *testing.T) vpc.RouterSpec {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	require.NotEmpty(t, r.specs, "the router was never applied")
	return r.specs[len(r.specs)-1]
}

func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.specs)
}

func routerEnv(t *testing.T, rec *recorder) *vpcapi.Client {
	t.Helper()
	c, err := fakecloud.New(fakecloud.Config{Seed: seedFile(t), RateLimit: -1, Modules: []api.NewModule{
		vpc.WithOptions(vpc.Options{Router: rec}), cvm.New,
	}})
	require.NoError(t, err)
	srv := httptest.NewServer(c)
	t.Cleanup(func() { srv.Close(); _ = c.Close() })
	id, key := c.Credentials()
	cl, err := cloudapi.New(cloudapi.Config{Endpoint: srv.URL, Region: c.Region(), Credentials: cloudapi.Credentials{SecretID: id, SecretKey: key}, RateLimit: -1, MaxAttempts: 1})
	require.NoError(t, err)
	return vpcapi.New(cl)
}

func TestRouterIsToldEveryRouteChange(t *testing.T) {
	rec := &recorder{}
	client := routerEnv(t, rec)
	ctx := context.Background()

	start := rec.last(t)
	require.Len(t, start.VPCs, 1, "Start hands the router the seeded world")
	assert.Equal(t, "vpc-stratus1", start.VPCs[0].VpcID)
	assert.Equal(t, netip.MustParsePrefix("10.0.0.0/16"), start.VPCs[0].CIDR)
	require.Len(t, start.VPCs[0].Tables, 1)
	assert.True(t, start.VPCs[0].Tables[0].Main)
	assert.ElementsMatch(t, []netip.Prefix{netip.MustParsePrefix("10.0.1.0/24"), netip.MustParsePrefix("10.0.2.0/24"), netip.MustParsePrefix("10.0.3.0/24")},
		start.VPCs[0].Tables[0].Subnets, "every seeded subnet is associated with the main table")

	disabled := false
	_, err := client.CreateRoutes(ctx, &vpcapi.CreateRoutesRequest{RouteTableId: "rtb-stratus1", Routes: []vpcapi.Route{
		podRoute("10.244.1.0/24", "10.0.1.11"),
		{DestinationCidrBlock: "10.244.2.0/24", GatewayType: vpcapi.GatewayTypeNormalCVM, GatewayId: "10.0.1.12", Enabled: &disabled},
	}})
	require.NoError(t, err)
	routes := rec.last(t).VPCs[0].Tables[0].Routes
	assert.Equal(t, []vpc.RouterRoute{{Destination: netip.MustParsePrefix("10.244.1.0/24"), GatewayType: vpcapi.GatewayTypeNormalCVM, GatewayID: "10.0.1.11"}}, routes,
		"only enabled routes are routed")

	before := rec.count()
	_, err = client.CreateRoutes(ctx, &vpcapi.CreateRoutesRequest{RouteTableId: "rtb-stratus1", Routes: []vpcapi.Route{podRoute("10.244.1.0/24", "10.0.1.13")}})
	require.Error(t, err, "a duplicate destination is rejected")
	assert.Equal(t, before, rec.count(), "a rejected write does not touch the router")

	_, err = client.DeleteRoutes(ctx, &vpcapi.DeleteRoutesRequest{RouteTableId: "rtb-stratus1", Routes: []vpcapi.Route{{DestinationCidrBlock: "10.244.1.0/24"}}})
	require.NoError(t, err)
	assert.Empty(t, rec.last(t).VPCs[0].Tables[0].Routes)
}
