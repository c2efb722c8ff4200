package vpc_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stratus-cloud/stratus/cloudapi"
	vpcapi "github.com/stratus-cloud/stratus/cloudapi/vpc"
)

func TestCreateSubnet(t *testing.T) {
	e := newEnv(t, nil, "")
	ctx := context.Background()
	out, err := e.vpc.CreateSubnet(ctx, &vpcapi.CreateSubnetRequest{VpcId: "vpc-stratus1", SubnetName: "extra", CidrBlock: "10.0.128.0/20", Zone: "ap-guangzhou-3",
		Tags: []cloudapi.Tag{{Key: "tier", Value: "db"}}})
	require.NoError(t, err)
	assert.Regexp(t, `^subnet-[a-z0-9]{8}$`, out.Subnet.SubnetId)
	assert.Equal(t, "rtb-stratus1", out.Subnet.RouteTableId, "new subnets use the VPC's main route table")
	assert.EqualValues(t, 4096, out.Subnet.TotalIpAddressCount)
	assert.EqualValues(t, 4093, out.Subnet.AvailableIpAddressCount)
	assert.Equal(t, "ap-guangzhou-3", out.Subnet.Zone)

	cases := []struct {
		name string
		req  vpcapi.CreateSubnetRequest
		code string
		msg  string
	}{
		{"no vpc", vpcapi.CreateSubnetRequest{SubnetName: "x", CidrBlock: "10.0.200.0/24", Zone: "ap-guangzhou-1"}, "MissingParameter", "VpcId"},
		{"no name", vpcapi.CreateSubnetRequest{VpcId: "vpc-stratus1", CidrBlock: "10.0.200.0/24", Zone: "ap-guangzhou-1"}, "MissingParameter", "SubnetName"},
		{"no cidr", vpcapi.CreateSubnetRequest{VpcId: "vpc-stratus1", SubnetName: "x", Zone: "ap-guangzhou-1"}, "MissingParameter", "CidrBlock"},
		{"no zone", vpcapi.CreateSubnetRequest{VpcId: "vpc-stratus1", SubnetName: "x", CidrBlock: "10.0.200.0/24"}, "MissingParameter", "Zone"},
		{"bad zone", vpcapi.CreateSubnetRequest{VpcId: "vpc-stratus1", SubnetName: "x", CidrBlock: "10.0.200.0/24", Zone: "ap-mars-1"}, "InvalidParameterValue.UnavailableZone", "Zone"},
		{"malformed vpc", vpcapi.CreateSubnetRequest{VpcId: "stratus", SubnetName: "x", CidrBlock: "10.0.200.0/24", Zone: "ap-guangzhou-1"}, "InvalidVpcId.Malformed", "VpcId"},
		{"unknown vpc", vpcapi.CreateSubnetRequest{VpcId: "vpc-nothere1", SubnetName: "x", CidrBlock: "10.0.200.0/24", Zone: "ap-guangzhou-1"}, "InvalidVpcId.NotFound", "vpc-nothere1"},
		{"garbage cidr", vpcapi.CreateSubnetRequest{VpcId: "vpc-stratus1", SubnetName: "x", CidrBlock: "10.0.200/24", Zone: "ap-guangzhou-1"}, "InvalidParameterValue.Malformed", "CidrBlock"},
		{"outside vpc", vpcapi.CreateSubnetRequest{VpcId: "vpc-stratus1", SubnetName: "x", CidrBlock: "10.1.0.0/24", Zone: "ap-guangzhou-1"}, "InvalidParameterValue.SubnetRange", "CidrBlock"},
		{"bigger than vpc", vpcapi.CreateSubnetRequest{VpcId: "vpc-stratus1", SubnetName: "x", CidrBlock: "10.0.0.0/15", Zone: "ap-guangzhou-1"}, "InvalidParameterValue.SubnetRange", "CidrBlock"},
		{"too small", vpcapi.CreateSubnetRequest{VpcId: "vpc-stratus1", SubnetName: "x", CidrBlock: "10.0.200.0/30", Zone: "ap-guangzhou-1"}, "InvalidParameterValue.SubnetRange", "CidrBlock"},
		{"host bits", vpcapi.CreateSubnetRequest{VpcId: "vpc-stratus1", SubnetName: "x", CidrBlock: "10.0.200.1/24", Zone: "ap-guangzhou-1"}, "InvalidParameterValue.SubnetRange", "CidrBlock"},
		{"overlap inside", vpcapi.CreateSubnetRequest{VpcId: "vpc-stratus1", SubnetName: "x", CidrBlock: "10.0.1.128/25", Zone: "ap-guangzhou-1"}, "InvalidParameterValue.SubnetConflict", "subnet-gz1"},
		{"overlap around", vpcapi.CreateSubnetRequest{VpcId: "vpc-stratus1", SubnetName: "x", CidrBlock: "10.0.0.0/22", Zone: "ap-guangzhou-1"}, "InvalidParameterValue.SubnetConflict", "CidrBlock"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.vpc.CreateSubnet(ctx, &tc.req)
			require.Error(t, err)
			assert.Equal(t, tc.code, code(err), "%v", err)
			assert.Contains(t, err.Error(), tc.msg)
		})
	}
	all, err := e.vpc.DescribeSubnets(ctx, &vpcapi.DescribeSubnetsRequest{})
	require.NoError(t, err)
	assert.EqualValues(t, 4, all.TotalCount, "failed calls created nothing")

	// The same CIDR is fine in another VPC.
	other, err := e.vpc.CreateVpc(ctx, &vpcapi.CreateVpcRequest{VpcName: "other", CidrBlock: "10.0.0.0/16"})
	require.NoError(t, err)
	_, err = e.vpc.CreateSubnet(ctx, &vpcapi.CreateSubnetRequest{VpcId: other.Vpc.VpcId, SubnetName: "same", CidrBlock: "10.0.1.0/24", Zone: "ap-guangzhou-1"})
	require.NoError(t, err)
}

func TestDescribeSubnets(t *testing.T) {
	e := newEnv(t, nil, "")
	ctx := context.Background()
	extra, err := e.vpc.CreateSubnet(ctx, &vpcapi.CreateSubnetRequest{VpcId: "vpc-stratus1", SubnetName: "extra", CidrBlock: "10.0.4.0/24", Zone: "ap-guangzhou-1",
		Tags: []cloudapi.Tag{{Key: "tier", Value: "db"}}})
	require.NoError(t, err)
	ids := func(out *vpcapi.DescribeSubnetsResponse) []string {
		var s []string
		for _, x := range out.SubnetSet {
			s = append(s, x.SubnetId)
		}
		return s
	}
	x := extra.Subnet.SubnetId
	cases := []struct {
		req  vpcapi.DescribeSubnetsRequest
		want []string
	}{
		{vpcapi.DescribeSubnetsRequest{SubnetIds: []string{x, "subnet-gz2"}}, []string{"subnet-gz2", x}},
		{vpcapi.DescribeSubnetsRequest{Filters: []cloudapi.Filter{{Name: "zone", Values: []string{"ap-guangzhou-1"}}}}, []string{"subnet-gz1", x}},
		{vpcapi.DescribeSubnetsRequest{Filters: []cloudapi.Filter{{Name: "vpc-id", Values: []string{"vpc-stratus1"}}, {Name: "subnet-name", Values: []string{"gz-3"}}}}, []string{"subnet-gz3"}},
		{vpcapi.DescribeSubnetsRequest{Filters: []cloudapi.Filter{{Name: "subnet-id", Values: []string{"subnet-gz1"}}}}, []string{"subnet-gz1"}},
		{vpcapi.DescribeSubnetsRequest{Filters: []cloudapi.Filter{{Name: "cidr-block", Values: []string{"10.0.2.0/24"}}}}, []string{"subnet-gz2"}},
		{vpcapi.DescribeSubnetsRequest{Filters: []cloudapi.Filter{{Name: "route-table-id", Values: []string{"rtb-stratus1"}}}}, []string{"subnet-gz1", "subnet-gz2", "subnet-gz3", x}},
		{vpcapi.DescribeSubnetsRequest{Filters: []cloudapi.Filter{{Name: "tag:tier", Values: []string{"db"}}}}, []string{x}},
		{vpcapi.DescribeSubnetsRequest{Filters: []cloudapi.Filter{{Name: "tag-key", Values: []string{"tier"}}}}, []string{x}},
		{vpcapi.DescribeSubnetsRequest{Filters: []cloudapi.Filter{{Name: "is-default", Values: []string{"true"}}}}, nil},
		{vpcapi.DescribeSubnetsRequest{Filters: []cloudapi.Filter{{Name: "vpc-id", Values: []string{"vpc-other"}}}}, nil},
		{vpcapi.DescribeSubnetsRequest{Offset: vpcapi.Count(1), Limit: vpcapi.Count(2)}, []string{"subnet-gz2", "subnet-gz3"}},
	}
	for _, tc := range cases {
		out, err := e.vpc.DescribeSubnets(ctx, &tc.req)
		require.NoError(t, err)
		assert.Equal(t, tc.want, ids(out), "%+v", tc.req)
	}
	_, err = e.vpc.DescribeSubnets(ctx, &vpcapi.DescribeSubnetsRequest{SubnetIds: []string{"sn-1"}})
	assert.Equal(t, "InvalidParameterValue.Malformed", code(err))
	_, err = e.vpc.DescribeSubnets(ctx, &vpcapi.DescribeSubnetsRequest{Filters: []cloudapi.Filter{{Name: "size", Values: []string{"1"}}}})
	assert.Equal(t, "InvalidParameter.FilterInvalidKey", code(err))
	_, err = e.vpc.DescribeSubnets(ctx, &vpcapi.DescribeSubnetsRequest{SubnetIds: []string{"subnet-gz1"}, Filters: []cloudapi.Filter{{Name: "zone", Values: []string{"x"}}}})
	assert.Equal(t, "InvalidParameter.Coexist", code(err))
}
