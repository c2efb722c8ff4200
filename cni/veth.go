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

// hostVethName is derived from the network and the attachment, so DEL finds the
// host side without entering the pod's namespace (which may be gone) and without
// saved state, and GC recognises a network's veths by name alone: the name is set
// in the very netlink request that creates the pair, so even a crash right after
// creation leaves a veth GC can attribute (the kernel ignores an alias on create).
// Layout: "sb" + 4 hex digits of the network + 9 of the attachment = 15 bytes.
func hostVethName(network string, a Attachment) string {
	sum := sha256.Sum256([]byte(a.ContainerID + "\x00" + a.IfName))
	return vethPrefix(network) + hex.EncodeToString(sum[:])[:9]
}

func vethPrefix(network string) string {
	sum := sha256.Sum256([]byte(network))
	return "sb" + hex.EncodeToString(sum[:])[:4]
}

// vethAlias is for the humans reading `ip link`: which pod a host veth serves.
func vethAlias(network string, a Attachment) string {
	return "stratus-bridge:" + network + ":" + a.String()
}

// createVeth creates the pair in one netlink request from the host namespace: the
// host side named hostVethName and up, the pod side created directly in the pod
// namespace as ifName. If either name is taken the kernel refuses the whole
// request, so nothing is left behind. It then attaches the host side to the bridge
// and labels it with vethAlias.
func createVeth(network string, a Attachment, podNS ns.NetNS, br *netlink.Bridge, mtu int, podMAC net.HardwareAddr) (netlink.Link, error) {
	attrs := netlink.NewLinkAttrs()
	attrs.Name = hostVethName(network, a)
	attrs.MTU = mtu
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
	// From here on the pair is ours: a failure removes it before returning.
	host, err := netlinksafe.LinkByName(attrs.Name)
	if err != nil {
		_ = deleteHostVeth(attrs.Name)
		return nil, fmt.Errorf("look up host veth %s: %w", attrs.Name, err)
	}
	if err := netlink.LinkSetMaster(host, br); err != nil {
		_ = netlink.LinkDel(host)
		return nil, fmt.Errorf("attach %s to bridge %s: %w", attrs.Name, br.Name, err)
	}
	_ = netlink.LinkSetAlias(host, vethAlias(network, a))
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

// ownedVeths lists the host veths named for this network.
func ownedVeths(network string) ([]netlink.Link, error) {
	links, err := netlinksafe.LinkList()
	if err != nil {
		return nil, fmt.Errorf("list links: %w", err)
	}
	prefix := vethPrefix(network)
	var out []netlink.Link
	for _, l := range links {
		if name := l.Attrs().Name; l.Type() == "veth" && len(name) == 15 && strings.HasPrefix(name, prefix) {
			out = append(out, l)
		}
	}
	return out, nil
}

// podMAC derives the pod's MAC from its IP, so a reused IP comes back with the same
// MAC and neighbours' caches stay right.
func podMACFor(ip net.IP) net.HardwareAddr { return gatewayMAC(ip) }
