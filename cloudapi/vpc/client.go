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

// CreateVpc creates a VPC.
func (c *Client) CreateVpc(ctx context.Context, in *CreateVpcRequest) (*CreateVpcResponse, error) {
	out := new(CreateVpcResponse)
	if err := c.c.Invoke(ctx, op("CreateVpc"), in, out); err != nil {
		return nil, err
	}
	return out, nil
}

// DescribeVpcs lists VPCs by VpcIds or Filters.
func (c *Client) DescribeVpcs(ctx context.Context, in *DescribeVpcsRequest) (*DescribeVpcsResponse, error) {
	out := new(DescribeVpcsResponse)
	if err := c.c.Invoke(ctx, op("DescribeVpcs"), in, out); err != nil {
		return nil, err
	}
	return out, nil
}

// CreateSubnet creates a subnet of a VPC in one zone.
func (c *Client) CreateSubnet(ctx context.Context, in *CreateSubnetRequest) (*CreateSubnetResponse, error) {
	out := new(CreateSubnetResponse)
	if err := c.c.Invoke(ctx, op("CreateSubnet"), in, out); err != nil {
		return nil, err
	}
	return out, nil
}

// DescribeSubnets lists subnets by SubnetIds or Filters.
func (c *Client) DescribeSubnets(ctx context.Context, in *DescribeSubnetsRequest) (*DescribeSubnetsResponse, error) {
	out := new(DescribeSubnetsResponse)
	if err := c.c.Invoke(ctx, op("DescribeSubnets"), in, out); err != nil {
		return nil, err
	}
	return out, nil
}

// CreateRouteTable creates an (empty) route table in a VPC.
func (c *Client) CreateRouteTable(ctx context.Context, in *CreateRouteTableRequest) (*CreateRouteTableResponse, error) {
	out := new(CreateRouteTableResponse)
	if err := c.c.Invoke(ctx, op("CreateRouteTable"), in, out); err != nil {
		return nil, err
	}
	return out, nil
}

// DescribeRouteTables lists route tables, with their routes, by RouteTableIds or Filters.
func (c *Client) DescribeRouteTables(ctx context.Context, in *DescribeRouteTablesRequest) (*DescribeRouteTablesResponse, error) {
	out := new(DescribeRouteTablesResponse)
	if err := c.c.Invoke(ctx, op("DescribeRouteTables"), in, out); err != nil {
		return nil, err
	}
	return out, nil
}

// CreateRoutes adds routes to a route table, all or none.
func (c *Client) CreateRoutes(ctx context.Context, in *CreateRoutesRequest) (*CreateRoutesResponse, error) {
	out := new(CreateRoutesResponse)
	if err := c.c.Invoke(ctx, op("CreateRoutes"), in, out); err != nil {
		return nil, err
	}
	return out, nil
}

// DeleteRoutes removes routes from a route table, all or none.
func (c *Client) DeleteRoutes(ctx context.Context, in *DeleteRoutesRequest) (*DeleteRoutesResponse, error) {
	out := new(DeleteRoutesResponse)
	if err := c.c.Invoke(ctx, op("DeleteRoutes"), in, out); err != nil {
		return nil, err
	}
	return out, nil
}
