package vpc

import (
	"net/netip"
	"slices"

	"github.com/stratus-cloud/stratus/cloudapi"
	"github.com/stratus-cloud/stratus/cloudapi/vpc"
	"github.com/stratus-cloud/stratus/fakecloud/api"
	"github.com/stratus-cloud/stratus/fakecloud/store"
)

func (m *Module) createVpc(r *api.Request) (any, error) {
	in, err := api.Decode[vpc.CreateVpcRequest](r)
	if err != nil {
		return nil, err
	}
	switch {
	case in.VpcName == "":
		return nil, api.MissingParameter("VpcName")
	case in.CidrBlock == "":
		return nil, api.MissingParameter("CidrBlock")
	}
	if err := api.MaxBytes("InvalidParameterValue.TooLong", "VpcName", in.VpcName, maxNameBytes); err != nil {
		return nil, err
	}
	cidr, err := vpcCIDR(in.CidrBlock)
	if err != nil {
		return nil, err
	}
	multicast := false
	switch in.EnableMulticast {
	case "", "false":
	case "true":
		multicast = true
	default:
		return nil, api.InvalidValue("EnableMulticast", "must be \"true\" or \"false\", got %q", in.EnableMulticast)
	}
	if len(in.DnsServers) > maxDNSServers {
		return nil, api.Errorf("InvalidParameterValue.LimitExceeded", "parameter `DnsServers` takes at most %d addresses, got %d", maxDNSServers, len(in.DnsServers))
	}
	for i, d := range in.DnsServers {
		if a, err := netip.ParseAddr(d); err != nil || !a.Is4() {
			return nil, api.Errorf("InvalidParameterValue.Malformed", "parameter `DnsServers.%d`: %q is not an IPv4 address", i, d)
		}
	}
	if err := validTags("Tags", in.Tags); err != nil {
		return nil, err
	}
	v := &VPC{
		VpcId:           api.NewID("vpc"),
		Name:            in.VpcName,
		CidrBlock:       cidr.String(),
		EnableMulticast: multicast,
		DnsServers:      slices.Clone(in.DnsServers),
		DomainName:      in.DomainName,
		Tags:            slices.Clone(in.Tags),
		CreatedTime:     r.Now,
	}
	if len(v.DnsServers) == 0 {
		v.DnsServers = defaultDNS()
	}
	err = m.w.Store.Update(func(tx *store.Tx) error {
		if limit := m.w.Limit("vpcs-per-region", 20); vpcsT.Len(tx) >= limit {
			return api.Errorf(cloudapi.CodeLimitExceeded, "region %s already has %d VPCs, the quota is %d", m.w.Region, vpcsT.Len(tx), limit)
		}
		if err := vpcsT.Put(tx, v.VpcId, v); err != nil {
			return err
		}
		rt := &RouteTable{RouteTableId: api.NewID("rtb"), VpcId: v.VpcId, Name: "default", Main: true, CreatedTime: r.Now}
		return routeTables.Put(tx, rt.RouteTableId, rt)
	})
	if err != nil {
		return nil, err
	}
	return &vpc.CreateVpcResponse{Vpc: toWireVpc(v)}, nil
}

var vpcFilters = api.FilterSpec[VPC]{
	Limits: filterLimits,
	Fields: map[string]func(*VPC) []string{
		"vpc-id":     func(v *VPC) []string { return one(v.VpcId) },
		"vpc-name":   func(v *VPC) []string { return one(v.Name) },
		"cidr-block": func(v *VPC) []string { return one(v.CidrBlock) },
		"is-default": func(v *VPC) []string { return boolString(v.IsDefault) },
	},
	Tags: func(v *VPC) []cloudapi.Tag { return v.Tags },
}

func (m *Module) describeVpcs(r *api.Request) (any, error) {
	in, err := api.Decode[vpc.DescribeVpcsRequest](r)
	if err != nil {
		return nil, err
	}
	if err := coexist("VpcIds", in.VpcIds, in.Filters); err != nil {
		return nil, err
	}
	if err := ids("VpcIds", "vpc-", "InvalidVpcId.Malformed").Check(in.VpcIds); err != nil {
		return nil, err
	}
	match, err := vpcFilters.Compile(in.Filters)
	if err != nil {
		return nil, err
	}
	var sel []*VPC
	_ = m.w.Store.View(func(tx *store.Tx) error {
		sel = selectRecords(tx, vpcsT, func(v *VPC) string { return v.VpcId }, in.VpcIds, match)
		return nil
	})
	pg, err := api.PageStrings(sel, in.Offset, in.Limit, api.DefaultLimit)
	if err != nil {
		return nil, err
	}
	out := &vpc.DescribeVpcsResponse{TotalCount: int64(len(sel)), VpcSet: make([]vpc.Vpc, 0, len(pg))}
	for _, v := range pg {
		out.VpcSet = append(out.VpcSet, toWireVpc(v))
	}
	return out, nil
}

// selectRecords returns the records named by ids (in creation order; unknown IDs are
// skipped, as the real service does) or, without ids, every record that matches.
func selectRecords[T any](tx *store.Tx, t *store.Table[T], idOf func(*T) string, ids []string, match api.Filters[T]) []*T {
	var want map[string]bool
	if len(ids) > 0 {
		want = make(map[string]bool, len(ids))
		for _, id := range ids {
			want[id] = true
		}
	}
	var out []*T
	for _, v := range t.List(tx) {
		if (want == nil || want[idOf(v)]) && match.Match(v) {
			out = append(out, v)
		}
	}
	return out
}

func toWireVpc(v *VPC) vpc.Vpc {
	return vpc.Vpc{
		VpcName:         v.Name,
		VpcId:           v.VpcId,
		CidrBlock:       v.CidrBlock,
		IsDefault:       v.IsDefault,
		EnableMulticast: v.EnableMulticast,
		CreatedTime:     vpcTime(v.CreatedTime),
		DnsServerSet:    nonNil(v.DnsServers),
		DomainName:      v.DomainName,
		EnableDhcp:      true,
		TagSet:          nonNil(v.Tags),
	}
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return slices.Clone(s)
}
