package clb

import (
	"cmp"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/stratus-cloud/stratus/cloudapi"
	"github.com/stratus-cloud/stratus/cloudapi/clb"
	"github.com/stratus-cloud/stratus/fakecloud/api"
	"github.com/stratus-cloud/stratus/fakecloud/store"
	"github.com/stratus-cloud/stratus/fakecloud/vpc"
)

// Per-request limits of the CLB actions (SDK v1.0.162 model docs; fakecloud/LIMITS.md).
const (
	maxCreateNumber = 20 // Number: not documented; see LIMITS.md
	maxIDsPerCall   = 20 // DeleteLoadBalancer
	maxDescribeIDs  = 100
	maxNameChars    = 60
	maxFilters      = 10
	maxFilterValues = 100
)

// validName: 1-60 English letters, Chinese characters, digits, '-' or '_', as the model
// docs put it ("1-60 个英文、汉字、数字、连接线“-”或下划线“_”").
func validName(s string) bool {
	n := utf8.RuneCountInString(s)
	if n < 1 || n > maxNameChars {
		return false
	}
	for _, r := range s {
		if !(r == '-' || r == '_' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || unicode.Is(unicode.Han, r)) {
			return false
		}
	}
	return true
}

// asTags gives the CLB's TagKey/TagValue pairs the shape the shared checks read.
func asTags(tags []clb.TagInfo) []cloudapi.Tag {
	out := make([]cloudapi.Tag, len(tags))
	for i, t := range tags {
		out[i] = cloudapi.Tag{Key: t.TagKey, Value: t.TagValue}
	}
	return out
}

func checkTags(tags []clb.TagInfo) error {
	return api.CheckTags("Tags", asTags(tags), api.TagCodes{Duplicate: clb.CodeDuplicate})
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
		return nil, api.InvalidValue("LoadBalancerName", "must be 1-60 English letters, Chinese characters, digits, '-' or '_', got %q", in.LoadBalancerName)
	case in.AddressIPVersion != "" && !slices.Contains([]string{"IPV4", "IPV6", "IPv6FullChain"}, in.AddressIPVersion):
		return nil, api.InvalidValue("AddressIPVersion", "must be IPV4, IPV6 or IPv6FullChain, got %q", in.AddressIPVersion)
	case in.AddressIPVersion != "" && in.AddressIPVersion != "IPV4":
		return nil, api.Errorf(cloudapi.CodeUnsupportedOperation, "AddressIPVersion %q is not supported here; only IPV4", in.AddressIPVersion)
	case number < 1 || number > maxCreateNumber:
		return nil, api.InvalidValue("Number", "must be between 1 and %d, got %d", maxCreateNumber, number)
	case number > 1 && in.Vip != "":
		return nil, api.InvalidValue("Vip", "can only be given when creating one load balancer")
	}
	if err := api.ClientToken("", "ClientToken", in.ClientToken); err != nil {
		return nil, err
	}
	if in.ProjectId != nil && *in.ProjectId != 0 {
		return nil, api.Errorf("InvalidParameter.ProjectIdNotExist", "project %d does not exist; only the default project 0 does", *in.ProjectId)
	}
	if err := checkTags(in.Tags); err != nil {
		return nil, err
	}
	vipIsp := "INTERNAL"
	if in.LoadBalancerType == clb.TypeOpen {
		switch in.VipIsp {
		case "", "BGP":
			vipIsp = "BGP"
		case "CMCC", "CTCC", "CUCC":
			// The model docs: a single-ISP address bills by bandwidth package only, which
			// InternetAccessible selects; this endpoint offers neither.
			return nil, api.Errorf(cloudapi.CodeUnsupportedOperation, "VipIsp %s needs InternetAccessible.InternetChargeType BANDWIDTH_PACKAGE, which is not offered here; leave VipIsp empty for BGP", in.VipIsp)
		default:
			return nil, api.InvalidValue("VipIsp", "must be CMCC, CTCC or CUCC (empty: BGP), got %q", in.VipIsp)
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

// lbRow is what a DescribeLoadBalancers filter sees.
type lbRow struct {
	lb     *LoadBalancer
	zoneID string
}

var lbFilters = api.FilterSpec[lbRow]{
	Limits: api.FilterLimits{MaxFilters: maxFilters, MaxValues: maxFilterValues, UnknownNameCode: cloudapi.CodeInvalidParameterValue},
	Fields: map[string]func(*lbRow) []string{
		"master-zone-id": func(r *lbRow) []string {
			if r.lb.Zone == "" {
				return nil
			}
			return []string{r.zoneID, r.lb.Zone}
		},
		"vip-isp": func(r *lbRow) []string { return []string{r.lb.VipIsp} },
		"internet-charge-type": func(r *lbRow) []string {
			if r.lb.Type != clb.TypeOpen {
				return nil
			}
			return []string{"TRAFFIC_POSTPAID_BY_HOUR"}
		},
		"function-name": func(*lbRow) []string { return nil }, // no load balancer here forwards to cloud functions
	},
	Tags: func(r *lbRow) []cloudapi.Tag { return asTags(r.lb.Tags) },
	Enums: map[string][]string{
		"internet-charge-type": {"BANDWIDTH_PREPAID", "TRAFFIC_POSTPAID_BY_HOUR", "BANDWIDTH_POSTPAID_BY_HOUR", "BANDWIDTH_PACKAGE"},
	},
}

func (m *Module) zoneID(name string) string {
	if z, ok := m.w.Zone(name); ok {
		return z.ID
	}
	return ""
}

func (m *Module) describeLoadBalancers(r *api.Request) (any, error) {
	in, err := api.Decode[clb.DescribeLoadBalancersRequest](r)
	if err != nil {
		return nil, err
	}
	if err := (api.IDList{Field: "LoadBalancerIds", Max: maxDescribeIDs, TooManyCode: clb.CodeLength}).Check(in.LoadBalancerIds); err != nil {
		return nil, err
	}
	filters, err := lbFilters.Compile(in.Filters)
	if err != nil {
		return nil, err
	}
	if in.LoadBalancerType != "" {
		if err := api.OneOf("LoadBalancerType", in.LoadBalancerType, clb.TypeOpen, clb.TypeInternal); err != nil {
			return nil, err
		}
	}
	if in.Forward != nil && *in.Forward != 0 && *in.Forward != 1 {
		return nil, api.InvalidValue("Forward", "must be 0 (classic) or 1, got %d", *in.Forward)
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
		page, err := api.Page(match, in.Offset, in.Limit, api.DefaultLimit)
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

func (m *Module) lbMatches(in *clb.DescribeLoadBalancersRequest, filters api.Filters[lbRow], lb *LoadBalancer, t *lbTargets) bool {
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
	return filters.Match(&lbRow{lb: lb, zoneID: m.zoneID(lb.Zone)})
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
	if err := (api.IDList{Field: "LoadBalancerIds", Max: maxIDsPerCall, Required: true, TooManyCode: clb.CodeLength}).Check(in.LoadBalancerIds); err != nil {
		return nil, err
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
