package qcloud

import (
	"context"

	"github.com/stratus-cloud/stratus/cloudapi"
	"github.com/stratus-cloud/stratus/cloudapi/cvm"
	"github.com/stratus-cloud/stratus/cloudprovider/instancelookup"
)

// cvmAPI binds the instance lookups to DescribeInstances: ids go as InstanceIds (an id
// that does not exist is an empty answer, not an error for the whole batch), everything
// else as Filters (vpc-id, private-ip-address); the API never takes both in one request,
// and instancelookup never asks for both.
type cvmAPI struct{ c *cvm.Client }

func (a cvmAPI) DescribeInstances(ctx context.Context, q instancelookup.Query) (instancelookup.Page, error) {
	req := &cvm.DescribeInstancesRequest{Offset: cloudapi.Int64(int64(q.Offset)), Limit: cloudapi.Int64(int64(q.Limit))}
	if len(q.IDs) > 0 {
		req.InstanceIds = q.IDs
	}
	if q.VpcID != "" {
		req.Filters = append(req.Filters, cloudapi.Filter{Name: "vpc-id", Values: []string{q.VpcID}})
	}
	if len(q.PrivateIPs) > 0 {
		req.Filters = append(req.Filters, cloudapi.Filter{Name: "private-ip-address", Values: q.PrivateIPs})
	}
	resp, err := a.c.DescribeInstances(ctx, req)
	if err != nil {
		return instancelookup.Page{}, err
	}
	p := instancelookup.Page{Total: int(resp.TotalCount), Instances: make([]instancelookup.Instance, 0, len(resp.InstanceSet))}
	for _, in := range resp.InstanceSet {
		private := in.PrivateIpAddresses
		if len(private) == 0 {
			private = in.VirtualPrivateCloud.PrivateIpAddresses
		}
		p.Instances = append(p.Instances, instancelookup.Instance{
			ID:         in.InstanceId,
			State:      in.InstanceState,
			Type:       in.InstanceType,
			Zone:       in.Placement.Zone,
			VpcID:      in.VirtualPrivateCloud.VpcId,
			Name:       in.InstanceName,
			PrivateIPs: private,
			PublicIPs:  in.PublicIpAddresses,
		})
	}
	return p, nil
}
