package vpc

import (
	"net/netip"
	"slices"
	"strconv"

	"github.com/stratus-cloud/stratus/cloudapi"
	"github.com/stratus-cloud/stratus/cloudapi/vpc"
	"github.com/stratus-cloud/stratus/fakecloud/api"
	"github.com/stratus-cloud/stratus/fakecloud/store"
)

// gatewayTypes are the next-hop kinds CreateRoutes accepts, as the model docs list them
// (CVM is a public-gateway instance; HAVIP is in the current API docs). Only NORMAL_CVM is
// checked in depth (its GatewayId is a private IP of the VPC); the others need an ID.
var gatewayTypes = map[string]bool{
	"CVM": true, vpc.GatewayTypeNormalCVM: true, vpc.GatewayTypeVPN: true, vpc.GatewayTypeDirectConnect: true,
	vpc.GatewayTypePeerConnection: true, vpc.GatewayTypeSSLVPN: true, vpc.GatewayTypeNAT: true,
	vpc.GatewayTypeHaVip: true, vpc.GatewayTypeEIP: true, vpc.GatewayTypeLocalGateway: true,
	vpc.GatewayTypeCCN: true,
}

// maxRouteDescription: the docs give no length for RouteDescription; 60 bytes, like every
// other free-text field of the VPC service, can only make fakecloud stricter.
const maxRouteDescription = 60

func (m *Module) createRouteTable(r *api.Request) (any, error) {
	in, err := api.Decode[vpc.CreateRouteTableRequest](r)
	if err != nil {
		return nil, err
	}
	switch {
	case in.VpcId == "":
		return nil, api.MissingParameter("VpcId")
	case in.RouteTableName == "":
		return nil, api.MissingParameter("RouteTableName")
	case !wellFormed(in.VpcId, "vpc-"):
		return nil, api.Errorf("InvalidVpcId.Malformed", "parameter `VpcId`: %q is not a VPC ID", in.VpcId)
	}
	if err := api.MaxBytes("InvalidParameterValue.TooLong", "RouteTableName", in.RouteTableName, maxNameBytes); err != nil {
		return nil, err
	}
	if err := validTags("Tags", in.Tags); err != nil {
		return nil, err
	}
	rt := &RouteTable{RouteTableId: api.NewID("rtb"), VpcId: in.VpcId, Name: in.RouteTableName, Tags: slices.Clone(in.Tags), CreatedTime: r.Now}
	var wire vpc.RouteTable
	err = m.w.Store.Update(func(tx *store.Tx) error {
		if _, ok := vpcsT.Get(tx, in.VpcId); !ok {
			return api.NotFound("InvalidVpcId.NotFound", "VPC", in.VpcId)
		}
		n := 0
		for _, t := range routeTables.List(tx) {
			if t.VpcId == in.VpcId {
				n++
			}
		}
		if limit := m.w.Limit("route-tables-per-vpc", 10); n >= limit {
			return api.Errorf(cloudapi.CodeLimitExceeded, "VPC %s already has %d route tables, the quota is %d", in.VpcId, n, limit)
		}
		if err := routeTables.Put(tx, rt.RouteTableId, rt); err != nil {
			return err
		}
		wire = toWireRouteTable(tx, rt)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &vpc.CreateRouteTableResponse{RouteTable: wire}, nil
}

var routeTableFilters = api.FilterSpec[RouteTable]{
	Limits: filterLimits,
	Fields: map[string]func(*RouteTable) []string{
		"route-table-id":   func(t *RouteTable) []string { return one(t.RouteTableId) },
		"route-table-name": func(t *RouteTable) []string { return one(t.Name) },
		"vpc-id":           func(t *RouteTable) []string { return one(t.VpcId) },
		"association.main": func(t *RouteTable) []string { return boolString(t.Main) },
	},
	Tags: func(t *RouteTable) []cloudapi.Tag { return t.Tags },
}

func (m *Module) describeRouteTables(r *api.Request) (any, error) {
	in, err := api.Decode[vpc.DescribeRouteTablesRequest](r)
	if err != nil {
		return nil, err
	}
	if err := coexist("RouteTableIds", in.RouteTableIds, in.Filters); err != nil {
		return nil, err
	}
	if err := ids("RouteTableIds", "rtb-", "InvalidRouteTableId.Malformed").Check(in.RouteTableIds); err != nil {
		return nil, err
	}
	match, err := routeTableFilters.Compile(in.Filters)
	if err != nil {
		return nil, err
	}
	var out *vpc.DescribeRouteTablesResponse
	err = m.w.Store.View(func(tx *store.Tx) error {
		sel := selectRecords(tx, routeTables, func(t *RouteTable) string { return t.RouteTableId }, in.RouteTableIds, match)
		pg, err := api.PageStrings(sel, in.Offset, in.Limit, api.DefaultLimit)
		if err != nil {
			return err
		}
		out = &vpc.DescribeRouteTablesResponse{TotalCount: int64(len(sel)), RouteTableSet: make([]vpc.RouteTable, 0, len(pg))}
		for _, t := range pg {
			out.RouteTableSet = append(out.RouteTableSet, toWireRouteTable(tx, t))
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

func (m *Module) createRoutes(r *api.Request) (any, error) {
	in, err := api.Decode[vpc.CreateRoutesRequest](r)
	if err != nil {
		return nil, err
	}
	if err := checkTableID(in.RouteTableId); err != nil {
		return nil, err
	}
	if len(in.Routes) == 0 {
		return nil, api.MissingParameter("Routes")
	}
	var wire vpc.RouteTable
	err = m.w.Store.Update(func(tx *store.Tx) error {
		rt, ok := routeTables.Get(tx, in.RouteTableId)
		if !ok {
			return api.NotFound("InvalidRouteTableId.NotFound", "route table", in.RouteTableId)
		}
		v, ok := vpcsT.Get(tx, rt.VpcId)
		if !ok {
			return api.Errorf(cloudapi.CodeInternalError, "route table %s belongs to missing VPC %s", rt.RouteTableId, rt.VpcId)
		}
		vp := netip.MustParsePrefix(v.CidrBlock)
		if limit := m.w.Limit("routes-per-table", 200); len(rt.Routes)+len(in.Routes) > limit {
			return api.Errorf(cloudapi.CodeLimitExceeded, "route table %s has %d routes; adding %d would pass the quota of %d", rt.RouteTableId, len(rt.Routes), len(in.Routes), limit)
		}
		dests := make(map[netip.Prefix]bool, len(rt.Routes)+len(in.Routes))
		for _, old := range rt.Routes {
			if p, err := netip.ParsePrefix(old.DestinationCidrBlock); err == nil {
				dests[p] = true
			}
		}
		next := *rt
		next.Routes = slices.Clone(rt.Routes)
		for i, want := range in.Routes {
			field := "Routes." + strconv.Itoa(i)
			dest, err := checkRoute(field, &want, vp)
			if err != nil {
				return err
			}
			if want.GatewayType == vpc.GatewayTypeNormalCVM && !addressInUse(tx, rt.VpcId, want.GatewayId) {
				return api.Errorf("InvalidParameter.NextHopMismatch", "parameter `%s.GatewayId`: no instance of VPC %s has the private IP %s", field, rt.VpcId, want.GatewayId)
			}
			if dests[dest] {
				return api.Errorf("InvalidParameterValue.Duplicate", "parameter `%s.DestinationCidrBlock`: route table %s already has a route to %s", field, rt.RouteTableId, dest)
			}
			dests[dest] = true
			id, err := nextRouteID(tx)
			if err != nil {
				return err
			}
			enabled := true
			if want.Enabled != nil {
				enabled = *want.Enabled
			}
			next.Routes = append(next.Routes, Route{
				RouteId:              id,
				RouteItemId:          api.NewID("rti"),
				DestinationCidrBlock: dest.String(),
				GatewayType:          want.GatewayType,
				GatewayId:            want.GatewayId,
				Description:          want.RouteDescription,
				Enabled:              enabled,
				CreatedTime:          r.Now,
			})
		}
		if err := routeTables.Put(tx, next.RouteTableId, &next); err != nil {
			return err
		}
		wire = toWireRouteTable(tx, &next)
		return nil
	})
	if err != nil {
		return nil, err
	}
	m.syncRouter()
	return &vpc.CreateRoutesResponse{TotalCount: 1, RouteTableSet: []vpc.RouteTable{wire}}, nil
}

// checkRoute validates one route of CreateRoutes against the table's VPC CIDR vp.
func checkRoute(field string, rt *vpc.Route, vp netip.Prefix) (netip.Prefix, error) {
	if rt.DestinationCidrBlock == "" {
		return netip.Prefix{}, api.MissingParameter(field + ".DestinationCidrBlock")
	}
	dest, err := netip.ParsePrefix(rt.DestinationCidrBlock)
	if err != nil || !dest.Addr().Is4() {
		return netip.Prefix{}, api.Errorf("InvalidParameterValue.Malformed", "parameter `%s.DestinationCidrBlock`: %q is not an IPv4 CIDR block", field, rt.DestinationCidrBlock)
	}
	if dest != dest.Masked() {
		return netip.Prefix{}, api.Errorf("InvalidParameterValue.Malformed", "parameter `%s.DestinationCidrBlock`: %q has host bits set (network address is %s)", field, rt.DestinationCidrBlock, dest.Masked())
	}
	if dest.Overlaps(vp) {
		return netip.Prefix{}, api.Errorf("InvalidParameterValue.VpcCidrConflict", "parameter `%s.DestinationCidrBlock`: %s overlaps the VPC CIDR %s", field, dest, vp)
	}
	switch {
	case rt.GatewayType == "":
		return netip.Prefix{}, api.MissingParameter(field + ".GatewayType")
	case !gatewayTypes[rt.GatewayType]:
		return netip.Prefix{}, api.InvalidValue(field+".GatewayType", "%q is not a gateway type", rt.GatewayType)
	case rt.GatewayId == "":
		return netip.Prefix{}, api.MissingParameter(field + ".GatewayId")
	case rt.RouteId != nil || rt.RouteItemId != "":
		return netip.Prefix{}, api.InvalidValue(field+".RouteId", "the cloud assigns route IDs; do not set RouteId or RouteItemId")
	case rt.RouteType != "" && rt.RouteType != vpc.RouteTypeUser:
		return netip.Prefix{}, api.InvalidValue(field+".RouteType", "users only add USER routes, got %q", rt.RouteType)
	case rt.DestinationIpv6CidrBlock != "":
		return netip.Prefix{}, api.Errorf(cloudapi.CodeUnsupportedOperation, "parameter `%s.DestinationIpv6CidrBlock`: IPv6 routes are not supported here", field)
	case rt.PublishedToVbc != nil && *rt.PublishedToVbc:
		return netip.Prefix{}, api.Errorf(cloudapi.CodeUnsupportedOperation, "parameter `%s.PublishedToVbc`: there is no cloud connect network (CCN) to publish to here", field)
	}
	if err := api.MaxBytes("InvalidParameterValue.TooLong", field+".RouteDescription", rt.RouteDescription, maxRouteDescription); err != nil {
		return netip.Prefix{}, err
	}
	if rt.GatewayType == vpc.GatewayTypeNormalCVM {
		gw, err := netip.ParseAddr(rt.GatewayId)
		if err != nil || !gw.Is4() {
			return netip.Prefix{}, api.Errorf("InvalidParameter.NextHopMismatch", "parameter `%s.GatewayId`: a NORMAL_CVM next hop is the instance's private IPv4 address, got %q", field, rt.GatewayId)
		}
		if !vp.Contains(gw) {
			return netip.Prefix{}, api.Errorf("InvalidParameterValue.AddressIpNotInVpc", "parameter `%s.GatewayId`: %s is not inside the VPC CIDR %s", field, gw, vp)
		}
	}
	return dest, nil
}

// addressInUse reports whether ip is a leased private address of a subnet of VPC vpcID:
// a NORMAL_CVM next hop must be an instance's address, not merely inside the VPC CIDR.
func addressInUse(tx *store.Tx, vpcID, ip string) bool {
	addr, err := netip.ParseAddr(ip)
	if err != nil {
		return false
	}
	for _, sn := range subnetsT.List(tx) {
		if sn.VpcId != vpcID {
			continue
		}
		if p, err := netip.ParsePrefix(sn.CidrBlock); err == nil && p.Contains(addr) {
			return IPLeased(tx, sn.SubnetId, addr.String())
		}
	}
	return false
}

func checkTableID(id string) error {
	switch {
	case id == "":
		return api.MissingParameter("RouteTableId")
	case !wellFormed(id, "rtb-"):
		return api.Errorf("InvalidRouteTableId.Malformed", "parameter `RouteTableId`: %q is not a route table ID", id)
	}
	return nil
}

func (m *Module) deleteRoutes(r *api.Request) (any, error) {
	in, err := api.Decode[vpc.DeleteRoutesRequest](r)
	if err != nil {
		return nil, err
	}
	if err := checkTableID(in.RouteTableId); err != nil {
		return nil, err
	}
	if len(in.Routes) == 0 {
		return nil, api.MissingParameter("Routes")
	}
	out := &vpc.DeleteRoutesResponse{RouteSet: []vpc.Route{}}
	err = m.w.Store.Update(func(tx *store.Tx) error {
		rt, ok := routeTables.Get(tx, in.RouteTableId)
		if !ok {
			return api.NotFound("InvalidRouteTableId.NotFound", "route table", in.RouteTableId)
		}
		gone := make(map[uint64]bool, len(in.Routes))
		for i, sel := range in.Routes {
			field := "Routes." + strconv.Itoa(i)
			idx, err := findRoute(field, rt, &sel)
			if err != nil {
				return err
			}
			route := rt.Routes[idx]
			if gone[route.RouteId] {
				continue
			}
			gone[route.RouteId] = true
			out.RouteSet = append(out.RouteSet, toWireRoute(rt.RouteTableId, &route))
		}
		next := *rt
		next.Routes = slices.DeleteFunc(slices.Clone(rt.Routes), func(x Route) bool { return gone[x.RouteId] })
		return routeTables.Put(tx, next.RouteTableId, &next)
	})
	if err != nil {
		return nil, err
	}
	m.syncRouter()
	return out, nil
}

// findRoute locates the route sel names: by RouteId, by RouteItemId, or by
// DestinationCidrBlock (narrowed by GatewayType/GatewayId when given).
func findRoute(field string, rt *RouteTable, sel *vpc.Route) (int, error) {
	switch {
	case sel.RouteId != nil:
		for i := range rt.Routes {
			if rt.Routes[i].RouteId == *sel.RouteId {
				return i, nil
			}
		}
		return -1, api.Errorf("InvalidRouteId.NotFound", "parameter `%s.RouteId`: route %d is not in route table %s", field, *sel.RouteId, rt.RouteTableId)
	case sel.RouteItemId != "":
		for i := range rt.Routes {
			if rt.Routes[i].RouteItemId == sel.RouteItemId {
				return i, nil
			}
		}
		return -1, api.Errorf("InvalidRouteId.NotFound", "parameter `%s.RouteItemId`: route %s is not in route table %s", field, sel.RouteItemId, rt.RouteTableId)
	case sel.DestinationCidrBlock != "":
		dest, err := netip.ParsePrefix(sel.DestinationCidrBlock)
		if err != nil {
			return -1, api.Errorf("InvalidParameterValue.Malformed", "parameter `%s.DestinationCidrBlock`: %q is not a CIDR block", field, sel.DestinationCidrBlock)
		}
		for i := range rt.Routes {
			x := &rt.Routes[i]
			if x.DestinationCidrBlock == dest.String() &&
				(sel.GatewayType == "" || sel.GatewayType == x.GatewayType) &&
				(sel.GatewayId == "" || sel.GatewayId == x.GatewayId) {
				return i, nil
			}
		}
		return -1, api.Errorf("InvalidRouteId.NotFound", "parameter `%s.DestinationCidrBlock`: route table %s has no route to %s matching the given gateway", field, rt.RouteTableId, dest)
	}
	return -1, api.MissingParameter(field + ".RouteId")
}

func toWireRoute(tableID string, x *Route) vpc.Route {
	id := x.RouteId
	enabled := x.Enabled
	return vpc.Route{
		DestinationCidrBlock: x.DestinationCidrBlock,
		GatewayType:          x.GatewayType,
		GatewayId:            x.GatewayId,
		RouteId:              &id,
		RouteDescription:     x.Description,
		Enabled:              &enabled,
		RouteType:            vpc.RouteTypeUser,
		RouteTableId:         tableID,
		RouteItemId:          x.RouteItemId,
		CreatedTime:          vpcTime(x.CreatedTime),
	}
}

func toWireRouteTable(tx *store.Tx, t *RouteTable) vpc.RouteTable {
	out := vpc.RouteTable{
		VpcId:          t.VpcId,
		RouteTableId:   t.RouteTableId,
		RouteTableName: t.Name,
		AssociationSet: []vpc.RouteTableAssociation{},
		RouteSet:       make([]vpc.Route, 0, len(t.Routes)),
		Main:           t.Main,
		CreatedTime:    vpcTime(t.CreatedTime),
		TagSet:         nonNil(t.Tags),
	}
	for _, s := range subnetsT.List(tx) {
		if s.RouteTableId == t.RouteTableId {
			out.AssociationSet = append(out.AssociationSet, vpc.RouteTableAssociation{SubnetId: s.SubnetId, RouteTableId: t.RouteTableId})
		}
	}
	for i := range t.Routes {
		out.RouteSet = append(out.RouteSet, toWireRoute(t.RouteTableId, &t.Routes[i]))
	}
	return out
}
