package clb

import (
	"fmt"
	"slices"

	"github.com/stratus-cloud/stratus/cloudapi"
	"github.com/stratus-cloud/stratus/cloudapi/clb"
	"github.com/stratus-cloud/stratus/fakecloud/api"
	"github.com/stratus-cloud/stratus/fakecloud/store"
)

// maxWeightTargetsPerCall is BatchModifyTargetWeight's documented limit of 500 resources.
const maxWeightTargetsPerCall = 500

// deleteLoadBalancerListeners deletes the named listeners (all of them without
// ListenerIds) with their targets, in one task. Every id must name a listener of the load
// balancer, or nothing is deleted.
func (m *Module) deleteLoadBalancerListeners(r *api.Request) (any, error) {
	in, err := api.Decode[clb.DeleteLoadBalancerListenersRequest](r)
	if err != nil {
		return nil, err
	}
	if len(slices.Compact(slices.Sorted(slices.Values(in.ListenerIds)))) != len(in.ListenerIds) {
		return nil, api.Errorf(clb.CodeDuplicate, "parameter `ListenerIds` names a listener twice")
	}
	err = m.writeLB(r, in.LoadBalancerId, func(tx *store.Tx, lb *LoadBalancer) error {
		var doomed []string
		if len(in.ListenerIds) == 0 {
			for _, l := range m.listenersOf(tx, lb.LoadBalancerId) {
				doomed = append(doomed, l.ListenerId)
			}
		}
		for _, id := range in.ListenerIds {
			l, err := m.getListener(tx, lb.LoadBalancerId, id)
			if err != nil {
				return err
			}
			doomed = append(doomed, l.ListenerId)
		}
		for _, id := range doomed {
			if err := m.listeners.Delete(tx, id); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &clb.DeleteLoadBalancerListenersResponse{}, nil
}

// batchModifyTargetWeight sets target weights across listeners, all or nothing: every
// target must be bound to its listener.
func (m *Module) batchModifyTargetWeight(r *api.Request) (any, error) {
	in, err := api.Decode[clb.BatchModifyTargetWeightRequest](r)
	if err != nil {
		return nil, err
	}
	if len(in.ModifyList) == 0 {
		return nil, api.MissingParameter("ModifyList")
	}
	type change struct {
		field, listenerID, key string
		weight                 int64
	}
	var changes []change
	for i, rule := range in.ModifyList {
		f := fmt.Sprintf("ModifyList.%d", i)
		switch {
		case rule.LocationId != "":
			return nil, api.Errorf(cloudapi.CodeUnsupportedOperation, "parameter `%s.LocationId`: layer-7 forwarding rules are not supported here", f)
		case rule.ListenerId == "":
			return nil, api.MissingParameter(f + ".ListenerId")
		case len(rule.Targets) == 0:
			return nil, api.MissingParameter(f + ".Targets")
		case rule.Weight != nil && (*rule.Weight < 0 || *rule.Weight > 100):
			return nil, api.InvalidValue(f+".Weight", "must be between 0 and 100, got %d", *rule.Weight)
		}
		for j, t := range fromTargets(rule.Targets, rule.ListenerId) {
			t.field = fmt.Sprintf("%s.Targets.%d", f, j)
			if err := t.checkShape(false); err != nil {
				return nil, err
			}
			w := t.weight
			if w == nil {
				w = rule.Weight
			}
			if w == nil {
				return nil, api.MissingParameter(t.field + ".Weight")
			}
			changes = append(changes, change{field: t.field, listenerID: rule.ListenerId, key: t.key(), weight: *w})
		}
	}
	if len(changes) > maxWeightTargetsPerCall {
		return nil, api.Errorf(clb.CodeLength, "parameter `ModifyList`: at most %d targets per call, got %d", maxWeightTargetsPerCall, len(changes))
	}
	err = m.writeLB(r, in.LoadBalancerId, func(tx *store.Tx, lb *LoadBalancer) error {
		byListener := map[string]*Listener{}
		var order []string
		for _, c := range changes {
			l, ok := byListener[c.listenerID]
			if !ok {
				cur, err := m.getListener(tx, lb.LoadBalancerId, c.listenerID)
				if err != nil {
					return err
				}
				l = copyListener(cur)
				byListener[c.listenerID] = l
				order = append(order, c.listenerID)
			}
			idx := slices.IndexFunc(l.Targets, func(t Target) bool { return t.key() == c.key })
			if idx < 0 {
				return api.Errorf(cloudapi.CodeInvalidParameter, "parameter `%s`: target %s is not bound to listener %s", c.field, c.key, l.ListenerId)
			}
			l.Targets[idx].Weight = c.weight
		}
		for _, id := range order {
			if err := m.listeners.Put(tx, id, byListener[id]); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &clb.BatchModifyTargetWeightResponse{}, nil
}
