package routes

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	cloudprovider "k8s.io/cloud-provider"
	"k8s.io/klog/v2"
)

// MarkerPrefix starts the description of every route the engine creates; the cluster id
// follows: "stratus.io/cluster=<clusterID>", the same key and value as the
// stratus.io/cluster tag of every other resource Stratus creates.
const MarkerPrefix = "stratus.io/cluster="

// Marker is the exact description of the routes of cluster clusterID.
func Marker(clusterID string) string { return MarkerPrefix + clusterID }

// Defaults of Config's optional fields.
const (
	DefaultWindow      = 50 * time.Millisecond
	DefaultCallTimeout = 2 * time.Minute
)

// ErrGatewayNotLive says a route was not created because its next hop cannot carry
// traffic (for a VPC: no running instance has the node's private IP). It is not worth
// creating: it would be reported as a blackhole and deleted at the next listing.
var ErrGatewayNotLive = errors.New("gateway is not live")

// NodeLister returns the cluster's Nodes (an informer's lister in the controller manager).
type NodeLister func() ([]*v1.Node, error)

// Config configures an Engine. Zero values take the defaults documented per field.
type Config struct {
	// ClusterID marks the engine's routes (see Marker). Required.
	ClusterID string
	// Table is the route table. Required.
	Table Table
	// Nodes lists the Nodes, to attribute each route to the node holding its next hop. It
	// may be set later with SetNodeLister; ListRoutes fails until it is.
	Nodes NodeLister
	// Batching coalesces concurrent calls into calls of up to the table's limits. Off,
	// every route is a call of its own (the baseline the benchmark compares against).
	Batching bool
	// Window is how long a batch collects routes before it is sent (default 50ms); a
	// batch that reaches the table's per-call limit is sent at once.
	Window time.Duration
	// CallTimeout bounds one batch, splits and client retries included (default 2m).
	CallTimeout time.Duration
}

// Engine implements cloudprovider.Routes over a Table. It is safe for concurrent use.
type Engine struct {
	cfg     Config
	marker  string
	creates *batcher[Route]
	deletes *batcher[Route]

	mu    sync.Mutex
	nodes NodeLister
	// known holds this cluster's routes by destination: the last listing plus what the
	// engine changed since. deleting has one channel per destination being deleted,
	// closed when the delete ends; deleted remembers ids the engine removed itself.
	known    map[netip.Prefix]Route
	deleting map[netip.Prefix]chan struct{}
	deleted  map[string]bool

	// onWait, when set (tests), is called when a create starts waiting for a delete.
	onWait func()
}

var _ cloudprovider.Routes = (*Engine)(nil)

// New returns an Engine.
func New(cfg Config) (*Engine, error) {
	switch {
	case cfg.ClusterID == "":
		return nil, errors.New("routes: cluster id is empty")
	case cfg.Table == nil:
		return nil, errors.New("routes: no route table")
	}
	if cfg.Window <= 0 {
		cfg.Window = DefaultWindow
	}
	if cfg.CallTimeout <= 0 {
		cfg.CallTimeout = DefaultCallTimeout
	}
	lim := cfg.Table.Limits()
	maxCreate, maxDelete := max(1, lim.MaxCreate), max(1, lim.MaxDelete)
	if !cfg.Batching {
		maxCreate, maxDelete = 1, 1
	}
	e := &Engine{
		cfg:      cfg,
		marker:   Marker(cfg.ClusterID),
		nodes:    cfg.Nodes,
		known:    map[netip.Prefix]Route{},
		deleting: map[netip.Prefix]chan struct{}{},
		deleted:  map[string]bool{},
	}
	e.creates = &batcher[Route]{max: maxCreate, window: cfg.Window, timeout: cfg.CallTimeout, run: e.runCreates}
	e.deletes = &batcher[Route]{max: maxDelete, window: cfg.Window, timeout: cfg.CallTimeout, run: e.runDeletes}
	return e, nil
}

// SetNodeLister sets (or replaces) the source of Nodes.
func (e *Engine) SetNodeLister(l NodeLister) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.nodes = l
}

// ListRoutes returns this cluster's routes. clusterName (the controller manager's
// --cluster-name) is not used: ownership is the cluster id of the cloud-config.
func (e *Engine) ListRoutes(ctx context.Context, _ string) ([]*cloudprovider.Route, error) {
	e.mu.Lock()
	listNodes := e.nodes
	e.mu.Unlock()
	if listNodes == nil {
		return nil, errors.New("list routes: no node lister yet (the provider gets one from the controller manager's informers)")
	}
	all, err := e.cfg.Table.List(ctx)
	if err != nil {
		return nil, fmt.Errorf("list routes of cluster %s: %w", e.cfg.ClusterID, err)
	}
	nodes, err := listNodes()
	if err != nil {
		return nil, fmt.Errorf("list routes of cluster %s: list nodes: %w", e.cfg.ClusterID, err)
	}
	byIP := nodesByInternalIP(nodes)

	var owned []Route
	var gateways []netip.Addr
	for _, r := range all {
		if r.Description != e.marker || !r.Gateway.IsValid() || !r.Destination.IsValid() {
			continue
		}
		owned = append(owned, r)
		gateways = append(gateways, r.Gateway)
	}
	slices.SortFunc(gateways, func(a, b netip.Addr) int { return a.Compare(b) })
	gateways = slices.Compact(gateways)
	live := map[netip.Addr]bool{}
	if len(gateways) > 0 {
		if live, err = e.cfg.Table.LiveGateways(ctx, gateways, true); err != nil {
			return nil, fmt.Errorf("list routes of cluster %s: check %d gateways: %w", e.cfg.ClusterID, len(gateways), err)
		}
	}

	known := make(map[netip.Prefix]Route, len(owned))
	out := make([]*cloudprovider.Route, 0, len(owned))
	for _, r := range owned {
		known[r.Destination] = r
		cr := &cloudprovider.Route{
			Name:            r.ID,
			DestinationCIDR: r.Destination.String(),
			Blackhole:       !live[r.Gateway],
		}
		if n := pickNode(byIP[r.Gateway], r.Destination); n != nil {
			cr.TargetNode = types.NodeName(n.Name)
			cr.TargetNodeAddresses = n.Status.Addresses
		}
		if cr.Blackhole {
			klog.V(2).InfoS("Route is a blackhole", "route", r.ID, "destination", r.Destination, "gateway", r.Gateway, "node", cr.TargetNode)
		}
		out = append(out, cr)
	}
	e.mu.Lock()
	e.known = known
	e.mu.Unlock()
	return out, nil
}

// CreateRoute routes route.DestinationCIDR to the first IPv4 InternalIP of the node.
func (e *Engine) CreateRoute(ctx context.Context, _ string, _ string, route *cloudprovider.Route) error {
	node := string(route.TargetNode)
	dest, err := parseDestination(route.DestinationCIDR)
	if err != nil {
		return fmt.Errorf("node %s: %w", node, err)
	}
	gw, ok := internalIPv4(route.TargetNodeAddresses)
	if !ok {
		return fmt.Errorf("node %s: route %s: the node has no IPv4 InternalIP address to route to", node, dest)
	}
	want := Route{Destination: dest, Gateway: gw, Description: e.marker}

	// The route controller deletes stale routes concurrently with these creates: let a
	// delete of the same destination finish first, or the cloud sees a duplicate.
	if err := e.waitDeleting(ctx, dest); err != nil {
		return fmt.Errorf("node %s: route %s: %w", node, want, err)
	}
	e.mu.Lock()
	old, exists := e.known[dest]
	e.mu.Unlock()
	if exists {
		if old.Gateway == gw {
			return nil
		}
		if old.ID != "" && e.replaceable(old) {
			klog.InfoS("Replacing route whose next hop changed", "node", node, "destination", dest, "old", old.Gateway, "new", gw, "route", old.ID)
			if err := e.deleteOne(ctx, old); err != nil {
				return fmt.Errorf("node %s: route %s: delete the route it replaces (%s): %w", node, want, old, err)
			}
		}
		// Otherwise another node still claims the destination: send the create anyway, so
		// that the user sees the cloud's own answer (a duplicate) on this node.
	}

	live, err := e.cfg.Table.LiveGateways(ctx, []netip.Addr{gw}, false)
	if err != nil {
		return fmt.Errorf("node %s: route %s: check the gateway: %w", node, want, err)
	}
	if !live[gw] {
		return fmt.Errorf("node %s: route %s: %w (for a VPC: no running instance has this private IP); not creating it", node, want, ErrGatewayNotLive)
	}
	if err := e.creates.do(ctx, want); err != nil {
		return fmt.Errorf("node %s: create route %s: %w", node, want, err)
	}
	return nil
}

// DeleteRoute deletes a route ListRoutes returned. A route that is not this cluster's in
// the last listing is never deleted.
func (e *Engine) DeleteRoute(ctx context.Context, _ string, route *cloudprovider.Route) error {
	dest, err := parseDestination(route.DestinationCIDR)
	if err != nil {
		return fmt.Errorf("route %s: %w", route.Name, err)
	}
	e.mu.Lock()
	old, ok := e.known[dest]
	gone := e.deleted[route.Name]
	e.mu.Unlock()
	switch {
	case ok && old.ID == route.Name:
	case gone:
		return nil
	default:
		return fmt.Errorf("route %s (%s): not a route of cluster %s in the last listing; not deleting it", route.Name, dest, e.cfg.ClusterID)
	}
	if err := e.deleteOne(ctx, old); err != nil {
		return fmt.Errorf("node %s: delete route %s (%s): %w", route.TargetNode, old, old.ID, err)
	}
	return nil
}

// deleteOne deletes r through the batcher; concurrent deletes of one destination share
// one call.
func (e *Engine) deleteOne(ctx context.Context, r Route) error {
	e.mu.Lock()
	if ch, busy := e.deleting[r.Destination]; busy {
		e.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
		e.mu.Lock()
		defer e.mu.Unlock()
		if k, still := e.known[r.Destination]; still && k.ID == r.ID {
			return fmt.Errorf("a concurrent delete of %s failed", r)
		}
		return nil
	}
	ch := make(chan struct{})
	e.deleting[r.Destination] = ch
	e.mu.Unlock()

	err := e.deletes.do(ctx, r)

	e.mu.Lock()
	delete(e.deleting, r.Destination)
	if err == nil {
		if k, ok := e.known[r.Destination]; ok && k.ID == r.ID {
			delete(e.known, r.Destination)
		}
		e.deleted[r.ID] = true
	}
	e.mu.Unlock()
	close(ch)
	return err
}

func (e *Engine) waitDeleting(ctx context.Context, dest netip.Prefix) error {
	e.mu.Lock()
	ch := e.deleting[dest]
	e.mu.Unlock()
	if ch == nil {
		return nil
	}
	if e.onWait != nil {
		e.onWait()
	}
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("wait for the delete of the old route: %w", ctx.Err())
	}
}

// replaceable reports whether our route r may be replaced by one to another gateway: no
// node holding r's gateway still claims r's destination as a podCIDR.
func (e *Engine) replaceable(r Route) bool {
	e.mu.Lock()
	listNodes := e.nodes
	e.mu.Unlock()
	if listNodes == nil {
		return false
	}
	nodes, err := listNodes()
	if err != nil {
		return false
	}
	for _, n := range nodesByInternalIP(nodes)[r.Gateway] {
		if claims(n, r.Destination) {
			return false
		}
	}
	return true
}

func (e *Engine) runCreates(ctx context.Context, items []Route) []error {
	res := make([]error, len(items))
	st := &splitState{}
	calls := e.apply(ctx, e.cfg.Table.Create, items, res, st)
	e.mu.Lock()
	failed := 0
	for i, r := range items {
		if res[i] == nil {
			e.known[r.Destination] = r
		} else {
			failed++
		}
	}
	e.mu.Unlock()
	klog.V(2).InfoS("Created routes", "routes", len(items), "failed", failed, "calls", calls)
	return res
}

func (e *Engine) runDeletes(ctx context.Context, items []Route) []error {
	res := make([]error, len(items))
	calls := e.apply(ctx, e.cfg.Table.Delete, items, res, &splitState{})
	failed := 0
	for i := range res {
		// A route already gone is deleted.
		if ref, ok := asRefusal(res[i]); ok && ref.NotFound {
			res[i] = nil
		}
		if res[i] != nil {
			failed++
		}
	}
	klog.V(2).InfoS("Deleted routes", "routes", len(items), "failed", failed, "calls", calls)
	return res
}

// splitState carries what one batch learnt while splitting: the smallest call refused
// for a quota, since any call at least as large is refused too.
type splitState struct {
	quotaAt  int
	quotaErr error
}

// apply sends items in one call. When the cloud refuses the call for what it carries,
// it splits the items in halves and sends each, down to single routes, so that each
// route ends with its own answer and the good ones land. A transient failure fails the
// whole call (the client has already retried it). It returns the calls it made.
func (e *Engine) apply(ctx context.Context, call func(context.Context, []Route) error, items []Route, res []error, st *splitState) int {
	if len(items) == 0 {
		return 0
	}
	if st.quotaAt > 0 && len(items) >= st.quotaAt {
		for i := range res {
			res[i] = st.quotaErr
		}
		return 0
	}
	err := call(ctx, items)
	if err == nil {
		return 1
	}
	ref, refused := asRefusal(err)
	if refused && ref.Quota && (st.quotaAt == 0 || len(items) < st.quotaAt) {
		st.quotaAt, st.quotaErr = len(items), err
	}
	if !refused || len(items) == 1 {
		for i := range res {
			res[i] = err
		}
		return 1
	}
	mid := len(items) / 2
	return 1 + e.apply(ctx, call, items[:mid], res[:mid], st) + e.apply(ctx, call, items[mid:], res[mid:], st)
}

func parseDestination(s string) (netip.Prefix, error) {
	p, err := netip.ParsePrefix(s)
	switch {
	case err != nil:
		return netip.Prefix{}, fmt.Errorf("pod CIDR %q is not a CIDR block: %w", s, err)
	case !p.Addr().Is4():
		return netip.Prefix{}, fmt.Errorf("pod CIDR %s: only IPv4 pod CIDRs are routed", s)
	case p != p.Masked():
		return netip.Prefix{}, fmt.Errorf("pod CIDR %s has host bits set (the block is %s)", s, p.Masked())
	}
	return p, nil
}

func internalIPv4(addrs []v1.NodeAddress) (netip.Addr, bool) {
	for _, a := range addrs {
		if a.Type != v1.NodeInternalIP {
			continue
		}
		if ip, err := netip.ParseAddr(a.Address); err == nil && ip.Is4() {
			return ip, true
		}
	}
	return netip.Addr{}, false
}

func nodesByInternalIP(nodes []*v1.Node) map[netip.Addr][]*v1.Node {
	m := make(map[netip.Addr][]*v1.Node, len(nodes))
	for _, n := range nodes {
		for _, a := range n.Status.Addresses {
			if a.Type != v1.NodeInternalIP {
				continue
			}
			if ip, err := netip.ParseAddr(a.Address); err == nil {
				m[ip] = append(m[ip], n)
			}
		}
	}
	return m
}

// pickNode attributes a route to one of the nodes holding its gateway, preferring one
// that claims the destination; ties go to the first name, so the answer is stable.
func pickNode(candidates []*v1.Node, dest netip.Prefix) *v1.Node {
	var best *v1.Node
	for _, n := range candidates {
		switch {
		case best == nil:
			best = n
		case claims(n, dest) && !claims(best, dest):
			best = n
		case claims(n, dest) == claims(best, dest) && n.Name < best.Name:
			best = n
		}
	}
	return best
}

func claims(n *v1.Node, dest netip.Prefix) bool {
	cidrs := n.Spec.PodCIDRs
	if len(cidrs) == 0 && n.Spec.PodCIDR != "" {
		cidrs = []string{n.Spec.PodCIDR}
	}
	for _, c := range cidrs {
		if p, err := netip.ParsePrefix(c); err == nil && p.Masked() == dest {
			return true
		}
	}
	return false
}
