package vpc_test

import (
	"context"
	"net/netip"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stratus-cloud/stratus/cloudapi"
	vpcapi "github.com/stratus-cloud/stratus/cloudapi/vpc"
	"github.com/stratus-cloud/stratus/fakecloud/api"
	"github.com/stratus-cloud/stratus/fakecloud/store"
	"github.com/stratus-cloud/stratus/fakecloud/vpc"
)

func (e *env) createSG(t *testing.T, name string, tags ...cloudapi.Tag) string {
	t.Helper()
	out, err := e.vpc.CreateSecurityGroup(context.Background(), &vpcapi.CreateSecurityGroupRequest{GroupName: name, GroupDescription: "test group", Tags: tags})
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(out.SecurityGroup.SecurityGroupId, "sg-"), out.SecurityGroup.SecurityGroupId)
	return out.SecurityGroup.SecurityGroupId
}

func accept(cidr string) vpcapi.SecurityGroupPolicy {
	return vpcapi.SecurityGroupPolicy{Protocol: "ALL", CidrBlock: cidr, Action: vpcapi.PolicyAccept}
}

func TestSecurityGroupLifecycle(t *testing.T) {
	e := newEnv(t, nil, "")
	ctx := context.Background()
	mine := e.createSG(t, "mine", cloudapi.Tag{Key: "stratus.io/cluster", Value: "c1"})
	e.createSG(t, "theirs", cloudapi.Tag{Key: "stratus.io/cluster", Value: "c2"})

	out, err := e.vpc.DescribeSecurityGroups(ctx, &vpcapi.DescribeSecurityGroupsRequest{Filters: []cloudapi.Filter{{Name: "tag:stratus.io/cluster", Values: []string{"c1"}}}})
	require.NoError(t, err)
	require.Len(t, out.SecurityGroupSet, 1)
	assert.Equal(t, mine, out.SecurityGroupSet[0].SecurityGroupId)
	assert.Equal(t, []cloudapi.Tag{{Key: "stratus.io/cluster", Value: "c1"}}, out.SecurityGroupSet[0].TagSet)

	pol, err := e.vpc.DescribeSecurityGroupPolicies(ctx, &vpcapi.DescribeSecurityGroupPoliciesRequest{SecurityGroupId: mine})
	require.NoError(t, err)
	assert.Empty(t, pol.SecurityGroupPolicySet.Ingress, "a new group has no rules: everything is denied")
	assert.Equal(t, "0", pol.SecurityGroupPolicySet.Version)

	_, err = e.vpc.ModifySecurityGroupPolicies(ctx, &vpcapi.ModifySecurityGroupPoliciesRequest{SecurityGroupId: mine, SecurityGroupPolicySet: vpcapi.SecurityGroupPolicySet{
		Ingress: []vpcapi.SecurityGroupPolicy{accept("127.77.0.0/24"), {Protocol: "TCP", Port: "80,8000-8010", CidrBlock: "10.0.0.5", Action: vpcapi.PolicyDrop}},
		Egress:  []vpcapi.SecurityGroupPolicy{accept("0.0.0.0/0")},
	}})
	require.NoError(t, err)
	pol, err = e.vpc.DescribeSecurityGroupPolicies(ctx, &vpcapi.DescribeSecurityGroupPoliciesRequest{SecurityGroupId: mine})
	require.NoError(t, err)
	require.Len(t, pol.SecurityGroupPolicySet.Ingress, 2)
	assert.Equal(t, "10.0.0.5/32", pol.SecurityGroupPolicySet.Ingress[1].CidrBlock, "a single address is a /32")
	assert.Equal(t, "1", pol.SecurityGroupPolicySet.Version)

	// A stale version is refused and changes nothing.
	_, err = e.vpc.ModifySecurityGroupPolicies(ctx, &vpcapi.ModifySecurityGroupPoliciesRequest{SecurityGroupId: mine, SecurityGroupPolicySet: vpcapi.SecurityGroupPolicySet{Version: "0"}})
	assert.Equal(t, "InvalidParameterValue.VersionMismatch", code(err))

	_, err = e.vpc.DeleteSecurityGroup(ctx, &vpcapi.DeleteSecurityGroupRequest{SecurityGroupId: mine})
	require.NoError(t, err)
	_, err = e.vpc.DescribeSecurityGroupPolicies(ctx, &vpcapi.DescribeSecurityGroupPoliciesRequest{SecurityGroupId: mine})
	assert.Equal(t, "InvalidSecurityGroupID.NotFound", code(err))
}

func TestSecurityGroupRefusals(t *testing.T) {
	e := newEnv(t, nil, "")
	ctx := context.Background()
	sg := e.createSG(t, "g")
	long := strings.Repeat("x", 61)
	for name, tc := range map[string]struct {
		call func() error
		code string
	}{
		"name missing": {func() error {
			_, err := e.vpc.CreateSecurityGroup(ctx, &vpcapi.CreateSecurityGroupRequest{GroupDescription: "d"})
			return err
		}, cloudapi.CodeMissingParameter},
		"name too long": {func() error {
			_, err := e.vpc.CreateSecurityGroup(ctx, &vpcapi.CreateSecurityGroupRequest{GroupName: long, GroupDescription: "d"})
			return err
		}, "InvalidParameterValue.TooLong"},
		"ids and filters": {func() error {
			_, err := e.vpc.DescribeSecurityGroups(ctx, &vpcapi.DescribeSecurityGroupsRequest{SecurityGroupIds: []string{sg}, Filters: []cloudapi.Filter{{Name: "tag-key", Values: []string{"a"}}}})
			return err
		}, "InvalidParameter.Coexist"},
		"port with ICMP": {func() error {
			return e.modify(sg, vpcapi.SecurityGroupPolicy{Protocol: "ICMP", Port: "80", CidrBlock: "10.0.0.0/8", Action: vpcapi.PolicyAccept})
		}, cloudapi.CodeInvalidParameterValue},
		"bad port range": {func() error {
			return e.modify(sg, vpcapi.SecurityGroupPolicy{Protocol: "TCP", Port: "90-80", CidrBlock: "10.0.0.0/8", Action: vpcapi.PolicyAccept})
		}, cloudapi.CodeInvalidParameterValue},
		"two peers": {func() error {
			return e.modify(sg, vpcapi.SecurityGroupPolicy{Protocol: "ALL", CidrBlock: "10.0.0.0/8", SecurityGroupId: sg, Action: vpcapi.PolicyAccept})
		}, cloudapi.CodeInvalidParameterValue},
		"bad action": {func() error {
			return e.modify(sg, vpcapi.SecurityGroupPolicy{Protocol: "ALL", CidrBlock: "10.0.0.0/8", Action: "ALLOW"})
		}, cloudapi.CodeInvalidParameterValue},
		"custom index": {func() error {
			return e.modify(sg, vpcapi.SecurityGroupPolicy{PolicyIndex: cloudapi.Int64(3), Protocol: "ALL", CidrBlock: "10.0.0.0/8", Action: vpcapi.PolicyAccept})
		}, cloudapi.CodeInvalidParameterValue},
		"not a cidr": {func() error {
			return e.modify(sg, vpcapi.SecurityGroupPolicy{Protocol: "ALL", CidrBlock: "10.0.0.0/33", Action: vpcapi.PolicyAccept})
		}, cloudapi.CodeInvalidParameterValue},
	} {
		t.Run(name, func(t *testing.T) {
			before := e.cloud.World().Store.Dump()["vpc.security-groups"]
			err := tc.call()
			require.Error(t, err)
			assert.Equal(t, tc.code, code(err), "%v", err)
			assert.Equal(t, before, e.cloud.World().Store.Dump()["vpc.security-groups"], "a refused call changes nothing")
		})
	}
}

func (e *env) modify(sg string, ingress ...vpcapi.SecurityGroupPolicy) error {
	_, err := e.vpc.ModifySecurityGroupPolicies(context.Background(), &vpcapi.ModifySecurityGroupPoliciesRequest{SecurityGroupId: sg,
		SecurityGroupPolicySet: vpcapi.SecurityGroupPolicySet{Ingress: ingress, Egress: []vpcapi.SecurityGroupPolicy{}}})
	return err
}

func TestSecurityGroupInUseIsNotDeleted(t *testing.T) {
	e := newEnv(t, nil, "")
	sg := e.createSG(t, "bound")
	w := e.cloud.World()
	require.NoError(t, w.Store.Update(func(tx *store.Tx) error {
		return vpc.BindSecurityGroups(tx, "lb-test0001", "SecurityGroups", []string{sg})
	}))
	_, err := e.vpc.DeleteSecurityGroup(context.Background(), &vpcapi.DeleteSecurityGroupRequest{SecurityGroupId: sg})
	assert.Equal(t, cloudapi.CodeResourceInUse, code(err), "%v", err)

	require.NoError(t, w.Store.Update(func(tx *store.Tx) error { return vpc.BindSecurityGroups(tx, "lb-test0001", "SecurityGroups", nil) }))
	_, err = e.vpc.DeleteSecurityGroup(context.Background(), &vpcapi.DeleteSecurityGroupRequest{SecurityGroupId: sg})
	require.NoError(t, err, "unbound, it can go")

	err = w.Store.Update(func(tx *store.Tx) error {
		return vpc.BindSecurityGroups(tx, "lb-test0001", "SecurityGroups", []string{"sg-nothere1"})
	})
	require.Error(t, err)
	assert.Equal(t, "InvalidSecurityGroupID.NotFound", api.AsError(err).Code)
}

func TestAllowsFirstMatchDecides(t *testing.T) {
	groups := []*vpc.SecurityGroup{
		{Ingress: []vpc.Policy{
			{Protocol: "TCP", Port: "80", CidrBlock: "10.0.0.5/32", Action: vpcapi.PolicyDrop},
			{Protocol: "TCP", Port: "80,443", CidrBlock: "10.0.0.0/24", Action: vpcapi.PolicyAccept},
		}},
		{Ingress: []vpc.Policy{
			{Protocol: "UDP", Port: "5000-5010", CidrBlock: "0.0.0.0/0", Action: vpcapi.PolicyAccept},
			{Protocol: "ALL", CidrBlock: "192.168.0.0/16", Action: vpcapi.PolicyAccept},
		}},
	}
	for name, tc := range map[string]struct {
		src   string
		proto string
		port  int
		want  bool
	}{
		"dropped before the accept": {"10.0.0.5", "TCP", 80, false},
		"accepted by the second":    {"10.0.0.6", "TCP", 443, true},
		"port outside the rule":     {"10.0.0.6", "TCP", 8080, false},
		"udp range":                 {"203.0.113.1", "UDP", 5005, true},
		"udp outside range":         {"203.0.113.1", "UDP", 5011, false},
		"all protocols":             {"192.168.3.4", "TCP", 22, true},
		"no rule: denied":           {"172.16.0.1", "TCP", 80, false},
	} {
		t.Run(name, func(t *testing.T) {
			assert.Equal(t, tc.want, vpc.Allows(groups, netip.MustParseAddr(tc.src), tc.proto, tc.port))
		})
	}
}
