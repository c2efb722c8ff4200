package vpc

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/stratus-cloud/stratus/cloudapi/vpc"
	"github.com/stratus-cloud/stratus/fakecloud/api"
	"github.com/stratus-cloud/stratus/fakecloud/store"
)

// Module serves the VPC API (and, with Options.Router, keeps a router data plane in step
// with the route tables).
type Module struct {
	w      *api.World
	router Router
	rs     routerState
}

// New registers the VPC tables in w's store and returns the module.
func New(w *api.World) (api.Module, error) { return WithOptions(Options{})(w) }

// SeedKey is the seed section the VPC module owns: the VPCs with their subnets and route
// tables.
const SeedKey = "vpcs"

// SeedVPC declares a VPC with its subnets and route tables.
type SeedVPC struct {
	VpcID       string           `json:"vpcId"`
	Name        string           `json:"name,omitempty"`
	CidrBlock   string           `json:"cidrBlock"`
	Subnets     []SeedSubnet     `json:"subnets,omitempty"`
	RouteTables []SeedRouteTable `json:"routeTables,omitempty"`
}

// SeedSubnet is one subnet of a VPC, in one zone.
type SeedSubnet struct {
	SubnetID  string `json:"subnetId"`
	Name      string `json:"name,omitempty"`
	CidrBlock string `json:"cidrBlock"`
	Zone      string `json:"zone"`
}

// SeedRouteTable is one route table; the VPC's first one is its default when none says so.
type SeedRouteTable struct {
	RouteTableID string `json:"routeTableId"`
	Name         string `json:"name,omitempty"`
	Default      bool   `json:"default,omitempty"`
}

// SetSeed puts vpcs into s's VPC section.
func SetSeed(s *api.Seed, vpcs []SeedVPC) { s.Set(SeedKey, vpcs) }

// SeedVPCs reads s's VPC section (nil when there is none).
func SeedVPCs(s *api.Seed) ([]SeedVPC, error) {
	var vpcs []SeedVPC
	_, err := s.Section(SeedKey, &vpcs)
	return vpcs, err
}

// API lists the VPC actions.
func (m *Module) API() api.Service {
	return api.Service{Name: vpc.Service, Version: vpc.Version, Actions: map[string]api.Handler{
		"CreateVpc":           m.createVpc,
		"DescribeVpcs":        m.describeVpcs,
		"CreateSubnet":        m.createSubnet,
		"DescribeSubnets":     m.describeSubnets,
		"CreateRouteTable":    m.createRouteTable,
		"DescribeRouteTables": m.describeRouteTables,
		"CreateRoutes":        m.createRoutes,
		"DeleteRoutes":        m.deleteRoutes,

		"CreateSecurityGroup":           m.createSecurityGroup,
		"DescribeSecurityGroups":        m.describeSecurityGroups,
		"DeleteSecurityGroup":           m.deleteSecurityGroup,
		"DescribeSecurityGroupPolicies": m.describeSecurityGroupPolicies,
		"ModifySecurityGroupPolicies":   m.modifySecurityGroupPolicies,
	}}
}

// Seed imports the seed's VPCs with their subnets and route tables. A VPC without route
// tables gets a main one; otherwise the table marked default (or the first) is main and
// every subnet is associated with it.
func (m *Module) Seed(tx *store.Tx, s *api.Seed) error {
	vpcs, err := SeedVPCs(s)
	if err != nil {
		return err
	}
	now := m.w.Now()
	for i, sv := range vpcs {
		id := sv.VpcID
		if id == "" {
			id = api.NewID("vpc")
		}
		if !wellFormed(id, "vpc-") {
			return fmt.Errorf("vpcs[%d]: id %q is not a VPC ID (vpc-...)", i, id)
		}
		if _, dup := vpcsT.Get(tx, id); dup {
			return fmt.Errorf("vpcs[%d]: VPC %s is declared twice", i, id)
		}
		cidr, err := vpcCIDR(sv.CidrBlock)
		if err != nil {
			return fmt.Errorf("vpc %s: %w", id, err)
		}
		v := &VPC{VpcId: id, Name: sv.Name, CidrBlock: cidr.String(), CreatedTime: now, DnsServers: defaultDNS()}
		if v.Name == "" {
			v.Name = id
		}
		if err := vpcsT.Put(tx, id, v); err != nil {
			return err
		}
		mainID := ""
		for j, st := range sv.RouteTables {
			rid := st.RouteTableID
			if rid == "" {
				rid = api.NewID("rtb")
			}
			if !wellFormed(rid, "rtb-") {
				return fmt.Errorf("vpc %s: routeTables[%d]: id %q is not a route table ID (rtb-...)", id, j, rid)
			}
			if _, dup := routeTables.Get(tx, rid); dup {
				return fmt.Errorf("vpc %s: route table %s is declared twice", id, rid)
			}
			if st.Default && mainID != "" {
				return fmt.Errorf("vpc %s: route tables %s and %s are both marked default", id, mainID, rid)
			}
			if st.Default {
				mainID = rid
			}
		}
		if mainID == "" && len(sv.RouteTables) > 0 {
			mainID = sv.RouteTables[0].RouteTableID
			if mainID == "" {
				return fmt.Errorf("vpc %s: routeTables[0] needs a routeTableId", id)
			}
		}
		for _, st := range sv.RouteTables {
			rid := st.RouteTableID
			if rid == "" {
				rid = api.NewID("rtb")
			}
			name := st.Name
			if name == "" {
				name = rid
			}
			if err := routeTables.Put(tx, rid, &RouteTable{RouteTableId: rid, VpcId: id, Name: name, Main: rid == mainID, CreatedTime: now}); err != nil {
				return err
			}
		}
		if mainID == "" {
			mainID = api.NewID("rtb")
			if err := routeTables.Put(tx, mainID, &RouteTable{RouteTableId: mainID, VpcId: id, Name: "default", Main: true, CreatedTime: now}); err != nil {
				return err
			}
		}
		for j, ss := range sv.Subnets {
			sid := ss.SubnetID
			if sid == "" {
				sid = api.NewID("subnet")
			}
			if !wellFormed(sid, "subnet-") {
				return fmt.Errorf("vpc %s: subnets[%d]: id %q is not a subnet ID (subnet-...)", id, j, sid)
			}
			if _, dup := subnetsT.Get(tx, sid); dup {
				return fmt.Errorf("vpc %s: subnet %s is declared twice", id, sid)
			}
			if _, ok := m.w.Zone(ss.Zone); !ok {
				return fmt.Errorf("subnet %s: zone %q is not a zone of region %s", sid, ss.Zone, m.w.Region)
			}
			p, err := m.checkSubnetCIDR(tx, v, ss.CidrBlock)
			if err != nil {
				return fmt.Errorf("subnet %s: %w", sid, err)
			}
			name := ss.Name
			if name == "" {
				name = sid
			}
			if err := subnetsT.Put(tx, sid, &Subnet{SubnetId: sid, VpcId: id, Name: name, CidrBlock: p.String(), Zone: ss.Zone, RouteTableId: mainID, CreatedTime: now}); err != nil {
				return err
			}
		}
	}
	return nil
}

func defaultDNS() []string { return []string{"183.60.83.19", "183.60.82.98"} }

// vpcRanges are where a VPC's CIDR may lie (CreateVpc's docs: 10.0.0.0/12,
// 172.16.0.0/12, 192.168.0.0/16); a VPC is at most as large as its range and at least /28.
var vpcRanges = []netip.Prefix{
	netip.MustParsePrefix("10.0.0.0/12"),
	netip.MustParsePrefix("172.16.0.0/12"),
	netip.MustParsePrefix("192.168.0.0/16"),
}

// vpcCIDR parses a VPC CIDR: an IPv4 block inside one of vpcRanges, between the range's
// own size and /28, written as its network address.
func vpcCIDR(s string) (netip.Prefix, error) {
	p, err := netip.ParsePrefix(s)
	if err != nil || !p.Addr().Is4() {
		return netip.Prefix{}, api.Errorf("InvalidParameterValue.Malformed", "parameter `CidrBlock`: %q is not an IPv4 CIDR block", s)
	}
	if p != p.Masked() {
		return netip.Prefix{}, api.Errorf("InvalidParameterValue.Malformed", "parameter `CidrBlock`: %q has host bits set (network address is %s)", s, p.Masked())
	}
	for _, r := range vpcRanges {
		if r.Contains(p.Addr()) {
			if p.Bits() < r.Bits() || p.Bits() > 28 {
				return netip.Prefix{}, api.Errorf("InvalidParameterValue.Range", "parameter `CidrBlock`: prefix length of %s must be between /%d and /28", s, r.Bits())
			}
			return p, nil
		}
	}
	return netip.Prefix{}, api.Errorf("InvalidParameterValue.Range", "parameter `CidrBlock`: %s is not inside 10.0.0.0/12, 172.16.0.0/12 or 192.168.0.0/16", s)
}

// checkSubnetCIDR validates a new subnet's CIDR against its VPC and the VPC's subnets.
func (m *Module) checkSubnetCIDR(tx *store.Tx, v *VPC, s string) (netip.Prefix, error) {
	p, err := netip.ParsePrefix(s)
	if err != nil || !p.Addr().Is4() {
		return netip.Prefix{}, api.Errorf("InvalidParameterValue.Malformed", "parameter `CidrBlock`: %q is not an IPv4 CIDR block", s)
	}
	if p != p.Masked() {
		return netip.Prefix{}, api.Errorf("InvalidParameterValue.SubnetRange", "parameter `CidrBlock`: %q has host bits set (network address is %s)", s, p.Masked())
	}
	vp := netip.MustParsePrefix(v.CidrBlock)
	if !vp.Contains(p.Addr()) || p.Bits() < vp.Bits() {
		return netip.Prefix{}, api.Errorf("InvalidParameterValue.SubnetRange", "parameter `CidrBlock`: %s is not inside VPC %s (%s)", s, v.VpcId, v.CidrBlock)
	}
	if p.Bits() > 29 {
		return netip.Prefix{}, api.Errorf("InvalidParameterValue.SubnetRange", "parameter `CidrBlock`: prefix length of %s must be at most /29", s)
	}
	for _, other := range subnetsT.List(tx) {
		if other.VpcId != v.VpcId {
			continue
		}
		if op, err := netip.ParsePrefix(other.CidrBlock); err == nil && op.Overlaps(p) {
			return netip.Prefix{}, api.Errorf("InvalidParameterValue.SubnetConflict", "parameter `CidrBlock`: %s overlaps subnet %s (%s)", s, other.SubnetId, other.CidrBlock)
		}
	}
	return p, nil
}

// vpcTime is the VPC service's timestamp format.
func vpcTime(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05") }
