package compat

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/common"
	vpc "github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/vpc/v20170312"
)

func newVPC(t *testing.T, e *sdkEnv) *vpc.Client {
	t.Helper()
	c, err := vpc.NewClient(e.cred, e.region, e.profile)
	require.NoError(t, err)
	return c
}

func TestSDKCreateAndDescribeVpcs(t *testing.T) {
	e := newSDKEnv(t)
	c := newVPC(t, e)
	req := vpc.NewCreateVpcRequest()
	req.VpcName = common.StringPtr("sdk-vpc")
	req.CidrBlock = common.StringPtr("172.16.0.0/16")
	req.EnableMulticast = common.StringPtr("false")
	req.DnsServers = ptrs("119.29.29.29")
	req.DomainName = common.StringPtr("stratus.local")
	req.Tags = []*vpc.Tag{{Key: common.StringPtr("env"), Value: common.StringPtr("sdk")}}
	resp, err := c.CreateVpc(req)
	require.NoError(t, err)
	id := *resp.Response.Vpc.VpcId
	assert.Equal(t, "172.16.0.0/16", *resp.Response.Vpc.CidrBlock)
	assert.Equal(t, []string{"119.29.29.29"}, common.StringValues(resp.Response.Vpc.DnsServerSet))

	bad := vpc.NewCreateVpcRequest()
	bad.VpcName = common.StringPtr("public")
	bad.CidrBlock = common.StringPtr("8.8.0.0/16")
	_, err = c.CreateVpc(bad)
	assert.Equal(t, "InvalidParameterValue.Range", sdkCode(t, err))

	list := vpc.NewDescribeVpcsRequest()
	list.Filters = []*vpc.Filter{{Name: common.StringPtr("tag:env"), Values: ptrs("sdk")}}
	list.Offset, list.Limit = common.StringPtr("0"), common.StringPtr("20")
	desc, err := c.DescribeVpcs(list)
	require.NoError(t, err)
	require.EqualValues(t, 1, *desc.Response.TotalCount)
	assert.Equal(t, id, *desc.Response.VpcSet[0].VpcId)
	assert.Equal(t, "env", *desc.Response.VpcSet[0].TagSet[0].Key)

	byID := vpc.NewDescribeVpcsRequest()
	byID.VpcIds = ptrs("vpc-stratus1")
	desc, err = c.DescribeVpcs(byID)
	require.NoError(t, err)
	assert.Equal(t, "10.0.0.0/16", *desc.Response.VpcSet[0].CidrBlock)

	badList := vpc.NewDescribeVpcsRequest()
	badList.Limit = common.StringPtr("1000")
	_, err = c.DescribeVpcs(badList)
	assert.Equal(t, "InvalidParameterValue", sdkCode(t, err))
}

func TestSDKCreateAndDescribeSubnets(t *testing.T) {
	e := newSDKEnv(t)
	c := newVPC(t, e)
	req := vpc.NewCreateSubnetRequest()
	req.VpcId = common.StringPtr("vpc-stratus1")
	req.SubnetName = common.StringPtr("sdk-subnet")
	req.CidrBlock = common.StringPtr("10.0.64.0/18")
	req.Zone = common.StringPtr("ap-guangzhou-2")
	req.Tags = []*vpc.Tag{{Key: common.StringPtr("tier"), Value: common.StringPtr("web")}}
	resp, err := c.CreateSubnet(req)
	require.NoError(t, err)
	sn := resp.Response.Subnet
	assert.Equal(t, "10.0.64.0/18", *sn.CidrBlock)
	assert.Equal(t, "rtb-stratus1", *sn.RouteTableId)
	assert.EqualValues(t, 16384-3, *sn.AvailableIpAddressCount)

	overlap := vpc.NewCreateSubnetRequest()
	overlap.VpcId = common.StringPtr("vpc-stratus1")
	overlap.SubnetName = common.StringPtr("overlap")
	overlap.CidrBlock = common.StringPtr("10.0.1.0/25")
	overlap.Zone = common.StringPtr("ap-guangzhou-1")
	_, err = c.CreateSubnet(overlap)
	assert.Equal(t, "InvalidParameterValue.SubnetConflict", sdkCode(t, err))
	outside := vpc.NewCreateSubnetRequest()
	outside.VpcId = common.StringPtr("vpc-stratus1")
	outside.SubnetName = common.StringPtr("outside")
	outside.CidrBlock = common.StringPtr("10.1.0.0/24")
	outside.Zone = common.StringPtr("ap-guangzhou-1")
	_, err = c.CreateSubnet(outside)
	assert.Equal(t, "InvalidParameterValue.SubnetRange", sdkCode(t, err))

	list := vpc.NewDescribeSubnetsRequest()
	list.Filters = []*vpc.Filter{{Name: common.StringPtr("vpc-id"), Values: ptrs("vpc-stratus1")}, {Name: common.StringPtr("zone"), Values: ptrs("ap-guangzhou-2")}}
	desc, err := c.DescribeSubnets(list)
	require.NoError(t, err)
	require.EqualValues(t, 2, *desc.Response.TotalCount)
	assert.Equal(t, "subnet-gz2", *desc.Response.SubnetSet[0].SubnetId)
	assert.EqualValues(t, 252, *desc.Response.SubnetSet[0].AvailableIpAddressCount)
	assert.Equal(t, *sn.SubnetId, *desc.Response.SubnetSet[1].SubnetId)

	page := vpc.NewDescribeSubnetsRequest()
	page.Offset, page.Limit = common.StringPtr("3"), common.StringPtr("1")
	desc, err = c.DescribeSubnets(page)
	require.NoError(t, err)
	assert.EqualValues(t, 4, *desc.Response.TotalCount)
	assert.Len(t, desc.Response.SubnetSet, 1)

	bad := vpc.NewDescribeSubnetsRequest()
	bad.Filters = []*vpc.Filter{{Name: common.StringPtr("colour"), Values: ptrs("blue")}}
	_, err = c.DescribeSubnets(bad)
	assert.Equal(t, "InvalidParameter.FilterInvalidKey", sdkCode(t, err))
}

func TestSDKRouteTablesAndRoutes(t *testing.T) {
	e := newSDKEnv(t)
	c := newVPC(t, e)
	crt := vpc.NewCreateRouteTableRequest()
	crt.VpcId = common.StringPtr("vpc-stratus1")
	crt.RouteTableName = common.StringPtr("sdk-pods")
	crt.Tags = []*vpc.Tag{{Key: common.StringPtr("stratus.io/cluster"), Value: common.StringPtr("sdk")}}
	created, err := c.CreateRouteTable(crt)
	require.NoError(t, err)
	rtb := *created.Response.RouteTable.RouteTableId
	assert.False(t, *created.Response.RouteTable.Main)

	missing := vpc.NewCreateRouteTableRequest()
	missing.VpcId = common.StringPtr("vpc-nothere1")
	missing.RouteTableName = common.StringPtr("x")
	_, err = c.CreateRouteTable(missing)
	assert.Equal(t, "InvalidVpcId.NotFound", sdkCode(t, err))

	add := vpc.NewCreateRoutesRequest()
	add.RouteTableId = common.StringPtr(rtb)
	add.Routes = []*vpc.Route{
		{DestinationCidrBlock: common.StringPtr("10.244.1.0/24"), GatewayType: common.StringPtr("NORMAL_CVM"), GatewayId: common.StringPtr("10.0.1.11"), RouteDescription: common.StringPtr("node-1 pods")},
		{DestinationCidrBlock: common.StringPtr("10.244.2.0/24"), GatewayType: common.StringPtr("NORMAL_CVM"), GatewayId: common.StringPtr("10.0.1.12"), RouteDescription: common.StringPtr("node-2 pods")},
	}
	added, err := c.CreateRoutes(add)
	require.NoError(t, err)
	require.EqualValues(t, 1, *added.Response.TotalCount)
	routes := added.Response.RouteTableSet[0].RouteSet
	require.Len(t, routes, 2)
	assert.NotZero(t, *routes[0].RouteId)
	assert.NotEmpty(t, *routes[0].RouteItemId)
	assert.Equal(t, "node-1 pods", *routes[0].RouteDescription)

	dup := vpc.NewCreateRoutesRequest()
	dup.RouteTableId = common.StringPtr(rtb)
	dup.Routes = []*vpc.Route{{DestinationCidrBlock: common.StringPtr("10.244.1.0/24"), GatewayType: common.StringPtr("NORMAL_CVM"), GatewayId: common.StringPtr("10.0.2.11")}}
	_, err = c.CreateRoutes(dup)
	assert.Equal(t, "InvalidParameterValue.Duplicate", sdkCode(t, err))
	dup.Routes[0].DestinationCidrBlock = common.StringPtr("10.0.8.0/24")
	_, err = c.CreateRoutes(dup)
	assert.Equal(t, "InvalidParameterValue.VpcCidrConflict", sdkCode(t, err))

	list := vpc.NewDescribeRouteTablesRequest()
	list.Filters = []*vpc.Filter{{Name: common.StringPtr("tag:stratus.io/cluster"), Values: ptrs("sdk")}}
	list.Offset, list.Limit = common.StringPtr("0"), common.StringPtr("100")
	desc, err := c.DescribeRouteTables(list)
	require.NoError(t, err)
	require.EqualValues(t, 1, *desc.Response.TotalCount)
	assert.Len(t, desc.Response.RouteTableSet[0].RouteSet, 2)
	main := vpc.NewDescribeRouteTablesRequest()
	main.RouteTableIds = ptrs("rtb-stratus1")
	desc, err = c.DescribeRouteTables(main)
	require.NoError(t, err)
	assert.Len(t, desc.Response.RouteTableSet[0].AssociationSet, 3)
	badIDs := vpc.NewDescribeRouteTablesRequest()
	badIDs.RouteTableIds = ptrs("table-1")
	_, err = c.DescribeRouteTables(badIDs)
	assert.Equal(t, "InvalidRouteTableId.Malformed", sdkCode(t, err))

	del := vpc.NewDeleteRoutesRequest()
	del.RouteTableId = common.StringPtr(rtb)
	del.Routes = []*vpc.Route{{RouteId: routes[0].RouteId}, {RouteItemId: routes[1].RouteItemId}}
	gone, err := c.DeleteRoutes(del)
	require.NoError(t, err)
	assert.Len(t, gone.Response.RouteSet, 2)
	_, err = c.DeleteRoutes(del)
	assert.Equal(t, "InvalidRouteId.NotFound", sdkCode(t, err))
	desc, err = c.DescribeRouteTables(list)
	require.NoError(t, err)
	assert.Empty(t, desc.Response.RouteTableSet[0].RouteSet)
}

// sdkSecurityGroup creates a security group through the SDK and returns its id.
func sdkSecurityGroup(t *testing.T, c *vpc.Client, name string) string {
	t.Helper()
	req := vpc.NewCreateSecurityGroupRequest()
	req.GroupName, req.GroupDescription = common.StringPtr(name), common.StringPtr("sdk group")
	req.Tags = []*vpc.Tag{{Key: common.StringPtr("stratus.io/cluster"), Value: common.StringPtr("sdk")}}
	resp, err := c.CreateSecurityGroup(req)
	require.NoError(t, err)
	return *resp.Response.SecurityGroup.SecurityGroupId
}

func TestSDKSecurityGroups(t *testing.T) {
	c := newVPC(t, newSDKEnv(t))
	id := sdkSecurityGroup(t, c, "sdk-sg")

	desc := vpc.NewDescribeSecurityGroupsRequest()
	desc.Filters = []*vpc.Filter{{Name: common.StringPtr("tag:stratus.io/cluster"), Values: ptrs("sdk")}}
	desc.Offset, desc.Limit = common.StringPtr("0"), common.StringPtr("100")
	out, err := c.DescribeSecurityGroups(desc)
	require.NoError(t, err)
	require.EqualValues(t, 1, *out.Response.TotalCount)
	g := out.Response.SecurityGroupSet[0]
	assert.Equal(t, id, *g.SecurityGroupId)
	assert.Equal(t, "sdk-sg", *g.SecurityGroupName)
	assert.Equal(t, "sdk group", *g.SecurityGroupDesc)
	require.Len(t, g.TagSet, 1)
	assert.Equal(t, "sdk", *g.TagSet[0].Value)

	mod := vpc.NewModifySecurityGroupPoliciesRequest()
	mod.SecurityGroupId = common.StringPtr(id)
	mod.SecurityGroupPolicySet = &vpc.SecurityGroupPolicySet{
		Ingress: []*vpc.SecurityGroupPolicy{
			{Protocol: common.StringPtr("TCP"), Port: common.StringPtr("80,8000-8010"), CidrBlock: common.StringPtr("10.0.0.0/8"), Action: common.StringPtr("ACCEPT"), PolicyDescription: common.StringPtr("web")},
			{Protocol: common.StringPtr("ALL"), CidrBlock: common.StringPtr("0.0.0.0/0"), Action: common.StringPtr("DROP")},
		},
		Egress: []*vpc.SecurityGroupPolicy{{Protocol: common.StringPtr("ALL"), CidrBlock: common.StringPtr("0.0.0.0/0"), Action: common.StringPtr("ACCEPT")}},
	}
	_, err = c.ModifySecurityGroupPolicies(mod)
	require.NoError(t, err)
	mod.SecurityGroupPolicySet.Version = common.StringPtr("0")
	_, err = c.ModifySecurityGroupPolicies(mod)
	assert.Equal(t, "InvalidParameterValue.VersionMismatch", sdkCode(t, err), "a stale version")

	pol := vpc.NewDescribeSecurityGroupPoliciesRequest()
	pol.SecurityGroupId = common.StringPtr(id)
	pout, err := c.DescribeSecurityGroupPolicies(pol)
	require.NoError(t, err)
	set := pout.Response.SecurityGroupPolicySet
	assert.Equal(t, "1", *set.Version)
	require.Len(t, set.Ingress, 2)
	assert.EqualValues(t, 0, *set.Ingress[0].PolicyIndex)
	assert.Equal(t, "80,8000-8010", *set.Ingress[0].Port)
	assert.Equal(t, "web", *set.Ingress[0].PolicyDescription)
	assert.Equal(t, "DROP", *set.Ingress[1].Action)
	require.Len(t, set.Egress, 1)

	del := vpc.NewDeleteSecurityGroupRequest()
	del.SecurityGroupId = common.StringPtr(id)
	_, err = c.DeleteSecurityGroup(del)
	require.NoError(t, err)
	_, err = c.DeleteSecurityGroup(del)
	assert.Equal(t, "InvalidSecurityGroupID.NotFound", sdkCode(t, err))
}
