package clbbackend

import (
	"cmp"
	"context"
	"fmt"
	"net/netip"
	"slices"

	"k8s.io/apimachinery/pkg/types"

	"github.com/stratus-cloud/stratus/cloudapi"
	"github.com/stratus-cloud/stratus/cloudapi/clb"
	"github.com/stratus-cloud/stratus/cloudapi/vpc"
	"github.com/stratus-cloud/stratus/loadbalancer"
)

// loadBalancerSourceRanges are enforced with a VPC security group per Service: its
// inbound rules accept exactly the ranges, and a group bound to a CLB denies whatever no
// rule accepts. The group is tagged like the load balancer, so only the Service's own
// group is ever changed or deleted; groups others bound stay bound, in front of it.

// ownedGroup is a security group this cluster made for a Service.
type ownedGroup struct {
	uid  types.UID
	read bool // its rules are being read (complete reads each group once)
}

// ownedGroups returns this cluster's security groups by id: all of them, or those of ids.
func (b *Backend) ownedGroups(ctx context.Context, ids []string) (map[string]*ownedGroup, error) {
	out := map[string]*ownedGroup{}
	add := func(set []vpc.SecurityGroup) {
		for _, g := range set {
			if uid, ok := ownerUID(g.TagSet, b.cfg.ClusterID); ok {
				out[g.SecurityGroupId] = &ownedGroup{uid: uid}
			}
		}
	}
	if ids != nil {
		for chunk := range slices.Chunk(ids, maxPageLimit) {
			res, err := b.cfg.VPC.DescribeSecurityGroups(ctx, &vpc.DescribeSecurityGroupsRequest{SecurityGroupIds: chunk, Limit: vpc.Count(maxPageLimit)})
			if err != nil {
				return nil, fmt.Errorf("describe security groups %v: %w", chunk, err)
			}
			add(res.SecurityGroupSet)
		}
		return out, nil
	}
	for offset := int64(0); ; {
		res, err := b.cfg.VPC.DescribeSecurityGroups(ctx, &vpc.DescribeSecurityGroupsRequest{
			Filters: []cloudapi.Filter{{Name: "tag:" + loadbalancer.TagCluster, Values: []string{b.cfg.ClusterID}}},
			Offset:  vpc.Count(offset), Limit: vpc.Count(maxPageLimit),
		})
		if err != nil {
			return nil, fmt.Errorf("describe security groups tagged %s=%s: %w", loadbalancer.TagCluster, b.cfg.ClusterID, err)
		}
		add(res.SecurityGroupSet)
		offset += int64(len(res.SecurityGroupSet))
		if len(res.SecurityGroupSet) == 0 || offset >= int64(res.TotalCount) {
			return out, nil
		}
	}
}

// groupRanges reads the ranges a group Stratus made accepts.
func (b *Backend) groupRanges(ctx context.Context, id string) ([]netip.Prefix, error) {
	out, err := b.cfg.VPC.DescribeSecurityGroupPolicies(ctx, &vpc.DescribeSecurityGroupPoliciesRequest{SecurityGroupId: id})
	if err != nil {
		return nil, fmt.Errorf("describe rules of security group %s: %w", id, err)
	}
	var ranges []netip.Prefix
	for _, p := range out.SecurityGroupPolicySet.Ingress {
		if pfx, err := netip.ParsePrefix(p.CidrBlock); err == nil && p.Action == vpc.PolicyAccept {
			ranges = append(ranges, pfx.Masked())
		}
	}
	slices.SortFunc(ranges, func(a, b netip.Prefix) int {
		return cmp.Or(a.Addr().Compare(b.Addr()), cmp.Compare(a.Bits(), b.Bits()))
	})
	return ranges, nil
}

// policies are the rules of a group that accepts exactly ranges. Outbound is open: CLB
// security groups filter what reaches the load balancer, not its answers.
func policies(ranges []netip.Prefix) vpc.SecurityGroupPolicySet {
	set := vpc.SecurityGroupPolicySet{
		Ingress: []vpc.SecurityGroupPolicy{},
		Egress:  []vpc.SecurityGroupPolicy{{Protocol: vpc.PolicyProtocolALL, CidrBlock: "0.0.0.0/0", Action: vpc.PolicyAccept}},
	}
	for _, r := range ranges {
		set.Ingress = append(set.Ingress, vpc.SecurityGroupPolicy{Protocol: vpc.PolicyProtocolALL, CidrBlock: r.String(), Action: vpc.PolicyAccept,
			PolicyDescription: "loadBalancerSourceRanges"})
	}
	return set
}

// SetSourceRanges creates, updates or removes owner's security group on lb.
func (b *Backend) SetSourceRanges(ctx context.Context, lb *loadbalancer.LoadBalancer, owner loadbalancer.Owner, ranges []netip.Prefix) ([]loadbalancer.Filter, error) {
	if len(ranges) > maxSecurityGroupPolicies {
		return nil, fmt.Errorf("%d source ranges: a security group holds at most %d rules", len(ranges), maxSecurityGroupPolicies)
	}
	var ours *loadbalancer.Filter
	var others []loadbalancer.Filter
	for i := range lb.Filters {
		if lb.Filters[i].OwnerUID == owner.UID {
			ours = &lb.Filters[i]
		} else {
			others = append(others, lb.Filters[i])
		}
	}
	ids := func(fs []loadbalancer.Filter) []string {
		out := make([]string, len(fs))
		for i, f := range fs {
			out[i] = f.ID
		}
		return out
	}
	switch {
	case len(ranges) == 0 && ours == nil:
		return lb.Filters, nil
	case len(ranges) == 0:
		if err := b.bindGroups(ctx, lb.ID, ids(others)); err != nil {
			return nil, err
		}
		if err := b.tasks.settle(ctx, lb.ID); err != nil {
			return nil, err
		}
		return others, b.deleteGroup(ctx, ours.ID)
	case ours != nil:
		if _, err := b.cfg.VPC.ModifySecurityGroupPolicies(ctx, &vpc.ModifySecurityGroupPoliciesRequest{SecurityGroupId: ours.ID, SecurityGroupPolicySet: policies(ranges)}); err != nil {
			return nil, fmt.Errorf("ModifySecurityGroupPolicies %s: %w", ours.ID, err)
		}
		return append(others, loadbalancer.Filter{ID: ours.ID, OwnerUID: owner.UID, Ranges: slices.Clone(ranges)}), nil
	}
	if len(others)+1 > maxSecurityGroupsPerLB {
		return nil, fmt.Errorf("load balancer %s already has %d security groups, the most it can have", lb.ID, len(others))
	}
	id, err := b.createGroup(ctx, owner, ranges)
	if err != nil {
		return nil, err
	}
	// Groups others bound come first, so the Service's ranges only narrow what they allow.
	if err := b.bindGroups(ctx, lb.ID, append(ids(others), id)); err != nil {
		_ = b.deleteGroup(ctx, id) // not bound: leave nothing behind
		return nil, err
	}
	return append(others, loadbalancer.Filter{ID: id, OwnerUID: owner.UID, Ranges: slices.Clone(ranges)}), nil
}

func (b *Backend) createGroup(ctx context.Context, owner loadbalancer.Owner, ranges []netip.Prefix) (string, error) {
	name := "stratus-" + owner.Service.Namespace + "-" + owner.Service.Name
	if len(name) > maxSecurityGroupName {
		name = name[:maxSecurityGroupName]
	}
	desc := fmt.Sprintf("loadBalancerSourceRanges of Service %s in cluster %s", owner.Service, b.cfg.ClusterID)
	if len(desc) > maxSecurityGroupDescription {
		desc = desc[:maxSecurityGroupDescription]
	}
	out, err := b.cfg.VPC.CreateSecurityGroup(ctx, &vpc.CreateSecurityGroupRequest{GroupName: name, GroupDescription: desc, Tags: []cloudapi.Tag{
		{Key: loadbalancer.TagCluster, Value: b.cfg.ClusterID},
		{Key: loadbalancer.TagService, Value: owner.Service.String()},
		{Key: loadbalancer.TagServiceUID, Value: string(owner.UID)},
	}})
	if err != nil {
		return "", fmt.Errorf("CreateSecurityGroup: %w", err)
	}
	id := out.SecurityGroup.SecurityGroupId
	if _, err := b.cfg.VPC.ModifySecurityGroupPolicies(ctx, &vpc.ModifySecurityGroupPoliciesRequest{SecurityGroupId: id, SecurityGroupPolicySet: policies(ranges)}); err != nil {
		_ = b.deleteGroup(ctx, id)
		return "", fmt.Errorf("ModifySecurityGroupPolicies %s: %w", id, err)
	}
	return id, nil
}

func (b *Backend) bindGroups(ctx context.Context, lbID string, groups []string) error {
	err := b.tasks.write(ctx, lbID, func(ctx context.Context) (string, error) {
		out, err := b.cfg.CLB.SetLoadBalancerSecurityGroups(ctx, &clb.SetLoadBalancerSecurityGroupsRequest{LoadBalancerId: lbID, SecurityGroups: groups})
		if err != nil {
			return "", err
		}
		return out.RequestId, nil
	})
	if err != nil {
		return fmt.Errorf("SetLoadBalancerSecurityGroups %v: %w", groups, classify(err))
	}
	return nil
}

func (b *Backend) deleteGroup(ctx context.Context, id string) error {
	_, err := b.cfg.VPC.DeleteSecurityGroup(ctx, &vpc.DeleteSecurityGroupRequest{SecurityGroupId: id})
	if err != nil && !cloudapi.IsNotFound(err) {
		return fmt.Errorf("DeleteSecurityGroup %s: %w", id, err)
	}
	return nil
}
