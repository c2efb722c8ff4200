package routerplane

import (
	"errors"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"slices"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/stratus-cloud/stratus/fakecloud/vpc"
)

// The load balancer half of the plane (vpc.VIPRouter): in a VPC's router namespace, a
// VIP the router answers itself is a local route (table local, proto Proto), and an L3
// VIP is a route of its own kernel table (TableBase+maxTables, consulted for every
// packet by a rule at RulePriority-1, before the route tables' rules) with one next hop
// per healthy target: a multipath route, so the kernel spreads flows across the nodes
// (per flow with the namespace's fib_multipath_hash_policy; the sandbox hashes on ports
// too) and the destination stays the VIP.

var _ vpc.VIPRouter = (*Plane)(nil)

// vipTable is the kernel table of the L3 VIP routes.
func (p *Plane) vipTable() int { return p.opts.TableBase + maxTables }

// vipPriority is the priority of the rule that consults vipTable.
func (p *Plane) vipPriority() int { return p.opts.RulePriority - 1 }

// Namespace reports the router namespace of vpcID.
func (p *Plane) Namespace(vpcID string) (string, bool) {
	ns, ok := p.opts.Routers[vpcID]
	return ns, ok
}

// ApplyVIPs makes every router's load balancer addresses match spec; a router whose VPC
// the spec does not name is emptied of them. Like Apply, it programs what it can and
// returns every failure.
func (p *Plane) ApplyVIPs(spec vpc.VIPSpec) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	spec = cloneVIPs(spec)
	p.lastVIPs = &spec
	return p.applyVIPs(spec)
}

func (p *Plane) applyVIPs(spec vpc.VIPSpec) error {
	byID := make(map[string]vpc.VIPVPC, len(spec.VPCs))
	for _, v := range spec.VPCs {
		byID[v.VpcID] = v
	}
	var errs []error
	for _, id := range slices.Sorted(maps.Keys(p.opts.Routers)) {
		v, ok := byID[id]
		if !ok {
			v = vpc.VIPVPC{VpcID: id}
		}
		if err := p.applyVIPVPC(p.opts.Routers[id], v); err != nil {
			errs = append(errs, fmt.Errorf("VPC %s (router %s): load balancer addresses: %w", id, p.opts.Routers[id], err))
		}
	}
	return errors.Join(errs...)
}

func (p *Plane) applyVIPVPC(nsPath string, v vpc.VIPVPC) error {
	nsh, err := netns.GetFromPath(nsPath)
	if err != nil {
		return fmt.Errorf("open router namespace: %w", err)
	}
	defer nsh.Close()
	h, err := netlink.NewHandleAt(nsh, unix.NETLINK_ROUTE)
	if err != nil {
		return fmt.Errorf("netlink in router namespace: %w", err)
	}
	defer h.Close()
	return errors.Join(p.syncLocalVIPs(h, v.Local), p.syncVIPRoutes(h, v.Routes), p.syncVIPRule(h))
}

func (p *Plane) syncLocalVIPs(h *netlink.Handle, local []netip.Addr) error {
	want := map[netip.Addr]bool{}
	for _, a := range local {
		if a.Is4() {
			want[a] = true
		}
	}
	have, err := h.RouteListFiltered(netlink.FAMILY_V4, &netlink.Route{Table: unix.RT_TABLE_LOCAL, Protocol: Proto},
		netlink.RT_FILTER_TABLE|netlink.RT_FILTER_PROTOCOL)
	if err != nil {
		return fmt.Errorf("list local routes: %w", err)
	}
	var errs []error
	present := map[netip.Addr]bool{}
	for _, r := range have {
		a, ok := hostAddr(r.Dst)
		if ok && want[a] && r.Type == unix.RTN_LOCAL {
			present[a] = true
			continue
		}
		if err := h.RouteDel(&r); err != nil && !errors.Is(err, unix.ESRCH) {
			errs = append(errs, fmt.Errorf("delete stale local VIP %s: %w", r.Dst, err))
		}
	}
	lo, err := h.LinkByName("lo")
	if err != nil {
		return errors.Join(append(errs, fmt.Errorf("loopback of the router: %w", err))...)
	}
	for _, a := range slices.SortedFunc(maps.Keys(want), netip.Addr.Compare) {
		if present[a] {
			continue
		}
		r := &netlink.Route{
			Table: unix.RT_TABLE_LOCAL, Type: unix.RTN_LOCAL, Scope: netlink.SCOPE_HOST, Protocol: Proto,
			Dst: ipNet(netip.PrefixFrom(a, 32)), LinkIndex: lo.Attrs().Index,
		}
		if err := h.RouteReplace(r); err != nil {
			errs = append(errs, fmt.Errorf("local VIP %s: %w", a, err))
		}
	}
	return errors.Join(errs...)
}

func (p *Plane) syncVIPRoutes(h *netlink.Handle, routes []vpc.VIPRoute) error {
	want := map[netip.Addr][]netip.Addr{}
	for _, r := range routes {
		if !r.VIP.Is4() || len(r.NextHops) == 0 {
			continue
		}
		hops := slices.Clone(r.NextHops)
		slices.SortFunc(hops, netip.Addr.Compare)
		want[r.VIP] = slices.Compact(hops)
	}
	have, err := h.RouteListFiltered(netlink.FAMILY_V4, &netlink.Route{Table: p.vipTable(), Protocol: Proto},
		netlink.RT_FILTER_TABLE|netlink.RT_FILTER_PROTOCOL)
	if err != nil {
		return fmt.Errorf("list VIP routes: %w", err)
	}
	var errs []error
	current := map[netip.Addr]bool{}
	for _, r := range have {
		a, ok := hostAddr(r.Dst)
		if ok && slices.Equal(want[a], nextHops(r)) {
			current[a] = true
			continue
		}
		if ok && want[a] != nil {
			continue // replaced below
		}
		if err := h.RouteDel(&r); err != nil && !errors.Is(err, unix.ESRCH) {
			errs = append(errs, fmt.Errorf("delete stale VIP route %s: %w", r.Dst, err))
		}
	}
	for _, vip := range slices.SortedFunc(maps.Keys(want), netip.Addr.Compare) {
		if current[vip] {
			continue
		}
		hops := want[vip]
		r := &netlink.Route{Table: p.vipTable(), Dst: ipNet(netip.PrefixFrom(vip, 32)), Protocol: Proto, Scope: netlink.SCOPE_UNIVERSE, Type: unix.RTN_UNICAST}
		if len(hops) == 1 {
			r.Gw = hops[0].AsSlice()
		} else {
			for _, gw := range hops {
				r.MultiPath = append(r.MultiPath, &netlink.NexthopInfo{Gw: gw.AsSlice()})
			}
		}
		if err := h.RouteReplace(r); err != nil {
			if errors.Is(err, unix.ENETUNREACH) {
				err = fmt.Errorf("%w: no subnet of the router reaches one of %v", err, hops)
			}
			errs = append(errs, fmt.Errorf("VIP %s via %v: %w", vip, hops, err))
		}
	}
	return errors.Join(errs...)
}

// syncVIPRule keeps exactly one rule at vipPriority looking up vipTable.
func (p *Plane) syncVIPRule(h *netlink.Handle) error {
	have, err := h.RuleList(netlink.FAMILY_V4)
	if err != nil {
		return fmt.Errorf("list rules: %w", err)
	}
	found := false
	var errs []error
	for _, r := range have {
		if r.Priority != p.vipPriority() || r.Table != p.vipTable() {
			continue
		}
		if !found && r.Src == nil && r.Dst == nil {
			found = true
			continue
		}
		if err := h.RuleDel(&r); err != nil && !errors.Is(err, unix.ENOENT) {
			errs = append(errs, fmt.Errorf("delete duplicate VIP rule: %w", err))
		}
	}
	if !found {
		r := netlink.NewRule()
		r.Family = netlink.FAMILY_V4
		r.Priority = p.vipPriority()
		r.Table = p.vipTable()
		if err := h.RuleAdd(r); err != nil && !errors.Is(err, unix.EEXIST) {
			errs = append(errs, fmt.Errorf("add VIP rule priority %d table %d: %w", r.Priority, r.Table, err))
		}
	}
	return errors.Join(errs...)
}

// hostAddr is the address of a /32 destination.
func hostAddr(dst *net.IPNet) (netip.Addr, bool) {
	if dst == nil {
		return netip.Addr{}, false
	}
	if bits, _ := dst.Mask.Size(); bits != 32 {
		return netip.Addr{}, false
	}
	a, ok := netip.AddrFromSlice(dst.IP)
	return a.Unmap(), ok
}

// nextHops are a route's gateways, sorted.
func nextHops(r netlink.Route) []netip.Addr {
	var out []netip.Addr
	if a, ok := netip.AddrFromSlice(r.Gw); ok {
		out = append(out, a.Unmap())
	}
	for _, nh := range r.MultiPath {
		if a, ok := netip.AddrFromSlice(nh.Gw); ok {
			out = append(out, a.Unmap())
		}
	}
	slices.SortFunc(out, netip.Addr.Compare)
	return out
}

func cloneVIPs(s vpc.VIPSpec) vpc.VIPSpec {
	out := vpc.VIPSpec{VPCs: make([]vpc.VIPVPC, 0, len(s.VPCs))}
	for _, v := range s.VPCs {
		cv := vpc.VIPVPC{VpcID: v.VpcID, Local: slices.Clone(v.Local)}
		for _, r := range v.Routes {
			cv.Routes = append(cv.Routes, vpc.VIPRoute{VIP: r.VIP, NextHops: slices.Clone(r.NextHops)})
		}
		out.VPCs = append(out.VPCs, cv)
	}
	return out
}
