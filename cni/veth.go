package cni

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"strings"
	"syscall"

	"github.com/containernetworking/plugins/pkg/netlinksafe"
	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/containernetworking/plugins/pkg/utils/sysctl"
	"github.com/vishvananda/netlink"
)

// hostVethName is derived from the attachment, so DEL finds the host side without
// entering the pod's namespace (which may be gone) and without any saved state.
func hostVethName(a Attachment) string {
	sum := sha256.Sum256([]byte(a.ContainerID + "\x00" + a.IfName))
	return "sb" + hex.EncodeToString(sum[:])[:13]
}

// vethAlias marks a host veth as ours. It is set in the same netlink message that
// creates the pair, so even a crash right after creation leaves a veth GC can
// recognise.
func vethAlias(network string, a Attachment) string {
	return aliasPrefix(network) + a.String()
}

func aliasPrefix(network string) string { return "stratus-bridge:" + network + ":" }

// podLink describes the pod side after setup.
type podLink struct {
	hostName string
	hostMAC  net.HardwareAddr
	podMAC   net.HardwareAddr
}

// createVeth creates the pair in one netlink request from the host namespace: the
// host side named hostVethName, up, with our alias; the pod side created directly
// in the pod namespace as ifName. If ifName already exists there the kernel refuses
// the whole request, so nothing is left behind.
func createVeth(network string, a Attachment, podNS ns.NetNS, br *netlink.Bridge, mtu int, podMAC net.HardwareAddr) (netlink.Link, error) {
	attrs := netlink.NewLinkAttrs()
	attrs.Name = hostVethName(a)
	attrs.MTU = mtu
	attrs.Alias = vethAlias(network, a)
	attrs.Flags = net.FlagUp
	veth := &netlink.Veth{
		LinkAttrs:        attrs,
		PeerName:         a.IfName,
		PeerHardwareAddr: podMAC,
		PeerNamespace:    netlink.NsFd(int(podNS.Fd())),
	}
	if err := netlink.LinkAdd(veth); err != nil {
		if errors.Is(err, syscall.EEXIST) {
			return nil, fmt.Errorf("create veth %s for %s: interface %s already exists in the pod or %s on the node: %w",
				attrs.Name, a, a.IfName, attrs.Name, err)
		}
		return nil, fmt.Errorf("create veth %s for %s: %w", attrs.Name, a, err)
	}
	host, err := netlinksafe.LinkByName(attrs.Name)
	if err != nil {
		return nil, fmt.Errorf("look up host veth %s: %w", attrs.Name, err)
	}
	if err := netlink.LinkSetMaster(host, br); err != nil {
		return host, fmt.Errorf("attach %s to bridge %s: %w", attrs.Name, br.Name, err)
	}
	return host, nil
}

// configurePod runs inside the pod namespace: DAD off, address, link up, default
// route via the gateway.
func configurePod(ifName string, addr *net.IPNet, gateway net.IP) error {
	link, err := netlinksafe.LinkByName(ifName)
	if err != nil {
		return fmt.Errorf("look up %s in pod: %w", ifName, err)
	}
	// The pod's addresses are unique by construction (IPAM), so duplicate address
	// detection only delays the interface; a kernel without IPv6 has no such key.
	_, _ = sysctl.Sysctl(fmt.Sprintf("net/ipv6/conf/%s/accept_dad", ifName), "0")
	if err := netlink.AddrAdd(link, &netlink.Addr{IPNet: addr}); err != nil {
		return fmt.Errorf("add %s to %s: %w", addr, ifName, err)
	}
	if err := netlink.LinkSetUp(link); err != nil {
		return fmt.Errorf("set %s up: %w", ifName, err)
	}
	route := &netlink.Route{
		LinkIndex: link.Attrs().Index,
		Dst:       &net.IPNet{IP: net.IPv4zero.To4(), Mask: net.CIDRMask(0, 32)},
		Gw:        gateway,
	}
	if err := netlink.RouteAdd(route); err != nil {
		return fmt.Errorf("add default route via %s on %s: %w", gateway, ifName, err)
	}
	return nil
}

// deleteHostVeth removes the pair through its host side; a missing link is fine
// (DEL is idempotent, and a deleted pod namespace takes the pair with it).
func deleteHostVeth(name string) error {
	l, err := netlinksafe.LinkByName(name)
	if err != nil {
		var nf netlink.LinkNotFoundError
		if errors.As(err, &nf) {
			return nil
		}
		return fmt.Errorf("look up host veth %s: %w", name, err)
	}
	if err := netlink.LinkDel(l); err != nil && !errors.Is(err, syscall.ENODEV) {
		return fmt.Errorf("delete host veth %s: %w", name, err)
	}
	return nil
}

// ownedVeths lists the host veths that carry this network's alias.
func ownedVeths(network string) ([]netlink.Link, error) {
	links, err := netlinksafe.LinkList()
	if err != nil {
		return nil, fmt.Errorf("list links: %w", err)
	}
	prefix := aliasPrefix(network)
	var out []netlink.Link
	for _, l := range links {
		if l.Type() == "veth" && strings.HasPrefix(l.Attrs().Alias, prefix) {
			out = append(out, l)
		}
	}
	return out, nil
}

// podMAC derives the pod's MAC from its IP, so a reused IP comes back with the same
// MAC and neighbours' caches stay right.
func podMACFor(ip net.IP) net.HardwareAddr { return gatewayMAC(ip) }
