package loadbalancer

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"time"

	"k8s.io/apimachinery/pkg/types"
)

// Mode is how the load balancer reaches the Service.
type Mode string

const (
	// ModeNodePort (L4): listeners forward to every eligible node's NodePort; the Service
	// status says ipMode Proxy.
	ModeNodePort Mode = "nodeport"
	// ModeVIP (L3): listeners forward to the nodes on the Service port and the nodes DNAT
	// the VIP (kube-proxy does for ipMode VIP); node ports are not needed.
	ModeVIP Mode = "vip"
)

// Protocol is a listener's transport protocol.
type Protocol string

// The protocols a listener speaks.
const (
	TCP Protocol = "TCP"
	UDP Protocol = "UDP"
)

// Scheduler picks a target for a new connection.
type Scheduler string

// The schedulers a listener may use.
const (
	WRR       Scheduler = "WRR"        // weighted round robin
	LeastConn Scheduler = "LEAST_CONN" // fewest connections per weight
)

// CheckType is how a health check probes a target.
type CheckType string

// The health check kinds.
const (
	CheckTCP  CheckType = "TCP"  // a TCP connection to the port
	CheckHTTP CheckType = "HTTP" // an HTTP GET of Path that must answer 2xx
	CheckPing CheckType = "PING" // the host answers (UDP listeners)
)

// ListenerKey identifies a listener on its load balancer.
type ListenerKey struct {
	Protocol Protocol
	Port     int32
}

func (k ListenerKey) String() string { return fmt.Sprintf("%s/%d", k.Protocol, k.Port) }

func compareKeys(a, b ListenerKey) int {
	return cmp.Or(cmp.Compare(a.Protocol, b.Protocol), cmp.Compare(a.Port, b.Port))
}

// HealthCheck is how a listener decides which targets get traffic.
type HealthCheck struct {
	Type CheckType
	// Port is where the check connects; 0 means each target's own port.
	Port int32
	// Path is the HTTP check's request path.
	Path                                 string
	Interval, Timeout                    time.Duration
	HealthyThreshold, UnhealthyThreshold int
}

// Target is one backend of a listener: a node's instance on a port.
type Target struct {
	// ID is the node's instance as the Backend knows it (Config.NodeID).
	ID     string
	Port   int32
	Weight int
}

func (t Target) key() targetKey { return targetKey{t.ID, t.Port} }

type targetKey struct {
	id   string
	port int32
}

func compareTargets(a, b Target) int {
	return cmp.Or(cmp.Compare(a.ID, b.ID), cmp.Compare(a.Port, b.Port))
}

// ListenerSpec is what a listener should be.
type ListenerSpec struct {
	ListenerKey
	// Name marks the listener as the Service's (Spec.ListenerName).
	Name      string
	Scheduler Scheduler
	// SessionTimeout > 0 keeps a client on one target while it comes back within it.
	SessionTimeout time.Duration
	HealthCheck    HealthCheck
	// Targets are sorted by ID and port.
	Targets []Target
}

// sameSettings reports whether two listeners need no update to match.
func (l *ListenerSpec) sameSettings(o *ListenerSpec) bool {
	return l.Scheduler == o.Scheduler && l.SessionTimeout == o.SessionTimeout && l.HealthCheck == o.HealthCheck
}

// Owner identifies the Service a cloud resource is made for.
type Owner struct {
	Service types.NamespacedName
	UID     types.UID
}

// Spec is the load balancer a Service should have: Resolve's result.
type Spec struct {
	Owner
	// Mode decides the target ports and the status's ipMode.
	Mode Mode
	// ExistingID adopts that load balancer instead of owning one; only listeners named
	// ListenerName are changed on it, and it is kept when the Service goes.
	ExistingID string
	// Internal load balancers get their VIP from SubnetID; public ones from the cloud.
	Internal bool
	SubnetID string
	// Name and Tags are given to a load balancer the engine creates; Tags carry the
	// ownership (TagCluster, TagService, TagServiceUID).
	Name string
	Tags map[string]string
	// ListenerName marks the Service's listeners; the same on every one of them.
	ListenerName string
	// Listeners are sorted by key.
	Listeners []ListenerSpec
	// SourceRanges, when not empty, are the only client networks the load balancer accepts.
	SourceRanges []netip.Prefix
	// Token makes the first creation idempotent (a ClientToken); derived from the UID.
	Token string
}

// listener returns the spec of key.
func (s *Spec) listener(k ListenerKey) (*ListenerSpec, bool) {
	i, ok := slices.BinarySearchFunc(s.Listeners, k, func(l ListenerSpec, k ListenerKey) int { return compareKeys(l.ListenerKey, k) })
	if !ok {
		return nil, false
	}
	return &s.Listeners[i], true
}

// LoadBalancer is a load balancer as the cloud has it.
type LoadBalancer struct {
	ID   string
	Name string
	// VIP is the address clients connect to (the Service's ingress IP).
	VIP      string
	Internal bool
	SubnetID string
	Tags     map[string]string
	// Listeners are every listener of the load balancer, Stratus's or not.
	Listeners []Listener
	// Filters are the source filters (security groups) bound to it, in priority order.
	Filters []Filter
}

// Listener is one listener as the cloud has it.
type Listener struct {
	ID string
	ListenerSpec
}

// Filter is a source filter bound to a load balancer. OwnerUID is set on filters Stratus
// made for a Service, whose accepted Ranges are then known.
type Filter struct {
	ID       string
	OwnerUID types.UID
	Ranges   []netip.Prefix
}

// ownedBy reports whether lb carries the tags the engine gives the load balancers it
// creates for uid in cluster.
func (lb *LoadBalancer) ownedBy(cluster string, uid types.UID) bool {
	return lb.Tags[TagCluster] == cluster && lb.Tags[TagServiceUID] == string(uid)
}

// managedBy reports whether any Stratus cluster manages lb.
func (lb *LoadBalancer) managed() bool { return lb.Tags[TagCluster] != "" }

func (lb *LoadBalancer) listener(k ListenerKey) (*Listener, bool) {
	for i := range lb.Listeners {
		if lb.Listeners[i].ListenerKey == k {
			return &lb.Listeners[i], true
		}
	}
	return nil, false
}

func (lb *LoadBalancer) filterOf(uid types.UID) (*Filter, bool) {
	for i := range lb.Filters {
		if lb.Filters[i].OwnerUID == uid {
			return &lb.Filters[i], true
		}
	}
	return nil, false
}

// clone returns a deep copy, so the cache never shares slices with a caller.
func (lb *LoadBalancer) clone() *LoadBalancer {
	c := *lb
	c.Tags = make(map[string]string, len(lb.Tags))
	for k, v := range lb.Tags {
		c.Tags[k] = v
	}
	c.Listeners = make([]Listener, len(lb.Listeners))
	for i, l := range lb.Listeners {
		l.Targets = slices.Clone(l.Targets)
		c.Listeners[i] = l
	}
	c.Filters = make([]Filter, len(lb.Filters))
	for i, f := range lb.Filters {
		f.Ranges = slices.Clone(f.Ranges)
		c.Filters[i] = f
	}
	return &c
}

// CreateRequest is a load balancer to create.
type CreateRequest struct {
	Name     string
	Internal bool
	SubnetID string
	Tags     map[string]string
	// Token is the idempotency key: sending the same request with the same Token again
	// returns the load balancer the first one made.
	Token string
}

// ListenerTarget is a target of one listener, for the target operations.
type ListenerTarget struct {
	ListenerID string
	Target
}
