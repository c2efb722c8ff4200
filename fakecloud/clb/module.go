// Package clb simulates the cloud's load balancer service (CLB): OPEN and INTERNAL load
// balancers with tags and ClientToken idempotency, TCP and UDP listeners with health
// checks, schedulers and session persistence, targets (instances or IPs), quotas, and the
// asynchronous tasks every write starts (polled with DescribeTaskStatus).
//
// Optionally it runs a data plane (package dataplane) that makes each listener really
// listen and proxy traffic to its targets. Cloud addresses are mapped onto loopback for
// that: a load balancer's VIP onto LoopbackVip (from Options.LoopbackPool, see
// LoopbackVIP), a target's private IP onto itself when it is a loopback address, through
// Options.TargetMap, or onto 127.0.0.1 for an instance marked Local. Targets that map
// nowhere, and instances that are not RUNNING, get no traffic. The data plane never binds
// or connects anywhere else. A public load balancer's VIP from a loopback PublicPool is
// served at that very address. Security groups bound with SetLoadBalancerSecurityGroups
// (public load balancers only, as documented) filter clients: the first inbound rule that
// matches a client's address, protocol and the listener's port decides, and no match
// refuses (reset before any byte reaches a target; a UDP datagram is dropped).
//
// Writes are asynchronous as in the cloud: each answers a RequestId that DescribeTaskStatus
// reports running until Options.Delays.Task has passed, and until then the load balancer
// refuses other writes with FailedOperation.ResourceInOperation (wait with
// cloudapi/clb.Client.WaitTask). The data plane applies a change as soon as it is
// committed; tasks never fail here (Status 1 is never answered).
//
// Bad input never changes state: every write validates everything first and commits in
// one store transaction.
package clb

import (
	"fmt"
	"net/netip"
	"sync"
	"time"

	"k8s.io/klog/v2"

	"github.com/stratus-cloud/stratus/cloudapi/clb"
	"github.com/stratus-cloud/stratus/fakecloud/api"
	"github.com/stratus-cloud/stratus/fakecloud/clb/dataplane"
	"github.com/stratus-cloud/stratus/fakecloud/cvm"
	"github.com/stratus-cloud/stratus/fakecloud/store"
	"github.com/stratus-cloud/stratus/fakecloud/vpc"
)

// Delays says how long the CLB's asynchronous tasks run (0: done at once).
type Delays struct {
	Task time.Duration // DescribeTaskStatus running -> done
}

// DelaysSeedKey is the seed section with the CLB delays (loadBalancerDelays: {task: 1s}).
const DelaysSeedKey = "loadBalancerDelays"

// SeedDelays reads the task delay a seed sets; ok is false when it sets none.
func SeedDelays(s *api.Seed) (d Delays, ok bool, err error) {
	ok, err = s.Durations(DelaysSeedKey, map[string]*time.Duration{"task": &d.Task})
	return d, ok, err
}

// Options configure the module. Zero values take the documented defaults.
type Options struct {
	Delays Delays
	// DataPlane makes listeners carry real traffic on loopback.
	DataPlane bool
	// DataPlaneOptions tune the proxy (dial and idle timeouts).
	DataPlaneOptions dataplane.Options
	// PublicPool is where OPEN load balancers get their VIPs (default 198.18.0.0/16,
	// which no public network routes and cvm's public pools do not use). A loopback prefix
	// (outside LoopbackPool and the TargetMap) makes the data plane serve each public VIP
	// on that very address, so the IP a user is shown answers on this machine.
	PublicPool netip.Prefix
	// LoopbackPool is where the data plane addresses of load balancers come from
	// (default 127.240.0.0/16).
	LoopbackPool netip.Prefix
	// TargetMap translates target private IPs onto loopback for the data plane, for
	// example 10.0.0.0/8 -> 127.0.0.0/8 maps 10.0.1.11 to 127.0.1.11. Each pair must have
	// the same prefix length and the To side must be loopback.
	TargetMap []PrefixMap
	// HealthTimeUnit is what one second of a health check's IntervalTime and TimeOut
	// lasts in the data plane (default 1s). Tests shrink it; the API still validates and
	// shows the seconds the caller asked for.
	HealthTimeUnit time.Duration
	// VIPRouter, when set, serves the public load balancers of the VPCs it routes inside
	// their router namespaces, at their own VIPs (see desired).
	VIPRouter vpc.VIPRouter
	// ResyncInterval is how often the data plane re-reads the store besides after every
	// write, which catches a restart, a reset and instances that went away (default 1s).
	ResyncInterval time.Duration
}

// PrefixMap translates addresses of From onto the same offsets in To.
type PrefixMap struct {
	From, To netip.Prefix
}

// Validate reports whether opts can build a module (pools and target maps well formed).
func (o Options) Validate() error { return o.defaults() }

func (o *Options) defaults() error {
	if o.Delays.Task < 0 {
		return fmt.Errorf("clb: the task delay must not be negative, got %s", o.Delays.Task)
	}
	if !o.PublicPool.IsValid() {
		o.PublicPool = netip.MustParsePrefix("198.18.0.0/16")
	}
	if !o.LoopbackPool.IsValid() {
		o.LoopbackPool = netip.MustParsePrefix("127.240.0.0/16")
	}
	if !o.LoopbackPool.Addr().Is4() || !o.LoopbackPool.Addr().IsLoopback() || o.LoopbackPool.Bits() < 8 {
		return fmt.Errorf("clb: loopback pool %s is not inside 127.0.0.0/8", o.LoopbackPool)
	}
	if !o.PublicPool.Addr().Is4() {
		return fmt.Errorf("clb: public pool %s is not IPv4", o.PublicPool)
	}
	if o.PublicPool.Addr().IsLoopback() && o.PublicPool.Overlaps(o.LoopbackPool) {
		return fmt.Errorf("clb: public pool %s overlaps the loopback pool %s", o.PublicPool, o.LoopbackPool)
	}
	for _, pm := range o.TargetMap {
		if !pm.From.Addr().Is4() || !pm.To.Addr().Is4() || pm.From.Bits() != pm.To.Bits() || !pm.To.Addr().IsLoopback() || pm.To.Bits() < 8 {
			return fmt.Errorf("clb: target map %s -> %s must map IPv4 prefixes of equal length onto loopback", pm.From, pm.To)
		}
		if pm.To.Overlaps(o.PublicPool) {
			return fmt.Errorf("clb: target map %s -> %s overlaps the public pool %s", pm.From, pm.To, o.PublicPool)
		}
	}
	if o.HealthTimeUnit <= 0 {
		o.HealthTimeUnit = time.Second
	}
	if o.ResyncInterval <= 0 {
		o.ResyncInterval = time.Second
	}
	o.PublicPool, o.LoopbackPool = o.PublicPool.Masked(), o.LoopbackPool.Masked()
	return nil
}

// Module serves the CLB API (and, with Options.DataPlane, its data plane).
type Module struct {
	w         *api.World
	opts      Options
	lbs       *store.Table[LoadBalancer]
	listeners *store.Table[Listener]
	tasks     *store.Table[task]
	tokens    *store.Table[tokenRecord]
	instances *store.Table[cvm.Instance]
	vpcs      *store.Table[vpc.VPC]
	subnets   *store.Table[vpc.Subnet]

	dp           *dataplane.DataPlane
	reconcileMu  sync.Mutex
	lastApplyErr string // guarded by reconcileMu

	loopMu  sync.Mutex // guards started and closed
	started bool
	closed  bool
	stop    chan struct{}
	done    chan struct{}
}

// New is the module without a data plane, for fakecloud's module list.
func New(w *api.World) (api.Module, error) { return NewWithOptions(w, Options{}) }

// WithOptions returns a module constructor using opts, for fakecloud.Config.Modules;
// invalid opts make it return an error (fakecloud.New reports it).
func WithOptions(opts Options) api.NewModule {
	return func(w *api.World) (api.Module, error) { return NewWithOptions(w, opts) }
}

// NewWithOptions registers the CLB tables in w's store (and reads the cvm and vpc ones).
// With opts.DataPlane the data plane starts with Start, which fakecloud calls once the
// store is open (modules are built before that).
func NewWithOptions(w *api.World, opts Options) (*Module, error) {
	if err := opts.defaults(); err != nil {
		return nil, err
	}
	m := &Module{
		w:         w,
		opts:      opts,
		lbs:       LoadBalancers(w.Store),
		listeners: Listeners(w.Store),
		tasks:     store.Register[task](w.Store, tasksName),
		tokens:    store.Register[tokenRecord](w.Store, tokensName),
		instances: cvm.Instances(w.Store),
		vpcs:      vpc.VPCs(w.Store),
		subnets:   vpc.Subnets(w.Store),
	}
	if opts.DataPlane {
		m.dp = dataplane.New(opts.DataPlaneOptions)
		m.stop, m.done = make(chan struct{}), make(chan struct{})
	}
	return m, nil
}

// API lists the CLB actions.
func (m *Module) API() api.Service {
	return api.Service{Name: clb.Service, Version: clb.Version, Actions: map[string]api.Handler{
		"CreateLoadBalancer":     m.createLoadBalancer,
		"DescribeLoadBalancers":  m.describeLoadBalancers,
		"DeleteLoadBalancer":     m.deleteLoadBalancer,
		"CreateListener":         m.createListener,
		"DescribeListeners":      m.describeListeners,
		"ModifyListener":         m.modifyListener,
		"DeleteListener":         m.deleteListener,
		"RegisterTargets":        m.registerTargets,
		"DeregisterTargets":      m.deregisterTargets,
		"BatchRegisterTargets":   m.batchRegisterTargets,
		"BatchDeregisterTargets": m.batchDeregisterTargets,
		"DescribeTargets":        m.describeTargets,
		"DescribeTaskStatus":     m.describeTaskStatus,

		"SetLoadBalancerSecurityGroups": m.setLoadBalancerSecurityGroups,
		"DeleteLoadBalancerListeners":   m.deleteLoadBalancerListeners,
		"BatchModifyTargetWeight":       m.batchModifyTargetWeight,
	}}
}

// Seed imports nothing: the seed declares no load balancers; Stratus creates them.
func (m *Module) Seed(*store.Tx, *api.Seed) error { return nil }

// DataPlane is the running data plane, nil without Options.DataPlane. Tests read target
// health and listener addresses from it.
func (m *Module) DataPlane() *dataplane.DataPlane { return m.dp }

// Start makes the data plane match the store now and keeps it matching (a periodic
// resync catches instances that stop or go away). fakecloud calls it after opening the
// store and after every reset; calling it again only reconciles. A listener that cannot
// bind is logged and retried, not fatal, so one busy port never keeps fakecloud down.
func (m *Module) Start() error {
	if m.dp == nil {
		return nil
	}
	m.loopMu.Lock()
	if m.closed {
		m.loopMu.Unlock()
		return nil
	}
	if !m.started {
		m.started = true
		go m.resyncLoop()
	}
	m.loopMu.Unlock()
	m.reconcile()
	return nil
}

// Close stops the data plane: every listener, connection and health check.
func (m *Module) Close() error {
	if m.dp == nil {
		return nil
	}
	m.loopMu.Lock()
	if m.closed {
		m.loopMu.Unlock()
		return nil
	}
	m.closed = true
	started := m.started
	m.loopMu.Unlock()
	close(m.stop)
	if started {
		<-m.done
	}
	m.reconcileMu.Lock()
	defer m.reconcileMu.Unlock()
	err := m.dp.Close()
	klog.InfoS("CLB data plane stopped")
	return err
}
