package clb

import (
	"context"

	"github.com/stratus-cloud/stratus/cloudapi"
)

// Service and Version name the clb API.
const (
	Service = "clb"
	Version = "2018-03-17"
)

func op(action string) cloudapi.Operation {
	return cloudapi.Operation{Service: Service, Version: Version, Action: action}
}

// Client sends clb calls through a *cloudapi.Client (signing, retries, rate limits).
type Client struct{ c *cloudapi.Client }

// New wraps c.
func New(c *cloudapi.Client) *Client { return &Client{c: c} }

func invoke[Out any](ctx context.Context, c *Client, action string, in any) (*Out, error) {
	out := new(Out)
	if err := c.c.Invoke(ctx, op(action), in, out); err != nil {
		return nil, err
	}
	return out, nil
}

// CreateLoadBalancer creates load balancers; the answer's RequestId is the task to wait for.
func (c *Client) CreateLoadBalancer(ctx context.Context, in *CreateLoadBalancerRequest) (*CreateLoadBalancerResponse, error) {
	return invoke[CreateLoadBalancerResponse](ctx, c, "CreateLoadBalancer", in)
}

// DescribeLoadBalancers lists one page of load balancers.
func (c *Client) DescribeLoadBalancers(ctx context.Context, in *DescribeLoadBalancersRequest) (*DescribeLoadBalancersResponse, error) {
	return invoke[DescribeLoadBalancersResponse](ctx, c, "DescribeLoadBalancers", in)
}

// DeleteLoadBalancer deletes load balancers with their listeners and targets.
func (c *Client) DeleteLoadBalancer(ctx context.Context, in *DeleteLoadBalancerRequest) (*DeleteLoadBalancerResponse, error) {
	return invoke[DeleteLoadBalancerResponse](ctx, c, "DeleteLoadBalancer", in)
}

// CreateListener creates one listener per port.
func (c *Client) CreateListener(ctx context.Context, in *CreateListenerRequest) (*CreateListenerResponse, error) {
	return invoke[CreateListenerResponse](ctx, c, "CreateListener", in)
}

// DescribeListeners lists the listeners of a load balancer.
func (c *Client) DescribeListeners(ctx context.Context, in *DescribeListenersRequest) (*DescribeListenersResponse, error) {
	return invoke[DescribeListenersResponse](ctx, c, "DescribeListeners", in)
}

// ModifyListener changes a listener's settings.
func (c *Client) ModifyListener(ctx context.Context, in *ModifyListenerRequest) (*ModifyListenerResponse, error) {
	return invoke[ModifyListenerResponse](ctx, c, "ModifyListener", in)
}

// DeleteListener deletes a listener and its targets.
func (c *Client) DeleteListener(ctx context.Context, in *DeleteListenerRequest) (*DeleteListenerResponse, error) {
	return invoke[DeleteListenerResponse](ctx, c, "DeleteListener", in)
}

// RegisterTargets binds up to 20 targets to a listener.
func (c *Client) RegisterTargets(ctx context.Context, in *RegisterTargetsRequest) (*RegisterTargetsResponse, error) {
	return invoke[RegisterTargetsResponse](ctx, c, "RegisterTargets", in)
}

// DeregisterTargets unbinds up to 20 targets from a listener.
func (c *Client) DeregisterTargets(ctx context.Context, in *DeregisterTargetsRequest) (*DeregisterTargetsResponse, error) {
	return invoke[DeregisterTargetsResponse](ctx, c, "DeregisterTargets", in)
}

// BatchRegisterTargets binds up to 500 targets across the listeners of a load balancer.
func (c *Client) BatchRegisterTargets(ctx context.Context, in *BatchRegisterTargetsRequest) (*BatchRegisterTargetsResponse, error) {
	return invoke[BatchRegisterTargetsResponse](ctx, c, "BatchRegisterTargets", in)
}

// BatchDeregisterTargets unbinds up to 500 targets across the listeners of a load balancer.
func (c *Client) BatchDeregisterTargets(ctx context.Context, in *BatchDeregisterTargetsRequest) (*BatchDeregisterTargetsResponse, error) {
	return invoke[BatchDeregisterTargetsResponse](ctx, c, "BatchDeregisterTargets", in)
}

// DescribeTargets lists the targets of a load balancer's listeners.
func (c *Client) DescribeTargets(ctx context.Context, in *DescribeTargetsRequest) (*DescribeTargetsResponse, error) {
	return invoke[DescribeTargetsResponse](ctx, c, "DescribeTargets", in)
}

// DescribeTaskStatus reports the state of the task a write started.
func (c *Client) DescribeTaskStatus(ctx context.Context, in *DescribeTaskStatusRequest) (*DescribeTaskStatusResponse, error) {
	return invoke[DescribeTaskStatusResponse](ctx, c, "DescribeTaskStatus", in)
}

// SetLoadBalancerSecurityGroups binds exactly the given security groups to a public load
// balancer (set semantics).
func (c *Client) SetLoadBalancerSecurityGroups(ctx context.Context, in *SetLoadBalancerSecurityGroupsRequest) (*SetLoadBalancerSecurityGroupsResponse, error) {
	return invoke[SetLoadBalancerSecurityGroupsResponse](ctx, c, "SetLoadBalancerSecurityGroups", in)
}

// DeleteLoadBalancerListeners deletes several listeners of one load balancer in one task.
func (c *Client) DeleteLoadBalancerListeners(ctx context.Context, in *DeleteLoadBalancerListenersRequest) (*DeleteLoadBalancerListenersResponse, error) {
	return invoke[DeleteLoadBalancerListenersResponse](ctx, c, "DeleteLoadBalancerListeners", in)
}

// BatchModifyTargetWeight changes the weights of up to 500 targets across listeners.
func (c *Client) BatchModifyTargetWeight(ctx context.Context, in *BatchModifyTargetWeightRequest) (*BatchModifyTargetWeightResponse, error) {
	return invoke[BatchModifyTargetWeightResponse](ctx, c, "BatchModifyTargetWeight", in)
}
