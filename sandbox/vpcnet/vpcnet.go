// Package vpcnet builds the sandbox's network: a router namespace that plays the VPC (a
// bridge per subnet whose address is the subnet's gateway), one namespace per node with
// its address in its subnet and its default route via the gateway, and a veth pair that
// joins the router to the host, which routes the VPC and pod CIDRs into it. The router
// has no default route: traffic to anything but the sandbox's own addresses goes nowhere.
// Pod routes inside the router are not built here; fakecloud's router plane programs
// them from the cloud's route table.
//
// Every namespace and host link is recorded in the journal before it is made, so
// `stratus down` finds it even after a crash. It never changes a host route or address
// it did not make, and it refuses to add a host route that overlaps one already there.
package vpcnet

import (
	"errors"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/containernetworking/plugins/pkg/utils/sysctl"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/stratus-cloud/stratus/sandbox/plan"
	"github.com/stratus-cloud/stratus/sandbox/state"
)

// NetnsDir is where named network namespaces live (as `ip netns` makes them).
const NetnsDir = "/run/netns"

// NetnsPath is the path of the namespace called name.
func NetnsPath(name string) string { return filepath.Join(NetnsDir, name) }

// HostRoute is one route of the host, as the overlap check sees it.
type HostRoute struct {
	Dst    netip.Prefix
	Device string
	Table  int
}

func (r HostRoute) String() string {
	s := r.Dst.String()
	if r.Device != "" {
		s += " dev " + r.Device
	}
	if r.Table != 0 && r.Table != unix.RT_TABLE_MAIN {
		s += fmt.Sprintf(" table %d", r.Table)
	}
	return s
}

// CheckOverlap reports the first of want (named by flag) that overlaps a host route. A
// default route overlaps everything and is not a conflict: the sandbox's more specific
// routes win over it.
func CheckOverlap(want map[string]netip.Prefix, routes []HostRoute) error {
	for _, flag := range slices.Sorted(maps.Keys(want)) {
		p := want[flag]
		for _, r := range routes {
			if r.Dst.Bits() == 0 || !r.Dst.Overlaps(p) {
				continue
			}
			return fmt.Errorf("%s %s overlaps the host route %s: pick a free range with %s", flag, p, r, flag)
		}
	}
	return nil
}

// CheckHost reports, in one line, whether the plan's host routes would collide with a
// route or address of this machine (another sandbox, a VPN, a docker bridge).
func CheckHost(p *plan.Plan) error {
	routes, err := hostRoutes()
	if err != nil {
		return err
	}
	return CheckOverlap(p.RangeFlags(), routes)
}

// hostRoutes lists the IPv4 routes of every table of the host namespace, local ones (an
// address of an interface) included.
func hostRoutes() ([]HostRoute, error) {
	rs, err := netlink.RouteListFiltered(netlink.FAMILY_V4, &netlink.Route{Table: unix.RT_TABLE_UNSPEC}, netlink.RT_FILTER_TABLE)
	if err != nil {
		return nil, fmt.Errorf("list host routes: %w", err)
	}
	names := map[int]string{}
	if links, err := netlink.LinkList(); err == nil {
		for _, l := range links {
			names[l.Attrs().Index] = l.Attrs().Name
		}
	}
	var out []HostRoute
	for _, r := range rs {
		if r.Dst == nil {
			continue // a default route
		}
		a, ok := netip.AddrFromSlice(r.Dst.IP)
		if !ok {
			continue
		}
		bits, _ := r.Dst.Mask.Size()
		out = append(out, HostRoute{Dst: netip.PrefixFrom(a.Unmap(), bits), Device: names[r.LinkIndex], Table: r.Table})
	}
	return out, nil
}

// Build makes the router, the host link and routes, and every node's namespace.
func Build(p *plan.Plan, j *state.Journal) error {
	if err := buildRouter(p, j); err != nil {
		return fmt.Errorf("router namespace %s: %w", p.RouterNetns, err)
	}
	if err := buildHostLink(p, j); err != nil {
		return fmt.Errorf("host link %s: %w", p.HostLink, err)
	}
	errc := make(chan error, len(p.Nodes))
	for _, n := range p.Nodes {
		go func() {
			if err := buildNode(p, n, j); err != nil {
				errc <- fmt.Errorf("node %s (namespace %s): %w", n.Name, n.Netns, err)
				return
			}
			errc <- nil
		}()
	}
	var errs []error
	for range p.Nodes {
		errs = append(errs, <-errc)
	}
	return errors.Join(errs...)
}

// AddNetns records and creates a named namespace with loopback up.
func AddNetns(j *state.Journal, name string) error {
	if j != nil {
		if err := j.Record(state.Resource{Kind: state.KindNetns, Name: name}); err != nil {
			return err
		}
	}
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		return fmt.Errorf("ip netns add %s: %w: %s", name, err, strings.TrimSpace(string(out)))
	}
	return inNetns(name, func(h *netlink.Handle) error {
		lo, err := h.LinkByName("lo")
		if err != nil {
			return err
		}
		return h.LinkSetUp(lo)
	})
}

// DeleteNetns removes a named namespace; a missing one is not an error.
func DeleteNetns(name string) error {
	path := NetnsPath(name)
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	// What `ip netns del` does, without a process per namespace.
	if err := unix.Unmount(path, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("delete netns %s: unmount: %w", name, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("delete netns %s: %w", name, err)
	}
	return nil
}

// inNetns runs fn with a netlink handle inside the named namespace.
func inNetns(name string, fn func(h *netlink.Handle) error) error {
	nsh, err := netns.GetFromPath(NetnsPath(name))
	if err != nil {
		return fmt.Errorf("open netns %s: %w", name, err)
	}
	defer nsh.Close()
	h, err := netlink.NewHandleAt(nsh, unix.NETLINK_ROUTE)
	if err != nil {
		return fmt.Errorf("netlink in %s: %w", name, err)
	}
	defer h.Close()
	return fn(h)
}

// setSysctls writes sysctls (per-namespace ones, such as net.ipv4.*) inside name.
func setSysctls(name string, kv ...string) error {
	return ns.WithNetNSPath(NetnsPath(name), func(ns.NetNS) error {
		for i := 0; i+1 < len(kv); i += 2 {
			if _, err := sysctl.Sysctl(kv[i], kv[i+1]); err != nil {
				return fmt.Errorf("sysctl %s=%s: %w", kv[i], kv[i+1], err)
			}
		}
		return nil
	})
}

func ipNet(p netip.Prefix, addr netip.Addr) *net.IPNet {
	return &net.IPNet{IP: addr.AsSlice(), Mask: net.CIDRMask(p.Bits(), 32)}
}

func buildRouter(p *plan.Plan, j *state.Journal) error {
	if err := AddNetns(j, p.RouterNetns); err != nil {
		return err
	}
	// A router forwards; it sends no redirects to nodes that share a bridge with it (they
	// would bypass it), and it checks no reverse paths (the host's transit address is on
	// a /30 of its own).
	if err := setSysctls(p.RouterNetns,
		"net.ipv4.ip_forward", "1",
		"net.ipv4.conf.all.send_redirects", "0",
		"net.ipv4.conf.default.send_redirects", "0",
		"net.ipv4.conf.all.rp_filter", "0",
		"net.ipv4.conf.default.rp_filter", "0",
		// An L3 VIP's multipath route spreads flows by their ports too, not only by
		// the client's address (one host client would always reach the same node).
		"net.ipv4.fib_multipath_hash_policy", "1",
	); err != nil {
		return err
	}
	return inNetns(p.RouterNetns, func(h *netlink.Handle) error {
		for _, s := range p.Subnets {
			br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: s.Bridge}}
			if err := h.LinkAdd(br); err != nil {
				return fmt.Errorf("subnet %s: bridge %s: %w", s.ID, s.Bridge, err)
			}
			if err := h.AddrAdd(br, &netlink.Addr{IPNet: ipNet(s.CIDR, s.Gateway)}); err != nil {
				return fmt.Errorf("subnet %s: gateway %s: %w", s.ID, s.Gateway, err)
			}
			if err := h.LinkSetUp(br); err != nil {
				return fmt.Errorf("subnet %s: bridge up: %w", s.ID, err)
			}
		}
		return nil
	})
}

func buildHostLink(p *plan.Plan, j *state.Journal) error {
	if err := j.Record(state.Resource{Kind: state.KindHostLink, Name: p.HostLink}); err != nil {
		return err
	}
	rtr, err := netns.GetFromPath(NetnsPath(p.RouterNetns))
	if err != nil {
		return err
	}
	defer rtr.Close()
	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: p.HostLink}, PeerName: p.RouterHostPort, PeerNamespace: netlink.NsFd(int(rtr))}
	if err := netlink.LinkAdd(veth); err != nil {
		return fmt.Errorf("create veth: %w", err)
	}
	host, err := netlink.LinkByName(p.HostLink)
	if err != nil {
		return err
	}
	if err := netlink.AddrAdd(host, &netlink.Addr{IPNet: ipNet(p.Transit, p.HostIP)}); err != nil {
		return fmt.Errorf("address %s: %w", p.HostIP, err)
	}
	if err := netlink.LinkSetUp(host); err != nil {
		return err
	}
	err = inNetns(p.RouterNetns, func(h *netlink.Handle) error {
		l, err := h.LinkByName(p.RouterHostPort)
		if err != nil {
			return err
		}
		if err := h.AddrAdd(l, &netlink.Addr{IPNet: ipNet(p.Transit, p.RouterIP)}); err != nil {
			return fmt.Errorf("router address %s: %w", p.RouterIP, err)
		}
		return h.LinkSetUp(l)
	})
	if err != nil {
		return err
	}
	for _, dst := range p.HostRoutes() {
		if err := j.Record(state.Resource{Kind: state.KindHostRoute, Name: dst.String(), Detail: p.HostLink}); err != nil {
			return err
		}
		r := &netlink.Route{
			LinkIndex: host.Attrs().Index, Dst: ipNet(dst, dst.Addr()), Gw: p.RouterIP.AsSlice(), Src: p.HostIP.AsSlice(),
		}
		if err := netlink.RouteAdd(r); err != nil {
			return fmt.Errorf("host route %s via %s: %w", dst, p.RouterIP, err)
		}
	}
	return nil
}

func buildNode(p *plan.Plan, n plan.Node, j *state.Journal) error {
	if err := AddNetns(j, n.Netns); err != nil {
		return err
	}
	// The node forwards for its pods, as a Kubernetes node does.
	if err := setSysctls(n.Netns, "net.ipv4.ip_forward", "1"); err != nil {
		return err
	}
	nodeNS, err := netns.GetFromPath(NetnsPath(n.Netns))
	if err != nil {
		return err
	}
	defer nodeNS.Close()
	err = inNetns(p.RouterNetns, func(h *netlink.Handle) error {
		veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: n.RouterPort}, PeerName: "eth0", PeerNamespace: netlink.NsFd(int(nodeNS))}
		if err := h.LinkAdd(veth); err != nil {
			return fmt.Errorf("veth %s: %w", n.RouterPort, err)
		}
		port, err := h.LinkByName(n.RouterPort)
		if err != nil {
			return err
		}
		br, err := h.LinkByName(n.Subnet.Bridge)
		if err != nil {
			return err
		}
		if err := h.LinkSetMaster(port, br); err != nil {
			return fmt.Errorf("attach %s to %s: %w", n.RouterPort, n.Subnet.Bridge, err)
		}
		return h.LinkSetUp(port)
	})
	if err != nil {
		return err
	}
	return inNetns(n.Netns, func(h *netlink.Handle) error {
		eth, err := h.LinkByName("eth0")
		if err != nil {
			return err
		}
		if err := h.AddrAdd(eth, &netlink.Addr{IPNet: ipNet(n.Subnet.CIDR, n.IP)}); err != nil {
			return fmt.Errorf("address %s: %w", n.IP, err)
		}
		if err := h.LinkSetUp(eth); err != nil {
			return err
		}
		def := &netlink.Route{LinkIndex: eth.Attrs().Index, Gw: n.Subnet.Gateway.AsSlice()}
		if err := h.RouteAdd(def); err != nil {
			return fmt.Errorf("default route via %s: %w", n.Subnet.Gateway, err)
		}
		return nil
	})
}
