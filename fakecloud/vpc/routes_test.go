package vpc_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stratus-cloud/stratus/cloudapi"
	vpcapi "github.com/stratus-cloud/stratus/cloudapi/vpc"
)

func podRoute(dest, node string) vpcapi.Route {
	return vpcapi.Route{DestinationCidrBlock: dest, GatewayType: vpcapi.GatewayTypeNormalCVM, GatewayId: node, RouteDescription: "stratus pod route"}
}

func TestRouteTables(t *testing.T) {
	e := newEnv(t, nil, "")
	ctx := context.Background()
	out, err := e.vpc.CreateRouteTable(ctx, &vpcapi.CreateRouteTableRequest{VpcId: "vpc-stratus1", RouteTableName: "pods", Tags: []cloudapi.Tag{{Key: "stratus.io/cluster", Value: "c1"}}})
	require.NoError(t, err)
	assert.Regexp(t, `^rtb-[a-z0-9]{8}$`, out.RouteTable.RouteTableId)
	assert.False(t, out.RouteTable.Main)
	assert.Empty(t, out.RouteTable.AssociationSet)

	_, err = e.vpc.CreateRouteTable(ctx, &vpcapi.CreateRouteTableRequest{VpcId: "vpc-nothere1", RouteTableName: "x"})
	assert.Equal(t, "InvalidVpcId.NotFound", code(err))
	_, err = e.vpc.CreateRouteTable(ctx, &vpcapi.CreateRouteTableRequest{VpcId: "vpc-stratus1"})
	assert.Equal(t, "MissingParameter", code(err))

	list := func(req vpcapi.DescribeRouteTablesRequest) []string {
		t.Helper()
		got, err := e.vpc.DescribeRouteTables(ctx, &req)
		require.NoError(t, err)
		var s []string
		for _, rt := range got.RouteTableSet {
			s = append(s, rt.RouteTableName)
		}
		return s
	}
	assert.Equal(t, []string{"default", "pods"}, list(vpcapi.DescribeRouteTablesRequest{Filters: []cloudapi.Filter{{Name: "vpc-id", Values: []string{"vpc-stratus1"}}}}))
	assert.Equal(t, []string{"default"}, list(vpcapi.DescribeRouteTablesRequest{Filters: []cloudapi.Filter{{Name: "association.main", Values: []string{"true"}}}}))
	assert.Equal(t, []string{"pods"}, list(vpcapi.DescribeRouteTablesRequest{Filters: []cloudapi.Filter{{Name: "route-table-name", Values: []string{"pods"}}}}))
	assert.Equal(t, []string{"pods"}, list(vpcapi.DescribeRouteTablesRequest{Filters: []cloudapi.Filter{{Name: "tag:stratus.io/cluster", Values: []string{"c1"}}}}))
	assert.Equal(t, []string{"pods"}, list(vpcapi.DescribeRouteTablesRequest{RouteTableIds: []string{out.RouteTable.RouteTableId}}))
	assert.Equal(t, []string{"default"}, list(vpcapi.DescribeRouteTablesRequest{Filters: []cloudapi.Filter{{Name: "route-table-id", Values: []string{"rtb-stratus1"}}}}))
	assert.Equal(t, []string{"pods"}, list(vpcapi.DescribeRouteTablesRequest{Filters: []cloudapi.Filter{{Name: "tag-key", Values: []string{"stratus.io/cluster"}}}}))
	assert.Equal(t, []string{"pods"}, list(vpcapi.DescribeRouteTablesRequest{Offset: vpcapi.Count(1)}))
	_, err = e.vpc.DescribeRouteTables(ctx, &vpcapi.DescribeRouteTablesRequest{RouteTableIds: []string{"rt-1"}})
	assert.Equal(t, "InvalidRouteTableId.Malformed", code(err))
	_, err = e.vpc.DescribeRouteTables(ctx, &vpcapi.DescribeRouteTablesRequest{Filters: []cloudapi.Filter{{Name: "main", Values: []string{"true"}}}})
	assert.Equal(t, "InvalidParameter.FilterInvalidKey", code(err))
}

func TestCreateAndDeleteRoutes(t *testing.T) {
	e := newEnv(t, nil, "")
	ctx := context.Background()
	out, err := e.vpc.CreateRoutes(ctx, &vpcapi.CreateRoutesRequest{RouteTableId: "rtb-stratus1", Routes: []vpcapi.Route{
		podRoute("10.244.1.0/24", "10.0.1.11"), podRoute("10.244.2.0/24", "10.0.1.12"), podRoute("10.244.3.0/24", "10.0.2.11"),
	}})
	require.NoError(t, err)
	require.Len(t, out.RouteTableSet, 1)
	routes := out.RouteTableSet[0].RouteSet
	require.Len(t, routes, 3)
	seen := map[uint64]bool{}
	for _, r := range routes {
		require.NotNil(t, r.RouteId)
		assert.False(t, seen[r.ID()], "route IDs are unique")
		seen[r.ID()] = true
		assert.Regexp(t, `^rti-[a-z0-9]{8}$`, r.RouteItemId)
		assert.Equal(t, vpcapi.GatewayTypeNormalCVM, r.GatewayType)
		assert.Equal(t, "stratus pod route", r.RouteDescription)
		assert.Equal(t, vpcapi.RouteTypeUser, r.RouteType)
		assert.Equal(t, "rtb-stratus1", r.RouteTableId)
		require.NotNil(t, r.Enabled)
		assert.True(t, *r.Enabled)
	}
	assert.Equal(t, "10.0.1.12", routes[1].GatewayId)
	assert.Equal(t, routes, e.table(t, "rtb-stratus1").RouteSet)

	// Delete by RouteId, by RouteItemId and by destination in one call.
	del, err := e.vpc.DeleteRoutes(ctx, &vpcapi.DeleteRoutesRequest{RouteTableId: "rtb-stratus1", Routes: []vpcapi.Route{
		{RouteId: routes[0].RouteId}, {RouteItemId: routes[1].RouteItemId},
	}})
	require.NoError(t, err)
	assert.Len(t, del.RouteSet, 2)
	assert.Equal(t, []vpcapi.Route{routes[2]}, e.table(t, "rtb-stratus1").RouteSet)
	_, err = e.vpc.DeleteRoutes(ctx, &vpcapi.DeleteRoutesRequest{RouteTableId: "rtb-stratus1", Routes: []vpcapi.Route{{DestinationCidrBlock: "10.244.3.0/24", GatewayId: "10.0.9.9"}}})
	assert.Equal(t, "InvalidRouteId.NotFound", code(err), "the gateway narrows a destination match")
	_, err = e.vpc.DeleteRoutes(ctx, &vpcapi.DeleteRoutesRequest{RouteTableId: "rtb-stratus1", Routes: []vpcapi.Route{{DestinationCidrBlock: "10.244.3.0/24", GatewayId: "10.0.2.11"}}})
	require.NoError(t, err)
	assert.Empty(t, e.table(t, "rtb-stratus1").RouteSet)

	// A destination freed by a delete can be routed again; IDs are never reused.
	again, err := e.vpc.CreateRoutes(ctx, &vpcapi.CreateRoutesRequest{RouteTableId: "rtb-stratus1", Routes: []vpcapi.Route{podRoute("10.244.1.0/24", "10.0.3.11")}})
	require.NoError(t, err)
	assert.False(t, seen[again.RouteTableSet[0].RouteSet[0].ID()])
}

func TestCreateRoutesErrors(t *testing.T) {
	seed := seedFile(t)
	seed.Limits = map[string]int{"routes-per-table": 3}
	e := newEnv(t, seed, "")
	ctx := context.Background()
	_, err := e.vpc.CreateRoutes(ctx, &vpcapi.CreateRoutesRequest{RouteTableId: "rtb-stratus1", Routes: []vpcapi.Route{podRoute("10.244.1.0/24", "10.0.1.11")}})
	require.NoError(t, err)
	good := podRoute("10.244.9.0/24", "10.0.1.12")
	cases := []struct {
		name   string
		table  string
		routes []vpcapi.Route
		code   string
		msg    string
	}{
		{"duplicate existing", "rtb-stratus1", []vpcapi.Route{good, podRoute("10.244.1.0/24", "10.0.1.12")}, "InvalidParameterValue.Duplicate", "Routes.1.DestinationCidrBlock"},
		{"duplicate in request", "rtb-stratus1", []vpcapi.Route{good, podRoute("10.244.9.0/24", "10.0.2.11")}, "InvalidParameterValue.Duplicate", "10.244.9.0/24"},
		{"inside vpc cidr", "rtb-stratus1", []vpcapi.Route{good, podRoute("10.0.200.0/24", "10.0.1.12")}, "InvalidParameterValue.VpcCidrConflict", "Routes.1.DestinationCidrBlock"},
		{"covers vpc cidr", "rtb-stratus1", []vpcapi.Route{podRoute("10.0.0.0/8", "10.0.1.12")}, "InvalidParameterValue.VpcCidrConflict", "10.0.0.0/16"},
		{"gateway not an IP", "rtb-stratus1", []vpcapi.Route{{DestinationCidrBlock: "10.244.5.0/24", GatewayType: "NORMAL_CVM", GatewayId: "ins-node0001"}}, "InvalidParameter.NextHopMismatch", "GatewayId"},
		{"gateway outside vpc", "rtb-stratus1", []vpcapi.Route{podRoute("10.244.5.0/24", "192.168.1.1")}, "InvalidParameterValue.AddressIpNotInVpc", "Routes.0.GatewayId"},
		{"gateway is no instance", "rtb-stratus1", []vpcapi.Route{good, podRoute("10.244.5.0/24", "10.0.1.99")}, "InvalidParameter.NextHopMismatch", "Routes.1.GatewayId"},
		{"no gateway type", "rtb-stratus1", []vpcapi.Route{{DestinationCidrBlock: "10.244.5.0/24", GatewayId: "10.0.1.11"}}, "MissingParameter", "Routes.0.GatewayType"},
		{"bad gateway type", "rtb-stratus1", []vpcapi.Route{{DestinationCidrBlock: "10.244.5.0/24", GatewayType: "WORMHOLE", GatewayId: "10.0.1.11"}}, "InvalidParameterValue", "GatewayType"},
		{"no destination", "rtb-stratus1", []vpcapi.Route{{GatewayType: "NORMAL_CVM", GatewayId: "10.0.1.11"}}, "MissingParameter", "DestinationCidrBlock"},
		{"bad destination", "rtb-stratus1", []vpcapi.Route{podRoute("10.244.5.1/24", "10.0.1.11")}, "InvalidParameterValue.Malformed", "DestinationCidrBlock"},
		{"no routes", "rtb-stratus1", nil, "MissingParameter", "Routes"},
		{"unknown table", "rtb-nothere1", []vpcapi.Route{good}, "InvalidRouteTableId.NotFound", "rtb-nothere1"},
		{"malformed table", "table-1", []vpcapi.Route{good}, "InvalidRouteTableId.Malformed", "RouteTableId"},
		{"over the limit", "rtb-stratus1", []vpcapi.Route{good, podRoute("10.244.10.0/24", "10.0.1.11"), podRoute("10.244.11.0/24", "10.0.1.11")}, "LimitExceeded", "quota of 3"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.vpc.CreateRoutes(ctx, &vpcapi.CreateRoutesRequest{RouteTableId: tc.table, Routes: tc.routes})
			require.Error(t, err)
			assert.Equal(t, tc.code, code(err), "%v", err)
			assert.Contains(t, err.Error(), tc.msg)
			assert.Len(t, e.table(t, "rtb-stratus1").RouteSet, 1, "a failed call adds no route")
		})
	}
	// Filling the table up to the limit works; one more does not.
	_, err = e.vpc.CreateRoutes(ctx, &vpcapi.CreateRoutesRequest{RouteTableId: "rtb-stratus1", Routes: []vpcapi.Route{good, podRoute("10.244.10.0/24", "10.0.1.11")}})
	require.NoError(t, err)
	_, err = e.vpc.CreateRoutes(ctx, &vpcapi.CreateRoutesRequest{RouteTableId: "rtb-stratus1", Routes: []vpcapi.Route{podRoute("10.244.11.0/24", "10.0.1.11")}})
	assert.True(t, cloudapi.IsLimitExceeded(err), "%v", err)
}

func TestDeleteRoutesErrors(t *testing.T) {
	e := newEnv(t, nil, "")
	ctx := context.Background()
	out, err := e.vpc.CreateRoutes(ctx, &vpcapi.CreateRoutesRequest{RouteTableId: "rtb-stratus1", Routes: []vpcapi.Route{podRoute("10.244.1.0/24", "10.0.1.11")}})
	require.NoError(t, err)
	existing := out.RouteTableSet[0].RouteSet[0]
	unknown := uint64(999999)
	cases := []struct {
		name   string
		table  string
		routes []vpcapi.Route
		code   string
	}{
		{"unknown id with a known one", "rtb-stratus1", []vpcapi.Route{{RouteId: existing.RouteId}, {RouteId: &unknown}}, "InvalidRouteId.NotFound"},
		{"unknown item id", "rtb-stratus1", []vpcapi.Route{{RouteItemId: "rti-nothere1"}}, "InvalidRouteId.NotFound"},
		{"unknown destination", "rtb-stratus1", []vpcapi.Route{{DestinationCidrBlock: "10.244.7.0/24"}}, "InvalidRouteId.NotFound"},
		{"empty selector", "rtb-stratus1", []vpcapi.Route{{RouteDescription: "x"}}, "MissingParameter"},
		{"no routes", "rtb-stratus1", nil, "MissingParameter"},
		{"unknown table", "rtb-nothere1", []vpcapi.Route{{RouteId: existing.RouteId}}, "InvalidRouteTableId.NotFound"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.vpc.DeleteRoutes(ctx, &vpcapi.DeleteRoutesRequest{RouteTableId: tc.table, Routes: tc.routes})
			assert.Equal(t, tc.code, code(err), "%v", err)
			assert.Equal(t, []vpcapi.Route{existing}, e.table(t, "rtb-stratus1").RouteSet, "a failed delete removes nothing")
		})
	}
}

func TestRoutesSurviveRestart(t *testing.T) {
	dir := t.TempDir()
	e := newEnv(t, nil, dir)
	ctx := context.Background()
	var ids []uint64
	for i := range 3 {
		out, err := e.vpc.CreateRoutes(ctx, &vpcapi.CreateRoutesRequest{RouteTableId: "rtb-stratus1", Routes: []vpcapi.Route{podRoute(fmt.Sprintf("10.244.%d.0/24", i), "10.0.1.11")}})
		require.NoError(t, err)
		rs := out.RouteTableSet[0].RouteSet
		ids = append(ids, rs[len(rs)-1].ID())
	}
	v, err := e.vpc.CreateVpc(ctx, &vpcapi.CreateVpcRequest{VpcName: "kept", CidrBlock: "192.168.0.0/16"})
	require.NoError(t, err)
	before := e.table(t, "rtb-stratus1")
	e.srv.Close()
	require.NoError(t, e.cloud.Close())

	e2 := newEnv(t, nil, dir)
	assert.Equal(t, before, e2.table(t, "rtb-stratus1"))
	vpcs, err := e2.vpc.DescribeVpcs(ctx, &vpcapi.DescribeVpcsRequest{VpcIds: []string{v.Vpc.VpcId}})
	require.NoError(t, err)
	assert.Len(t, vpcs.VpcSet, 1)
	out, err := e2.vpc.CreateRoutes(ctx, &vpcapi.CreateRoutesRequest{RouteTableId: "rtb-stratus1", Routes: []vpcapi.Route{podRoute("10.244.9.0/24", "10.0.1.11")}})
	require.NoError(t, err)
	rs := out.RouteTableSet[0].RouteSet
	assert.Greater(t, rs[len(rs)-1].ID(), ids[2], "the route ID sequence continues after a restart")
}
