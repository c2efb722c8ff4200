package clb

import (
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/stratus-cloud/stratus/cloudapi"
	"github.com/stratus-cloud/stratus/cloudapi/clb"
	"github.com/stratus-cloud/stratus/fakecloud/api"
	"github.com/stratus-cloud/stratus/fakecloud/cvm"
	"github.com/stratus-cloud/stratus/fakecloud/store"
)

const (
	maxTargetsPerCall      = 20
	maxBatchTargetsPerCall = 500
	defaultWeight          = 10
)

// targetInput is a Target or BatchTarget as the caller sent it; field is its position in
// the request, for errors ("Targets.3").
type targetInput struct {
	field      string
	listenerID string
	instanceID string
	eniIP      string
	port       *int64
	weight     *int64
}

func (t targetInput) key() string { return targetKey(t.instanceID, t.eniIP, derefOr(t.port, 0)) }

func targetKey(instanceID, eniIP string, port int64) string {
	if instanceID != "" {
		return fmt.Sprintf("%s:%d", instanceID, port)
	}
	return fmt.Sprintf("%s:%d", eniIP, port)
}

func (t *Target) key() string { return targetKey(t.InstanceId, t.EniIp, t.Port) }

func derefOr[T any](p *T, def T) T {
	if p == nil {
		return def
	}
	return *p
}

func fromTargets(ts []clb.Target, listenerID string) []targetInput {
	out := make([]targetInput, len(ts))
	for i, t := range ts {
		out[i] = targetInput{field: fmt.Sprintf("Targets.%d", i), listenerID: listenerID,
			instanceID: derefOr(t.InstanceId, ""), eniIP: derefOr(t.EniIp, ""), port: t.Port, weight: t.Weight}
	}
	return out
}

func fromBatchTargets(ts []clb.BatchTarget) ([]targetInput, error) {
	out := make([]targetInput, len(ts))
	for i, t := range ts {
		field := fmt.Sprintf("Targets.%d", i)
		if derefOr(t.LocationId, "") != "" {
			return nil, api.Errorf(cloudapi.CodeUnsupportedOperation, "parameter `%s.LocationId`: layer-7 forwarding rules are not supported here", field)
		}
		if derefOr(t.ListenerId, "") == "" {
			return nil, api.MissingParameter(field + ".ListenerId")
		}
		out[i] = targetInput{field: field, listenerID: *t.ListenerId,
			instanceID: derefOr(t.InstanceId, ""), eniIP: derefOr(t.EniIp, ""), port: t.Port, weight: t.Weight}
	}
	return out, nil
}

// checkShape validates what can be checked without the store.
func (t *targetInput) checkShape(deregister bool) error {
	switch {
	case t.instanceID == "" && t.eniIP == "":
		return api.Errorf(cloudapi.CodeInvalidParameter, "parameter `%s`: exactly one of InstanceId and EniIp is required, got neither", t.field)
	case t.instanceID != "" && t.eniIP != "":
		return api.Errorf(cloudapi.CodeInvalidParameter, "parameter `%s`: exactly one of InstanceId and EniIp is allowed, got both", t.field)
	case t.port == nil:
		return api.MissingParameter(t.field + ".Port")
	case *t.port < 1 || *t.port > 65535:
		return api.InvalidValue(t.field+".Port", "must be between 1 and 65535, got %d", *t.port)
	case !deregister && t.weight != nil && (*t.weight < 0 || *t.weight > 100):
		return api.InvalidValue(t.field+".Weight", "must be between 0 and 100, got %d", *t.weight)
	}
	if t.eniIP != "" {
		a, err := netip.ParseAddr(t.eniIP)
		if err != nil || !a.Is4() {
			return api.InvalidValue(t.field+".EniIp", "%q is not an IPv4 address", t.eniIP)
		}
		t.eniIP = a.String()
	}
	return nil
}

// checkBackend verifies that the target exists and is reachable from load balancer lb:
// an instance that exists in the load balancer's VPC, or an IP inside that VPC.
func (m *Module) checkBackend(tx *store.Tx, lb *LoadBalancer, t *targetInput, now time.Time) error {
	if t.instanceID != "" {
		in, ok := m.instances.Get(tx, t.instanceID)
		if !ok || !cvm.Exists(in, now) {
			return api.Errorf(cloudapi.CodeInvalidParameter, "parameter `%s.InstanceId`: instance %s does not exist", t.field, t.instanceID)
		}
		if lb.VpcId != "" && in.VpcId != lb.VpcId {
			return api.Errorf(cloudapi.CodeInvalidParameter, "parameter `%s.InstanceId`: instance %s is in VPC %s, not in load balancer %s's VPC %s", t.field, in.InstanceId, in.VpcId, lb.LoadBalancerId, lb.VpcId)
		}
		return nil
	}
	if lb.VpcId == "" {
		return nil
	}
	v, ok := m.vpcs.Get(tx, lb.VpcId)
	if !ok {
		return nil
	}
	p, err := netip.ParsePrefix(v.CidrBlock)
	if err == nil && !p.Contains(netip.MustParseAddr(t.eniIP)) {
		return api.Errorf(cloudapi.CodeInvalidParameter, "parameter `%s.EniIp`: %s is not inside load balancer %s's VPC %s (%s)", t.field, t.eniIP, lb.LoadBalancerId, lb.VpcId, v.CidrBlock)
	}
	return nil
}

// liveTargets are l's targets whose instance still exists: the cloud unbinds a
// terminated instance by itself, so it is neither shown nor sent traffic.
func (m *Module) liveTargets(tx *store.Tx, l *Listener, now time.Time) []Target {
	out := make([]Target, 0, len(l.Targets))
	for _, t := range l.Targets {
		if t.InstanceId != "" {
			in, ok := m.instances.Get(tx, t.InstanceId)
			if !ok || !cvm.Exists(in, now) {
				continue
			}
		}
		out = append(out, t)
	}
	return out
}

// changeTargets applies register (or deregister) of ts to the listeners of lb, all or
// nothing. Every target is checked before anything is written.
func (m *Module) changeTargets(tx *store.Tx, r *api.Request, lb *LoadBalancer, ts []targetInput, register bool) error {
	for i := range ts {
		if err := ts[i].checkShape(!register); err != nil {
			return err
		}
	}
	byListener := map[string]*Listener{}
	var order []string
	seen := map[string]string{} // listener|target -> field
	for i := range ts {
		t := &ts[i]
		l, ok := byListener[t.listenerID]
		if !ok {
			cur, err := m.getListener(tx, lb.LoadBalancerId, t.listenerID)
			if err != nil {
				return err
			}
			l = copyListener(cur)
			l.Targets = m.liveTargets(tx, l, r.Now)
			byListener[t.listenerID] = l
			order = append(order, t.listenerID)
		}
		k := t.listenerID + "|" + t.key()
		if prev, dup := seen[k]; dup {
			return api.Errorf(clb.CodeDuplicate, "parameters `%s` and `%s` name the same target %s of listener %s", prev, t.field, t.key(), t.listenerID)
		}
		seen[k] = t.field
		idx := slices.IndexFunc(l.Targets, func(x Target) bool { return x.key() == t.key() })
		if register {
			if idx >= 0 {
				return api.Errorf(cloudapi.CodeInvalidParameter, "parameter `%s`: target %s is already bound to listener %s", t.field, t.key(), l.ListenerId)
			}
			if err := m.checkBackend(tx, lb, t, r.Now); err != nil {
				return err
			}
			l.Targets = append(l.Targets, Target{InstanceId: t.instanceID, EniIp: t.eniIP, Port: *t.port,
				Weight: derefOr(t.weight, defaultWeight), RegisteredTime: r.Now})
		} else {
			if idx < 0 {
				return api.Errorf(cloudapi.CodeInvalidParameter, "parameter `%s`: target %s is not bound to listener %s", t.field, t.key(), l.ListenerId)
			}
			l.Targets = slices.Delete(l.Targets, idx, idx+1)
		}
	}
	for _, id := range order {
		l := byListener[id]
		if err := m.listeners.Put(tx, l.ListenerId, l); err != nil {
			return err
		}
	}
	return nil
}

func checkTargetCount(n, max int) error {
	if n == 0 {
		return api.MissingParameter("Targets")
	}
	if n > max {
		return api.Errorf(clb.CodeLength, "parameter `Targets`: at most %d targets per call, got %d", max, n)
	}
	return nil
}

func (m *Module) registerTargets(r *api.Request) (any, error) {
	in, err := api.Decode[clb.RegisterTargetsRequest](r)
	if err != nil {
		return nil, err
	}
	if err := m.singleTargets(r, in.LoadBalancerId, in.ListenerId, layer7(in.LocationId, in.Domain, in.Url), in.Targets, true); err != nil {
		return nil, err
	}
	return &clb.RegisterTargetsResponse{}, nil
}

func (m *Module) deregisterTargets(r *api.Request) (any, error) {
	in, err := api.Decode[clb.DeregisterTargetsRequest](r)
	if err != nil {
		return nil, err
	}
	if err := m.singleTargets(r, in.LoadBalancerId, in.ListenerId, layer7(in.LocationId, in.Domain, in.Url), in.Targets, false); err != nil {
		return nil, err
	}
	return &clb.DeregisterTargetsResponse{}, nil
}

// layer7 names the layer-7 rule parameter a target call gives ("" for none): a LocationId,
// or a Domain and Url.
func layer7(locationID, domain, url string) string {
	switch {
	case locationID != "":
		return "LocationId"
	case domain != "" || url != "":
		return "Domain"
	}
	return ""
}

func (m *Module) singleTargets(r *api.Request, lbID, listenerID, rule string, ts []clb.Target, register bool) error {
	if rule != "" {
		return api.Errorf(cloudapi.CodeUnsupportedOperation, "parameter `%s`: layer-7 forwarding rules (LocationId, Domain, Url) are not supported here", rule)
	}
	if listenerID == "" {
		return api.MissingParameter("ListenerId")
	}
	if err := checkTargetCount(len(ts), maxTargetsPerCall); err != nil {
		return err
	}
	return m.writeLB(r, lbID, func(tx *store.Tx, lb *LoadBalancer) error {
		return m.changeTargets(tx, r, lb, fromTargets(ts, listenerID), register)
	})
}

func (m *Module) batchRegisterTargets(r *api.Request) (any, error) {
	in, err := api.Decode[clb.BatchRegisterTargetsRequest](r)
	if err != nil {
		return nil, err
	}
	if err := m.batchTargets(r, in.LoadBalancerId, in.Targets, true); err != nil {
		return nil, err
	}
	return &clb.BatchRegisterTargetsResponse{FailListenerIdSet: []string{}}, nil
}

func (m *Module) batchDeregisterTargets(r *api.Request) (any, error) {
	in, err := api.Decode[clb.BatchDeregisterTargetsRequest](r)
	if err != nil {
		return nil, err
	}
	if err := m.batchTargets(r, in.LoadBalancerId, in.Targets, false); err != nil {
		return nil, err
	}
	return &clb.BatchDeregisterTargetsResponse{FailListenerIdSet: []string{}}, nil
}

// batchTargets is all or nothing: one bad target fails the call and changes nothing, so
// FailListenerIdSet is always empty on success.
func (m *Module) batchTargets(r *api.Request, lbID string, ts []clb.BatchTarget, register bool) error {
	if err := checkTargetCount(len(ts), maxBatchTargetsPerCall); err != nil {
		return err
	}
	inputs, err := fromBatchTargets(ts)
	if err != nil {
		return err
	}
	return m.writeLB(r, lbID, func(tx *store.Tx, lb *LoadBalancer) error {
		return m.changeTargets(tx, r, lb, inputs, register)
	})
}

// backendView is a target as DescribeTargets shows it.
func (m *Module) backendView(tx *store.Tx, t *Target) clb.Backend {
	b := clb.Backend{Port: t.Port, Weight: t.Weight, RegisteredTime: api.Timestamp(t.RegisteredTime),
		PublicIpAddresses: []string{}, PrivateIpAddresses: []string{}}
	if t.InstanceId == "" {
		b.Type = "ENI"
		b.PrivateIpAddresses = []string{t.EniIp}
		return b
	}
	b.Type = "CVM"
	b.InstanceId = t.InstanceId
	if in, ok := m.instances.Get(tx, t.InstanceId); ok {
		b.InstanceName = in.InstanceName
		if in.PrivateIP != "" {
			b.PrivateIpAddresses = []string{in.PrivateIP}
		}
		if in.PublicIP != "" {
			b.PublicIpAddresses = []string{in.PublicIP}
		}
	}
	return b
}

func (m *Module) describeTargets(r *api.Request) (any, error) {
	in, err := api.Decode[clb.DescribeTargetsRequest](r)
	if err != nil {
		return nil, err
	}
	f := listenerFilter{ids: in.ListenerIds, protocol: in.Protocol, port: in.Port}
	if err := f.validate(); err != nil {
		return nil, err
	}
	out := &clb.DescribeTargetsResponse{Listeners: []clb.ListenerBackend{}}
	err = m.w.Store.View(func(tx *store.Tx) error {
		lb, err := m.getLB(tx, in.LoadBalancerId)
		if err != nil {
			return err
		}
		for _, l := range m.listenersOf(tx, lb.LoadBalancerId) {
			if !f.match(l) {
				continue
			}
			lv := clb.ListenerBackend{ListenerId: l.ListenerId, Protocol: l.Protocol, Port: l.Port, Targets: []clb.Backend{}}
			for _, t := range m.liveTargets(tx, l, r.Now) {
				lv.Targets = append(lv.Targets, m.backendView(tx, &t))
			}
			out.Listeners = append(out.Listeners, lv)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}
