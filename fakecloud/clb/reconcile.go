package clb

import (
	"errors"
	"maps"
	"net/netip"
	"slices"
	"time"

	"k8s.io/klog/v2"

	"github.com/stratus-cloud/stratus/cloudapi/clb"
	cvmapi "github.com/stratus-cloud/stratus/cloudapi/cvm"
	"github.com/stratus-cloud/stratus/fakecloud/clb/dataplane"
	"github.com/stratus-cloud/stratus/fakecloud/cvm"
	"github.com/stratus-cloud/stratus/fakecloud/store"
	"github.com/stratus-cloud/stratus/fakecloud/vpc"
)

// reconcile makes the data plane match the store. Writes call it after they commit (so a
// listener answers as soon as CreateListener returns), Start calls it, and the resync
// loop calls it periodically. Before Start (the store may not be open yet) it does
// nothing. Apply only binds and closes sockets, so this never holds an API call up
// for long; calls are serialized so an older view can never overwrite a newer one.
func (m *Module) reconcile() {
	if m.dp == nil {
		return
	}
	m.loopMu.Lock()
	live := m.started && !m.closed
	m.loopMu.Unlock()
	if !live {
		return
	}
	m.reconcileMu.Lock()
	defer m.reconcileMu.Unlock()
	var spec dataplane.Spec
	var vips vpc.VIPSpec
	_ = m.w.Store.View(func(tx *store.Tx) error {
		spec, vips = m.desired(tx, m.w.Now())
		return nil
	})
	// The routers first: a listener served in a router binds the VIP the router now has.
	var errs []error
	if m.opts.VIPRouter != nil {
		errs = append(errs, m.opts.VIPRouter.ApplyVIPs(vips))
	}
	errs = append(errs, m.dp.Apply(spec))
	// The resync retries every interval; say so once per distinct failure, not each time.
	err := errors.Join(errs...)
	msg := ""
	if err != nil {
		msg = err.Error()
		if msg != m.lastApplyErr {
			klog.ErrorS(err, "CLB data plane is not fully applied; retrying at every resync")
		}
	} else if m.lastApplyErr != "" {
		klog.InfoS("CLB data plane fully applied again")
	}
	m.lastApplyErr = msg
}

// desired is the data plane the store describes at now, and what the VPC routers must
// do for the load balancers served inside them.
//
// A public load balancer of a VPC that has a router namespace (Options.VIPRouter) is
// served inside that router at its own VIP, the address the API shows, and reaches its
// targets at their private IPs, which this machine routes into the VPC: an L4 listener
// is a proxy socket at VIP:port there, and a load balancer tagged ModeTag=ModeVIP is an
// L3 VIP: no proxy, but a multipath route for the VIP across its running target
// instances, which receive the packets still addressed to the VIP. Every other load
// balancer is served on its loopback VIP with targets mapped onto loopback.
func (m *Module) desired(tx *store.Tx, now time.Time) (dataplane.Spec, vpc.VIPSpec) {
	var spec dataplane.Spec
	type served struct {
		lb        *LoadBalancer
		addr      netip.Addr
		netns     string
		reachable []netip.Prefix
		l3        bool
		hops      map[netip.Addr]bool
	}
	byLB := map[string]*served{}
	vipVPCs := map[string]*vpc.VIPVPC{}
	for _, lb := range m.lbs.List(tx) {
		if ns, vip, reach, ok := m.inRouter(tx, lb); ok {
			sv := &served{lb: lb, addr: vip, netns: ns, reachable: reach, l3: tagValue(lb.Tags, ModeTag) == ModeVIP, hops: map[netip.Addr]bool{}}
			byLB[lb.LoadBalancerId] = sv
			if vipVPCs[lb.VpcId] == nil {
				vipVPCs[lb.VpcId] = &vpc.VIPVPC{VpcID: lb.VpcId}
			}
			if !sv.l3 {
				vipVPCs[lb.VpcId].Local = append(vipVPCs[lb.VpcId].Local, vip)
			}
			continue
		}
		if a, ok := loopbackAddr(lb.LoopbackVip); ok {
			byLB[lb.LoadBalancerId] = &served{lb: lb, addr: a}
		}
	}
	for _, l := range m.listeners.List(tx) {
		sv, ok := byLB[l.LoadBalancerId]
		if !ok {
			continue
		}
		ls := dataplane.ListenerSpec{
			ID:                l.ListenerId,
			Protocol:          l.Protocol,
			Address:           netip.AddrPortFrom(sv.addr, uint16(l.Port)),
			Netns:             sv.netns,
			Reachable:         sv.reachable,
			Scheduler:         l.Scheduler,
			SessionExpire:     time.Duration(l.SessionExpireTime) * time.Second,
			ResetOnDeregister: l.DeregisterTargetRst,
			Health:            healthSpec(&l.HealthCheck, m.opts.HealthTimeUnit),
		}
		if rules := m.sourceRules(tx, sv.lb, l.Protocol, l.Port); rules != nil {
			ls.FilterSources, ls.Sources = true, rules
		}
		for _, t := range m.liveTargets(tx, l, now) {
			ip, local := t.EniIp, false
			if t.InstanceId != "" {
				in, ok := m.instances.Get(tx, t.InstanceId)
				// Only a running machine has its ports open; a stopped or booting one
				// would fail its checks in the cloud, so it gets no traffic here.
				if !ok || cvm.EffectiveState(in, now) != cvmapi.StateRunning {
					continue
				}
				ip, local = in.PrivateIP, in.Local
			}
			var addr netip.Addr
			if sv.netns != "" {
				a, err := netip.ParseAddr(ip)
				if err != nil || !slices.ContainsFunc(sv.reachable, func(p netip.Prefix) bool { return p.Contains(a) }) {
					continue
				}
				if sv.l3 {
					sv.hops[a] = true
					continue
				}
				addr = a
			} else {
				var ok bool
				if addr, ok = m.mapTarget(ip, local); !ok {
					klog.V(4).InfoS("CLB target is not reachable from this machine; the data plane skips it", "listener", l.ListenerId, "target", t.key(), "ip", ip)
					continue
				}
			}
			ls.Targets = append(ls.Targets, dataplane.TargetSpec{Address: netip.AddrPortFrom(addr, uint16(t.Port)), Weight: int(t.Weight)})
		}
		if sv.l3 {
			continue
		}
		spec.Listeners = append(spec.Listeners, ls)
	}
	var vips vpc.VIPSpec
	for _, id := range slices.Sorted(maps.Keys(byLB)) {
		sv := byLB[id]
		if sv.l3 && len(sv.hops) > 0 {
			v := vipVPCs[sv.lb.VpcId]
			v.Routes = append(v.Routes, vpc.VIPRoute{VIP: sv.addr, NextHops: slices.SortedFunc(maps.Keys(sv.hops), netip.Addr.Compare)})
		}
	}
	for _, id := range slices.Sorted(maps.Keys(vipVPCs)) {
		vips.VPCs = append(vips.VPCs, *vipVPCs[id])
	}
	return spec, vips
}

// inRouter reports whether lb is served inside its VPC's router: a public load balancer
// with a VIP, in a VPC that has a router namespace. It returns the namespace, the VIP and
// the VPC's CIDR (where its targets are).
func (m *Module) inRouter(tx *store.Tx, lb *LoadBalancer) (string, netip.Addr, []netip.Prefix, bool) {
	if m.opts.VIPRouter == nil || lb.Type != "OPEN" {
		return "", netip.Addr{}, nil, false
	}
	ns, ok := m.opts.VIPRouter.Namespace(lb.VpcId)
	if !ok {
		return "", netip.Addr{}, nil, false
	}
	vip, err := netip.ParseAddr(lb.Vip)
	if err != nil || !vip.Is4() || vip.IsLoopback() {
		return "", netip.Addr{}, nil, false
	}
	v, ok := m.vpcs.Get(tx, lb.VpcId)
	if !ok {
		return "", netip.Addr{}, nil, false
	}
	cidr, err := netip.ParsePrefix(v.CidrBlock)
	if err != nil {
		return "", netip.Addr{}, nil, false
	}
	return ns, vip, []netip.Prefix{cidr.Masked()}, true
}

// ModeTag is the load balancer tag that picks how a load balancer served in a VPC router
// forwards: ModeVIP is an L3 VIP (the packets reach the targets still addressed to the
// VIP, as a passthrough load balancer does); anything else is the L4 proxy. The real
// CLB API has tags but no passthrough mode: this is the simulator's stand-in for one,
// read from cloud state the API does have (DescribeLoadBalancers shows the tag).
const ModeTag = "stratus.io/load-balancer-mode"

// ModeVIP is ModeTag's value for an L3 VIP.
const ModeVIP = "vip"

func tagValue(tags []clb.TagInfo, key string) string {
	for _, t := range tags {
		if t.TagKey == key {
			return t.TagValue
		}
	}
	return ""
}

// resyncLoop re-applies the store periodically, which catches what no CLB write reports:
// instances that stop, start or go away.
func (m *Module) resyncLoop() {
	defer close(m.done)
	t := time.NewTicker(m.opts.ResyncInterval)
	defer t.Stop()
	for {
		select {
		case <-m.stop:
			return
		case <-t.C:
			m.reconcile()
		}
	}
}
