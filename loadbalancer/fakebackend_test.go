package loadbalancer

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"sync"
)

// fakeBackend is an in-memory cloud that behaves like the real one where the engine
// cares: tags, idempotent creation by token, strict target bookkeeping. It counts calls
// per method and can fail the next call of a method.
type fakeBackend struct {
	cluster string

	mu     sync.Mutex
	lbs    map[string]*LoadBalancer
	tokens map[string]string // token -> id
	calls  map[string]int
	fail   map[string]error
	nextID int
}

func newFakeBackend(cluster string) *fakeBackend {
	return &fakeBackend{cluster: cluster, lbs: map[string]*LoadBalancer{}, tokens: map[string]string{}, calls: map[string]int{}, fail: map[string]error{}}
}

func (f *fakeBackend) enter(method string) error {
	f.calls[method]++
	if err, ok := f.fail[method]; ok {
		delete(f.fail, method)
		return err
	}
	return nil
}

func (f *fakeBackend) snapshot() map[string]int {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[string]int{}
	for k, v := range f.calls {
		out[k] = v
	}
	return out
}

func (f *fakeBackend) resetCalls() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = map[string]int{}
}

func (f *fakeBackend) failNext(method string, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fail[method] = err
}

func (f *fakeBackend) id(prefix string) string {
	f.nextID++
	return fmt.Sprintf("%s-%d", prefix, f.nextID)
}

// add puts a load balancer into the cloud as someone else made it.
func (f *fakeBackend) add(lb *LoadBalancer) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.lbs[lb.ID] = lb.clone()
}

func (f *fakeBackend) lb(id string) (*LoadBalancer, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	lb, ok := f.lbs[id]
	if !ok {
		return nil, false
	}
	return lb.clone(), true
}

func (f *fakeBackend) all() []*LoadBalancer {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []*LoadBalancer
	for _, lb := range f.lbs {
		out = append(out, lb.clone())
	}
	sortByID(out)
	return out
}

func (f *fakeBackend) List(context.Context) ([]*LoadBalancer, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.enter("List"); err != nil {
		return nil, err
	}
	var out []*LoadBalancer
	for _, lb := range f.lbs {
		if lb.Tags[TagCluster] == f.cluster {
			out = append(out, lb.clone())
		}
	}
	return out, nil
}

func (f *fakeBackend) Get(_ context.Context, id string) (*LoadBalancer, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.enter("Get"); err != nil {
		return nil, err
	}
	lb, ok := f.lbs[id]
	if !ok {
		return nil, fmt.Errorf("load balancer %s: %w", id, ErrNotFound)
	}
	return lb.clone(), nil
}

func (f *fakeBackend) Create(_ context.Context, req CreateRequest) (*LoadBalancer, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.enter("Create"); err != nil {
		return nil, err
	}
	if id, ok := f.tokens[req.Token]; ok {
		lb, ok := f.lbs[id]
		if !ok {
			return nil, fmt.Errorf("token %s made %s, which is gone: %w", req.Token, id, ErrStale)
		}
		return lb.clone(), nil
	}
	id := f.id("lb")
	lb := &LoadBalancer{ID: id, Name: req.Name, VIP: fmt.Sprintf("198.18.0.%d", f.nextID), Internal: req.Internal, SubnetID: req.SubnetID, Tags: map[string]string{}}
	for k, v := range req.Tags {
		lb.Tags[k] = v
	}
	f.lbs[id] = lb
	f.tokens[req.Token] = id
	return lb.clone(), nil
}

func (f *fakeBackend) Delete(_ context.Context, lb *LoadBalancer) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.enter("Delete"); err != nil {
		return err
	}
	if _, ok := f.lbs[lb.ID]; !ok {
		return fmt.Errorf("load balancer %s: %w", lb.ID, ErrNotFound)
	}
	delete(f.lbs, lb.ID)
	return nil
}

func (f *fakeBackend) get(id string) (*LoadBalancer, error) {
	lb, ok := f.lbs[id]
	if !ok {
		return nil, fmt.Errorf("load balancer %s: %w", id, ErrNotFound)
	}
	return lb, nil
}

func (f *fakeBackend) CreateListeners(_ context.Context, in *LoadBalancer, specs []ListenerSpec) ([]Listener, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.enter("CreateListeners"); err != nil {
		return nil, err
	}
	lb, err := f.get(in.ID)
	if err != nil {
		return nil, err
	}
	var out []Listener
	for _, s := range specs {
		if _, taken := lb.listener(s.ListenerKey); taken {
			return nil, fmt.Errorf("port %s taken: %w", s.ListenerKey, ErrStale)
		}
		l := Listener{ID: f.id("lbl"), ListenerSpec: s}
		l.Targets = nil
		out = append(out, l)
	}
	lb.Listeners = append(lb.Listeners, out...)
	return out, nil
}

func (f *fakeBackend) UpdateListener(_ context.Context, in *LoadBalancer, l Listener) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.enter("UpdateListener"); err != nil {
		return err
	}
	lb, err := f.get(in.ID)
	if err != nil {
		return err
	}
	for i := range lb.Listeners {
		if have := &lb.Listeners[i]; have.ID == l.ID {
			have.Scheduler, have.SessionTimeout, have.HealthCheck = l.Scheduler, l.SessionTimeout, l.HealthCheck
			return nil
		}
	}
	return fmt.Errorf("listener %s: %w", l.ID, ErrNotFound)
}

func (f *fakeBackend) DeleteListeners(_ context.Context, in *LoadBalancer, ids []string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.enter("DeleteListeners"); err != nil {
		return err
	}
	lb, err := f.get(in.ID)
	if err != nil {
		return err
	}
	lb.Listeners = slices.DeleteFunc(lb.Listeners, func(l Listener) bool { return slices.Contains(ids, l.ID) })
	return nil
}

func (f *fakeBackend) targets(method string, in *LoadBalancer, ts []ListenerTarget, apply func(l *Listener, t Target) error) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.enter(method); err != nil {
		return err
	}
	lb, err := f.get(in.ID)
	if err != nil {
		return err
	}
	work := lb.clone()
	for _, t := range ts {
		i := slices.IndexFunc(work.Listeners, func(l Listener) bool { return l.ID == t.ListenerID })
		if i < 0 {
			return fmt.Errorf("listener %s: %w", t.ListenerID, ErrStale)
		}
		if err := apply(&work.Listeners[i], t.Target); err != nil {
			return err
		}
	}
	f.lbs[in.ID] = work
	return nil
}

func (f *fakeBackend) RegisterTargets(_ context.Context, lb *LoadBalancer, ts []ListenerTarget) error {
	return f.targets("RegisterTargets", lb, ts, func(l *Listener, t Target) error {
		if slices.ContainsFunc(l.Targets, func(x Target) bool { return x.key() == t.key() }) {
			return fmt.Errorf("target %s:%d already bound: %w", t.ID, t.Port, ErrStale)
		}
		l.Targets = append(l.Targets, t)
		slices.SortFunc(l.Targets, compareTargets)
		return nil
	})
}

func (f *fakeBackend) DeregisterTargets(_ context.Context, lb *LoadBalancer, ts []ListenerTarget) error {
	return f.targets("DeregisterTargets", lb, ts, func(l *Listener, t Target) error {
		i := slices.IndexFunc(l.Targets, func(x Target) bool { return x.key() == t.key() })
		if i < 0 {
			return fmt.Errorf("target %s:%d not bound: %w", t.ID, t.Port, ErrStale)
		}
		l.Targets = slices.Delete(l.Targets, i, i+1)
		return nil
	})
}

func (f *fakeBackend) SetWeights(_ context.Context, lb *LoadBalancer, ts []ListenerTarget) error {
	return f.targets("SetWeights", lb, ts, func(l *Listener, t Target) error {
		i := slices.IndexFunc(l.Targets, func(x Target) bool { return x.key() == t.key() })
		if i < 0 {
			return fmt.Errorf("target %s:%d not bound: %w", t.ID, t.Port, ErrStale)
		}
		l.Targets[i].Weight = t.Weight
		return nil
	})
}

func (f *fakeBackend) SetSourceRanges(_ context.Context, in *LoadBalancer, owner Owner, ranges []netip.Prefix) ([]Filter, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.enter("SetSourceRanges"); err != nil {
		return nil, err
	}
	lb, err := f.get(in.ID)
	if err != nil {
		return nil, err
	}
	lb.Filters = slices.DeleteFunc(lb.Filters, func(x Filter) bool { return x.OwnerUID == owner.UID })
	if len(ranges) > 0 {
		lb.Filters = append(lb.Filters, Filter{ID: f.id("sg"), OwnerUID: owner.UID, Ranges: slices.Clone(ranges)})
	}
	return lb.clone().Filters, nil
}
