package vpc

import (
	"slices"

	"github.com/stratus-cloud/stratus/cloudapi"
	"github.com/stratus-cloud/stratus/cloudapi/vpc"
	"github.com/stratus-cloud/stratus/fakecloud/api"
	"github.com/stratus-cloud/stratus/fakecloud/store"
)

func (m *Module) createSubnet(r *api.Request) (any, error) {
	in, err := api.Decode[vpc.CreateSubnetRequest](r)
	if err != nil {
		return nil, err
	}
	switch {
	case in.VpcId == "":
		return nil, api.MissingParameter("VpcId")
	case in.SubnetName == "":
		return nil, api.MissingParameter("SubnetName")
	case in.CidrBlock == "":
		return nil, api.MissingParameter("CidrBlock")
	case in.Zone == "":
		return nil, api.MissingParameter("Zone")
	case !wellFormed(in.VpcId, "vpc-"):
		return nil, api.Errorf("InvalidVpcId.Malformed", "parameter `VpcId`: %q is not a VPC ID", in.VpcId)
	}
	if err := api.MaxBytes("InvalidParameterValue.TooLong", "SubnetName", in.SubnetName, maxNameBytes); err != nil {
		return nil, err
	}
	if _, ok := m.w.Zone(in.Zone); !ok {
		return nil, api.Errorf("InvalidParameterValue.UnavailableZone", "parameter `Zone`: %q is not a zone of region %s", in.Zone, m.w.Region)
	}
	if err := validTags("Tags", in.Tags); err != nil {
		return nil, err
	}
	var sn *Subnet
	err = m.w.Store.Update(func(tx *store.Tx) error {
		v, ok := vpcsT.Get(tx, in.VpcId)
		if !ok {
			return api.NotFound("InvalidVpcId.NotFound", "VPC", in.VpcId)
		}
		p, err := m.checkSubnetCIDR(tx, v, in.CidrBlock)
		if err != nil {
			return err
		}
		n := 0
		mainID := ""
		for _, s := range subnetsT.List(tx) {
			if s.VpcId == v.VpcId {
				n++
			}
		}
		if limit := m.w.Limit("subnets-per-vpc", 100); n >= limit {
			return api.Errorf(cloudapi.CodeLimitExceeded, "VPC %s already has %d subnets, the quota is %d", v.VpcId, n, limit)
		}
		for _, rt := range routeTables.List(tx) {
			if rt.VpcId == v.VpcId && rt.Main {
				mainID = rt.RouteTableId
			}
		}
		sn = &Subnet{
			SubnetId:     api.NewID("subnet"),
			VpcId:        v.VpcId,
			Name:         in.SubnetName,
			CidrBlock:    p.String(),
			Zone:         in.Zone,
			RouteTableId: mainID,
			Tags:         slices.Clone(in.Tags),
			CreatedTime:  r.Now,
		}
		return subnetsT.Put(tx, sn.SubnetId, sn)
	})
	if err != nil {
		return nil, err
	}
	return &vpc.CreateSubnetResponse{Subnet: toWireSubnet(sn)}, nil
}

var subnetFilters = api.FilterSpec[Subnet]{
	Limits: filterLimits,
	Fields: map[string]func(*Subnet) []string{
		"subnet-id":          func(s *Subnet) []string { return one(s.SubnetId) },
		"vpc-id":             func(s *Subnet) []string { return one(s.VpcId) },
		"subnet-name":        func(s *Subnet) []string { return one(s.Name) },
		"cidr-block":         func(s *Subnet) []string { return one(s.CidrBlock) },
		"zone":               func(s *Subnet) []string { return one(s.Zone) },
		"is-default":         func(s *Subnet) []string { return boolString(s.IsDefault) },
		"is-remote-vpc-snat": func(*Subnet) []string { return boolString(false) },
		"route-table-id":     func(s *Subnet) []string { return one(s.RouteTableId) },
	},
	Tags: func(s *Subnet) []cloudapi.Tag { return s.Tags },
}

func (m *Module) describeSubnets(r *api.Request) (any, error) {
	in, err := api.Decode[vpc.DescribeSubnetsRequest](r)
	if err != nil {
		return nil, err
	}
	if err := coexist("SubnetIds", in.SubnetIds, in.Filters); err != nil {
		return nil, err
	}
	if err := ids("SubnetIds", "subnet-", "InvalidParameterValue.Malformed").Check(in.SubnetIds); err != nil {
		return nil, err
	}
	match, err := subnetFilters.Compile(in.Filters)
	if err != nil {
		return nil, err
	}
	var sel []*Subnet
	_ = m.w.Store.View(func(tx *store.Tx) error {
		sel = selectRecords(tx, subnetsT, func(s *Subnet) string { return s.SubnetId }, in.SubnetIds, match)
		return nil
	})
	pg, err := api.PageStrings(sel, in.Offset, in.Limit, api.DefaultLimit)
	if err != nil {
		return nil, err
	}
	out := &vpc.DescribeSubnetsResponse{TotalCount: int64(len(sel)), SubnetSet: make([]vpc.Subnet, 0, len(pg))}
	for _, s := range pg {
		out.SubnetSet = append(out.SubnetSet, toWireSubnet(s))
	}
	return out, nil
}

func toWireSubnet(s *Subnet) vpc.Subnet {
	return vpc.Subnet{
		VpcId:                   s.VpcId,
		SubnetId:                s.SubnetId,
		SubnetName:              s.Name,
		CidrBlock:               s.CidrBlock,
		IsDefault:               s.IsDefault,
		Zone:                    s.Zone,
		RouteTableId:            s.RouteTableId,
		CreatedTime:             vpcTime(s.CreatedTime),
		AvailableIpAddressCount: AvailableIPs(s),
		TotalIpAddressCount:     TotalIPs(s),
		NetworkAclId:            "",
		TagSet:                  nonNil(s.Tags),
	}
}
