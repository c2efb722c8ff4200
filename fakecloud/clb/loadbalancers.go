package clb

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/stratus-cloud/stratus/cloudapi"
	"github.com/stratus-cloud/stratus/cloudapi/clb"
	"github.com/stratus-cloud/stratus/fakecloud/api"
	"github.com/stratus-cloud/stratus/fakecloud/store"
	"github.com/stratus-cloud/stratus/fakecloud/vpc"
)

const (
	maxCreateNumber = 20
	maxTags         = 50
	maxIDsPerCall   = 20
)

// validName: 1-60 letters, digits, '-', '_' or '.', as the API allows.
func validName(s string) bool {
	n := utf8.RuneCountInString(s)
	if n < 1 || n > 60 {
		return false
	}
	for _, r := range s {
		if !(r == '-' || r == '_' || r == '.' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r > 127) {
			return false
		}
	}
	return true
}

func checkTags(tags []clb.TagInfo) error {
	if len(tags) > maxTags {
		return api.InvalidValue("Tags", "at most %d tags, got %d", maxTags, len(tags))
	}
	seen := map[string]bool{}
	for i, t := range tags {
		if t.TagKey == "" || utf8.RuneCountInString(t.TagKey) > 127 {
			return api.InvalidValue(fmt.Sprintf("Tags.%d.TagKey", i), "must be 1-127 characters")
		}
		if utf8.RuneCountInString(t.TagValue) > 255 {
			return api.InvalidValue(fmt.Sprintf("Tags.%d.TagValue", i), "must be at most 255 characters")
		}
		if seen[t.TagKey] {
			return api.Errorf(clb.CodeDuplicate, "parameter `Tags`: key %q appears twice", t.TagKey)
		}
		seen[t.TagKey] = true
	}
	return nil
}

// zoneByNameOrID finds a zone by name ("ap-guangzhou-1") or numeric id ("100001").
func (m *Module) zoneByNameOrID(s string) (api.Zone, bool) {
	for _, z := range m.w.Zones {
		if z.Name == s || z.ID == s {
			return z, true
		}
	}
	return api.Zone{}, false
}

func (m *Module) createLoadBalancer(r *api.Request) (any, error) {
	in, err := api.Decode[clb.CreateLoadBalancerRequest](r)
	if err != nil {
		return nil, err
	}
	number := uint64(1)
	if in.Number != nil {
		number = *in.Number
	}
	switch {
	case in.LoadBalancerType == "":
		return nil, api.MissingParameter("LoadBalancerType")
	case in.LoadBalancerType != clb.TypeOpen && in.LoadBalancerType != clb.TypeInternal:
		return nil, api.InvalidValue("LoadBalancerType", "must be OPEN or INTERNAL, got %q", in.LoadBalancerType)
	case in.Forward != nil && *in.Forward != 1:
		return nil, api.Errorf(cloudapi.CodeUnsupportedOperation, "only Forward=1 (application load balancers) is supported, got %d", *in.Forward)
	case in.LoadBalancerName != "" && !validName(in.LoadBalancerName):
		return nil, api.InvalidValue("LoadBalancerName", "must be 1-60 letters, digits, '-', '_' or '.', got %q", in.LoadBalancerName)
	case in.AddressIPVersion != "" && !strings.EqualFold(in.AddressIPVersion, "IPV4"):
		return nil, api.Errorf(cloudapi.CodeUnsupportedOperation, "AddressIPVersion %q is not supported here; only IPV4", in.AddressIPVersion)
	case number < 1 || number > maxCreateNumber:
		return nil, api.InvalidValue("Number", "must be between 1 and %d, got %d", maxCreateNumber, number)
	case number > 1 && in.Vip != "":
		return nil, api.InvalidValue("Vip", "can only be given when creating one load balancer")
	case len(in.ClientToken) > 64:
		return nil, api.InvalidValue("ClientToken", "must be at most 64 characters")
	}
	if err := checkTags(in.Tags); err != nil {
		return nil, err
	}
	vipIsp := "INTERNAL"
	if in.LoadBalancerType == clb.TypeOpen {
		switch in.VipIsp {
		case "":
			vipIsp = "BGP"
		case "BGP", "CMCC", "CTCC", "CUCC":
			vipIsp = in.VipIsp
		default:
			return nil, api.InvalidValue("VipIsp", "must be BGP, CMCC, CTCC or CUCC, got %q", in.VipIsp)
		}
		if in.SubnetId != "" {
			return nil, api.InvalidValue("SubnetId", "only INTERNAL load balancers take a subnet")
		}
	} else {
		switch {
		case in.SubnetId == "":
			return nil, api.MissingParameter("SubnetId")
		case in.VipIsp != "":
			return nil, api.InvalidValue("VipIsp", "only applies to OPEN load balancers")
		case in.ZoneId != "" || in.MasterZoneId != "":
			return nil, api.InvalidValue("ZoneId", "only applies to OPEN load balancers; an INTERNAL one lives in its subnet's zone")
		}
	}
	var zone api.Zone
	if z := cmp.Or(in.MasterZoneId, in.ZoneId); z != "" {
		var ok bool
		if zone, ok = m.zoneByNameOrID(z); !ok {
			return nil, api.InvalidValue("MasterZoneId", "%q is not a zone of region %s", z, m.w.Region)
		}
	}

	out := &clb.CreateLoadBalancerResponse{}
	err = m.w.Store.Update(func(tx *store.Tx) error {
		if in.ClientToken != "" {
			if tok, ok := m.tokens.Get(tx, in.ClientToken); ok && r.Now.Sub(tok.CreatedTime) <= tokenRetention {
				// The same request again (a retry): the same load balancers, and a task that
				// ends when the original one does.
				out.LoadBalancerIds = append([]string(nil), tok.LoadBalancerIds...)
				return m.recordTask(tx, r, tok.DoneAt)
			}
		}
		if n, limit := m.lbs.Len(tx), m.w.Limit("clb-per-region", 100); n+int(number) > limit {
			return api.Errorf(cloudapi.CodeLimitExceeded, "region %s allows %d load balancers; %d exist and %d more were asked for", m.w.Region, limit, n, number)
		}
		vpcID := in.VpcId
		if vpcID != "" {
			if _, ok := m.vpcs.Get(tx, vpcID); !ok {
				return api.NotFound("InvalidParameter.VpcIdNotFound", "VPC", vpcID)
			}
		}
		if in.LoadBalancerType == clb.TypeInternal {
			sn, ok := m.subnets.Get(tx, in.SubnetId)
			if !ok {
				return api.NotFound("InvalidParameter.SubnetIdNotFound", "subnet", in.SubnetId)
			}
			if vpcID != "" && sn.VpcId != vpcID {
				return api.InvalidValue("SubnetId", "subnet %s belongs to VPC %s, not %s", sn.SubnetId, sn.VpcId, vpcID)
			}
			vpcID = sn.VpcId
			zone, _ = m.w.Zone(sn.Zone)
		}
		names := map[string]bool{}
		for _, lb := range m.lbs.List(tx) {
			names[lb.Name] = true
		}
		public, loopback := m.usedAddrs(tx)
		var created []*LoadBalancer
		for range number {
			lb := &LoadBalancer{
				LoadBalancerId: api.NewID("lb"), Type: in.LoadBalancerType, VpcId: vpcID,
				Zone: zone.Name, VipIsp: vipIsp, AddressIPVersion: "ipv4",
				Tags: append([]clb.TagInfo(nil), in.Tags...), CreatedTime: r.Now,
			}
			if in.ProjectId != nil {
				lb.ProjectId = *in.ProjectId
			}
			// A name already taken (or none) becomes the id, as the cloud generates one.
			lb.Name = in.LoadBalancerName
			if number > 1 || lb.Name == "" || names[lb.Name] {
				lb.Name = lb.LoadBalancerId
			}
			names[lb.Name] = true
			var err error
			if in.LoadBalancerType == clb.TypeInternal {
				lb.SubnetId = in.SubnetId
				if lb.Vip, err = vpc.AllocateIP(tx, in.SubnetId, in.Vip); err != nil {
					return err
				}
			} else if lb.Vip, err = m.allocPublicVIP(in.Vip, public); err != nil {
				return err
			}
			if lb.LoopbackVip, err = m.allocLoopbackVIP(lb.Vip, loopback); err != nil {
				return err
			}
			created = append(created, lb)
		}
		done, err := m.startTask(tx, r, created...)
		if err != nil {
			return err
		}
		for _, lb := range created {
			lb.ReadyAt = done
			if err := m.lbs.Put(tx, lb.LoadBalancerId, lb); err != nil {
				return err
			}
			out.LoadBalancerIds = append(out.LoadBalancerIds, lb.LoadBalancerId)
		}
		if in.ClientToken != "" {
			return m.tokens.Put(tx, in.ClientToken, &tokenRecord{Token: in.ClientToken, LoadBalancerIds: out.LoadBalancerIds, CreatedTime: r.Now, DoneAt: done})
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	m.reconcile()
	return out, nil
}

// lbFilter is one parsed entry of DescribeLoadBalancers' Filters.
type lbFilter struct {
	name   string
	tagKey string // for tag:<key>
	values []string
}

func parseLBFilters(fs []cloudapi.Filter) ([]lbFilter, error) {
	if len(fs) > 10 {
		return nil, api.InvalidValue("Filters", "at most 10 filters, got %d", len(fs))
	}
	var out []lbFilter
	for i, f := range fs {
		if len(f.Values) > 100 {
			return nil, api.InvalidValue(fmt.Sprintf("Filters.%d.Values", i), "at most 100 values, got %d", len(f.Values))
		}
		lf := lbFilter{name: f.Name, values: f.Values}
		switch {
		case strings.HasPrefix(f.Name, "tag:") && len(f.Name) > 4:
			lf.name, lf.tagKey = "tag:", strings.TrimPrefix(f.Name, "tag:")
		case f.Name == "tag-key", f.Name == "master-zone-id", f.Name == "vip-isp", f.Name == "internet-charge-type", f.Name == "function-name":
		default:
			return nil, api.InvalidValue(fmt.Sprintf("Filters.%d.Name", i), "unknown filter %q (supported: tag-key, tag:<key>, master-zone-id, vip-isp, internet-charge-type, function-name)", f.Name)
		}
		out = append(out, lf)
	}
	return out, nil
}

func (m *Module) zoneID(name string) string {
	if z, ok := m.w.Zone(name); ok {
		return z.ID
	}
	return ""
}

func (f *lbFilter) match(m *Module, lb *LoadBalancer) bool {
	switch f.name {
	case "tag:":
		for _, t := range lb.Tags {
			if t.TagKey == f.tagKey && slices.Contains(f.values, t.TagValue) {
				return true
			}
		}
		return false
	case "tag-key":
		return slices.ContainsFunc(lb.Tags, func(t clb.TagInfo) bool { return slices.Contains(f.values, t.TagKey) })
	case "master-zone-id":
		return lb.Zone != "" && (slices.Contains(f.values, m.zoneID(lb.Zone)) || slices.Contains(f.values, lb.Zone))
	case "vip-isp":
		return slices.Contains(f.values, lb.VipIsp)
	case "internet-charge-type":
		return lb.Type == clb.TypeOpen && slices.Contains(f.values, "TRAFFIC_POSTPAID_BY_HOUR")
	}
	return false // function-name: no load balancer here forwards to cloud functions
}

func (m *Module) describeLoadBalancers(r *api.Request) (any, error) {
	in, err := api.Decode[clb.DescribeLoadBalancersRequest](r)
	if err != nil {
		return nil, err
	}
	if len(in.LoadBalancerIds) > api.MaxLimit {
		return nil, api.InvalidValue("LoadBalancerIds", "at most %d ids, got %d", api.MaxLimit, len(in.LoadBalancerIds))
	}
	filters, err := parseLBFilters(in.Filters)
	if err != nil {
		return nil, err
	}
	orderBy := cmp.Or(in.OrderBy, "CreateTime")
	if !slices.Contains([]string{"LoadBalancerName", "CreateTime", "Domain", "LoadBalancerType"}, orderBy) {
		return nil, api.InvalidValue("OrderBy", "must be LoadBalancerName, CreateTime, Domain or LoadBalancerType, got %q", in.OrderBy)
	}
	desc := true
	if in.OrderType != nil {
		switch *in.OrderType {
		case 0:
			desc = false
		case 1:
		default:
			return nil, api.InvalidValue("OrderType", "must be 0 or 1, got %d", *in.OrderType)
		}
	}
	if in.WithRs != nil && (*in.WithRs < -1 || *in.WithRs > 1) {
		return nil, api.InvalidValue("WithRs", "must be -1, 0 or 1, got %d", *in.WithRs)
	}
	out := &clb.DescribeLoadBalancersResponse{LoadBalancerSet: []clb.LoadBalancer{}}
	err = m.w.Store.View(func(tx *store.Tx) error {
		targets := m.targetIPsByLB(tx, r)
		var match []*LoadBalancer
		for _, lb := range m.lbs.List(tx) {
			if m.lbMatches(in, filters, lb, targets[lb.LoadBalancerId]) {
				match = append(match, lb)
			}
		}
		slices.SortStableFunc(match, func(a, b *LoadBalancer) int {
			c := 0
			switch orderBy {
			case "LoadBalancerName":
				c = strings.Compare(a.Name, b.Name)
			case "LoadBalancerType":
				c = strings.Compare(a.Type, b.Type)
			}
			if c == 0 {
				c = a.CreatedTime.Compare(b.CreatedTime)
			}
			if desc {
				c = -c
			}
			return c
		})
		page, err := api.Page(match, in.Offset, in.Limit, 20)
		if err != nil {
			return err
		}
		out.TotalCount = uint64(len(match))
		for _, lb := range page {
			out.LoadBalancerSet = append(out.LoadBalancerSet, m.lbView(lb, r))
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// lbTargets are the backend addresses of one load balancer, for BackendPrivateIps,
// BackendPublicIps and WithRs.
type lbTargets struct {
	count           int
	private, public []string
}

func (m *Module) targetIPsByLB(tx *store.Tx, r *api.Request) map[string]*lbTargets {
	out := map[string]*lbTargets{}
	for _, l := range m.listeners.List(tx) {
		t := out[l.LoadBalancerId]
		if t == nil {
			t = &lbTargets{}
			out[l.LoadBalancerId] = t
		}
		for _, tg := range m.liveTargets(tx, l, r.Now) {
			t.count++
			b := m.backendView(tx, &tg)
			t.private = append(t.private, b.PrivateIpAddresses...)
			t.public = append(t.public, b.PublicIpAddresses...)
		}
	}
	return out
}

func anyIn(have, want []string) bool {
	return slices.ContainsFunc(have, func(s string) bool { return slices.Contains(want, s) })
}

func (m *Module) lbMatches(in *clb.DescribeLoadBalancersRequest, filters []lbFilter, lb *LoadBalancer, t *lbTargets) bool {
	if t == nil {
		t = &lbTargets{}
	}
	switch {
	case len(in.LoadBalancerIds) > 0 && !slices.Contains(in.LoadBalancerIds, lb.LoadBalancerId):
		return false
	case in.LoadBalancerType != "" && in.LoadBalancerType != lb.Type:
		return false
	case in.Forward != nil && *in.Forward != 1:
		return false
	case in.LoadBalancerName != "" && in.LoadBalancerName != lb.Name:
		return false
	case len(in.LoadBalancerVips) > 0 && !slices.Contains(in.LoadBalancerVips, lb.Vip):
		return false
	case len(in.BackendPrivateIps) > 0 && !anyIn(t.private, in.BackendPrivateIps):
		return false
	case len(in.BackendPublicIps) > 0 && !anyIn(t.public, in.BackendPublicIps):
		return false
	case in.SearchKey != "" && !strings.Contains(lb.Name, in.SearchKey) && !strings.Contains(lb.Vip, in.SearchKey):
		return false
	case in.ProjectId != nil && *in.ProjectId != lb.ProjectId:
		return false
	case in.WithRs != nil && *in.WithRs == 0 && t.count > 0, in.WithRs != nil && *in.WithRs == 1 && t.count == 0:
		return false
	case in.VpcId != "" && in.VpcId != lb.VpcId && !(in.VpcId == "0" && lb.VpcId == ""):
		return false
	case in.MasterZone != "" && in.MasterZone != m.zoneID(lb.Zone) && in.MasterZone != lb.Zone:
		return false
	case in.SecurityGroup != "" && !slices.Contains(lb.SecurityGroups, in.SecurityGroup):
		return false
	}
	for i := range filters {
		if !filters[i].match(m, lb) {
			return false
		}
	}
	return true
}

func (m *Module) lbView(lb *LoadBalancer, r *api.Request) clb.LoadBalancer {
	v := clb.LoadBalancer{
		LoadBalancerId:   lb.LoadBalancerId,
		LoadBalancerName: lb.Name,
		LoadBalancerType: lb.Type,
		Forward:          1,
		LoadBalancerVips: []string{lb.Vip},
		Status:           lb.status(r.Now),
		CreateTime:       api.Timestamp(lb.CreatedTime),
		StatusTime:       api.Timestamp(lb.ReadyAt),
		ProjectId:        uint64(max(lb.ProjectId, 0)),
		VpcId:            lb.VpcId,
		SubnetId:         lb.SubnetId,
		Tags:             append([]clb.TagInfo{}, lb.Tags...),
		AddressIPVersion: lb.AddressIPVersion,
		VipIsp:           lb.VipIsp,
		SecureGroups:     append([]string{}, lb.SecurityGroups...),
	}
	if z, ok := m.w.Zone(lb.Zone); ok {
		id, _ := strconv.ParseUint(z.ID, 10, 64)
		v.MasterZone = &clb.ZoneInfo{ZoneId: id, Zone: z.Name, ZoneName: z.Name, ZoneRegion: m.w.Region}
		v.Zones = []string{z.Name}
	}
	return v
}

func (m *Module) deleteLoadBalancer(r *api.Request) (any, error) {
	in, err := api.Decode[clb.DeleteLoadBalancerRequest](r)
	if err != nil {
		return nil, err
	}
	if len(in.LoadBalancerIds) == 0 {
		return nil, api.MissingParameter("LoadBalancerIds")
	}
	if len(in.LoadBalancerIds) > maxIDsPerCall {
		return nil, api.Errorf(clb.CodeLength, "parameter `LoadBalancerIds`: at most %d ids, got %d", maxIDsPerCall, len(in.LoadBalancerIds))
	}
	ids := slices.Compact(slices.Sorted(slices.Values(in.LoadBalancerIds)))
	err = m.w.Store.Update(func(tx *store.Tx) error {
		var lbs []*LoadBalancer
		for _, id := range ids {
			lb, ok := m.lbs.Get(tx, id)
			if !ok {
				return api.NotFound(clb.CodeLBNotFound, "load balancer", id)
			}
			if err := idle(lb, r.Now); err != nil {
				return err
			}
			lbs = append(lbs, lb)
		}
		doomed := map[string]bool{}
		for _, lb := range lbs {
			doomed[lb.LoadBalancerId] = true
			if _, ok := m.subnets.Get(tx, lb.SubnetId); ok && lb.Type == clb.TypeInternal {
				if err := vpc.ReleaseIP(tx, lb.SubnetId, lb.Vip); err != nil {
					return err
				}
			}
			if err := vpc.BindSecurityGroups(tx, lb.LoadBalancerId, "SecurityGroups", nil); err != nil {
				return err
			}
			if err := m.lbs.Delete(tx, lb.LoadBalancerId); err != nil {
				return err
			}
		}
		for _, l := range m.listeners.List(tx) {
			if doomed[l.LoadBalancerId] {
				if err := m.listeners.Delete(tx, l.ListenerId); err != nil {
					return err
				}
			}
		}
		copies := make([]*LoadBalancer, len(lbs))
		for i, lb := range lbs {
			c := *lb
			copies[i] = &c
		}
		_, err := m.startTask(tx, r, copies...)
		return err
	})
	if err != nil {
		return nil, err
	}
	m.reconcile()
	return &clb.DeleteLoadBalancerResponse{}, nil
}

// loopbackAddr parses a stored loopback VIP.
func loopbackAddr(s string) (netip.Addr, bool) {
	a, err := netip.ParseAddr(s)
	return a, err == nil && a.IsLoopback()
}
