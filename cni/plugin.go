package cni

import (
	"errors"
	"fmt"
	"net"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/cni/pkg/version"
	"github.com/containernetworking/plugins/pkg/netlinksafe"
	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/vishvananda/netlink"
)

// VersionInfo lists the spec versions whose results the plugin can produce.
var VersionInfo = version.PluginSupports("0.3.1", "0.4.0", "1.0.0", "1.1.0")

// About is what the binary prints when run without CNI_COMMAND by a human.
const About = "stratus-bridge: node bridge + node-local IPAM for the VPC-routed podCIDR"

// Funcs wires the commands for skel.PluginMainFuncs.
func Funcs() skel.CNIFuncs {
	return skel.CNIFuncs{Add: CmdAdd, Del: CmdDel, Check: CmdCheck, GC: CmdGC, Status: CmdStatus}
}

// ErrPluginNotAvailable is the spec's code 50 for STATUS: the plugin cannot serve
// ADD yet.
const ErrPluginNotAvailable uint = 50

// CmdAdd attaches a pod: checks the interface name is free, allocates an IP
// (durably), creates the veth pair on the bridge and configures the pod side.
// Anything it created is undone when a later step fails.
func CmdAdd(args *skel.CmdArgs) error {
	conf, err := ParseConfig(args.StdinData)
	if err != nil {
		return err
	}
	if err := conf.RequireSubnet(); err != nil {
		return err
	}
	owner := Attachment{ContainerID: args.ContainerID, IfName: args.IfName}
	podNS, err := ns.GetNS(args.Netns)
	if err != nil {
		return types.NewError(types.ErrInvalidNetNS, fmt.Sprintf("open netns %q: %v", args.Netns, err), "")
	}
	defer podNS.Close()

	// Refuse an existing interface before changing anything on the node.
	if err := ifaceAbsent(podNS, args.IfName); err != nil {
		return err
	}

	mtu := conf.MTU
	if mtu == 0 {
		mtu = uplinkMTU()
	}
	br, err := ensureBridge(conf.Bridge, mtu, conf.subnet, conf.gateway)
	if err != nil {
		return err
	}
	store, err := OpenStore(conf.DataDir, conf.Name)
	if err != nil {
		return err
	}
	unclaim, err := claimInFlight(store.Dir(), hostVethName(conf.Name, owner))
	if err != nil {
		return err
	}
	defer unclaim()

	var ip net.IP
	var fresh bool
	err = store.Locked(func(tx *Tx) error {
		ip, fresh, err = tx.Allocate(owner, conf.subnet)
		if err != nil {
			return err
		}
		m := newMasq(conf, store)
		if conf.IPMasq {
			err = m.ensure()
		} else {
			err = m.remove(false)
		}
		if err != nil && fresh {
			_, _ = tx.Release(owner)
		}
		return err
	})
	if err != nil {
		return err
	}
	crashPoint(CrashAfterAllocate)

	// undo gives back only what this ADD created: an address the owner already
	// held (a retry after a crash) or a veth that was already there stays.
	var host netlink.Link
	undo := func() {
		if host != nil {
			_ = netlink.LinkDel(host)
		}
		if fresh {
			_ = store.Locked(func(tx *Tx) error { return releaseAndTidy(tx, conf, store, owner) })
		}
	}
	podMAC := podMACFor(ip)
	host, err = createVeth(conf.Name, owner, podNS, br, mtu, podMAC)
	if err != nil {
		undo()
		return err
	}
	crashPoint(CrashAfterVeth)
	holdPoint(CrashAfterVeth)
	if conf.HairpinMode {
		if err := netlink.LinkSetHairpin(host, true); err != nil {
			undo()
			return fmt.Errorf("hairpin on %s: %w", host.Attrs().Name, err)
		}
	}
	addr := &net.IPNet{IP: ip, Mask: conf.subnet.Mask}
	if err := podNS.Do(func(ns.NetNS) error { return configurePod(args.IfName, addr, conf.gateway) }); err != nil {
		undo()
		return err
	}

	result := &current.Result{
		CNIVersion: current.ImplementedSpecVersion,
		Interfaces: []*current.Interface{
			{Name: br.Attrs().Name, Mac: br.Attrs().HardwareAddr.String()},
			{Name: host.Attrs().Name, Mac: host.Attrs().HardwareAddr.String()},
			{Name: args.IfName, Mac: podMAC.String(), Mtu: mtu, Sandbox: args.Netns},
		},
		IPs: []*current.IPConfig{{Interface: current.Int(2), Address: *addr, Gateway: conf.gateway}},
		Routes: []*types.Route{{
			Dst: net.IPNet{IP: net.IPv4zero.To4(), Mask: net.CIDRMask(0, 32)},
			GW:  conf.gateway,
		}},
		DNS: conf.DNS,
	}
	return types.PrintResult(result, conf.CNIVersion)
}

func ifaceAbsent(podNS ns.NetNS, ifName string) error {
	return podNS.Do(func(ns.NetNS) error {
		_, err := netlinksafe.LinkByName(ifName)
		var nf netlink.LinkNotFoundError
		switch {
		case err == nil:
			return fmt.Errorf("interface %s already exists in netns %s: refusing to ADD over it", ifName, podNS.Path())
		case errors.As(err, &nf):
			return nil
		default:
			return fmt.Errorf("look up %s in netns %s: %w", ifName, podNS.Path(), err)
		}
	})
}

// CmdDel detaches a pod. Every step tolerates what is already gone: the namespace,
// the veth, the allocation; an unknown container is a success.
func CmdDel(args *skel.CmdArgs) error {
	conf, err := ParseConfig(args.StdinData)
	if err != nil {
		return err
	}
	owner := Attachment{ContainerID: args.ContainerID, IfName: args.IfName}
	// Deleting the host side removes the pair, wherever the pod side is.
	if err := deleteHostVeth(hostVethName(conf.Name, owner)); err != nil {
		return err
	}
	store, err := OpenStore(conf.DataDir, conf.Name)
	if err != nil {
		return err
	}
	// A claim a crashed ADD left for this attachment goes too (a live one stays).
	_ = inFlight(store.Dir(), hostVethName(conf.Name, owner))
	return store.Locked(func(tx *Tx) error { return releaseAndTidy(tx, conf, store, owner) })
}

// releaseAndTidy frees owner's addresses and, when no pod is left (or masquerade
// is off), the masquerade rules: they exist only while a pod needs them.
func releaseAndTidy(tx *Tx, conf *NetConf, store *Store, owner Attachment) error {
	if _, err := tx.Release(owner); err != nil {
		return err
	}
	n, err := tx.Count()
	if err != nil {
		return err
	}
	if n == 0 || !conf.IPMasq || conf.subnet == nil {
		return newMasq(conf, store).remove(false)
	}
	return nil
}

// CmdCheck verifies that what ADD set up is still there: allocation, masquerade
// rules (when on), host veth on the bridge, pod interface with its address and
// default route.
func CmdCheck(args *skel.CmdArgs) error {
	conf, err := ParseConfig(args.StdinData)
	if err != nil {
		return err
	}
	if err := conf.RequireSubnet(); err != nil {
		return err
	}
	if err := version.ParsePrevResult(&conf.PluginConf); err != nil {
		return configError("prevResult", "%v", err)
	}
	if conf.PrevResult == nil {
		return configError("prevResult", "required for CHECK")
	}
	prev, err := current.NewResultFromResult(conf.PrevResult)
	if err != nil {
		return configError("prevResult", "%v", err)
	}
	var want *net.IPNet
	for _, c := range prev.IPs {
		if c.Address.IP.To4() != nil && conf.subnet.Contains(c.Address.IP) {
			a := c.Address
			want = &a
		}
	}
	if want == nil {
		return fmt.Errorf("check %s/%s: prevResult has no address in %s", args.ContainerID, args.IfName, conf.subnet)
	}
	owner := Attachment{ContainerID: args.ContainerID, IfName: args.IfName}

	store, err := OpenStore(conf.DataDir, conf.Name)
	if err != nil {
		return err
	}
	if err := store.Locked(func(tx *Tx) error {
		ips, err := tx.Lookup(owner)
		if err != nil {
			return err
		}
		for _, ip := range ips {
			if ip.Equal(want.IP) {
				return nil
			}
		}
		return fmt.Errorf("check %s: ipam holds %v for it, not %s", owner, ips, want.IP)
	}); err != nil {
		return err
	}

	if conf.IPMasq {
		if err := newMasq(conf, store).verify(); err != nil {
			return fmt.Errorf("check %s: %w", owner, err)
		}
	}
	br, err := bridgeByName(conf.Bridge)
	if err != nil {
		return fmt.Errorf("check %s: %w", owner, err)
	}
	hostName := hostVethName(conf.Name, owner)
	host, err := netlinksafe.LinkByName(hostName)
	if err != nil {
		return fmt.Errorf("check %s: host veth %s: %w", owner, hostName, err)
	}
	if host.Attrs().MasterIndex != br.Attrs().Index {
		return fmt.Errorf("check %s: host veth %s is not attached to bridge %s", owner, hostName, conf.Bridge)
	}
	if host.Attrs().Flags&net.FlagUp == 0 {
		return fmt.Errorf("check %s: host veth %s is down", owner, hostName)
	}

	podNS, err := ns.GetNS(args.Netns)
	if err != nil {
		return types.NewError(types.ErrInvalidNetNS, fmt.Sprintf("open netns %q: %v", args.Netns, err), "")
	}
	defer podNS.Close()
	return podNS.Do(func(ns.NetNS) error {
		link, err := netlinksafe.LinkByName(args.IfName)
		if err != nil {
			return fmt.Errorf("check %s: pod interface: %w", owner, err)
		}
		if link.Type() != "veth" {
			return fmt.Errorf("check %s: pod interface %s is a %s, not a veth", owner, args.IfName, link.Type())
		}
		addrs, err := netlinksafe.AddrList(link, netlink.FAMILY_V4)
		if err != nil {
			return fmt.Errorf("check %s: addresses: %w", owner, err)
		}
		found := false
		for _, a := range addrs {
			if a.IPNet.String() == want.String() {
				found = true
			}
		}
		if !found {
			return fmt.Errorf("check %s: address %s is missing from %s", owner, want, args.IfName)
		}
		routes, err := netlinksafe.RouteList(link, netlink.FAMILY_V4)
		if err != nil {
			return fmt.Errorf("check %s: routes: %w", owner, err)
		}
		for _, r := range routes {
			if (r.Dst == nil || isDefault(r.Dst)) && r.Gw.Equal(conf.gateway) {
				return nil
			}
		}
		return fmt.Errorf("check %s: default route via %s is missing from %s", owner, conf.gateway, args.IfName)
	})
}

// CmdGC frees every allocation and host veth of this network that is not in
// cni.dev/valid-attachments: what a crash mid-ADD or a reboot left behind.
func CmdGC(args *skel.CmdArgs) error {
	conf, err := ParseConfig(args.StdinData)
	if err != nil {
		return err
	}
	valid := make(map[Attachment]bool, len(conf.ValidAttachments))
	validVeths := make(map[string]bool, len(conf.ValidAttachments))
	for _, a := range conf.ValidAttachments {
		at := Attachment{ContainerID: a.ContainerID, IfName: a.IfName}
		valid[at] = true
		validVeths[hostVethName(conf.Name, at)] = true
	}
	store, err := OpenStore(conf.DataDir, conf.Name)
	if err != nil {
		return err
	}
	veths, err := ownedVeths(conf.Name)
	if err != nil {
		return err
	}
	var errs []error
	for _, l := range veths {
		name := l.Attrs().Name
		if validVeths[name] || inFlight(store.Dir(), name) {
			continue
		}
		if err := deleteHostVeth(name); err != nil {
			errs = append(errs, err)
		}
	}
	err = store.Locked(func(tx *Tx) error {
		keep := func(a Attachment) bool { return valid[a] || inFlight(store.Dir(), hostVethName(conf.Name, a)) }
		if _, err := tx.Retain(keep); err != nil {
			return err
		}
		sweepClaims(store.Dir())
		n, err := tx.Count()
		if err != nil {
			return err
		}
		m := newMasq(conf, store)
		if n == 0 || !conf.IPMasq || conf.subnet == nil {
			return m.remove(true)
		}
		return m.ensure()
	})
	return errors.Join(append(errs, err)...)
}

// CmdStatus answers whether the plugin can serve ADD: code 50 until the node has a
// podCIDR in the config and the IPAM state directory is usable.
func CmdStatus(args *skel.CmdArgs) error {
	conf, err := ParseConfig(args.StdinData)
	if err != nil {
		return err
	}
	if conf.subnet == nil {
		return types.NewError(ErrPluginNotAvailable, "no podCIDR yet: the config has no subnet", "")
	}
	store, err := OpenStore(conf.DataDir, conf.Name)
	if err != nil {
		return types.NewError(ErrPluginNotAvailable, err.Error(), "")
	}
	if err := store.Locked(func(*Tx) error { return nil }); err != nil {
		return types.NewError(ErrPluginNotAvailable, err.Error(), "")
	}
	return nil
}
