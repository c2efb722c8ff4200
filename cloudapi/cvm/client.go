// Package cvm is the typed client of the cloud's CVM (virtual machine) service, API version
// 2017-03-12: one method per action, and the request and response wire types that
// fakecloud decodes as well. It only builds requests; signing, retries and rate limits
// belong to the cloudapi.Client underneath.
package cvm

import (
	"context"

	"github.com/stratus-cloud/stratus/cloudapi"
)

// Service and Version name the API this package speaks.
const (
	Service = "cvm"
	Version = "2017-03-12"
)

// Client calls the CVM actions through a cloudapi.Client.
type Client struct{ c *cloudapi.Client }

// New wraps c.
func New(c *cloudapi.Client) *Client { return &Client{c: c} }

func op(action string) cloudapi.Operation {
	return cloudapi.Operation{Service: Service, Version: Version, Action: action}
}

// RunInstances creates InstanceCount instances. A request that carries the same
// ClientToken as an earlier one answers that call's instance IDs and creates nothing.
func (c *Client) RunInstances(ctx context.Context, in *RunInstancesRequest) (*RunInstancesResponse, error) {
	out := new(RunInstancesResponse)
	if err := c.c.Invoke(ctx, op("RunInstances"), in, out); err != nil {
		return nil, err
	}
	return out, nil
}

// DescribeInstances lists instances by InstanceIds or by Filters (not both).
func (c *Client) DescribeInstances(ctx context.Context, in *DescribeInstancesRequest) (*DescribeInstancesResponse, error) {
	out := new(DescribeInstancesResponse)
	if err := c.c.Invoke(ctx, op("DescribeInstances"), in, out); err != nil {
		return nil, err
	}
	return out, nil
}

// StopInstances shuts RUNNING instances down (asynchronously: STOPPING, then STOPPED).
func (c *Client) StopInstances(ctx context.Context, in *StopInstancesRequest) (*StopInstancesResponse, error) {
	out := new(StopInstancesResponse)
	if err := c.c.Invoke(ctx, op("StopInstances"), in, out); err != nil {
		return nil, err
	}
	return out, nil
}

// StartInstances boots STOPPED instances (STARTING, then RUNNING).
func (c *Client) StartInstances(ctx context.Context, in *StartInstancesRequest) (*StartInstancesResponse, error) {
	out := new(StartInstancesResponse)
	if err := c.c.Invoke(ctx, op("StartInstances"), in, out); err != nil {
		return nil, err
	}
	return out, nil
}

// TerminateInstances returns instances (TERMINATING, then gone).
func (c *Client) TerminateInstances(ctx context.Context, in *TerminateInstancesRequest) (*TerminateInstancesResponse, error) {
	out := new(TerminateInstancesResponse)
	if err := c.c.Invoke(ctx, op("TerminateInstances"), in, out); err != nil {
		return nil, err
	}
	return out, nil
}

// DescribeZones lists the availability zones of the client's region.
func (c *Client) DescribeZones(ctx context.Context, in *DescribeZonesRequest) (*DescribeZonesResponse, error) {
	if in == nil {
		in = &DescribeZonesRequest{}
	}
	out := new(DescribeZonesResponse)
	if err := c.c.Invoke(ctx, op("DescribeZones"), in, out); err != nil {
		return nil, err
	}
	return out, nil
}

// DescribeInstanceTypeConfigs lists the instance types sold in the region.
func (c *Client) DescribeInstanceTypeConfigs(ctx context.Context, in *DescribeInstanceTypeConfigsRequest) (*DescribeInstanceTypeConfigsResponse, error) {
	if in == nil {
		in = &DescribeInstanceTypeConfigsRequest{}
	}
	out := new(DescribeInstanceTypeConfigsResponse)
	if err := c.c.Invoke(ctx, op("DescribeInstanceTypeConfigs"), in, out); err != nil {
		return nil, err
	}
	return out, nil
}
