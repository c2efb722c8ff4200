package loadbalancer

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
)

// OpKind is what one operation does.
type OpKind int

// The operations, in the order a plan runs them: the source filter first (a narrowed
// filter protects new listeners from their first connection), listeners freed before new
// ones take quota, and new targets registered before old ones go, so a node replaced by
// another never leaves a listener without targets.
const (
	OpSetSourceRanges OpKind = iota
	OpDeleteListeners
	OpUpdateListener
	OpCreateListeners
	OpRegisterTargets
	OpSetWeights
	OpDeregisterTargets
)

var opNames = map[OpKind]string{
	OpSetSourceRanges: "SetSourceRanges", OpDeleteListeners: "DeleteListeners", OpUpdateListener: "UpdateListener",
	OpCreateListeners: "CreateListeners", OpRegisterTargets: "RegisterTargets", OpSetWeights: "SetWeights",
	OpDeregisterTargets: "DeregisterTargets",
}

func (k OpKind) String() string { return opNames[k] }

// Op is one operation on one load balancer. Targets name their listener by key, so a
// plan can register targets of a listener it creates before the cloud has named it.
type Op struct {
	Kind         OpKind
	Listeners    []ListenerSpec // OpCreateListeners
	Listener     Listener       // OpUpdateListener
	ListenerIDs  []string       // OpDeleteListeners
	Targets      []KeyedTarget  // OpRegisterTargets, OpSetWeights, OpDeregisterTargets
	SourceRanges []netip.Prefix // OpSetSourceRanges; empty: accept everyone
}

// KeyedTarget is a target of the listener with Key.
type KeyedTarget struct {
	Key ListenerKey
	Target
}

func (o Op) String() string {
	switch o.Kind {
	case OpCreateListeners:
		keys := make([]string, len(o.Listeners))
		for i, l := range o.Listeners {
			keys[i] = l.ListenerKey.String()
		}
		return fmt.Sprintf("%s %s", o.Kind, strings.Join(keys, ","))
	case OpUpdateListener:
		return fmt.Sprintf("%s %s (%s)", o.Kind, o.Listener.ListenerKey, o.Listener.ID)
	case OpDeleteListeners:
		return fmt.Sprintf("%s %s", o.Kind, strings.Join(o.ListenerIDs, ","))
	case OpSetSourceRanges:
		return fmt.Sprintf("%s %v", o.Kind, o.SourceRanges)
	}
	ts := make([]string, len(o.Targets))
	for i, t := range o.Targets {
		ts[i] = fmt.Sprintf("%s>%s:%d/%d", t.Key, t.ID, t.Port, t.Weight)
	}
	return fmt.Sprintf("%s %s", o.Kind, strings.Join(ts, ","))
}

// ConflictError says the Service wants a listener port that a listener Stratus does not
// own (on an adopted load balancer) already uses.
type ConflictError struct {
	LoadBalancerID, ListenerID string
	Key                        ListenerKey
}

func (e *ConflictError) Error() string {
	return fmt.Sprintf("load balancer %s: port %s is taken by listener %s, which Stratus did not make for this Service and leaves alone", e.LoadBalancerID, e.Key, e.ListenerID)
}

// Plan lists the operations that make lb match spec, fewest first: nothing when they
// already match, one RegisterTargets for a node added, one DeregisterTargets for a node
// removed. Only lb's listeners named spec.ListenerName are changed or deleted; a wanted
// port held by any other listener is a *ConflictError. Plan is pure.
func Plan(spec *Spec, lb *LoadBalancer) ([]Op, error) {
	var ops []Op
	var deleted []string
	var updates []Op
	var creates []ListenerSpec
	var reg, weights, dereg []KeyedTarget

	if f, ok := lb.filterOf(spec.UID); ok {
		if !slices.Equal(f.Ranges, spec.SourceRanges) {
			ops = append(ops, Op{Kind: OpSetSourceRanges, SourceRanges: spec.SourceRanges})
		}
	} else if len(spec.SourceRanges) > 0 {
		ops = append(ops, Op{Kind: OpSetSourceRanges, SourceRanges: spec.SourceRanges})
	}

	ours := map[ListenerKey]*Listener{}
	foreign := map[ListenerKey]*Listener{}
	for i := range lb.Listeners {
		l := &lb.Listeners[i]
		if l.Name != spec.ListenerName {
			if _, dup := foreign[l.ListenerKey]; !dup {
				foreign[l.ListenerKey] = l
			}
			continue
		}
		_, wanted := spec.listener(l.ListenerKey)
		if _, dup := ours[l.ListenerKey]; dup || !wanted {
			deleted = append(deleted, l.ID)
			continue
		}
		ours[l.ListenerKey] = l
	}
	for i := range spec.Listeners {
		want := &spec.Listeners[i]
		have, ok := ours[want.ListenerKey]
		if !ok {
			if f, taken := foreign[want.ListenerKey]; taken {
				return nil, &ConflictError{LoadBalancerID: lb.ID, ListenerID: f.ID, Key: want.ListenerKey}
			}
			creates = append(creates, *want)
			for _, t := range want.Targets {
				reg = append(reg, KeyedTarget{Key: want.ListenerKey, Target: t})
			}
			continue
		}
		if !have.sameSettings(want) {
			l := Listener{ID: have.ID, ListenerSpec: *want}
			l.Targets = nil
			updates = append(updates, Op{Kind: OpUpdateListener, Listener: l})
		}
		r, w, d := diffTargets(want.ListenerKey, have.Targets, want.Targets)
		reg, weights, dereg = append(reg, r...), append(weights, w...), append(dereg, d...)
	}
	if len(deleted) > 0 {
		ops = append(ops, Op{Kind: OpDeleteListeners, ListenerIDs: deleted})
	}
	ops = append(ops, updates...)
	if len(creates) > 0 {
		ops = append(ops, Op{Kind: OpCreateListeners, Listeners: creates})
	}
	if len(reg) > 0 {
		ops = append(ops, Op{Kind: OpRegisterTargets, Targets: reg})
	}
	if len(weights) > 0 {
		ops = append(ops, Op{Kind: OpSetWeights, Targets: weights})
	}
	if len(dereg) > 0 {
		ops = append(ops, Op{Kind: OpDeregisterTargets, Targets: dereg})
	}
	return ops, nil
}

// PlanRelease lists what takes the Service whose listeners are named listenerName off an
// adopted load balancer: its listeners and its source filter go, the rest stays.
func PlanRelease(owner Owner, listenerName string, lb *LoadBalancer) []Op {
	var ops []Op
	if _, ok := lb.filterOf(owner.UID); ok {
		ops = append(ops, Op{Kind: OpSetSourceRanges})
	}
	var ids []string
	for _, l := range lb.Listeners {
		if l.Name == listenerName {
			ids = append(ids, l.ID)
		}
	}
	if len(ids) > 0 {
		ops = append(ops, Op{Kind: OpDeleteListeners, ListenerIDs: ids})
	}
	return ops
}

// diffTargets compares a listener's bound targets with the wanted ones (both sorted).
func diffTargets(key ListenerKey, have, want []Target) (register, reweight, deregister []KeyedTarget) {
	bound := make(map[targetKey]Target, len(have))
	for _, t := range have {
		bound[t.key()] = t
	}
	wanted := make(map[targetKey]bool, len(want))
	for _, t := range want {
		wanted[t.key()] = true
		b, ok := bound[t.key()]
		switch {
		case !ok:
			register = append(register, KeyedTarget{Key: key, Target: t})
		case b.Weight != t.Weight:
			reweight = append(reweight, KeyedTarget{Key: key, Target: t})
		}
	}
	for _, t := range have {
		if !wanted[t.key()] {
			deregister = append(deregister, KeyedTarget{Key: key, Target: t})
		}
	}
	return register, reweight, deregister
}
