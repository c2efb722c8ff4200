package vpc_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stratus-cloud/stratus/cloudapi"
	vpcapi "github.com/stratus-cloud/stratus/cloudapi/vpc"
)

func TestSeedImports(t *testing.T) {
	e := newEnv(t, nil, "")
	ctx := context.Background()
	vpcs, err := e.vpc.DescribeVpcs(ctx, &vpcapi.DescribeVpcsRequest{})
	require.NoError(t, err)
	require.EqualValues(t, 1, vpcs.TotalCount)
	assert.Equal(t, "vpc-stratus1", vpcs.VpcSet[0].VpcId)
	assert.Equal(t, "stratus", vpcs.VpcSet[0].VpcName)
	assert.Equal(t, "10.0.0.0/16", vpcs.VpcSet[0].CidrBlock)

	subnets, err := e.vpc.DescribeSubnets(ctx, &vpcapi.DescribeSubnetsRequest{})
	require.NoError(t, err)
	require.EqualValues(t, 3, subnets.TotalCount)
	free := map[string]int64{}
	for _, s := range subnets.SubnetSet {
		assert.Equal(t, "rtb-stratus1", s.RouteTableId)
		assert.EqualValues(t, 256, s.TotalIpAddressCount)
		free[s.SubnetId] = s.AvailableIpAddressCount
	}
	assert.Equal(t, map[string]int64{"subnet-gz1": 251, "subnet-gz2": 252, "subnet-gz3": 252}, free, "seeded instances hold addresses")

	rt := e.table(t, "rtb-stratus1")
	assert.True(t, rt.Main)
	assert.Equal(t, "vpc-stratus1", rt.VpcId)
	assert.Len(t, rt.AssociationSet, 3)
	assert.Empty(t, rt.RouteSet)
}

func TestCreateVpc(t *testing.T) {
	e := newEnv(t, nil, "")
	ctx := context.Background()
	out, err := e.vpc.CreateVpc(ctx, &vpcapi.CreateVpcRequest{VpcName: "second", CidrBlock: "172.16.0.0/16", Tags: []cloudapi.Tag{{Key: "env", Value: "test"}}})
	require.NoError(t, err)
	assert.Regexp(t, `^vpc-[a-z0-9]{8}$`, out.Vpc.VpcId)
	assert.Equal(t, "172.16.0.0/16", out.Vpc.CidrBlock)
	assert.NotEmpty(t, out.Vpc.DnsServerSet)
	// A new VPC comes with its main route table.
	rts, err := e.vpc.DescribeRouteTables(ctx, &vpcapi.DescribeRouteTablesRequest{Filters: []cloudapi.Filter{{Name: "vpc-id", Values: []string{out.Vpc.VpcId}}}})
	require.NoError(t, err)
	require.Len(t, rts.RouteTableSet, 1)
	assert.True(t, rts.RouteTableSet[0].Main)

	cases := []struct {
		name string
		req  vpcapi.CreateVpcRequest
		code string
		msg  string
	}{
		{"no name", vpcapi.CreateVpcRequest{CidrBlock: "10.1.0.0/16"}, "MissingParameter", "VpcName"},
		{"long name", vpcapi.CreateVpcRequest{VpcName: strings.Repeat("v", 61), CidrBlock: "10.1.0.0/16"}, "InvalidParameterValue.TooLong", "VpcName"},
		{"no cidr", vpcapi.CreateVpcRequest{VpcName: "x"}, "MissingParameter", "CidrBlock"},
		{"garbage cidr", vpcapi.CreateVpcRequest{VpcName: "x", CidrBlock: "ten/8"}, "InvalidParameterValue.Malformed", "CidrBlock"},
		{"host bits", vpcapi.CreateVpcRequest{VpcName: "x", CidrBlock: "10.1.0.1/16"}, "InvalidParameterValue.Malformed", "CidrBlock"},
		{"public range", vpcapi.CreateVpcRequest{VpcName: "x", CidrBlock: "8.8.0.0/16"}, "InvalidParameterValue.Range", "CidrBlock"},
		{"too small", vpcapi.CreateVpcRequest{VpcName: "x", CidrBlock: "10.1.0.0/29"}, "InvalidParameterValue.Range", "CidrBlock"},
		{"too big", vpcapi.CreateVpcRequest{VpcName: "x", CidrBlock: "192.168.0.0/15"}, "InvalidParameterValue.Range", "CidrBlock"},
		{"bad dns", vpcapi.CreateVpcRequest{VpcName: "x", CidrBlock: "10.1.0.0/16", DnsServers: []string{"dns"}}, "InvalidParameterValue.Malformed", "DnsServers"},
		{"bad multicast", vpcapi.CreateVpcRequest{VpcName: "x", CidrBlock: "10.1.0.0/16", EnableMulticast: "yes"}, "InvalidParameterValue", "EnableMulticast"},
		{"dup tag", vpcapi.CreateVpcRequest{VpcName: "x", CidrBlock: "10.1.0.0/16", Tags: []cloudapi.Tag{{Key: "a", Value: "1"}, {Key: "a", Value: "2"}}}, "InvalidParameterValue.TagDuplicateKey", "Tags"},
		{"empty tag value", vpcapi.CreateVpcRequest{VpcName: "x", CidrBlock: "10.1.0.0/16", Tags: []cloudapi.Tag{{Key: "a"}}}, "InvalidParameterValue.TagInvalidVal", "Tags.0.Value"},
		{"outside 10.0.0.0/12", vpcapi.CreateVpcRequest{VpcName: "x", CidrBlock: "10.16.0.0/16"}, "InvalidParameterValue.Range", "10.0.0.0/12"},
		{"outside 172.16.0.0/12", vpcapi.CreateVpcRequest{VpcName: "x", CidrBlock: "172.32.0.0/16"}, "InvalidParameterValue.Range", "172.16.0.0/12"},
		{"name 61 bytes", vpcapi.CreateVpcRequest{VpcName: strings.Repeat("名", 21), CidrBlock: "10.1.0.0/16"}, "InvalidParameterValue.TooLong", "60 bytes"},
		{"5 DNS servers", vpcapi.CreateVpcRequest{VpcName: "x", CidrBlock: "10.1.0.0/16", DnsServers: []string{"1.1.1.1", "1.1.1.2", "1.1.1.3", "1.1.1.4", "1.1.1.5"}}, "InvalidParameterValue.LimitExceeded", "DnsServers"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.vpc.CreateVpc(ctx, &tc.req)
			require.Error(t, err)
			assert.Equal(t, tc.code, code(err), "%v", err)
			assert.Contains(t, err.Error(), tc.msg)
		})
	}
	all, err := e.vpc.DescribeVpcs(ctx, &vpcapi.DescribeVpcsRequest{})
	require.NoError(t, err)
	assert.EqualValues(t, 2, all.TotalCount, "failed calls created nothing")
}

func TestVpcQuota(t *testing.T) {
	seed := seedFile(t)
	seed.Limits = map[string]int{"vpcs-per-region": 2}
	e := newEnv(t, seed, "")
	ctx := context.Background()
	_, err := e.vpc.CreateVpc(ctx, &vpcapi.CreateVpcRequest{VpcName: "a", CidrBlock: "10.1.0.0/16"})
	require.NoError(t, err)
	_, err = e.vpc.CreateVpc(ctx, &vpcapi.CreateVpcRequest{VpcName: "b", CidrBlock: "10.2.0.0/16"})
	assert.Equal(t, cloudapi.CodeLimitExceeded, code(err))
}

func TestDescribeVpcs(t *testing.T) {
	e := newEnv(t, nil, "")
	ctx := context.Background()
	var created []string
	for i := range 5 {
		out, err := e.vpc.CreateVpc(ctx, &vpcapi.CreateVpcRequest{VpcName: fmt.Sprintf("v%d", i), CidrBlock: fmt.Sprintf("10.%d.0.0/16", 10+i),
			Tags: []cloudapi.Tag{{Key: "parity", Value: fmt.Sprint(i % 2)}}})
		require.NoError(t, err)
		created = append(created, out.Vpc.VpcId)
	}
	names := func(out *vpcapi.DescribeVpcsResponse) []string {
		var s []string
		for _, v := range out.VpcSet {
			s = append(s, v.VpcName)
		}
		return s
	}
	cases := []struct {
		req  vpcapi.DescribeVpcsRequest
		want []string
	}{
		{vpcapi.DescribeVpcsRequest{VpcIds: []string{created[3], "vpc-stratus1", "vpc-nothere1"}}, []string{"stratus", "v3"}},
		{vpcapi.DescribeVpcsRequest{Filters: []cloudapi.Filter{{Name: "vpc-name", Values: []string{"v1", "v2"}}}}, []string{"v1", "v2"}},
		{vpcapi.DescribeVpcsRequest{Filters: []cloudapi.Filter{{Name: "cidr-block", Values: []string{"10.14.0.0/16"}}}}, []string{"v4"}},
		{vpcapi.DescribeVpcsRequest{Filters: []cloudapi.Filter{{Name: "vpc-id", Values: []string{created[0]}}}}, []string{"v0"}},
		{vpcapi.DescribeVpcsRequest{Filters: []cloudapi.Filter{{Name: "tag:parity", Values: []string{"1"}}}}, []string{"v1", "v3"}},
		{vpcapi.DescribeVpcsRequest{Filters: []cloudapi.Filter{{Name: "tag-key", Values: []string{"parity"}}, {Name: "is-default", Values: []string{"false"}}}}, []string{"v0", "v1", "v2", "v3", "v4"}},
		{vpcapi.DescribeVpcsRequest{Offset: vpcapi.Count(2), Limit: vpcapi.Count(2)}, []string{"v1", "v2"}},
		{vpcapi.DescribeVpcsRequest{Offset: vpcapi.Count(5)}, []string{"v4"}},
	}
	for _, tc := range cases {
		out, err := e.vpc.DescribeVpcs(ctx, &tc.req)
		require.NoError(t, err)
		assert.Equal(t, tc.want, names(out), "%+v", tc.req)
	}
	errs := []struct {
		req  vpcapi.DescribeVpcsRequest
		code string
	}{
		{vpcapi.DescribeVpcsRequest{VpcIds: []string{"vpc-stratus1"}, Filters: []cloudapi.Filter{{Name: "vpc-name", Values: []string{"x"}}}}, "InvalidParameter.Coexist"},
		{vpcapi.DescribeVpcsRequest{VpcIds: []string{"net-1"}}, "InvalidVpcId.Malformed"},
		{vpcapi.DescribeVpcsRequest{Filters: []cloudapi.Filter{{Name: "colour", Values: []string{"x"}}}}, "InvalidParameter.FilterInvalidKey"},
		{vpcapi.DescribeVpcsRequest{Limit: vpcapi.Count(101)}, "InvalidParameterValue"},
		{vpcapi.DescribeVpcsRequest{Limit: cloudapi.String("ten")}, "InvalidParameterValue"},
	}
	for _, tc := range errs {
		_, err := e.vpc.DescribeVpcs(ctx, &tc.req)
		assert.Equal(t, tc.code, code(err), "%+v: %v", tc.req, err)
	}
}
