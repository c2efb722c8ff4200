package loadbalancer

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"

	v1 "k8s.io/api/core/v1"

	lb "github.com/stratus-cloud/stratus/loadbalancer"
)

// Nimbus is an imaginary cloud whose load balancers live in memory. It implements
// lb.Backend: every method is what Nimbus's API would do, and Log records each call so
// the example can show how few the engine makes.
type Nimbus struct {
	mu     sync.Mutex
	lbs    map[string]*lb.LoadBalancer
	tokens map[string]string
	next   int
	Log    []string
}

var _ lb.Backend = (*Nimbus)(nil)

// NewNimbus returns an empty cloud.
func NewNimbus() *Nimbus {
	return &Nimbus{lbs: map[string]*lb.LoadBalancer{}, tokens: map[string]string{}}
}

// NodeID is how Nimbus names a node's machine: its providerID "nimbus://<machine>".
func NodeID(n *v1.Node) (string, bool) {
	id, ok := strings.CutPrefix(n.Spec.ProviderID, "nimbus://")
	return id, ok && id != ""
}

func (c *Nimbus) log(format string, args ...any) { c.Log = append(c.Log, fmt.Sprintf(format, args...)) }

func (c *Nimbus) find(id string) (*lb.LoadBalancer, error) {
	l, ok := c.lbs[id]
	if !ok {
		return nil, fmt.Errorf("nimbus: load balancer %s: %w", id, lb.ErrNotFound)
	}
	return l, nil
}

// copyOf is what Nimbus's API answers: a snapshot, never its own record.
func copyOf(l *lb.LoadBalancer) *lb.LoadBalancer {
	c := *l
	c.Listeners = nil
	for _, x := range l.Listeners {
		x.Targets = slices.Clone(x.Targets)
		c.Listeners = append(c.Listeners, x)
	}
	c.Filters = slices.Clone(l.Filters)
	return &c
}

func (c *Nimbus) List(context.Context) ([]*lb.LoadBalancer, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.log("list")
	var out []*lb.LoadBalancer
	for _, l := range c.lbs {
		if l.Tags[lb.TagCluster] != "" {
			out = append(out, copyOf(l))
		}
	}
	return out, nil
}

func (c *Nimbus) Get(_ context.Context, id string) (*lb.LoadBalancer, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.log("get %s", id)
	l, err := c.find(id)
	if err != nil {
		return nil, err
	}
	return copyOf(l), nil
}

func (c *Nimbus) Create(_ context.Context, req lb.CreateRequest) (*lb.LoadBalancer, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if id, ok := c.tokens[req.Token]; ok {
		l, err := c.find(id)
		if err != nil {
			return nil, fmt.Errorf("nimbus: token reused: %w", lb.ErrStale)
		}
		return copyOf(l), nil
	}
	c.next++
	l := &lb.LoadBalancer{ID: fmt.Sprintf("nlb-%d", c.next), Name: req.Name, VIP: fmt.Sprintf("203.0.113.%d", c.next), Tags: req.Tags}
	c.lbs[l.ID], c.tokens[req.Token] = l, l.ID
	c.log("create %s", l.ID)
	return copyOf(l), nil
}

func (c *Nimbus) Delete(_ context.Context, in *lb.LoadBalancer) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.log("delete %s", in.ID)
	delete(c.lbs, in.ID)
	return nil
}

func (c *Nimbus) CreateListeners(_ context.Context, in *lb.LoadBalancer, specs []lb.ListenerSpec) ([]lb.Listener, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	l, err := c.find(in.ID)
	if err != nil {
		return nil, err
	}
	var made []lb.Listener
	for _, s := range specs {
		c.next++
		made = append(made, lb.Listener{ID: fmt.Sprintf("lis-%d", c.next), ListenerSpec: s})
	}
	l.Listeners = append(l.Listeners, made...)
	c.log("create listeners %d", len(made))
	return made, nil
}

func (c *Nimbus) UpdateListener(_ context.Context, in *lb.LoadBalancer, x lb.Listener) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	l, err := c.find(in.ID)
	if err != nil {
		return err
	}
	for i := range l.Listeners {
		if l.Listeners[i].ID == x.ID {
			targets := l.Listeners[i].Targets
			l.Listeners[i] = x
			l.Listeners[i].Targets = targets
		}
	}
	c.log("update listener %s", x.ID)
	return nil
}

func (c *Nimbus) DeleteListeners(_ context.Context, in *lb.LoadBalancer, ids []string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	l, err := c.find(in.ID)
	if err != nil {
		return err
	}
	l.Listeners = slices.DeleteFunc(l.Listeners, func(x lb.Listener) bool { return slices.Contains(ids, x.ID) })
	c.log("delete listeners %d", len(ids))
	return nil
}

func (c *Nimbus) targets(verb string, in *lb.LoadBalancer, ts []lb.ListenerTarget, change func(*lb.Listener, lb.Target)) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	l, err := c.find(in.ID)
	if err != nil {
		return err
	}
	for _, t := range ts {
		for i := range l.Listeners {
			if l.Listeners[i].ID == t.ListenerID {
				change(&l.Listeners[i], t.Target)
			}
		}
	}
	c.log("%s %d targets", verb, len(ts))
	return nil
}

func (c *Nimbus) RegisterTargets(_ context.Context, l *lb.LoadBalancer, ts []lb.ListenerTarget) error {
	return c.targets("register", l, ts, func(x *lb.Listener, t lb.Target) { x.Targets = append(x.Targets, t) })
}

func (c *Nimbus) DeregisterTargets(_ context.Context, l *lb.LoadBalancer, ts []lb.ListenerTarget) error {
	return c.targets("deregister", l, ts, func(x *lb.Listener, t lb.Target) {
		x.Targets = slices.DeleteFunc(x.Targets, func(y lb.Target) bool { return y.ID == t.ID && y.Port == t.Port })
	})
}

func (c *Nimbus) SetWeights(_ context.Context, l *lb.LoadBalancer, ts []lb.ListenerTarget) error {
	return c.targets("reweight", l, ts, func(x *lb.Listener, t lb.Target) {
		for i := range x.Targets {
			if x.Targets[i].ID == t.ID && x.Targets[i].Port == t.Port {
				x.Targets[i].Weight = t.Weight
			}
		}
	})
}

func (c *Nimbus) SetSourceRanges(_ context.Context, in *lb.LoadBalancer, owner lb.Owner, ranges []netip.Prefix) ([]lb.Filter, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	l, err := c.find(in.ID)
	if err != nil {
		return nil, err
	}
	l.Filters = slices.DeleteFunc(l.Filters, func(f lb.Filter) bool { return f.OwnerUID == owner.UID })
	if len(ranges) > 0 {
		l.Filters = append(l.Filters, lb.Filter{ID: "acl-" + string(owner.UID), OwnerUID: owner.UID, Ranges: ranges})
	}
	c.log("source ranges %v", ranges)
	return slices.Clone(l.Filters), nil
}
