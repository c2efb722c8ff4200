// Package routerplane is fakecloud's VPC router data plane: it makes a VPC's route tables
// real as kernel routes inside a network namespace that plays the VPC's router (the
// sandbox's router namespace joins the nodes' subnets and the host). Each route table
// becomes a kernel routing table of its own; each enabled NORMAL_CVM route in it becomes
// a kernel route to its destination via the instance's private IP; the main table
// routes all traffic, another table the traffic from the subnets associated with it
// (policy rules). Apply converges the namespace to the whole spec, so a restart, a reset
// or a route someone deleted by hand is repaired by the next Apply or resync.
//
// It also serves the VPCs' load balancer addresses (vpc.VIPRouter, vips.go): local
// routes for the VIPs the router answers, multipath routes for L3 VIPs.
//
// It owns only what it creates in the router namespaces it is given: kernel routes of
// its protocol number (Proto) and policy rules at its three priorities. It never touches
// the namespace's interfaces and addresses (whoever built the namespace owns them), any
// other namespace, or the cloud's state (it only reads the spec package vpc hands it).
package routerplane

import (
	"errors"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
	"k8s.io/klog/v2"

	vpcapi "github.com/stratus-cloud/stratus/cloudapi/vpc"
	"github.com/stratus-cloud/stratus/fakecloud/vpc"
)

// Proto is the routing protocol number stamped on every route the plane installs; it is
// how the plane tells its routes from anyone else's (iproute2 shows it as "proto 201").
const Proto netlink.RouteProtocol = 201

// Defaults of Options.
const (
	DefaultTableBase    = 10000
	DefaultRulePriority = 20000
	DefaultResync       = 10 * time.Second
	// maxTables bounds the kernel table ids the plane claims (TableBase..+maxTables-1):
	// far above the cloud's route-tables-per-VPC quota.
	maxTables = 1000
)

// Options configure a Plane.
type Options struct {
	// Routers maps a VPC ID to the network namespace that plays its router: a path such
	// as /run/netns/NAME, or a bare NAME under /run/netns. VPCs not listed are not
	// programmed anywhere.
	Routers map[string]string
	// TableBase is the first kernel table id; route table i (sorted by ID) of a VPC uses
	// TableBase+i.
	TableBase int
	// RulePriority is the priority of a non-main table's per-subnet rules; the main
	// table's catch-all rule is at RulePriority+1, so a subnet's own table is consulted
	// first and falls through to the main table when it has no matching route.
	RulePriority int
	// Resync re-applies the last spec this often, repairing routes changed behind the
	// plane's back; negative disables it.
	Resync time.Duration
}

// Plane programs the router namespaces. It is safe for concurrent use.
type Plane struct {
	opts Options

	mu       sync.Mutex // serializes Apply and ApplyVIPs and guards last, lastVIPs, lastErr
	last     *vpc.RouterSpec
	lastVIPs *vpc.VIPSpec
	lastErr  string

	stop chan struct{}
	done chan struct{}
	once sync.Once
}

var _ vpc.Router = (*Plane)(nil)

// New validates opts and starts the resync loop. It touches no namespace until Apply.
func New(opts Options) (*Plane, error) {
	if opts.TableBase == 0 {
		opts.TableBase = DefaultTableBase
	}
	if opts.RulePriority == 0 {
		opts.RulePriority = DefaultRulePriority
	}
	if opts.Resync == 0 {
		opts.Resync = DefaultResync
	}
	if opts.TableBase < 256 || opts.TableBase+maxTables > 1<<31-1 {
		return nil, fmt.Errorf("routerplane: table base %d must be at least 256 (clear of the kernel's reserved tables)", opts.TableBase)
	}
	if opts.RulePriority <= 1 || opts.RulePriority >= 32766 {
		return nil, fmt.Errorf("routerplane: rule priority %d must be between 2 and 32765 (before the kernel's main table; the VIP rule takes the one below)", opts.RulePriority)
	}
	routers := make(map[string]string, len(opts.Routers))
	for id, ns := range opts.Routers {
		switch {
		case id == "":
			return nil, errors.New("routerplane: a router namespace is given for an empty VPC ID")
		case ns == "":
			return nil, fmt.Errorf("routerplane: VPC %s: empty router namespace", id)
		case !filepath.IsAbs(ns):
			ns = filepath.Join("/run/netns", ns)
		}
		routers[id] = ns
	}
	opts.Routers = routers
	p := &Plane{opts: opts, stop: make(chan struct{}), done: make(chan struct{})}
	if opts.Resync > 0 {
		go p.resyncLoop()
	} else {
		close(p.done)
	}
	return p, nil
}

// Close stops the resync loop. The kernel routes stay: they belong to the namespace,
// whose owner removes it.
func (p *Plane) Close() error {
	p.once.Do(func() { close(p.stop) })
	<-p.done
	return nil
}

// Apply makes every router namespace match spec. It programs as much as it can and
// returns every failure (a gateway no subnet of the router reaches, a missing
// namespace), each naming the VPC, the route table and the route.
func (p *Plane) Apply(spec vpc.RouterSpec) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	spec = clone(spec)
	p.last = &spec
	return p.apply(spec)
}

func (p *Plane) apply(spec vpc.RouterSpec) error {
	byID := make(map[string]vpc.RouterVPC, len(spec.VPCs))
	for _, v := range spec.VPCs {
		byID[v.VpcID] = v
	}
	var errs []error
	// Every router converges, also one whose VPC the spec no longer has: it is emptied.
	for _, id := range slices.Sorted(maps.Keys(p.opts.Routers)) {
		nsPath := p.opts.Routers[id]
		v, ok := byID[id]
		if !ok {
			v = vpc.RouterVPC{VpcID: id}
		}
		if err := p.applyVPC(nsPath, v); err != nil {
			errs = append(errs, fmt.Errorf("VPC %s (router %s): %w", id, nsPath, err))
		}
	}
	return errors.Join(errs...)
}

// desired is the kernel state of one VPC.
type desired struct {
	routes map[routeKey]netip.Addr
	rules  map[ruleKey]bool
	// names say which route table and destination a route came from, for errors.
	names map[routeKey]string
}

type routeKey struct {
	table int
	dst   netip.Prefix
}

type ruleKey struct {
	priority int
	src      netip.Prefix // zero: every source
	table    int
}

// plan turns a VPC's tables into kernel state. Routes whose next hop is not an instance
// (NORMAL_CVM) have nothing to point at here and are skipped; so are tables beyond
// maxTables (the cloud's quota is far lower).
func (p *Plane) plan(v vpc.RouterVPC) (desired, []error) {
	d := desired{routes: map[routeKey]netip.Addr{}, rules: map[ruleKey]bool{}, names: map[routeKey]string{}}
	var errs []error
	for i, t := range v.Tables {
		if i >= maxTables {
			errs = append(errs, fmt.Errorf("route table %s: more than %d route tables; not programmed", t.RouteTableID, maxTables))
			continue
		}
		table := p.opts.TableBase + i
		if t.Main {
			d.rules[ruleKey{priority: p.opts.RulePriority + 1, table: table}] = true
		} else {
			for _, s := range t.Subnets {
				d.rules[ruleKey{priority: p.opts.RulePriority, src: s.Masked(), table: table}] = true
			}
		}
		for _, r := range t.Routes {
			if r.GatewayType != vpcapi.GatewayTypeNormalCVM {
				klog.V(4).InfoS("Route has no next hop on this machine; not programmed", "routeTable", t.RouteTableID, "destination", r.Destination, "gatewayType", r.GatewayType)
				continue
			}
			gw, err := netip.ParseAddr(r.GatewayID)
			if err != nil || !gw.Is4() {
				errs = append(errs, fmt.Errorf("route table %s: route to %s: gateway %q is not an IPv4 address", t.RouteTableID, r.Destination, r.GatewayID))
				continue
			}
			k := routeKey{table: table, dst: r.Destination.Masked()}
			d.routes[k] = gw
			d.names[k] = fmt.Sprintf("route table %s: route to %s via %s", t.RouteTableID, r.Destination, gw)
		}
	}
	return d, errs
}

func (p *Plane) applyVPC(nsPath string, v vpc.RouterVPC) error {
	want, errs := p.plan(v)
	ns, err := netns.GetFromPath(nsPath)
	if err != nil {
		return fmt.Errorf("open router namespace: %w", err)
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
	if err != nil {
		return fmt.Errorf("netlink in router namespace: %w", err)
	}
	defer h.Close()

	if err := p.syncRoutes(h, want); err != nil {
		errs = append(errs, err)
	}
	if err := p.syncRules(h, want); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func (p *Plane) ownTable(t int) bool { return t >= p.opts.TableBase && t < p.opts.TableBase+maxTables }

func (p *Plane) syncRoutes(h *netlink.Handle, want desired) error {
	have, err := h.RouteListFiltered(netlink.FAMILY_V4, &netlink.Route{Table: unix.RT_TABLE_UNSPEC, Protocol: Proto},
		netlink.RT_FILTER_TABLE|netlink.RT_FILTER_PROTOCOL)
	if err != nil {
		return fmt.Errorf("list routes: %w", err)
	}
	var errs []error
	current := map[routeKey]netip.Addr{}
	for _, r := range have {
		if !p.ownTable(r.Table) {
			continue // another table: not ours, whatever its protocol number
		}
		if k, gw, ok := keyOf(r); ok {
			if wantGW, wanted := want.routes[k]; wanted && wantGW == gw {
				current[k] = gw
				continue
			}
		}
		if err := h.RouteDel(&r); err != nil && !errors.Is(err, unix.ESRCH) {
			errs = append(errs, fmt.Errorf("delete stale route %s (table %d): %w", r.Dst, r.Table, err))
		}
	}
	for _, k := range sortedKeys(want.routes) {
		gw := want.routes[k]
		if current[k] == gw {
			continue
		}
		r := &netlink.Route{
			Table: k.table, Dst: ipNet(k.dst), Gw: gw.AsSlice(), Protocol: Proto,
			Scope: netlink.SCOPE_UNIVERSE, Type: unix.RTN_UNICAST,
		}
		if err := h.RouteReplace(r); err != nil {
			if errors.Is(err, unix.ENETUNREACH) {
				err = fmt.Errorf("%w: no subnet of the router reaches %s", err, gw)
			}
			errs = append(errs, fmt.Errorf("%s: %w", want.names[k], err))
		}
	}
	return errors.Join(errs...)
}

func (p *Plane) syncRules(h *netlink.Handle, want desired) error {
	have, err := h.RuleList(netlink.FAMILY_V4)
	if err != nil {
		return fmt.Errorf("list rules: %w", err)
	}
	var errs []error
	present := map[ruleKey]bool{}
	for _, r := range have {
		if r.Priority != p.opts.RulePriority && r.Priority != p.opts.RulePriority+1 {
			continue
		}
		if !p.ownTable(r.Table) {
			continue
		}
		k := ruleKey{priority: r.Priority, table: r.Table}
		if r.Src != nil {
			if a, ok := netip.AddrFromSlice(r.Src.IP); ok {
				bits, _ := r.Src.Mask.Size()
				k.src = netip.PrefixFrom(a.Unmap(), bits)
			}
		}
		if want.rules[k] && !present[k] {
			present[k] = true
			continue
		}
		if err := h.RuleDel(&r); err != nil && !errors.Is(err, unix.ENOENT) {
			errs = append(errs, fmt.Errorf("delete stale rule priority %d table %d: %w", r.Priority, r.Table, err))
		}
	}
	for k := range want.rules {
		if present[k] {
			continue
		}
		r := netlink.NewRule()
		r.Family = netlink.FAMILY_V4
		r.Priority = k.priority
		r.Table = k.table
		if k.src.IsValid() {
			r.Src = ipNet(k.src)
		}
		if err := h.RuleAdd(r); err != nil && !errors.Is(err, unix.EEXIST) {
			errs = append(errs, fmt.Errorf("add rule priority %d table %d: %w", k.priority, k.table, err))
		}
	}
	return errors.Join(errs...)
}

func (p *Plane) resyncLoop() {
	defer close(p.done)
	t := time.NewTicker(p.opts.Resync)
	defer t.Stop()
	for {
		select {
		case <-p.stop:
			return
		case <-t.C:
			p.resync()
		}
	}
}

// resync re-applies the last spec; a failure is logged once per distinct message, not at
// every tick.
func (p *Plane) resync() {
	p.mu.Lock()
	defer p.mu.Unlock()
	var errs []error
	if p.last != nil {
		errs = append(errs, p.apply(*p.last))
	}
	if p.lastVIPs != nil {
		errs = append(errs, p.applyVIPs(*p.lastVIPs))
	}
	err := errors.Join(errs...)
	msg := ""
	if err != nil {
		msg = err.Error()
		if msg != p.lastErr {
			klog.ErrorS(err, "VPC router resync is not fully applied")
		}
	}
	p.lastErr = msg
}

func keyOf(r netlink.Route) (routeKey, netip.Addr, bool) {
	if r.Dst == nil || len(r.MultiPath) > 0 {
		return routeKey{}, netip.Addr{}, false
	}
	a, ok := netip.AddrFromSlice(r.Dst.IP)
	if !ok {
		return routeKey{}, netip.Addr{}, false
	}
	bits, _ := r.Dst.Mask.Size()
	gw, ok := netip.AddrFromSlice(r.Gw)
	if !ok {
		return routeKey{}, netip.Addr{}, false
	}
	return routeKey{table: r.Table, dst: netip.PrefixFrom(a.Unmap(), bits)}, gw.Unmap(), true
}

func ipNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

func sortedKeys(m map[routeKey]netip.Addr) []routeKey {
	keys := make([]routeKey, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b routeKey) int {
		if a.table != b.table {
			return a.table - b.table
		}
		if c := a.dst.Addr().Compare(b.dst.Addr()); c != 0 {
			return c
		}
		return a.dst.Bits() - b.dst.Bits()
	})
	return keys
}

func clone(s vpc.RouterSpec) vpc.RouterSpec {
	out := vpc.RouterSpec{VPCs: make([]vpc.RouterVPC, 0, len(s.VPCs))}
	for _, v := range s.VPCs {
		cv := v
		cv.Tables = make([]vpc.RouterTable, 0, len(v.Tables))
		for _, t := range v.Tables {
			ct := t
			ct.Subnets = slices.Clone(t.Subnets)
			ct.Routes = slices.Clone(t.Routes)
			cv.Tables = append(cv.Tables, ct)
		}
		out.VPCs = append(out.VPCs, cv)
	}
	return out
}
