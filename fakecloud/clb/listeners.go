package clb

import (
	"fmt"
	"slices"
	"unicode/utf8"

	"github.com/stratus-cloud/stratus/cloudapi"
	"github.com/stratus-cloud/stratus/cloudapi/clb"
	"github.com/stratus-cloud/stratus/fakecloud/api"
	"github.com/stratus-cloud/stratus/fakecloud/store"
)

const maxListenerName = 255

// getLB returns the load balancer id, or the API's not-found error.
func (m *Module) getLB(tx *store.Tx, id string) (*LoadBalancer, error) {
	if id == "" {
		return nil, api.MissingParameter("LoadBalancerId")
	}
	lb, ok := m.lbs.Get(tx, id)
	if !ok {
		return nil, api.NotFound(clb.CodeLBNotFound, "load balancer", id)
	}
	return lb, nil
}

// getListener returns listener id of load balancer lbID.
func (m *Module) getListener(tx *store.Tx, lbID, id string) (*Listener, error) {
	if id == "" {
		return nil, api.MissingParameter("ListenerId")
	}
	l, ok := m.listeners.Get(tx, id)
	if !ok || l.LoadBalancerId != lbID {
		return nil, api.NotFound(clb.CodeListenerNotFound, "listener", fmt.Sprintf("%s (of load balancer %s)", id, lbID))
	}
	return l, nil
}

// listenersOf returns the listeners of load balancer lbID in creation order.
func (m *Module) listenersOf(tx *store.Tx, lbID string) []*Listener {
	var out []*Listener
	for _, l := range m.listeners.List(tx) {
		if l.LoadBalancerId == lbID {
			out = append(out, l)
		}
	}
	return out
}

func checkSession(v int64) error {
	if v != 0 && (v < 30 || v > 3600) {
		return api.InvalidValue("SessionExpireTime", "must be 0 (off) or between 30 and 3600 seconds, got %d", v)
	}
	return nil
}

func checkScheduler(s string) error {
	if s != clb.SchedulerWRR && s != clb.SchedulerLeastConn {
		return api.InvalidValue("Scheduler", "must be WRR or LEAST_CONN, got %q", s)
	}
	return nil
}

// writeLB runs fn on load balancer lbID inside one write transaction, after checking it
// exists and is idle, then records the task and saves the load balancer.
func (m *Module) writeLB(r *api.Request, lbID string, fn func(tx *store.Tx, lb *LoadBalancer) error) error {
	err := m.w.Store.Update(func(tx *store.Tx) error {
		cur, err := m.getLB(tx, lbID)
		if err != nil {
			return err
		}
		if err := idle(cur, r.Now); err != nil {
			return err
		}
		lb := *cur
		if err := fn(tx, &lb); err != nil {
			return err
		}
		if _, err := m.startTask(tx, r, &lb); err != nil {
			return err
		}
		return m.lbs.Put(tx, lb.LoadBalancerId, &lb)
	})
	if err == nil {
		m.reconcile()
	}
	return err
}

func (m *Module) createListener(r *api.Request) (any, error) {
	in, err := api.Decode[clb.CreateListenerRequest](r)
	if err != nil {
		return nil, err
	}
	switch in.Protocol {
	case "":
		return nil, api.MissingParameter("Protocol")
	case clb.ProtocolTCP, clb.ProtocolUDP:
	case "HTTP", "HTTPS", "TCP_SSL", "QUIC":
		return nil, api.Errorf(cloudapi.CodeUnsupportedOperation, "protocol %s is not supported here; only the layer-4 protocols TCP and UDP", in.Protocol)
	default:
		return nil, api.InvalidValue("Protocol", "must be TCP or UDP, got %q", in.Protocol)
	}
	if len(in.Ports) == 0 {
		return nil, api.MissingParameter("Ports")
	}
	seen := map[int64]bool{}
	for i, p := range in.Ports {
		if p < 1 || p > 65535 {
			return nil, api.InvalidValue(fmt.Sprintf("Ports.%d", i), "must be between 1 and 65535, got %d", p)
		}
		if seen[p] {
			return nil, api.Errorf(clb.CodeDuplicate, "parameter `Ports`: port %d appears twice", p)
		}
		seen[p] = true
	}
	if len(in.ListenerNames) > 0 && len(in.ListenerNames) != len(in.Ports) {
		return nil, api.InvalidValue("ListenerNames", "has %d names for %d ports", len(in.ListenerNames), len(in.Ports))
	}
	for i, n := range in.ListenerNames {
		if utf8.RuneCountInString(n) > maxListenerName {
			return nil, api.InvalidValue(fmt.Sprintf("ListenerNames.%d", i), "must be at most %d characters", maxListenerName)
		}
	}
	switch {
	case in.EndPort != nil && *in.EndPort != 0:
		return nil, api.Errorf(cloudapi.CodeUnsupportedOperation, "port range listeners (EndPort) are not supported here")
	case in.TargetType != "" && in.TargetType != "NODE" && in.TargetType != "TARGETGROUP":
		return nil, api.InvalidValue("TargetType", "must be NODE or TARGETGROUP, got %q", in.TargetType)
	case in.TargetType == "TARGETGROUP":
		return nil, api.Errorf(cloudapi.CodeUnsupportedOperation, "TargetType TARGETGROUP is not supported here; only NODE")
	case in.SessionType != "" && in.SessionType != "NORMAL" && in.SessionType != "QUIC_CID":
		return nil, api.InvalidValue("SessionType", "must be NORMAL or QUIC_CID, got %q", in.SessionType)
	case in.SessionType == "QUIC_CID" && in.Protocol != clb.ProtocolUDP:
		return nil, api.InvalidValue("SessionType", "QUIC_CID is for UDP listeners only")
	case in.SessionType == "QUIC_CID":
		return nil, api.Errorf(cloudapi.CodeUnsupportedOperation, "SessionType QUIC_CID is not supported here; only NORMAL")
	case in.DeregisterTargetRst != nil && *in.DeregisterTargetRst && in.Protocol != clb.ProtocolTCP:
		return nil, api.InvalidValue("DeregisterTargetRst", "only applies to TCP listeners")
	}
	session := int64(0)
	if in.SessionExpireTime != nil {
		session = *in.SessionExpireTime
	}
	if err := checkSession(session); err != nil {
		return nil, err
	}
	scheduler := in.Scheduler
	if scheduler == "" {
		scheduler = clb.SchedulerWRR
	}
	if err := checkScheduler(scheduler); err != nil {
		return nil, err
	}
	hc := mergeHealthCheck(defaultHealthCheck(in.Protocol), in.HealthCheck)
	if err := checkHealthCheck(&hc, in.Protocol); err != nil {
		return nil, err
	}

	out := &clb.CreateListenerResponse{}
	err = m.writeLB(r, in.LoadBalancerId, func(tx *store.Tx, lb *LoadBalancer) error {
		existing := m.listenersOf(tx, lb.LoadBalancerId)
		if limit := m.w.Limit("clb-listeners-per-lb", 50); len(existing)+len(in.Ports) > limit {
			return api.Errorf(cloudapi.CodeLimitExceeded, "load balancer %s allows %d listeners; it has %d and %d more were asked for", lb.LoadBalancerId, limit, len(existing), len(in.Ports))
		}
		for _, l := range existing {
			if l.Protocol == in.Protocol && seen[l.Port] {
				return api.Errorf(clb.CodeDuplicate, "load balancer %s already has a %s listener on port %d (%s)", lb.LoadBalancerId, l.Protocol, l.Port, l.ListenerId)
			}
		}
		for i, p := range in.Ports {
			l := &Listener{
				ListenerId: api.NewID("lbl"), LoadBalancerId: lb.LoadBalancerId, Protocol: in.Protocol, Port: p,
				HealthCheck: hc, Scheduler: scheduler, SessionExpireTime: session, SessionType: "NORMAL",
				TargetType: "NODE", CreatedTime: r.Now,
			}
			if len(in.ListenerNames) > 0 {
				l.Name = in.ListenerNames[i]
			}
			if in.DeregisterTargetRst != nil {
				l.DeregisterTargetRst = *in.DeregisterTargetRst
			}
			if err := m.listeners.Put(tx, l.ListenerId, l); err != nil {
				return err
			}
			out.ListenerIds = append(out.ListenerIds, l.ListenerId)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

func listenerView(l *Listener) clb.Listener {
	hc := mergeHealthCheck(clb.HealthCheck{}, &l.HealthCheck) // a copy the response owns
	return clb.Listener{
		ListenerId: l.ListenerId, Protocol: l.Protocol, Port: l.Port, HealthCheck: &hc,
		Scheduler: l.Scheduler, SessionExpireTime: l.SessionExpireTime, ListenerName: l.Name,
		CreateTime: api.Timestamp(l.CreatedTime), TargetType: l.TargetType, SessionType: l.SessionType,
		DeregisterTargetRst: l.DeregisterTargetRst,
	}
}

// listenerFilter selects listeners by id, protocol and port (empty = any).
type listenerFilter struct {
	ids      []string
	protocol string
	port     *int64
}

func (f listenerFilter) validate() error {
	if f.protocol != "" && !slices.Contains([]string{clb.ProtocolTCP, clb.ProtocolUDP, "HTTP", "HTTPS", "TCP_SSL", "QUIC"}, f.protocol) {
		return api.InvalidValue("Protocol", "must be TCP, UDP, HTTP, HTTPS, TCP_SSL or QUIC, got %q", f.protocol)
	}
	if f.port != nil && (*f.port < 1 || *f.port > 65535) {
		return api.InvalidValue("Port", "must be between 1 and 65535, got %d", *f.port)
	}
	return nil
}

func (f listenerFilter) match(l *Listener) bool {
	return (len(f.ids) == 0 || slices.Contains(f.ids, l.ListenerId)) &&
		(f.protocol == "" || f.protocol == l.Protocol) &&
		(f.port == nil || *f.port == l.Port)
}

func (m *Module) describeListeners(r *api.Request) (any, error) {
	in, err := api.Decode[clb.DescribeListenersRequest](r)
	if err != nil {
		return nil, err
	}
	f := listenerFilter{ids: in.ListenerIds, protocol: in.Protocol, port: in.Port}
	if err := f.validate(); err != nil {
		return nil, err
	}
	out := &clb.DescribeListenersResponse{Listeners: []clb.Listener{}}
	err = m.w.Store.View(func(tx *store.Tx) error {
		lb, err := m.getLB(tx, in.LoadBalancerId)
		if err != nil {
			return err
		}
		for _, l := range m.listenersOf(tx, lb.LoadBalancerId) {
			if f.match(l) {
				out.Listeners = append(out.Listeners, listenerView(l))
			}
		}
		out.TotalCount = uint64(len(out.Listeners))
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

func (m *Module) modifyListener(r *api.Request) (any, error) {
	in, err := api.Decode[clb.ModifyListenerRequest](r)
	if err != nil {
		return nil, err
	}
	if in.ListenerName == nil && in.SessionExpireTime == nil && in.HealthCheck == nil && in.Scheduler == nil && in.DeregisterTargetRst == nil {
		return nil, api.Errorf(cloudapi.CodeMissingParameter, "ModifyListener needs at least one of ListenerName, SessionExpireTime, HealthCheck, Scheduler, DeregisterTargetRst")
	}
	if in.ListenerName != nil && utf8.RuneCountInString(*in.ListenerName) > maxListenerName {
		return nil, api.InvalidValue("ListenerName", "must be at most %d characters", maxListenerName)
	}
	if in.SessionExpireTime != nil {
		if err := checkSession(*in.SessionExpireTime); err != nil {
			return nil, err
		}
	}
	if in.Scheduler != nil {
		if err := checkScheduler(*in.Scheduler); err != nil {
			return nil, err
		}
	}
	err = m.writeLB(r, in.LoadBalancerId, func(tx *store.Tx, lb *LoadBalancer) error {
		cur, err := m.getListener(tx, lb.LoadBalancerId, in.ListenerId)
		if err != nil {
			return err
		}
		l := copyListener(cur)
		if in.ListenerName != nil {
			l.Name = *in.ListenerName
		}
		if in.SessionExpireTime != nil {
			l.SessionExpireTime = *in.SessionExpireTime
		}
		if in.Scheduler != nil {
			l.Scheduler = *in.Scheduler
		}
		if in.DeregisterTargetRst != nil {
			if *in.DeregisterTargetRst && l.Protocol != clb.ProtocolTCP {
				return api.InvalidValue("DeregisterTargetRst", "only applies to TCP listeners")
			}
			l.DeregisterTargetRst = *in.DeregisterTargetRst
		}
		if in.HealthCheck != nil {
			hc := mergeHealthCheck(l.HealthCheck, in.HealthCheck)
			if err := checkHealthCheck(&hc, l.Protocol); err != nil {
				return err
			}
			l.HealthCheck = hc
		}
		return m.listeners.Put(tx, l.ListenerId, l)
	})
	if err != nil {
		return nil, err
	}
	return &clb.ModifyListenerResponse{}, nil
}

func (m *Module) deleteListener(r *api.Request) (any, error) {
	in, err := api.Decode[clb.DeleteListenerRequest](r)
	if err != nil {
		return nil, err
	}
	err = m.writeLB(r, in.LoadBalancerId, func(tx *store.Tx, lb *LoadBalancer) error {
		l, err := m.getListener(tx, lb.LoadBalancerId, in.ListenerId)
		if err != nil {
			return err
		}
		return m.listeners.Delete(tx, l.ListenerId)
	})
	if err != nil {
		return nil, err
	}
	return &clb.DeleteListenerResponse{}, nil
}
