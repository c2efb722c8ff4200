package vpc

import (
	"context"

	"github.com/stratus-cloud/stratus/cloudapi"
)

// Security group policy actions and protocols.
const (
	PolicyAccept = "ACCEPT"
	PolicyDrop   = "DROP"

	PolicyProtocolTCP  = "TCP"
	PolicyProtocolUDP  = "UDP"
	PolicyProtocolICMP = "ICMP"
	PolicyProtocolALL  = "ALL"
)

// SecurityGroup is one security group as DescribeSecurityGroups shows it.
type SecurityGroup struct {
	SecurityGroupId   string         `json:"SecurityGroupId"`
	SecurityGroupName string         `json:"SecurityGroupName"`
	SecurityGroupDesc string         `json:"SecurityGroupDesc"`
	ProjectId         string         `json:"ProjectId"`
	IsDefault         bool           `json:"IsDefault"`
	CreatedTime       string         `json:"CreatedTime"`
	TagSet            []cloudapi.Tag `json:"TagSet"`
}

// SecurityGroupPolicy is one rule. Exactly one of CidrBlock, Ipv6CidrBlock and
// SecurityGroupId names the peer; Port (a number, "a-b" or "ALL") only goes with TCP and
// UDP.
type SecurityGroupPolicy struct {
	PolicyIndex       *int64 `json:"PolicyIndex,omitempty"`
	Protocol          string `json:"Protocol,omitempty"`
	Port              string `json:"Port,omitempty"`
	CidrBlock         string `json:"CidrBlock,omitempty"`
	Ipv6CidrBlock     string `json:"Ipv6CidrBlock,omitempty"`
	SecurityGroupId   string `json:"SecurityGroupId,omitempty"`
	Action            string `json:"Action,omitempty"` // ACCEPT | DROP
	PolicyDescription string `json:"PolicyDescription,omitempty"`
	ModifyTime        string `json:"ModifyTime,omitempty"`
}

// SecurityGroupPolicySet is a group's inbound and outbound rules, each list evaluated in
// order (first match wins); Version increases with every change.
type SecurityGroupPolicySet struct {
	Version string                `json:"Version,omitempty"`
	Egress  []SecurityGroupPolicy `json:"Egress"`
	Ingress []SecurityGroupPolicy `json:"Ingress"`
}

// CreateSecurityGroupRequest creates an empty group (every direction denied until rules
// are added). GroupName at most 60 characters, GroupDescription at most 100.
type CreateSecurityGroupRequest struct {
	GroupName        string         `json:"GroupName"`
	GroupDescription string         `json:"GroupDescription"`
	ProjectId        string         `json:"ProjectId,omitempty"`
	Tags             []cloudapi.Tag `json:"Tags,omitempty"`
}

// CreateSecurityGroupResponse is the new group.
type CreateSecurityGroupResponse struct {
	SecurityGroup SecurityGroup `json:"SecurityGroup"`
	RequestId     string        `json:"RequestId"`
}

// DescribeSecurityGroupsRequest lists groups by SecurityGroupIds (at most 100) xor
// Filters (security-group-id, security-group-name, project-id, tag-key, tag:<key>).
type DescribeSecurityGroupsRequest struct {
	SecurityGroupIds []string          `json:"SecurityGroupIds,omitempty"`
	Filters          []cloudapi.Filter `json:"Filters,omitempty"`
	Offset           *string           `json:"Offset,omitempty"`
	Limit            *string           `json:"Limit,omitempty"`
}

// DescribeSecurityGroupsResponse is one page.
type DescribeSecurityGroupsResponse struct {
	SecurityGroupSet []SecurityGroup `json:"SecurityGroupSet"`
	TotalCount       uint64          `json:"TotalCount"`
	RequestId        string          `json:"RequestId"`
}

// DeleteSecurityGroupRequest deletes a group no resource is bound to.
type DeleteSecurityGroupRequest struct {
	SecurityGroupId string `json:"SecurityGroupId"`
}

// DeleteSecurityGroupResponse carries only the request id.
type DeleteSecurityGroupResponse struct {
	RequestId string `json:"RequestId"`
}

// DescribeSecurityGroupPoliciesRequest reads one group's rules.
type DescribeSecurityGroupPoliciesRequest struct {
	SecurityGroupId string `json:"SecurityGroupId"`
}

// DescribeSecurityGroupPoliciesResponse is the group's rules.
type DescribeSecurityGroupPoliciesResponse struct {
	SecurityGroupPolicySet SecurityGroupPolicySet `json:"SecurityGroupPolicySet"`
	RequestId              string                 `json:"RequestId"`
}

// ModifySecurityGroupPoliciesRequest replaces all of a group's rules: both Egress and
// Ingress must be given (an empty list clears that direction).
type ModifySecurityGroupPoliciesRequest struct {
	SecurityGroupId        string                 `json:"SecurityGroupId"`
	SecurityGroupPolicySet SecurityGroupPolicySet `json:"SecurityGroupPolicySet"`
	SortPolicys            *bool                  `json:"SortPolicys,omitempty"`
}

// ModifySecurityGroupPoliciesResponse carries only the request id.
type ModifySecurityGroupPoliciesResponse struct {
	RequestId string `json:"RequestId"`
}

func invoke[Out any](ctx context.Context, c *Client, action string, in any) (*Out, error) {
	out := new(Out)
	if err := c.c.Invoke(ctx, op(action), in, out); err != nil {
		return nil, err
	}
	return out, nil
}

// CreateSecurityGroup creates a security group.
func (c *Client) CreateSecurityGroup(ctx context.Context, in *CreateSecurityGroupRequest) (*CreateSecurityGroupResponse, error) {
	return invoke[CreateSecurityGroupResponse](ctx, c, "CreateSecurityGroup", in)
}

// DescribeSecurityGroups lists one page of security groups.
func (c *Client) DescribeSecurityGroups(ctx context.Context, in *DescribeSecurityGroupsRequest) (*DescribeSecurityGroupsResponse, error) {
	return invoke[DescribeSecurityGroupsResponse](ctx, c, "DescribeSecurityGroups", in)
}

// DeleteSecurityGroup deletes a security group.
func (c *Client) DeleteSecurityGroup(ctx context.Context, in *DeleteSecurityGroupRequest) (*DeleteSecurityGroupResponse, error) {
	return invoke[DeleteSecurityGroupResponse](ctx, c, "DeleteSecurityGroup", in)
}

// DescribeSecurityGroupPolicies reads a security group's rules.
func (c *Client) DescribeSecurityGroupPolicies(ctx context.Context, in *DescribeSecurityGroupPoliciesRequest) (*DescribeSecurityGroupPoliciesResponse, error) {
	return invoke[DescribeSecurityGroupPoliciesResponse](ctx, c, "DescribeSecurityGroupPolicies", in)
}

// ModifySecurityGroupPolicies replaces a security group's rules.
func (c *Client) ModifySecurityGroupPolicies(ctx context.Context, in *ModifySecurityGroupPoliciesRequest) (*ModifySecurityGroupPoliciesResponse, error) {
	return invoke[ModifySecurityGroupPoliciesResponse](ctx, c, "ModifySecurityGroupPolicies", in)
}
