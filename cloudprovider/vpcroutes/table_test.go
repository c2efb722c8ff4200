package vpcroutes

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"net/netip"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	cloudprovider "k8s.io/cloud-provider"

	"github.com/stratus-cloud/stratus/cloudapi"
	"github.com/stratus-cloud/stratus/cloudapi/cvm"
	"github.com/stratus-cloud/stratus/cloudapi/vpc"
	"github.com/stratus-cloud/stratus/fakecloud"
	fccvm "github.com/stratus-cloud/stratus/fakecloud/cvm"
	"github.com/stratus-cloud/stratus/routes"
)

// states is an Instances fake: ip -> state; absent means no instance.
type states struct {
	mu sync.Mutex
	m  map[string]string
	// err, when set, is answered for every lookup.
	err error
}

func (s *states) StateByPrivateIP(_ context.Context, ip string, _ bool) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return "", s.err
	}
	st, ok := s.m[ip]
	if !ok {
		return "", ErrNoInstance
	}
	return st, nil
}

type env struct {
	fc      *fakecloud.Cloud
	vpc     *vpc.Client
	counter *cloudapi.CallCounter
}

func newEnv(t *testing.T, limits map[string]int) *env {
	t.Helper()
	seed, err := fakecloud.LoadSeed(filepath.Join("..", "..", "examples", "fakecloud", "seed.yaml"))
	require.NoError(t, err)
	seed.Limits = limits
	fc, err := fakecloud.New(fakecloud.Config{Seed: seed, RateLimit: -1})
	require.NoError(t, err)
	t.Cleanup(func() { _ = fc.Close() })
	srv := httptest.NewServer(fc)
	t.Cleanup(srv.Close)
	id, key := fc.Credentials()
	counter := &cloudapi.CallCounter{}
	c, err := cloudapi.New(cloudapi.Config{Endpoint: srv.URL, Region: fc.Region(), Credentials: cloudapi.Credentials{SecretID: id, SecretKey: key},
		RateLimit: -1, MaxAttempts: 2, BackoffBase: 1, BackoffMax: 2, Hooks: []cloudapi.CallHook{counter.Hook}})
	require.NoError(t, err)
	return &env{fc: fc, vpc: vpc.New(c), counter: counter}
}

func (e *env) table(t *testing.T, id string) []vpc.Route {
	t.Helper()
	out, err := e.vpc.DescribeRouteTables(context.Background(), &vpc.DescribeRouteTablesRequest{RouteTableIds: []string{id}})
	require.NoError(t, err)
	require.Len(t, out.RouteTableSet, 1)
	return out.RouteTableSet[0].RouteSet
}

func (e *env) newTable(t *testing.T, cluster, tableID string) *Table {
	t.Helper()
	tbl, err := New(e.vpc, Config{VpcID: "vpc-stratus1", ClusterID: cluster, RouteTableID: tableID, Instances: &states{m: map[string]string{}}})
	require.NoError(t, err)
	return tbl
}

func TestResolve(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	mk := func(cluster string) string {
		out, err := e.vpc.CreateRouteTable(ctx, &vpc.CreateRouteTableRequest{VpcId: "vpc-stratus1", RouteTableName: "pods-" + cluster,
			Tags: []cloudapi.Tag{{Key: TagCluster, Value: cluster}}})
		require.NoError(t, err)
		return out.RouteTable.RouteTableId
	}
	one := mk("one")
	twoA, twoB := mk("two"), mk("two")
	mk("other")
	cases := []struct {
		name, cluster, configured string
		want                      string
		err                       []string
	}{
		{"configured table", "x", "rtb-stratus1", "rtb-stratus1", nil},
		{"configured table missing", "x", "rtb-nothere1", "", []string{"rtb-nothere1", "routeTableId"}},
		{"the one tagged table", "one", "", one, nil},
		{"no tagged table", "none", "", "", []string{"no route table of VPC vpc-stratus1 is tagged stratus.io/cluster=none", "routeTableId"}},
		{"two tagged tables", "two", "", "", []string{"2 route tables", twoA, twoB}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := e.newTable(t, tc.cluster, tc.configured).Resolve(ctx)
			if tc.err == nil {
				require.NoError(t, err)
				assert.Equal(t, tc.want, got)
				return
			}
			require.Error(t, err)
			for _, s := range tc.err {
				assert.Contains(t, err.Error(), s)
			}
		})
	}
}

func TestResolveRetriesAfterFailure(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	tbl := e.newTable(t, "late", "")
	_, err := tbl.Resolve(ctx)
	require.Error(t, err)
	out, err := e.vpc.CreateRouteTable(ctx, &vpc.CreateRouteTableRequest{VpcId: "vpc-stratus1", RouteTableName: "late", Tags: []cloudapi.Tag{{Key: TagCluster, Value: "late"}}})
	require.NoError(t, err)
	got, err := tbl.Resolve(ctx)
	require.NoError(t, err, "a table tagged after a failed start is found")
	assert.Equal(t, out.RouteTable.RouteTableId, got)
	e.counter.Reset()
	_, err = tbl.Resolve(ctx)
	require.NoError(t, err)
	assert.Zero(t, e.counter.Count("DescribeRouteTables"), "a resolved table is kept")
}

func pod(dest, gw, desc string) routes.Route {
	return routes.Route{Destination: netip.MustParsePrefix(dest), Gateway: netip.MustParseAddr(gw), Description: desc}
}

func TestCreateListDelete(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	tbl := e.newTable(t, "c1", "rtb-stratus1")
	require.NoError(t, tbl.Create(ctx, []routes.Route{pod("10.244.1.0/24", "10.0.1.11", "stratus.io/cluster=c1"), pod("10.244.2.0/24", "10.0.1.12", "by hand")}))
	wire := e.table(t, "rtb-stratus1")
	require.Len(t, wire, 2)
	assert.Equal(t, vpc.GatewayTypeNormalCVM, wire[0].GatewayType)
	assert.Equal(t, "stratus.io/cluster=c1", wire[0].RouteDescription)

	got, err := tbl.List(ctx)
	require.NoError(t, err)
	require.Len(t, got, 2)
	assert.Equal(t, wire[0].RouteItemId, got[0].ID)
	assert.Equal(t, "10.244.1.0/24", got[0].Destination.String())
	assert.Equal(t, "10.0.1.11", got[0].Gateway.String())
	assert.Equal(t, "stratus.io/cluster=c1", got[0].Description)

	require.NoError(t, tbl.Delete(ctx, got[:1]))
	wire = e.table(t, "rtb-stratus1")
	require.Len(t, wire, 1)
	assert.Equal(t, "by hand", wire[0].RouteDescription)

	assert.Error(t, tbl.Create(ctx, make([]routes.Route, MaxRoutesPerCreate+1)), "over the per-call limit, nothing is sent")
	assert.Error(t, tbl.Delete(ctx, make([]routes.Route, MaxRoutesPerDelete+1)))
}

func TestRefusals(t *testing.T) {
	e := newEnv(t, map[string]int{"routes-per-table": 2})
	ctx := context.Background()
	tbl := e.newTable(t, "c1", "rtb-stratus1")
	require.NoError(t, tbl.Create(ctx, []routes.Route{pod("10.244.1.0/24", "10.0.1.11", "x")}))
	cases := []struct {
		name     string
		call     func() error
		code     string
		quota    bool
		notFound bool
	}{
		{"inside the VPC CIDR", func() error { return tbl.Create(ctx, []routes.Route{pod("10.0.99.0/24", "10.0.1.11", "x")}) }, "InvalidParameterValue.VpcCidrConflict", false, false},
		{"duplicate destination", func() error { return tbl.Create(ctx, []routes.Route{pod("10.244.1.0/24", "10.0.1.12", "x")}) }, "InvalidParameterValue.Duplicate", false, false},
		{"gateway is no instance", func() error { return tbl.Create(ctx, []routes.Route{pod("10.244.3.0/24", "10.0.1.99", "x")}) }, "InvalidParameter.NextHopMismatch", false, false},
		{"table full", func() error {
			return tbl.Create(ctx, []routes.Route{pod("10.244.3.0/24", "10.0.1.11", "x"), pod("10.244.4.0/24", "10.0.1.11", "x")})
		}, "LimitExceeded", true, false},
		{"route already gone", func() error { return tbl.Delete(ctx, []routes.Route{{ID: "rti-nothere1"}}) }, "InvalidRouteId.NotFound", false, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			var ref *routes.Refusal
			require.True(t, errors.As(err, &ref), "%v", err)
			assert.Equal(t, tc.code, ref.Code)
			assert.NotEmpty(t, ref.Message)
			assert.Equal(t, tc.quota, ref.Quota)
			assert.Equal(t, tc.notFound, ref.NotFound)
			assert.Contains(t, err.Error(), "RequestId", "the error keeps the request id for support")
		})
	}
	t.Run("throttling is not a refusal", func(t *testing.T) {
		e.fc.AddFault(fakecloud.FaultRule{Action: "CreateRoutes", FailNext: 2, Code: cloudapi.CodeRequestLimitExceeded})
		err := tbl.Create(ctx, []routes.Route{pod("10.244.3.0/24", "10.0.1.11", "x")})
		require.Error(t, err)
		var ref *routes.Refusal
		assert.False(t, errors.As(err, &ref))
		assert.True(t, cloudapi.IsThrottled(err))
	})
}

func TestLiveGateways(t *testing.T) {
	e := newEnv(t, nil)
	st := &states{m: map[string]string{"10.0.1.11": cvm.StateRunning, "10.0.1.12": cvm.StateStopped, "10.0.2.11": cvm.StateRebooting}}
	tbl, err := New(e.vpc, Config{VpcID: "vpc-stratus1", ClusterID: "c1", Instances: st})
	require.NoError(t, err)
	ips := []netip.Addr{netip.MustParseAddr("10.0.1.11"), netip.MustParseAddr("10.0.1.12"), netip.MustParseAddr("10.0.2.11"), netip.MustParseAddr("10.0.3.99")}
	live, err := tbl.LiveGateways(context.Background(), ips, true)
	require.NoError(t, err)
	assert.Equal(t, map[netip.Addr]bool{ips[0]: true, ips[1]: false, ips[2]: true, ips[3]: false}, live)
	st.err = fmt.Errorf("DescribeInstances: %w", errors.New("InternalError"))
	_, err = tbl.LiveGateways(context.Background(), ips, true)
	assert.Error(t, err, "an unknown state is an error, never 'not live'")
}

// The engine over the adapter over fakecloud: a refused batch is split so the good routes
// land, and only this cluster's routes are listed.
func TestEngineOverFakecloud(t *testing.T) {
	seed, err := fakecloud.LoadSeed(filepath.Join("..", "..", "examples", "fakecloud", "seed.yaml"))
	require.NoError(t, err)
	// 30 more instances in subnet-gz1 for 30 nodes.
	instances, err := fccvm.SeedInstances(seed)
	require.NoError(t, err)
	for i := range 30 {
		instances = append(instances, fccvm.SeedInstance{InstanceID: fmt.Sprintf("ins-extra%03d", i), Zone: "ap-guangzhou-1", SubnetID: "subnet-gz1", PrivateIP: fmt.Sprintf("10.0.1.%d", 100+i)})
	}
	fccvm.SetSeed(seed, instances)
	fc, err := fakecloud.New(fakecloud.Config{Seed: seed, RateLimit: -1})
	require.NoError(t, err)
	t.Cleanup(func() { _ = fc.Close() })
	srv := httptest.NewServer(fc)
	t.Cleanup(srv.Close)
	id, key := fc.Credentials()
	client, err := cloudapi.New(cloudapi.Config{Endpoint: srv.URL, Region: fc.Region(), Credentials: cloudapi.Credentials{SecretID: id, SecretKey: key}, RateLimit: -1})
	require.NoError(t, err)
	vc := vpc.New(client)
	ctx := context.Background()
	// Another cluster's route and a hand-made one, both inside the cluster CIDR.
	_, err = vc.CreateRoutes(ctx, &vpc.CreateRoutesRequest{RouteTableId: "rtb-stratus1", Routes: []vpc.Route{
		{DestinationCidrBlock: "10.244.200.0/24", GatewayType: vpc.GatewayTypeNormalCVM, GatewayId: "10.0.1.11", RouteDescription: routes.Marker("other")},
		{DestinationCidrBlock: "10.244.201.0/24", GatewayType: vpc.GatewayTypeNormalCVM, GatewayId: "10.0.1.12", RouteDescription: "ops: by hand"},
	}})
	require.NoError(t, err)

	st := &states{m: map[string]string{}}
	for i := range 30 {
		st.m[fmt.Sprintf("10.0.1.%d", 100+i)] = cvm.StateRunning
	}
	tbl, err := New(vc, Config{VpcID: "vpc-stratus1", ClusterID: "c1", RouteTableID: "rtb-stratus1", Instances: st})
	require.NoError(t, err)
	var nodes []*v1.Node
	for i := range 30 {
		cidr := fmt.Sprintf("10.244.%d.0/24", i)
		if i == 13 {
			cidr = "10.0.200.0/24" // inside the VPC CIDR: the cloud refuses it
		}
		nodes = append(nodes, &v1.Node{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("node-%02d", i)}, Spec: v1.NodeSpec{PodCIDRs: []string{cidr}},
			Status: v1.NodeStatus{Addresses: []v1.NodeAddress{{Type: v1.NodeInternalIP, Address: fmt.Sprintf("10.0.1.%d", 100+i)}}}})
	}
	eng, err := routes.New(routes.Config{ClusterID: "c1", Table: tbl, Batching: true, Nodes: func() ([]*v1.Node, error) { return nodes, nil }})
	require.NoError(t, err)
	fc.ResetCalls()
	errs := make([]error, len(nodes))
	var wg sync.WaitGroup
	for i, n := range nodes {
		wg.Go(func() {
			errs[i] = eng.CreateRoute(ctx, "kubernetes", "", &cloudprovider.Route{TargetNode: types.NodeName(n.Name), TargetNodeAddresses: n.Status.Addresses, DestinationCIDR: n.Spec.PodCIDRs[0]})
		})
	}
	wg.Wait()
	for i, err := range errs {
		if i == 13 {
			require.Error(t, err)
			assert.Contains(t, err.Error(), "InvalidParameterValue.VpcCidrConflict")
			assert.Contains(t, err.Error(), "node-13")
			continue
		}
		assert.NoError(t, err, nodes[i].Name)
	}
	assert.LessOrEqual(t, fc.Calls()["CreateRoutes"], 1+2*5, "one call, plus the split path of the one bad route")

	listed, err := eng.ListRoutes(ctx, "kubernetes")
	require.NoError(t, err)
	assert.Len(t, listed, 29)
	for _, r := range listed {
		assert.NotEqual(t, "10.244.200.0/24", r.DestinationCIDR)
		assert.NotEqual(t, "10.244.201.0/24", r.DestinationCIDR)
		assert.NotEmpty(t, r.TargetNode)
		assert.False(t, r.Blackhole)
	}
	for _, r := range listed {
		wg.Go(func() { assert.NoError(t, eng.DeleteRoute(ctx, "kubernetes", r)) })
	}
	wg.Wait()
	out, err := vc.DescribeRouteTables(ctx, &vpc.DescribeRouteTablesRequest{RouteTableIds: []string{"rtb-stratus1"}})
	require.NoError(t, err)
	var left []string
	for _, r := range out.RouteTableSet[0].RouteSet {
		left = append(left, r.DestinationCidrBlock+" "+r.RouteDescription)
	}
	assert.ElementsMatch(t, []string{"10.244.200.0/24 stratus.io/cluster=other", "10.244.201.0/24 ops: by hand"}, left, "other owners' routes survive")
}

// The ownership marker must fit RouteDescription, so a cluster id that would not is refused
// up front rather than by the cloud on every CreateRoutes.
func TestNewRefusesAClusterIDTooLongForTheMarker(t *testing.T) {
	e := newEnv(t, nil)
	cases := []struct {
		name    string
		cluster string
		wantErr bool
	}{
		{"41 characters fit", strings.Repeat("c", 41), false},
		{"42 characters do not", strings.Repeat("c", 42), true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(e.vpc, Config{VpcID: "vpc-stratus1", ClusterID: tc.cluster, Instances: &states{m: map[string]string{}}})
			if tc.wantErr {
				require.Error(t, err)
				assert.Contains(t, err.Error(), "at most 41 characters")
				return
			}
			require.NoError(t, err)
		})
	}
}
