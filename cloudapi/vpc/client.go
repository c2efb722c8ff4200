// Package vpc is the typed client of the cloud's VPC service, API version 2017-03-12:
// VPCs, subnets, route tables and routes. It only builds requests; signing, retries and
// rate limits belong to the cloudapi.Client underneath. fakecloud decodes the same types.
package vpc

import (
	"context"

	"github.com/stratus-cloud/stratus/cloudapi"
)

// Service and Version name the API this package speaks.
const (
	Service = "vpc"
	Version = "2017-03-12"
)

// Client calls the VPC actions through a cloudapi.Client.
type Client struct{ c *cloudapi.Client }

// New wraps c.
func New(c *cloudapi.Client) *Client { return &Client{c: c} }

func op(action string) cloudapi.Operation {
	return cloudapi.Operation{Service: Service, Version: Version, Action: action}
}

func invoke[Out any](ctx context.Context, c *Client, action string, in any) (*Out, error) {
	out := new(Out)
	if err := c.c.Invoke(ctx, op(action), in, out); err != nil {
		return nil, err
	}
	return out, nil
}

// CreateVpc creates a VPC.
func (c *Client) CreateVpc(ctx context.Context, in *CreateVpcRequest) (*CreateVpcResponse, error) {
	return invoke[CreateVpcResponse](ctx, c, "CreateVpc", in)
}

// DescribeVpcs lists VPCs by VpcIds or Filters.
func (c *Client) DescribeVpcs(ctx context.Context, in *DescribeVpcsRequest) (*DescribeVpcsResponse, error) {
	return invoke[DescribeVpcsResponse](ctx, c, "DescribeVpcs", in)
}

// CreateSubnet creates a subnet of a VPC in one zone.
func (c *Client) CreateSubnet(ctx context.Context, in *CreateSubnetRequest) (*CreateSubnetResponse, error) {
	return invoke[CreateSubnetResponse](ctx, c, "CreateSubnet", in)
}

// DescribeSubnets lists subnets by SubnetIds or Filters.
func (c *Client) DescribeSubnets(ctx context.Context, in *DescribeSubnetsRequest) (*DescribeSubnetsResponse, error) {
	return invoke[DescribeSubnetsResponse](ctx, c, "DescribeSubnets", in)
}

// CreateRouteTable creates an (empty) route table in a VPC.
func (c *Client) CreateRouteTable(ctx context.Context, in *CreateRouteTableRequest) (*CreateRouteTableResponse, error) {
	return invoke[CreateRouteTableResponse](ctx, c, "CreateRouteTable", in)
}

// DescribeRouteTables lists route tables, with their routes, by RouteTableIds or Filters.
func (c *Client) DescribeRouteTables(ctx context.Context, in *DescribeRouteTablesRequest) (*DescribeRouteTablesResponse, error) {
	return invoke[DescribeRouteTablesResponse](ctx, c, "DescribeRouteTables", in)
}

// CreateRoutes adds routes to a route table, all or none.
func (c *Client) CreateRoutes(ctx context.Context, in *CreateRoutesRequest) (*CreateRoutesResponse, error) {
	return invoke[CreateRoutesResponse](ctx, c, "CreateRoutes", in)
}

// DeleteRoutes removes routes from a route table, all or none.
func (c *Client) DeleteRoutes(ctx context.Context, in *DeleteRoutesRequest) (*DeleteRoutesResponse, error) {
	return invoke[DeleteRoutesResponse](ctx, c, "DeleteRoutes", in)
}
