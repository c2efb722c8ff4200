package clb

import (
	"net/netip"
	"slices"

	"github.com/stratus-cloud/stratus/cloudapi"
	"github.com/stratus-cloud/stratus/cloudapi/clb"
	vpcapi "github.com/stratus-cloud/stratus/cloudapi/vpc"
	"github.com/stratus-cloud/stratus/fakecloud/api"
	"github.com/stratus-cloud/stratus/fakecloud/clb/dataplane"
	"github.com/stratus-cloud/stratus/fakecloud/store"
	"github.com/stratus-cloud/stratus/fakecloud/vpc"
)

// maxSecurityGroupsPerLB is how many groups one load balancer may be bound to.
const maxSecurityGroupsPerLB = 50

// setLoadBalancerSecurityGroups binds exactly the given groups (set semantics) to a
// public load balancer. As the API documents, private (INTERNAL) load balancers do not
// take security groups.
func (m *Module) setLoadBalancerSecurityGroups(r *api.Request) (any, error) {
	in, err := api.Decode[clb.SetLoadBalancerSecurityGroupsRequest](r)
	if err != nil {
		return nil, err
	}
	if len(in.SecurityGroups) > maxSecurityGroupsPerLB {
		return nil, api.Errorf(clb.CodeLength, "parameter `SecurityGroups`: at most %d security groups per load balancer, got %d", maxSecurityGroupsPerLB, len(in.SecurityGroups))
	}
	seen := map[string]bool{}
	for _, id := range in.SecurityGroups {
		if seen[id] {
			return nil, api.Errorf(clb.CodeDuplicate, "parameter `SecurityGroups`: %s appears twice", id)
		}
		seen[id] = true
	}
	err = m.writeLB(r, in.LoadBalancerId, func(tx *store.Tx, lb *LoadBalancer) error {
		if lb.Type != clb.TypeOpen {
			return api.Errorf(cloudapi.CodeUnsupportedOperation, "load balancer %s is INTERNAL: private network load balancers do not support security groups", lb.LoadBalancerId)
		}
		if err := vpc.BindSecurityGroups(tx, lb.LoadBalancerId, "SecurityGroups", in.SecurityGroups); err != nil {
			return err
		}
		lb.SecurityGroups = slices.Clone(in.SecurityGroups)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &clb.SetLoadBalancerSecurityGroupsResponse{}, nil
}

// sourceRules are the inbound rules of lb's security groups that apply to a listener
// (protocol, port), in evaluation order, for the data plane. nil means no group is bound:
// every source is accepted.
func (m *Module) sourceRules(tx *store.Tx, lb *LoadBalancer, protocol string, port int64) []dataplane.SourceRule {
	if len(lb.SecurityGroups) == 0 {
		return nil
	}
	rules := []dataplane.SourceRule{} // bound: deny unless a rule accepts
	for _, id := range lb.SecurityGroups {
		g, ok := vpc.GetSecurityGroup(tx, id)
		if !ok {
			continue
		}
		for _, p := range g.Ingress {
			pfx, err := netip.ParsePrefix(p.CidrBlock)
			if err != nil {
				continue
			}
			if !p.Covers(protocol, int(port)) {
				continue
			}
			rules = append(rules, dataplane.SourceRule{Prefix: pfx, Accept: p.Action == vpcapi.PolicyAccept})
		}
	}
	return rules
}
