package vpc

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/stratus-cloud/stratus/cloudapi"
	"github.com/stratus-cloud/stratus/cloudapi/vpc"
	"github.com/stratus-cloud/stratus/fakecloud/api"
	"github.com/stratus-cloud/stratus/fakecloud/store"
)

// SecurityGroup is one security group: ordered inbound and outbound rules. Other services
// bind groups to their resources with BindSecurityGroups and read the rules with
// GetSecurityGroup (the CLB data plane filters sources with them).
type SecurityGroup struct {
	SecurityGroupId string
	Name            string
	Description     string
	ProjectId       string
	Tags            []cloudapi.Tag
	Version         int64
	Ingress         []Policy
	Egress          []Policy
	CreatedTime     time.Time
}

// Policy is one rule of a security group. Peer is the CidrBlock (a single address is
// stored as a /32); Ports is "ALL" or the port list / ranges the rule covers.
type Policy struct {
	Protocol    string // TCP | UDP | ICMP | ICMPv6 | ALL
	Port        string // "" (not TCP/UDP), "ALL", "80", "8000-8010", "80,443"
	CidrBlock   string
	Action      string // ACCEPT | DROP
	Description string
	ModifyTime  time.Time
}

// securityGroupBinding lists the resources (load balancers, ...) a group is bound to.
type securityGroupBinding struct {
	SecurityGroupId string
	Resources       []string
}

const (
	securityGroupsName = "vpc.security-groups"
	sgBindingsName     = "vpc.security-group-bindings"

	maxSGName        = 60
	maxSGDescription = 100
	maxPolicyDesc    = 100
)

var (
	securityGroupsT = store.Register[SecurityGroup](handles, securityGroupsName)
	sgBindingsT     = store.Register[securityGroupBinding](handles, sgBindingsName)
)

// SecurityGroups registers (idempotently) the security group tables in s and returns the
// group table.
func SecurityGroups(s *store.Store) *store.Table[SecurityGroup] {
	store.Register[securityGroupBinding](s, sgBindingsName)
	return store.Register[SecurityGroup](s, securityGroupsName)
}

// GetSecurityGroup returns group id inside tx.
func GetSecurityGroup(tx *store.Tx, id string) (*SecurityGroup, bool) {
	return securityGroupsT.Get(tx, id)
}

// BindSecurityGroups records that resource is bound to exactly groups (replacing what it
// was bound to), so that DeleteSecurityGroup refuses a group still in use. Every group
// must exist; field names the request parameter for the error.
func BindSecurityGroups(tx *store.Tx, resource, field string, groups []string) error {
	for i, id := range groups {
		if _, ok := securityGroupsT.Get(tx, id); !ok {
			return api.NotFound("InvalidSecurityGroupID.NotFound", "security group", fmt.Sprintf("%s (parameter `%s.%d`)", id, field, i))
		}
	}
	for _, b := range sgBindingsT.List(tx) {
		if !slices.Contains(b.Resources, resource) || slices.Contains(groups, b.SecurityGroupId) {
			continue
		}
		nb := &securityGroupBinding{SecurityGroupId: b.SecurityGroupId, Resources: slices.DeleteFunc(slices.Clone(b.Resources), func(r string) bool { return r == resource })}
		if err := sgBindingsT.Put(tx, nb.SecurityGroupId, nb); err != nil {
			return err
		}
	}
	for _, id := range groups {
		b := &securityGroupBinding{SecurityGroupId: id}
		if old, ok := sgBindingsT.Get(tx, id); ok {
			b.Resources = slices.Clone(old.Resources)
		}
		if !slices.Contains(b.Resources, resource) {
			b.Resources = append(b.Resources, resource)
		}
		if err := sgBindingsT.Put(tx, id, b); err != nil {
			return err
		}
	}
	return nil
}

// Allows reports whether the inbound rules of groups (evaluated in order, the first
// match deciding) accept a connection from src to port/protocol ("TCP" or "UDP"). No
// rule matching means no: a bound group denies by default.
func Allows(groups []*SecurityGroup, src netip.Addr, protocol string, port int) bool {
	for _, g := range groups {
		for _, p := range g.Ingress {
			if p.matches(src, protocol, port) {
				return p.Action == vpc.PolicyAccept
			}
		}
	}
	return false
}

func (p *Policy) matches(src netip.Addr, protocol string, port int) bool {
	pfx, err := netip.ParsePrefix(p.CidrBlock)
	return err == nil && pfx.Contains(src) && p.Covers(protocol, port)
}

// Covers reports whether the rule applies to traffic of protocol ("TCP", "UDP") to port,
// whatever its source.
func (p *Policy) Covers(protocol string, port int) bool {
	if p.Protocol != vpc.PolicyProtocolALL && p.Protocol != protocol {
		return false
	}
	if p.Port == "" || strings.EqualFold(p.Port, "ALL") {
		return true
	}
	for part := range strings.SplitSeq(p.Port, ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		if !isRange {
			hi = lo
		}
		l, err1 := strconv.Atoi(lo)
		h, err2 := strconv.Atoi(hi)
		if err1 == nil && err2 == nil && port >= l && port <= h {
			return true
		}
	}
	return false
}

var securityGroupFilters = api.FilterSpec[SecurityGroup]{
	Limits: filterLimits,
	Fields: map[string]func(*SecurityGroup) []string{
		"security-group-id":   func(g *SecurityGroup) []string { return one(g.SecurityGroupId) },
		"security-group-name": func(g *SecurityGroup) []string { return one(g.Name) },
		"project-id":          func(g *SecurityGroup) []string { return one(g.ProjectId) },
	},
	Tags: func(g *SecurityGroup) []cloudapi.Tag { return g.Tags },
}

func (m *Module) createSecurityGroup(r *api.Request) (any, error) {
	in, err := api.Decode[vpc.CreateSecurityGroupRequest](r)
	if err != nil {
		return nil, err
	}
	switch {
	case in.GroupName == "":
		return nil, api.MissingParameter("GroupName")
	case utf8.RuneCountInString(in.GroupName) > maxSGName:
		return nil, api.Errorf("InvalidParameterValue.TooLong", "parameter `GroupName` is longer than %d characters", maxSGName)
	case in.GroupDescription == "":
		return nil, api.MissingParameter("GroupDescription")
	case utf8.RuneCountInString(in.GroupDescription) > maxSGDescription:
		return nil, api.Errorf("InvalidParameterValue.TooLong", "parameter `GroupDescription` is longer than %d characters", maxSGDescription)
	}
	if err := validTags("Tags", in.Tags); err != nil {
		return nil, err
	}
	project := in.ProjectId
	if project == "" {
		project = "0"
	}
	g := &SecurityGroup{
		SecurityGroupId: api.NewID("sg"), Name: in.GroupName, Description: in.GroupDescription,
		ProjectId: project, Tags: slices.Clone(in.Tags), CreatedTime: r.Now,
	}
	err = m.w.Store.Update(func(tx *store.Tx) error {
		if limit := m.w.Limit("security-groups-per-region", 50); securityGroupsT.Len(tx) >= limit {
			return api.Errorf(cloudapi.CodeLimitExceeded, "region %s already has %d security groups, the quota is %d", m.w.Region, securityGroupsT.Len(tx), limit)
		}
		return securityGroupsT.Put(tx, g.SecurityGroupId, g)
	})
	if err != nil {
		return nil, err
	}
	return &vpc.CreateSecurityGroupResponse{SecurityGroup: toWireSecurityGroup(g)}, nil
}

func (m *Module) describeSecurityGroups(r *api.Request) (any, error) {
	in, err := api.Decode[vpc.DescribeSecurityGroupsRequest](r)
	if err != nil {
		return nil, err
	}
	if err := coexist("SecurityGroupIds", in.SecurityGroupIds, in.Filters); err != nil {
		return nil, err
	}
	if err := ids("SecurityGroupIds", "sg-", "InvalidSecurityGroupID.Malformed").Check(in.SecurityGroupIds); err != nil {
		return nil, err
	}
	match, err := securityGroupFilters.Compile(in.Filters)
	if err != nil {
		return nil, err
	}
	var sel []*SecurityGroup
	_ = m.w.Store.View(func(tx *store.Tx) error {
		sel = selectRecords(tx, securityGroupsT, func(g *SecurityGroup) string { return g.SecurityGroupId }, in.SecurityGroupIds, match)
		return nil
	})
	pg, err := api.PageStrings(sel, in.Offset, in.Limit, api.DefaultLimit)
	if err != nil {
		return nil, err
	}
	out := &vpc.DescribeSecurityGroupsResponse{TotalCount: uint64(len(sel)), SecurityGroupSet: make([]vpc.SecurityGroup, 0, len(pg))}
	for _, g := range pg {
		out.SecurityGroupSet = append(out.SecurityGroupSet, toWireSecurityGroup(g))
	}
	return out, nil
}

func (m *Module) deleteSecurityGroup(r *api.Request) (any, error) {
	in, err := api.Decode[vpc.DeleteSecurityGroupRequest](r)
	if err != nil {
		return nil, err
	}
	if in.SecurityGroupId == "" {
		return nil, api.MissingParameter("SecurityGroupId")
	}
	err = m.w.Store.Update(func(tx *store.Tx) error {
		if _, ok := securityGroupsT.Get(tx, in.SecurityGroupId); !ok {
			return api.NotFound("InvalidSecurityGroupID.NotFound", "security group", in.SecurityGroupId)
		}
		if b, ok := sgBindingsT.Get(tx, in.SecurityGroupId); ok && len(b.Resources) > 0 {
			return api.Errorf(cloudapi.CodeResourceInUse, "security group %s is bound to %s; unbind it first", in.SecurityGroupId, strings.Join(b.Resources, ", "))
		}
		if err := sgBindingsT.Delete(tx, in.SecurityGroupId); err != nil {
			return err
		}
		return securityGroupsT.Delete(tx, in.SecurityGroupId)
	})
	if err != nil {
		return nil, err
	}
	return &vpc.DeleteSecurityGroupResponse{}, nil
}

func (m *Module) describeSecurityGroupPolicies(r *api.Request) (any, error) {
	in, err := api.Decode[vpc.DescribeSecurityGroupPoliciesRequest](r)
	if err != nil {
		return nil, err
	}
	if in.SecurityGroupId == "" {
		return nil, api.MissingParameter("SecurityGroupId")
	}
	out := &vpc.DescribeSecurityGroupPoliciesResponse{}
	err = m.w.Store.View(func(tx *store.Tx) error {
		g, ok := securityGroupsT.Get(tx, in.SecurityGroupId)
		if !ok {
			return api.NotFound("InvalidSecurityGroupID.NotFound", "security group", in.SecurityGroupId)
		}
		out.SecurityGroupPolicySet = vpc.SecurityGroupPolicySet{
			Version: strconv.FormatInt(g.Version, 10),
			Ingress: wirePolicies(g.Ingress), Egress: wirePolicies(g.Egress),
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

func (m *Module) modifySecurityGroupPolicies(r *api.Request) (any, error) {
	in, err := api.Decode[vpc.ModifySecurityGroupPoliciesRequest](r)
	if err != nil {
		return nil, err
	}
	if in.SecurityGroupId == "" {
		return nil, api.MissingParameter("SecurityGroupId")
	}
	limit := m.w.Limit("security-group-policies-per-direction", 100)
	ingress, err := parsePolicies("SecurityGroupPolicySet.Ingress", in.SecurityGroupPolicySet.Ingress, limit, r.Now)
	if err != nil {
		return nil, err
	}
	egress, err := parsePolicies("SecurityGroupPolicySet.Egress", in.SecurityGroupPolicySet.Egress, limit, r.Now)
	if err != nil {
		return nil, err
	}
	err = m.w.Store.Update(func(tx *store.Tx) error {
		cur, ok := securityGroupsT.Get(tx, in.SecurityGroupId)
		if !ok {
			return api.NotFound("InvalidSecurityGroupID.NotFound", "security group", in.SecurityGroupId)
		}
		if v := in.SecurityGroupPolicySet.Version; v != "" && v != strconv.FormatInt(cur.Version, 10) {
			return api.Errorf("InvalidParameterValue.VersionMismatch", "parameter `SecurityGroupPolicySet.Version`: %s is not the group's current version %d", v, cur.Version)
		}
		g := *cur
		g.Ingress, g.Egress, g.Version = ingress, egress, cur.Version+1
		return securityGroupsT.Put(tx, g.SecurityGroupId, &g)
	})
	if err != nil {
		return nil, err
	}
	return &vpc.ModifySecurityGroupPoliciesResponse{}, nil
}

// parsePolicies validates one direction's rules as ModifySecurityGroupPolicies takes
// them: no custom PolicyIndex, a CIDR peer (IPv4), a port only for TCP and UDP.
func parsePolicies(field string, in []vpc.SecurityGroupPolicy, limit int, now time.Time) ([]Policy, error) {
	if len(in) > limit {
		return nil, api.Errorf(cloudapi.CodeLimitExceeded, "parameter `%s` has %d rules, a direction allows %d", field, len(in), limit)
	}
	out := make([]Policy, 0, len(in))
	for i, p := range in {
		f := fmt.Sprintf("%s.%d", field, i)
		if p.PolicyIndex != nil {
			return nil, api.InvalidValue(f+".PolicyIndex", "ModifySecurityGroupPolicies does not take a custom index")
		}
		proto := strings.ToUpper(p.Protocol)
		switch proto {
		case vpc.PolicyProtocolTCP, vpc.PolicyProtocolUDP, vpc.PolicyProtocolICMP, "ICMPV6", vpc.PolicyProtocolALL:
		case "":
			return nil, api.MissingParameter(f + ".Protocol")
		default:
			return nil, api.InvalidValue(f+".Protocol", "must be TCP, UDP, ICMP, ICMPv6 or ALL, got %q", p.Protocol)
		}
		if proto == "ICMPV6" {
			proto = "ICMPv6"
		}
		port := strings.TrimSpace(p.Port)
		if port != "" && proto != vpc.PolicyProtocolTCP && proto != vpc.PolicyProtocolUDP {
			return nil, api.InvalidValue(f+".Port", "a port only goes with TCP or UDP, not %s", proto)
		}
		if err := checkPolicyPorts(f+".Port", port); err != nil {
			return nil, err
		}
		peers := 0
		for _, s := range []string{p.CidrBlock, p.Ipv6CidrBlock, p.SecurityGroupId} {
			if s != "" {
				peers++
			}
		}
		if peers != 1 {
			return nil, api.InvalidValue(f, "exactly one of CidrBlock, Ipv6CidrBlock and SecurityGroupId is required, got %d", peers)
		}
		if p.CidrBlock == "" {
			return nil, api.Errorf(cloudapi.CodeUnsupportedOperation, "parameter `%s`: only CidrBlock peers are supported here", f)
		}
		cidr, err := parsePeer(p.CidrBlock)
		if err != nil {
			return nil, api.InvalidValue(f+".CidrBlock", "%q is not an IPv4 address or CIDR block", p.CidrBlock)
		}
		switch p.Action {
		case vpc.PolicyAccept, vpc.PolicyDrop:
		case "":
			return nil, api.MissingParameter(f + ".Action")
		default:
			return nil, api.InvalidValue(f+".Action", "must be ACCEPT or DROP, got %q", p.Action)
		}
		if utf8.RuneCountInString(p.PolicyDescription) > maxPolicyDesc {
			return nil, api.InvalidValue(f+".PolicyDescription", "must be at most %d characters", maxPolicyDesc)
		}
		out = append(out, Policy{Protocol: proto, Port: port, CidrBlock: cidr.String(), Action: p.Action, Description: p.PolicyDescription, ModifyTime: now})
	}
	return out, nil
}

func parsePeer(s string) (netip.Prefix, error) {
	if a, err := netip.ParseAddr(s); err == nil && a.Is4() {
		return netip.PrefixFrom(a, 32), nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil || !p.Addr().Is4() {
		return netip.Prefix{}, fmt.Errorf("not IPv4")
	}
	return p.Masked(), nil
}

// checkPolicyPorts accepts "", "ALL", a port, a range "a-b" or a comma list of those.
func checkPolicyPorts(field, s string) error {
	if s == "" || strings.EqualFold(s, "ALL") {
		return nil
	}
	for part := range strings.SplitSeq(s, ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		if !isRange {
			hi = lo
		}
		l, err1 := strconv.Atoi(lo)
		h, err2 := strconv.Atoi(hi)
		if err1 != nil || err2 != nil || l < 1 || h > 65535 || l > h {
			return api.InvalidValue(field, "%q is not a port, a range a-b or a list of them", s)
		}
	}
	return nil
}

func wirePolicies(ps []Policy) []vpc.SecurityGroupPolicy {
	out := make([]vpc.SecurityGroupPolicy, 0, len(ps))
	for i, p := range ps {
		out = append(out, vpc.SecurityGroupPolicy{
			PolicyIndex: cloudapi.Int64(int64(i)), Protocol: p.Protocol, Port: p.Port, CidrBlock: p.CidrBlock,
			Action: p.Action, PolicyDescription: p.Description, ModifyTime: vpcTime(p.ModifyTime),
		})
	}
	return out
}

func toWireSecurityGroup(g *SecurityGroup) vpc.SecurityGroup {
	return vpc.SecurityGroup{
		SecurityGroupId: g.SecurityGroupId, SecurityGroupName: g.Name, SecurityGroupDesc: g.Description,
		ProjectId: g.ProjectId, CreatedTime: vpcTime(g.CreatedTime), TagSet: nonNil(g.Tags),
	}
}
