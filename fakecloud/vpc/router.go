package vpc

import (
	"io"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"sync"

	"k8s.io/klog/v2"

	"github.com/stratus-cloud/stratus/fakecloud/api"
	"github.com/stratus-cloud/stratus/fakecloud/store"
)

// Router is a data plane that makes route tables real (package routerplane programs a
// network namespace that plays the VPC's router). The module hands it the whole desired
// state after every write that changes routing and on Start (after a restart or a reset);
// Apply must converge the machine to exactly that state and be idempotent. An error is
// logged and retried with the next Apply: the cloud accepted the write either way.
type Router interface {
	Apply(RouterSpec) error
}

// RouterSpec is what the stored route tables ask of a Router.
type RouterSpec struct {
	VPCs []RouterVPC
}

// RouterVPC is one VPC's routing: its CIDR and its route tables, sorted by ID.
type RouterVPC struct {
	VpcID  string
	CIDR   netip.Prefix
	Tables []RouterTable
}

// RouterTable is one route table. The main table routes everything no other table
// claims; any other table routes the traffic of the subnets associated with it.
type RouterTable struct {
	RouteTableID string
	Main         bool
	Subnets      []netip.Prefix
	// Routes are the enabled routes, in creation order.
	Routes []RouterRoute
}

// RouterRoute is one enabled route: traffic to Destination goes to the next hop
// GatewayType/GatewayID (for NORMAL_CVM, the instance's private IP).
type RouterRoute struct {
	Destination netip.Prefix
	GatewayType string
	GatewayID   string
}

// Options configure the module. The zero value serves the API with no data plane.
type Options struct {
	// Router, when set, is kept in step with the route tables.
	Router Router
}

// WithOptions returns a module constructor with opts.
func WithOptions(opts Options) api.NewModule {
	return func(w *api.World) (api.Module, error) {
		registerAll(w.Store)
		SecurityGroups(w.Store)
		return &Module{w: w, router: opts.Router}, nil
	}
}

// routerState serializes Apply calls, so an older view never overwrites a newer one,
// and remembers the last error so that a failure is logged once, not at every write.
type routerState struct {
	mu      sync.Mutex
	started bool
	closed  bool
	lastErr string
}

// Start lets the router catch up with the stored state.
func (m *Module) Start() error {
	m.rs.mu.Lock()
	m.rs.started = true
	m.rs.mu.Unlock()
	m.syncRouter()
	return nil
}

// Close stops the router when it owns goroutines.
func (m *Module) Close() error {
	m.rs.mu.Lock()
	m.rs.closed = true
	m.rs.mu.Unlock()
	if c, ok := m.router.(io.Closer); ok {
		return c.Close()
	}
	return nil
}

// syncRouter hands the router the state the store describes. Before Start (the store
// may not be open yet) and after Close it does nothing.
func (m *Module) syncRouter() {
	if m.router == nil {
		return
	}
	m.rs.mu.Lock()
	defer m.rs.mu.Unlock()
	if !m.rs.started || m.rs.closed {
		return
	}
	var spec RouterSpec
	_ = m.w.Store.View(func(tx *store.Tx) error {
		spec = routerSpec(tx)
		return nil
	})
	err := m.router.Apply(spec)
	msg := ""
	if err != nil {
		msg = err.Error()
		if msg != m.rs.lastErr {
			klog.ErrorS(err, "VPC router data plane is not fully applied; retrying at the next route change")
		}
	} else if m.rs.lastErr != "" {
		klog.InfoS("VPC router data plane fully applied again")
	}
	m.rs.lastErr = msg
}

// routerSpec reads the routing of every VPC from tx.
func routerSpec(tx *store.Tx) RouterSpec {
	byVPC := map[string]*RouterVPC{}
	var spec RouterSpec
	for _, v := range vpcsT.List(tx) {
		p, err := netip.ParsePrefix(v.CidrBlock)
		if err != nil {
			continue
		}
		byVPC[v.VpcId] = &RouterVPC{VpcID: v.VpcId, CIDR: p}
	}
	subnetsOf := map[string][]netip.Prefix{}
	for _, s := range subnetsT.List(tx) {
		if p, err := netip.ParsePrefix(s.CidrBlock); err == nil {
			subnetsOf[s.RouteTableId] = append(subnetsOf[s.RouteTableId], p)
		}
	}
	for _, t := range routeTables.List(tx) {
		rv, ok := byVPC[t.VpcId]
		if !ok {
			continue
		}
		rt := RouterTable{RouteTableID: t.RouteTableId, Main: t.Main, Subnets: subnetsOf[t.RouteTableId]}
		for _, r := range t.Routes {
			dst, err := netip.ParsePrefix(r.DestinationCidrBlock)
			if err != nil || !r.Enabled {
				continue
			}
			rt.Routes = append(rt.Routes, RouterRoute{Destination: dst, GatewayType: r.GatewayType, GatewayID: r.GatewayId})
		}
		rv.Tables = append(rv.Tables, rt)
	}
	for _, id := range slices.Sorted(maps.Keys(byVPC)) {
		rv := byVPC[id]
		slices.SortFunc(rv.Tables, func(a, b RouterTable) int { return strings.Compare(a.RouteTableID, b.RouteTableID) })
		spec.VPCs = append(spec.VPCs, *rv)
	}
	return spec
}

// VIPRouter is the half of a router data plane that load balancers use: it serves the
// VIPs of a VPC's load balancers inside the VPC's router namespace. Package clb drives
// it; package routerplane implements it beside Router. Each ApplyVIPs hands the whole
// desired state and must be idempotent.
type VIPRouter interface {
	// Namespace is the network namespace (a path) that routes vpcID, if one does: a load
	// balancer of that VPC is served there.
	Namespace(vpcID string) (string, bool)
	ApplyVIPs(VIPSpec) error
}

// VIPSpec is what the load balancers ask of the routers: per VPC, the VIPs the router
// itself answers (an L4 listener's proxy listens there) and the VIPs it forwards, as
// they are, to the nodes behind them (an L3 VIP: one ECMP route across the healthy
// targets, whose kube-proxy DNATs it).
type VIPSpec struct {
	VPCs []VIPVPC
}

// VIPVPC is one VPC's load balancer addresses.
type VIPVPC struct {
	VpcID string
	// Local are served by the router itself.
	Local []netip.Addr
	// Routes are forwarded to their next hops; a VIP with no next hop is not routed.
	Routes []VIPRoute
}

// VIPRoute sends traffic for VIP across NextHops (instance private IPs), spread per flow.
type VIPRoute struct {
	VIP      netip.Addr
	NextHops []netip.Addr
}
