package clb

import (
	"net/netip"
	"time"

	"k8s.io/klog/v2"

	cvmapi "github.com/stratus-cloud/stratus/cloudapi/cvm"
	"github.com/stratus-cloud/stratus/fakecloud/clb/dataplane"
	"github.com/stratus-cloud/stratus/fakecloud/cvm"
	"github.com/stratus-cloud/stratus/fakecloud/store"
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
	_ = m.w.Store.View(func(tx *store.Tx) error {
		spec = m.desired(tx, m.w.Now())
		return nil
	})
	// The resync retries every interval; say so once per distinct failure, not each time.
	err := m.dp.Apply(spec)
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

// desired is the data plane the store describes at now.
func (m *Module) desired(tx *store.Tx, now time.Time) dataplane.Spec {
	var spec dataplane.Spec
	vips := map[string]netip.Addr{}
	lbs := map[string]*LoadBalancer{}
	for _, lb := range m.lbs.List(tx) {
		if a, ok := loopbackAddr(lb.LoopbackVip); ok {
			vips[lb.LoadBalancerId] = a
			lbs[lb.LoadBalancerId] = lb
		}
	}
	for _, l := range m.listeners.List(tx) {
		vip, ok := vips[l.LoadBalancerId]
		if !ok {
			continue
		}
		ls := dataplane.ListenerSpec{
			ID:                l.ListenerId,
			Protocol:          l.Protocol,
			Address:           netip.AddrPortFrom(vip, uint16(l.Port)),
			Scheduler:         l.Scheduler,
			SessionExpire:     time.Duration(l.SessionExpireTime) * time.Second,
			ResetOnDeregister: l.DeregisterTargetRst,
			Health:            healthSpec(&l.HealthCheck, m.opts.HealthTimeUnit),
		}
		if rules := m.sourceRules(tx, lbs[l.LoadBalancerId], l.Protocol, l.Port); rules != nil {
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
			addr, ok := m.mapTarget(ip, local)
			if !ok {
				klog.V(4).InfoS("CLB target is not reachable from this machine; the data plane skips it", "listener", l.ListenerId, "target", t.key(), "ip", ip)
				continue
			}
			ls.Targets = append(ls.Targets, dataplane.TargetSpec{Address: netip.AddrPortFrom(addr, uint16(t.Port)), Weight: int(t.Weight)})
		}
		spec.Listeners = append(spec.Listeners, ls)
	}
	return spec
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
