package loadbalancer

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	cloudprovider "k8s.io/cloud-provider"
	"k8s.io/klog/v2"
)

// Config configures an Engine.
type Config struct {
	Settings Settings
	Backend  Backend
	// NodeID names a node's instance for the Backend (false: the node cannot be a target
	// yet, typically because it has no providerID).
	NodeID func(*v1.Node) (string, bool)
	// Endpoints counts a Service's ready endpoints per node name, for
	// AnnotationLocalOnlyBindNodeWithPod and AnnotationLocalWeightedBalance. Nil makes
	// those annotations an error.
	Endpoints func(svc *v1.Service) (map[string]int, error)
	// RecordID writes AnnotationLoadBalancerID on the Service once its load balancer is
	// known; nil skips it.
	RecordID func(ctx context.Context, svc *v1.Service, lbID string) error
	// CacheMaxAge rebuilds the cache of owned load balancers from the cloud when it is
	// older; 0 keeps it until an error invalidates it.
	CacheMaxAge time.Duration
	// Now is the cache's clock (default time.Now).
	Now func() time.Time
}

// Engine implements k8s.io/cloud-provider's LoadBalancer on a Backend. It is safe for the
// service controller's concurrent workers: syncs of one Service, and changes to one load
// balancer, are serialized; different ones run in parallel.
type Engine struct {
	cfg   Config
	cache *cache

	services keyedMutex // per Service UID
	lbs      keyedMutex // per load balancer id

	genMu sync.Mutex
	gens  map[types.UID]int // token generation after a rolled-back creation

	endpoints atomic.Pointer[func(*v1.Service) (map[string]int, error)]
}

var _ cloudprovider.LoadBalancer = (*Engine)(nil)

// New checks cfg and returns an Engine.
func New(cfg Config) (*Engine, error) {
	if cfg.Backend == nil {
		return nil, errors.New("loadbalancer: no Backend")
	}
	if cfg.NodeID == nil {
		return nil, errors.New("loadbalancer: no NodeID")
	}
	if err := cfg.Settings.Validate(); err != nil {
		return nil, fmt.Errorf("loadbalancer: settings: %w", err)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	e := &Engine{
		cfg:   cfg,
		cache: newCache(cfg.Backend, cfg.Settings.ClusterID, cfg.CacheMaxAge, cfg.Now),
		gens:  map[types.UID]int{},
	}
	if cfg.Endpoints != nil {
		e.SetEndpoints(cfg.Endpoints)
	}
	return e, nil
}

// SetEndpoints sets Config.Endpoints after New: a controller manager hands out its
// informers only once the cloud provider is built.
func (e *Engine) SetEndpoints(f func(*v1.Service) (map[string]int, error)) { e.endpoints.Store(&f) }

// GetLoadBalancerName is the name a load balancer created for svc gets.
func (e *Engine) GetLoadBalancerName(_ context.Context, _ string, svc *v1.Service) string {
	return LoadBalancerName(svc, e.cfg.Settings)
}

// GetLoadBalancer reports the load balancer svc has: one this cluster made for it, or an
// adopted one that carries its listeners. It reads the cloud only to build the cache.
func (e *Engine) GetLoadBalancer(ctx context.Context, _ string, svc *v1.Service) (*v1.LoadBalancerStatus, bool, error) {
	unlock := e.services.lock(string(svc.UID))
	defer unlock()
	if err := e.cache.ensure(ctx); err != nil {
		return nil, false, fmt.Errorf("service %s: %w", key(svc), err)
	}
	mode := e.cfg.Settings.DefaultMode
	if m, err := annMode.from(svc); err == nil {
		mode = m
	}
	if owned := e.cache.owned(svc.UID); len(owned) > 0 {
		return status(owned[0].VIP, mode), true, nil
	}
	for _, id := range adoptedIDs(svc) {
		lb, err := e.cache.get(ctx, id)
		if isNotFound(err) {
			continue
		}
		if err != nil {
			return nil, false, fmt.Errorf("service %s: read load balancer %s: %w", key(svc), id, err)
		}
		if carries(lb, svc.UID, e.listenerName(svc)) {
			return status(lb.VIP, mode), true, nil
		}
	}
	return nil, false, nil
}

// EnsureLoadBalancer makes svc's load balancer match its spec and returns its status.
// Invalid settings are an *InvalidServiceError and change nothing; a cloud error is
// returned with the cloud's code and message (the controller retries with backoff), and
// a load balancer created by this call is deleted again when a later step fails.
func (e *Engine) EnsureLoadBalancer(ctx context.Context, _ string, svc *v1.Service, nodes []*v1.Node) (*v1.LoadBalancerStatus, error) {
	return e.sync(ctx, svc, nodes, true)
}

// UpdateLoadBalancer makes the targets (and everything else) of svc's existing load
// balancer match nodes. It creates nothing: without a load balancer it is an error.
func (e *Engine) UpdateLoadBalancer(ctx context.Context, _ string, svc *v1.Service, nodes []*v1.Node) error {
	_, err := e.sync(ctx, svc, nodes, false)
	return err
}

// EnsureLoadBalancerDeleted deletes the load balancer this cluster made for svc, and
// takes svc's listeners and source filter off an adopted one (which stays). Nothing to
// delete is success, so a Service whose load balancer is already gone is released. It
// reads svc's annotations leniently: an invalid one never blocks the cleanup.
func (e *Engine) EnsureLoadBalancerDeleted(ctx context.Context, _ string, svc *v1.Service) error {
	unlock := e.services.lock(string(svc.UID))
	defer unlock()
	if err := e.cache.ensure(ctx); err != nil {
		return fmt.Errorf("service %s: %w", key(svc), err)
	}
	owner := Owner{Service: key(svc), UID: svc.UID}
	for _, lb := range e.cache.owned(svc.UID) {
		if err := e.deleteOwned(ctx, owner, lb); err != nil {
			return err
		}
	}
	for _, id := range adoptedIDs(svc) {
		lb, err := e.cache.get(ctx, id)
		if isNotFound(err) {
			continue
		}
		if err != nil {
			return fmt.Errorf("service %s: read load balancer %s: %w", owner.Service, id, err)
		}
		if lb.ownedBy(e.cfg.Settings.ClusterID, svc.UID) {
			continue // deleted above, or gone meanwhile
		}
		if err := e.release(ctx, owner, e.listenerName(svc), lb); err != nil {
			return err
		}
	}
	return nil
}

// errNoLoadBalancer is UpdateLoadBalancer's answer for a Service without one.
var errNoLoadBalancer = errors.New("has no load balancer yet")

// sync is EnsureLoadBalancer (create) and UpdateLoadBalancer (!create).
func (e *Engine) sync(ctx context.Context, svc *v1.Service, nodes []*v1.Node, create bool) (*v1.LoadBalancerStatus, error) {
	spec, err := e.resolve(svc, nodes)
	if err != nil {
		return nil, err
	}
	unlock := e.services.lock(string(svc.UID))
	defer unlock()
	if err := e.cache.ensure(ctx); err != nil {
		return nil, fmt.Errorf("service %s: %w", spec.Service, err)
	}

	target, retire, err := e.locate(ctx, spec, svc)
	if err != nil {
		return nil, err
	}
	created := false
	if target == nil {
		if !create {
			return nil, fmt.Errorf("service %s %w", spec.Service, errNoLoadBalancer)
		}
		if target, err = e.create(ctx, spec); err != nil {
			return nil, err
		}
		created = true
	}
	if target, err = e.converge(ctx, spec, target); err != nil {
		if created {
			e.rollback(ctx, spec, target)
		}
		return nil, err
	}
	// The new load balancer works: only now let the old ones go.
	for _, old := range retire {
		var err error
		if old.ownedBy(e.cfg.Settings.ClusterID, spec.UID) {
			err = e.deleteOwned(ctx, spec.Owner, old)
		} else {
			err = e.release(ctx, spec.Owner, spec.ListenerName, old)
		}
		if err != nil {
			return nil, err
		}
	}
	if e.cfg.RecordID != nil && svc.Annotations[AnnotationLoadBalancerID] != target.ID {
		if err := e.cfg.RecordID(ctx, svc, target.ID); err != nil {
			return nil, fmt.Errorf("service %s: record annotation %s=%s: %w", spec.Service, AnnotationLoadBalancerID, target.ID, err)
		}
	}
	if target.VIP == "" {
		return nil, fmt.Errorf("service %s: load balancer %s has no VIP yet", spec.Service, target.ID)
	}
	return status(target.VIP, spec.Mode), nil
}

// resolve reads what Resolve needs besides the Service and runs it.
func (e *Engine) resolve(svc *v1.Service, nodes []*v1.Node) (*Spec, error) {
	in := Input{Service: svc, Nodes: nodes, NodeID: e.cfg.NodeID}
	if NeedsEndpoints(svc) {
		count := e.endpoints.Load()
		if count == nil {
			return nil, &InvalidServiceError{Service: key(svc), Errs: []error{fmt.Errorf("annotations %s and %s need the EndpointSlice informer, which this controller does not run",
				AnnotationLocalOnlyBindNodeWithPod, AnnotationLocalWeightedBalance)}}
		}
		eps, err := (*count)(svc)
		if err != nil {
			return nil, fmt.Errorf("service %s: count endpoints per node: %w", key(svc), err)
		}
		in.Endpoints = eps
	}
	return Resolve(in, e.cfg.Settings)
}

// locate finds the load balancer spec should converge (nil: none yet) and the ones the
// Service used before and must leave (owned ones of another type, an adopted one it no
// longer names).
func (e *Engine) locate(ctx context.Context, spec *Spec, svc *v1.Service) (target *LoadBalancer, retire []*LoadBalancer, err error) {
	cluster := e.cfg.Settings.ClusterID
	owned := e.cache.owned(spec.UID)
	for i, lb := range owned {
		if e.cache.isStale(lb.ID) {
			lb, err := e.cache.refresh(ctx, lb.ID)
			if isNotFound(err) {
				owned[i] = nil
				continue
			}
			if err != nil {
				return nil, nil, fmt.Errorf("service %s: read load balancer %s: %w", spec.Service, owned[i].ID, err)
			}
			owned[i] = lb
		}
	}
	owned = slices.DeleteFunc(owned, func(lb *LoadBalancer) bool { return lb == nil })

	if spec.ExistingID != "" {
		lb, err := e.cache.get(ctx, spec.ExistingID)
		if isNotFound(err) {
			return nil, nil, fmt.Errorf("service %s: annotation %s: load balancer %s does not exist: %w", spec.Service, AnnotationExistingLB, spec.ExistingID, err)
		}
		if err != nil {
			return nil, nil, fmt.Errorf("service %s: read load balancer %s: %w", spec.Service, spec.ExistingID, err)
		}
		if lb.managed() && !lb.ownedBy(cluster, spec.UID) {
			return nil, nil, fmt.Errorf("service %s: annotation %s: load balancer %s is managed by Stratus (cluster %s, service %s); only load balancers made outside Stratus can be adopted",
				spec.Service, AnnotationExistingLB, lb.ID, lb.Tags[TagCluster], lb.Tags[TagService])
		}
		target = lb
	}
	for _, lb := range owned {
		if target == nil && lb.Internal == spec.Internal && lb.SubnetID == spec.SubnetID {
			target = lb
			continue
		}
		if target == nil || lb.ID != target.ID {
			retire = append(retire, lb)
		}
	}
	// An adopted load balancer the Service named before (Stratus recorded it) and names
	// no longer: its listeners leave it.
	if prev, err := annLoadBalancerID.from(svc); err == nil && (target == nil || prev != target.ID) &&
		!slices.ContainsFunc(owned, func(lb *LoadBalancer) bool { return lb.ID == prev }) {
		lb, err := e.cache.get(ctx, prev)
		switch {
		case isNotFound(err):
		case err != nil:
			return nil, nil, fmt.Errorf("service %s: read load balancer %s: %w", spec.Service, prev, err)
		case !lb.managed() && carries(lb, spec.UID, spec.ListenerName):
			retire = append(retire, lb)
		}
	}
	return target, retire, nil
}

// create makes the Service's load balancer. Its token is derived from the UID and the
// network type, so a create that crashed after the cloud made the load balancer makes no
// second one. A token that names a load balancer that is gone (a creation rolled back) or
// of another type is replaced by the next generation's.
func (e *Engine) create(ctx context.Context, spec *Spec) (*LoadBalancer, error) {
	req := CreateRequest{Name: spec.Name, Internal: spec.Internal, SubnetID: spec.SubnetID, Tags: spec.Tags}
	const maxGenerations = 16
	for range maxGenerations {
		req.Token = e.token(spec)
		lb, err := e.cfg.Backend.Create(ctx, req)
		switch {
		case errors.Is(err, ErrStale):
			e.bumpToken(spec.UID)
			continue
		case err != nil:
			return nil, fmt.Errorf("service %s: create load balancer: %w", spec.Service, err)
		case lb.Internal != spec.Internal || lb.SubnetID != spec.SubnetID || !lb.ownedBy(e.cfg.Settings.ClusterID, spec.UID):
			e.cache.put(lb)
			e.bumpToken(spec.UID)
			continue
		}
		klog.InfoS("Load balancer created", "service", spec.Service, "loadBalancer", lb.ID, "vip", lb.VIP, "internal", spec.Internal)
		e.cache.put(lb)
		return lb, nil
	}
	return nil, fmt.Errorf("service %s: create load balancer: %d creation tokens in a row named load balancers that are gone or differ", spec.Service, maxGenerations)
}

// token is the ClientToken of spec's next creation: the Service's base token, the network
// type, and the generation (raised by every rolled-back creation).
func (e *Engine) token(spec *Spec) string {
	e.genMu.Lock()
	g := e.gens[spec.UID]
	e.genMu.Unlock()
	if !spec.Internal && g == 0 {
		return spec.Token
	}
	sum := sha256.Sum256([]byte(spec.Token + "/" + spec.SubnetID + "/" + strconv.Itoa(g)))
	return "stratus-" + hex.EncodeToString(sum[:16])
}

func (e *Engine) bumpToken(uid types.UID) {
	e.genMu.Lock()
	defer e.genMu.Unlock()
	e.gens[uid]++
}

// rollback deletes a load balancer this sync created when a later step failed, so that
// nothing half-made stays behind; the next attempt starts afresh with a new token.
func (e *Engine) rollback(ctx context.Context, spec *Spec, lb *LoadBalancer) {
	if lb == nil {
		return
	}
	e.bumpToken(spec.UID)
	if err := e.deleteOwned(ctx, spec.Owner, lb); err != nil {
		klog.ErrorS(err, "Could not delete the half-made load balancer; the next sync picks it up", "service", spec.Service, "loadBalancer", lb.ID)
	}
}

// converge plans and runs the operations that make lb match spec. When the cloud
// contradicts the cache it reads the load balancer again and plans once more.
func (e *Engine) converge(ctx context.Context, spec *Spec, lb *LoadBalancer) (*LoadBalancer, error) {
	unlock := e.lbs.lock(lb.ID)
	defer unlock()
	for attempt := 1; ; attempt++ {
		ops, err := Plan(spec, lb)
		if err != nil {
			return lb, fmt.Errorf("service %s: %w", spec.Service, err)
		}
		if len(ops) == 0 {
			return lb, nil
		}
		klog.V(2).InfoS("Load balancer plan", "service", spec.Service, "loadBalancer", lb.ID, "ops", ops)
		lb, err = e.execute(ctx, spec.Owner, lb, ops)
		if err == nil {
			return lb, nil
		}
		if !errors.Is(err, ErrStale) || attempt > 1 {
			return lb, fmt.Errorf("service %s: load balancer %s: %w", spec.Service, lb.ID, err)
		}
		klog.InfoS("Load balancer differs from the cache; reading it again", "service", spec.Service, "loadBalancer", lb.ID, "err", err)
		fresh, gerr := e.cache.refresh(ctx, lb.ID)
		if gerr != nil {
			return lb, fmt.Errorf("service %s: read load balancer %s again: %w (after %w)", spec.Service, lb.ID, gerr, err)
		}
		lb = fresh
	}
}

// execute runs ops on lb in order, keeping the cache in step with every one that
// succeeded. On error the load balancer is marked stale (read again next time).
func (e *Engine) execute(ctx context.Context, owner Owner, lb *LoadBalancer, ops []Op) (*LoadBalancer, error) {
	cur := lb.clone()
	for _, op := range ops {
		if err := e.run(ctx, owner, cur, op); err != nil {
			e.cache.markStale(cur.ID)
			return cur, fmt.Errorf("%s: %w", op.Kind, err)
		}
		e.cache.put(cur)
	}
	return cur, nil
}

// run performs one operation and applies its effect to cur.
func (e *Engine) run(ctx context.Context, owner Owner, cur *LoadBalancer, op Op) error {
	b := e.cfg.Backend
	switch op.Kind {
	case OpSetSourceRanges:
		filters, err := b.SetSourceRanges(ctx, cur, owner, op.SourceRanges)
		if err != nil {
			return err
		}
		cur.Filters = filters
	case OpDeleteListeners:
		if err := b.DeleteListeners(ctx, cur, op.ListenerIDs); err != nil {
			return err
		}
		cur.Listeners = slices.DeleteFunc(cur.Listeners, func(l Listener) bool { return slices.Contains(op.ListenerIDs, l.ID) })
	case OpUpdateListener:
		if err := b.UpdateListener(ctx, cur, op.Listener); err != nil {
			return err
		}
		for i := range cur.Listeners {
			if l := &cur.Listeners[i]; l.ID == op.Listener.ID {
				l.Scheduler, l.SessionTimeout, l.HealthCheck = op.Listener.Scheduler, op.Listener.SessionTimeout, op.Listener.HealthCheck
			}
		}
	case OpCreateListeners:
		specs := make([]ListenerSpec, len(op.Listeners))
		for i, l := range op.Listeners {
			l.Targets = nil
			specs[i] = l
		}
		made, err := b.CreateListeners(ctx, cur, specs)
		if err != nil {
			return err
		}
		cur.Listeners = append(cur.Listeners, made...)
	case OpRegisterTargets, OpSetWeights, OpDeregisterTargets:
		ts := make([]ListenerTarget, 0, len(op.Targets))
		for _, t := range op.Targets {
			l, ok := cur.listener(t.Key)
			if !ok {
				return fmt.Errorf("listener %s is not on the load balancer: %w", t.Key, ErrStale)
			}
			ts = append(ts, ListenerTarget{ListenerID: l.ID, Target: t.Target})
		}
		var err error
		switch op.Kind {
		case OpRegisterTargets:
			err = b.RegisterTargets(ctx, cur, ts)
		case OpSetWeights:
			err = b.SetWeights(ctx, cur, ts)
		default:
			err = b.DeregisterTargets(ctx, cur, ts)
		}
		if err != nil {
			return err
		}
		applyTargets(cur, op)
	default:
		return fmt.Errorf("unknown operation %d", op.Kind)
	}
	return nil
}

// applyTargets updates cur's listeners for a target operation that succeeded.
func applyTargets(cur *LoadBalancer, op Op) {
	for _, t := range op.Targets {
		l, _ := cur.listener(t.Key)
		i := slices.IndexFunc(l.Targets, func(x Target) bool { return x.key() == t.key() })
		switch {
		case op.Kind == OpDeregisterTargets && i >= 0:
			l.Targets = slices.Delete(l.Targets, i, i+1)
		case op.Kind != OpDeregisterTargets && i >= 0:
			l.Targets[i] = t.Target
		case op.Kind == OpRegisterTargets:
			l.Targets = append(l.Targets, t.Target)
		}
		slices.SortFunc(l.Targets, compareTargets)
	}
}

// deleteOwned deletes a load balancer this cluster made for owner.
func (e *Engine) deleteOwned(ctx context.Context, owner Owner, lb *LoadBalancer) error {
	if !lb.ownedBy(e.cfg.Settings.ClusterID, owner.UID) {
		return fmt.Errorf("service %s: refusing to delete load balancer %s: it is not tagged %s=%s, %s=%s", owner.Service, lb.ID, TagCluster, e.cfg.Settings.ClusterID, TagServiceUID, owner.UID)
	}
	unlock := e.lbs.lock(lb.ID)
	defer unlock()
	err := e.cfg.Backend.Delete(ctx, lb)
	if err != nil && !isNotFound(err) {
		e.cache.markStale(lb.ID)
		return fmt.Errorf("service %s: delete load balancer %s: %w", owner.Service, lb.ID, err)
	}
	e.cache.forget(lb.ID)
	klog.InfoS("Load balancer deleted", "service", owner.Service, "loadBalancer", lb.ID)
	return nil
}

// release takes owner's listeners and source filter off an adopted load balancer.
func (e *Engine) release(ctx context.Context, owner Owner, listenerName string, lb *LoadBalancer) error {
	unlock := e.lbs.lock(lb.ID)
	defer unlock()
	ops := PlanRelease(owner, listenerName, lb)
	if len(ops) == 0 {
		return nil
	}
	if _, err := e.execute(ctx, owner, lb, ops); err != nil {
		return fmt.Errorf("service %s: release load balancer %s: %w", owner.Service, lb.ID, err)
	}
	klog.InfoS("Listeners removed from an adopted load balancer", "service", owner.Service, "loadBalancer", lb.ID)
	return nil
}

func (e *Engine) listenerName(svc *v1.Service) string {
	return e.cfg.Settings.ListenerNamePrefix + string(svc.UID)
}

// adoptedIDs are the load balancers svc may have adopted: the one it names now and the
// one Stratus recorded on it. Invalid values are skipped.
func adoptedIDs(svc *v1.Service) []string {
	var ids []string
	for _, a := range []annotation[string]{annExistingLB, annLoadBalancerID} {
		if id, err := a.from(svc); err == nil && !slices.Contains(ids, id) {
			ids = append(ids, id)
		}
	}
	return ids
}

// carries reports whether lb has listeners or a filter of the Service.
func carries(lb *LoadBalancer, uid types.UID, listenerName string) bool {
	if _, ok := lb.filterOf(uid); ok {
		return true
	}
	return slices.ContainsFunc(lb.Listeners, func(l Listener) bool { return l.Name == listenerName })
}

func status(vip string, mode Mode) *v1.LoadBalancerStatus {
	ipMode := v1.LoadBalancerIPModeProxy
	if mode == ModeVIP {
		ipMode = v1.LoadBalancerIPModeVIP
	}
	return &v1.LoadBalancerStatus{Ingress: []v1.LoadBalancerIngress{{IP: vip, IPMode: &ipMode}}}
}

func key(svc *v1.Service) types.NamespacedName {
	return types.NamespacedName{Namespace: svc.Namespace, Name: svc.Name}
}

func isNotFound(err error) bool { return err != nil && errors.Is(err, ErrNotFound) }

func sortByID(lbs []*LoadBalancer) {
	slices.SortFunc(lbs, func(a, b *LoadBalancer) int { return cmp.Compare(a.ID, b.ID) })
}

// keyedMutex serializes work per key; different keys run in parallel.
type keyedMutex struct {
	mu    sync.Mutex
	locks map[string]*refMutex
}

type refMutex struct {
	sync.Mutex
	refs int
}

func (k *keyedMutex) lock(key string) (unlock func()) {
	k.mu.Lock()
	if k.locks == nil {
		k.locks = map[string]*refMutex{}
	}
	m, ok := k.locks[key]
	if !ok {
		m = &refMutex{}
		k.locks[key] = m
	}
	m.refs++
	k.mu.Unlock()
	m.Lock()
	return func() {
		m.Unlock()
		k.mu.Lock()
		if m.refs--; m.refs == 0 {
			delete(k.locks, key)
		}
		k.mu.Unlock()
	}
}

func isNoLoadBalancer(err error) bool { return errors.Is(err, errNoLoadBalancer) }
