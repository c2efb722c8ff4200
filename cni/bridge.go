package cni

import (
	"errors"
	"fmt"
	"net"
	"syscall"

	"github.com/containernetworking/plugins/pkg/netlinksafe"
	"github.com/containernetworking/plugins/pkg/utils/sysctl"
	"github.com/vishvananda/netlink"
)

// ensureBridge makes sure the node bridge exists, is up and carries the gateway
// address; it is safe to call from many plugin processes at once.
func ensureBridge(name string, mtu int, subnet *net.IPNet, gateway net.IP) (*netlink.Bridge, error) {
	br, err := bridgeByName(name)
	if err != nil {
		var nf netlink.LinkNotFoundError
		if !errors.As(err, &nf) {
			return nil, err
		}
		attrs := netlink.NewLinkAttrs()
		attrs.Name = name
		attrs.MTU = mtu
		// A fixed MAC keeps the gateway's address stable for the pods: a bridge
		// otherwise takes the lowest MAC of its ports and changes it as pods come
		// and go, leaving stale entries in their neighbour tables.
		attrs.HardwareAddr = gatewayMAC(gateway)
		attrs.Flags = net.FlagUp
		if err := netlink.LinkAdd(&netlink.Bridge{LinkAttrs: attrs}); err != nil && !errors.Is(err, syscall.EEXIST) {
			return nil, fmt.Errorf("create bridge %s: %w", name, err)
		}
		if br, err = bridgeByName(name); err != nil {
			return nil, err
		}
	}
	if br.Attrs().Flags&net.FlagUp == 0 {
		if err := netlink.LinkSetUp(br); err != nil {
			return nil, fmt.Errorf("set bridge %s up: %w", name, err)
		}
	}
	if err := ensureGatewayAddr(br, subnet, gateway); err != nil {
		return nil, err
	}
	if err := enableIPv4Forward(); err != nil {
		return nil, err
	}
	return br, nil
}

func bridgeByName(name string) (*netlink.Bridge, error) {
	l, err := netlinksafe.LinkByName(name)
	if err != nil {
		return nil, fmt.Errorf("look up bridge %s: %w", name, err)
	}
	br, ok := l.(*netlink.Bridge)
	if !ok {
		return nil, fmt.Errorf("link %s exists and is a %s, not a bridge", name, l.Type())
	}
	return br, nil
}

func ensureGatewayAddr(br *netlink.Bridge, subnet *net.IPNet, gateway net.IP) error {
	addrs, err := netlinksafe.AddrList(br, netlink.FAMILY_V4)
	if err != nil {
		return fmt.Errorf("list addresses of bridge %s: %w", br.Name, err)
	}
	for _, a := range addrs {
		if a.IP.Equal(gateway) {
			return nil
		}
	}
	// Addresses of an earlier podCIDR stay: pods created under it still use them
	// as their gateway until they are deleted.
	addr := &netlink.Addr{IPNet: &net.IPNet{IP: gateway, Mask: subnet.Mask}}
	if err := netlink.AddrAdd(br, addr); err != nil && !errors.Is(err, syscall.EEXIST) {
		return fmt.Errorf("add gateway %s to bridge %s: %w", addr.IPNet, br.Name, err)
	}
	return nil
}

func enableIPv4Forward() error {
	const key = "net.ipv4.ip_forward"
	v, err := sysctl.Sysctl(key)
	if err == nil && v == "1" {
		return nil
	}
	if _, err := sysctl.Sysctl(key, "1"); err != nil {
		return fmt.Errorf("enable %s: %w", key, err)
	}
	return nil
}

// gatewayMAC derives a locally administered unicast MAC from an IPv4 address.
func gatewayMAC(ip net.IP) net.HardwareAddr {
	v4 := ip.To4()
	return net.HardwareAddr{0x0a, 0x58, v4[0], v4[1], v4[2], v4[3]}
}

// uplinkMTU is the MTU of the interface that carries the default route, the MTU a
// pod gets when the config does not set one; 1500 when there is no default route.
func uplinkMTU() int {
	routes, err := netlinksafe.RouteList(nil, netlink.FAMILY_V4)
	if err == nil {
		for _, r := range routes {
			if r.LinkIndex == 0 || (r.Dst != nil && !isDefault(r.Dst)) {
				continue
			}
			if l, err := netlink.LinkByIndex(r.LinkIndex); err == nil && l.Attrs().MTU > 0 {
				return l.Attrs().MTU
			}
		}
	}
	return 1500
}

func isDefault(n *net.IPNet) bool {
	ones, _ := n.Mask.Size()
	return ones == 0 && n.IP.IsUnspecified()
}
