package clb

import (
	"net/netip"
	"time"

	"github.com/stratus-cloud/stratus/cloudapi/clb"
	"github.com/stratus-cloud/stratus/fakecloud/api"
	"github.com/stratus-cloud/stratus/fakecloud/store"
)

// LoadBalancer is one load balancer as fakecloud stores it.
type LoadBalancer struct {
	LoadBalancerId   string
	Name             string
	Type             string // OPEN | INTERNAL
	VpcId            string
	SubnetId         string // INTERNAL: where Vip is leased
	ProjectId        int64
	Zone             string // master zone name
	VipIsp           string
	AddressIPVersion string
	Tags             []clb.TagInfo
	// Vip is the cloud address DescribeLoadBalancers shows; LoopbackVip is where the data
	// plane serves it on this machine (see LoopbackVIP).
	Vip         string
	LoopbackVip string
	// SecurityGroups are the bound groups in priority order (OPEN load balancers only);
	// with any bound, the data plane accepts only the sources their inbound rules allow.
	SecurityGroups []string
	CreatedTime    time.Time
	// ReadyAt ends the creation task (Status 0 before, 1 after). BusyUntil ends the task of
	// the latest write; until then other writes are refused (ResourceInOperation).
	ReadyAt   time.Time
	BusyUntil time.Time
}

// Listener is one layer-4 listener with its targets.
type Listener struct {
	ListenerId          string
	LoadBalancerId      string
	Protocol            string
	Port                int64
	Name                string
	HealthCheck         clb.HealthCheck // every field set (defaults filled in)
	Scheduler           string
	SessionExpireTime   int64
	SessionType         string
	TargetType          string
	DeregisterTargetRst bool
	Targets             []Target
	CreatedTime         time.Time
}

// Target is a backend of a listener: an instance (InstanceId) or an IP (EniIp).
type Target struct {
	InstanceId     string
	EniIp          string
	Port           int64
	Weight         int64
	RegisteredTime time.Time
}

// task is the asynchronous job a write started; its id is the write's RequestId.
type task struct {
	TaskId          string
	Action          string
	LoadBalancerIds []string
	CreatedTime     time.Time
	DoneAt          time.Time
}

// tokenRecord remembers what a CreateLoadBalancer ClientToken created.
type tokenRecord struct {
	Token           string
	LoadBalancerIds []string
	CreatedTime     time.Time
	DoneAt          time.Time
}

const (
	lbsName       = "clb.load-balancers"
	listenersName = "clb.listeners"
	tasksName     = "clb.tasks"
	tokensName    = "clb.client-tokens"
)

// LoadBalancers registers (idempotently) and returns the load balancer table of s.
func LoadBalancers(s *store.Store) *store.Table[LoadBalancer] {
	return store.Register[LoadBalancer](s, lbsName)
}

// Listeners registers (idempotently) and returns the listener table of s.
func Listeners(s *store.Store) *store.Table[Listener] {
	return store.Register[Listener](s, listenersName)
}

// LoopbackVIP returns the loopback address on which the data plane serves load balancer
// lbID (its listeners listen on LoopbackVIP:Port), the way to reach a VIP from this
// machine. The address is assigned at creation, whether or not the data plane runs.
func LoopbackVIP(w *api.World, lbID string) (netip.Addr, bool) {
	var addr netip.Addr
	lbs := LoadBalancers(w.Store) // registering takes the store's write lock: not inside View
	_ = w.Store.View(func(tx *store.Tx) error {
		if lb, ok := lbs.Get(tx, lbID); ok {
			addr, _ = netip.ParseAddr(lb.LoopbackVip)
		}
		return nil
	})
	return addr, addr.IsValid()
}

func (lb *LoadBalancer) busy(now time.Time) bool { return now.Before(lb.BusyUntil) }

func (lb *LoadBalancer) status(now time.Time) uint64 {
	if now.Before(lb.ReadyAt) {
		return clb.StatusCreating
	}
	return clb.StatusNormal
}

// copyListener returns a copy of l that owns its Targets slice.
func copyListener(l *Listener) *Listener {
	c := *l
	c.Targets = append([]Target(nil), l.Targets...)
	return &c
}
