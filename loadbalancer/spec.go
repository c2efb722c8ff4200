package loadbalancer

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	servicehelpers "k8s.io/cloud-provider/service/helpers"
)

// Input is everything Resolve looks at.
type Input struct {
	Service *v1.Service
	// Nodes are the candidates the service controller passes (not being deleted, not
	// excluded from load balancers).
	Nodes []*v1.Node
	// NodeID names a node's instance for the Backend; nodes it cannot name (not yet
	// initialized, no providerID) are no targets.
	NodeID func(*v1.Node) (string, bool)
	// Endpoints counts the Service's ready endpoints per node name. Only read when
	// NeedsEndpoints(Service); nil then means none anywhere.
	Endpoints map[string]int
}

// InvalidServiceError lists every problem of a Service's load balancer settings. It is
// what EnsureLoadBalancer returns for them, so the service controller's Warning event
// names all of them; nothing is changed in the cloud.
type InvalidServiceError struct {
	Service types.NamespacedName
	Errs    []error
}

func (e *InvalidServiceError) Error() string {
	msgs := make([]string, len(e.Errs))
	for i, err := range e.Errs {
		msgs[i] = err.Error()
	}
	return fmt.Sprintf("service %s: %s (no change made to the load balancer)", e.Service, strings.Join(msgs, "; "))
}

// Unwrap exposes the individual problems (each annotation's is an *AnnotationError).
func (e *InvalidServiceError) Unwrap() []error { return e.Errs }

// NeedsEndpoints reports whether resolving svc reads endpoint counts: with
// externalTrafficPolicy Local and AnnotationLocalOnlyBindNodeWithPod or
// AnnotationLocalWeightedBalance set to true.
func NeedsEndpoints(svc *v1.Service) bool {
	if svc.Spec.ExternalTrafficPolicy != v1.ServiceExternalTrafficPolicyLocal {
		return false
	}
	only, _ := annOnlyBindWithPod.from(svc)
	weighted, _ := annWeightedBalance.from(svc)
	return only || weighted
}

// Resolve computes the load balancer in.Service should have. It is pure: no API calls,
// no clock, no events. Every invalid annotation and setting is reported in one
// *InvalidServiceError; the Spec is nil then.
func Resolve(in Input, s Settings) (*Spec, error) {
	svc := in.Service
	key := types.NamespacedName{Namespace: svc.Namespace, Name: svc.Name}
	var errs []error

	spec := &Spec{
		Owner:        Owner{Service: key, UID: svc.UID},
		Mode:         s.DefaultMode,
		Name:         LoadBalancerName(svc, s),
		ListenerName: s.ListenerNamePrefix + string(svc.UID),
		Token:        Token(s.ClusterID, svc.UID),
		Tags: map[string]string{
			TagCluster:    s.ClusterID,
			TagService:    key.String(),
			TagServiceUID: string(svc.UID),
		},
	}
	resolve(&errs, svc, annMode, &spec.Mode)
	if spec.Mode == ModeVIP {
		// What the cloud side reads to forward without proxying (set when the load
		// balancer is created).
		spec.Tags[TagMode] = string(ModeVIP)
	}
	spec.SubnetID = s.DefaultInternalSubnet
	subnetSet := resolve(&errs, svc, annInternalSubnet, &spec.SubnetID)
	if resolve(&errs, svc, annExistingLB, &spec.ExistingID) && subnetSet {
		errs = append(errs, &AnnotationError{Key: AnnotationExistingLB, Value: spec.ExistingID, Reason: errExistingAndSubnet.Error()})
	}
	if spec.ExistingID != "" {
		spec.SubnetID = ""
	}
	spec.Internal = spec.SubnetID != ""

	scheduler := WRR
	resolve(&errs, svc, annScheduler, &scheduler)
	hc := resolveHealthCheck(&errs, svc, s)
	targets := resolveTargets(&errs, in, s)

	for _, f := range svc.Spec.IPFamilies {
		if f != v1.IPv4Protocol {
			errs = append(errs, fmt.Errorf("spec.ipFamilies: %s is not supported; load balancers are IPv4", f))
		}
	}
	for _, p := range svc.Spec.Ports {
		name := portName(p)
		var proto Protocol
		switch p.Protocol {
		case v1.ProtocolTCP, "":
			proto = TCP
		case v1.ProtocolUDP:
			proto = UDP
		default:
			errs = append(errs, fmt.Errorf("spec.ports[%s]: protocol %s is not supported (TCP and UDP are)", name, p.Protocol))
			continue
		}
		targetPort := p.Port
		if spec.Mode == ModeNodePort {
			if p.NodePort == 0 {
				errs = append(errs, fmt.Errorf("spec.ports[%s]: no node port (allocateLoadBalancerNodePorts is false); use %s: %s, which needs none", name, AnnotationMode, ModeVIP))
				continue
			}
			targetPort = p.NodePort
		}
		ls := ListenerSpec{
			ListenerKey: ListenerKey{Protocol: proto, Port: p.Port},
			Name:        spec.ListenerName,
			Scheduler:   scheduler,
			HealthCheck: hc.forListener(proto),
		}
		if svc.Spec.SessionAffinity == v1.ServiceAffinityClientIP {
			ls.SessionTimeout = sessionTimeout(svc, s)
		}
		for _, t := range targets {
			t.Port = targetPort
			ls.Targets = append(ls.Targets, t)
		}
		slices.SortFunc(ls.Targets, compareTargets)
		spec.Listeners = append(spec.Listeners, ls)
	}
	if len(svc.Spec.Ports) == 0 {
		errs = append(errs, errors.New("spec.ports: a load balancer needs at least one port"))
	}
	slices.SortFunc(spec.Listeners, func(a, b ListenerSpec) int { return compareKeys(a.ListenerKey, b.ListenerKey) })

	ranges, err := sourceRanges(svc, spec.Internal, s)
	if err != nil {
		errs = append(errs, err)
	}
	spec.SourceRanges = ranges

	if len(errs) > 0 {
		return nil, &InvalidServiceError{Service: key, Errs: errs}
	}
	return spec, nil
}

func portName(p v1.ServicePort) string {
	if p.Name != "" {
		return p.Name
	}
	return fmt.Sprintf("%s/%d", p.Protocol, p.Port)
}

// LoadBalancerName is the name a created load balancer gets: NamePrefix, the Service's
// namespace and name shortened to fit, and 8 characters of its UID for uniqueness.
func LoadBalancerName(svc *v1.Service, s Settings) string {
	uid := strings.ReplaceAll(string(svc.UID), "-", "")
	if len(uid) > 8 {
		uid = uid[:8]
	}
	base := s.NamePrefix + svc.Namespace + "-" + svc.Name
	if max := s.MaxLoadBalancerName - len(uid) - 1; len(base) > max {
		base = strings.TrimRight(base[:max], "-.")
	}
	return base + "-" + uid
}

// Token is the idempotency key of the first creation of uid's load balancer in cluster:
// the same Service always sends the same one, so a create retried after a crash returns
// the load balancer already made.
func Token(cluster string, uid types.UID) string {
	sum := sha256.Sum256([]byte(cluster + "/" + string(uid)))
	return "stratus-" + hex.EncodeToString(sum[:16])
}

// healthSpec is the resolved health check, before it is specialized per protocol.
type healthSpec struct {
	base HealthCheck // interval, timeout, thresholds
	// tcp is what TCP listeners check.
	tcp HealthCheck
}

func (h healthSpec) forListener(p Protocol) HealthCheck {
	if p == UDP {
		// A UDP listener cannot speak HTTP or TCP to its targets: it checks the host.
		hc := h.base
		hc.Type, hc.Port, hc.Path = CheckPing, 0, ""
		return hc
	}
	return h.tcp
}

func resolveHealthCheck(errs *[]error, svc *v1.Service, s Settings) healthSpec {
	base := s.HealthCheck
	if resolve(errs, svc, annHealthInterval, &base.Interval) && (base.Interval < s.IntervalMin || base.Interval > s.IntervalMax) {
		*errs = append(*errs, outOfRange(AnnotationHealthCheckInterval, svc, s.IntervalMin, s.IntervalMax))
		base.Interval = s.HealthCheck.Interval
	}
	if resolve(errs, svc, annHealthTimeout, &base.Timeout) && (base.Timeout < s.TimeoutMin || base.Timeout > s.TimeoutMax) {
		*errs = append(*errs, outOfRange(AnnotationHealthCheckTimeout, svc, s.TimeoutMin, s.TimeoutMax))
		base.Timeout = s.HealthCheck.Timeout
	}
	if base.Timeout >= base.Interval {
		*errs = append(*errs, fmt.Errorf("annotations %s (%s) and %s (%s): the timeout must be shorter than the interval",
			AnnotationHealthCheckTimeout, base.Timeout, AnnotationHealthCheckInterval, base.Interval))
	}
	for _, th := range []struct {
		a   annotation[int]
		dst *int
	}{{annHealthyThreshold, &base.HealthyThreshold}, {annUnhealthyThresh, &base.UnhealthyThreshold}} {
		if resolve(errs, svc, th.a, th.dst) && (*th.dst < s.ThresholdMin || *th.dst > s.ThresholdMax) {
			*errs = append(*errs, &AnnotationError{Key: th.a.key, Value: svc.Annotations[th.a.key],
				Reason: fmt.Sprintf("is not between %d and %d", s.ThresholdMin, s.ThresholdMax)})
		}
	}

	tcp := base
	var proto CheckType
	var path string
	protoSet := resolve(errs, svc, annHealthProtocol, &proto)
	pathSet := resolve(errs, svc, annHealthPath, &path)
	if pathSet && len(path) > s.MaxHealthCheckPath {
		*errs = append(*errs, &AnnotationError{Key: AnnotationHealthCheckPath, Value: path, Reason: fmt.Sprintf("is longer than %d characters", s.MaxHealthCheckPath)})
	}
	switch {
	case protoSet || pathSet:
		// The annotations check the Service itself, on the traffic port.
		if !protoSet {
			proto = CheckHTTP
		}
		if proto == CheckTCP && pathSet {
			*errs = append(*errs, &AnnotationError{Key: AnnotationHealthCheckPath, Value: path,
				Reason: fmt.Sprintf("needs %s: HTTP (a TCP check has no path)", AnnotationHealthCheckProtocol)})
		}
		tcp.Type, tcp.Port = proto, 0
		if proto == CheckHTTP {
			tcp.Path = "/"
			if pathSet {
				tcp.Path = path
			}
		}
	case svc.Spec.ExternalTrafficPolicy == v1.ServiceExternalTrafficPolicyLocal && svc.Spec.HealthCheckNodePort != 0:
		// kube-proxy answers 200 on healthCheckNodePort only on nodes with a ready
		// endpoint, so nodes without one get no traffic.
		tcp.Type, tcp.Port, tcp.Path = CheckHTTP, svc.Spec.HealthCheckNodePort, "/healthz"
	default:
		tcp.Type, tcp.Port, tcp.Path = CheckHTTP, s.KubeProxyHealthPort, "/healthz"
	}
	return healthSpec{base: base, tcp: tcp}
}

func outOfRange(key string, svc *v1.Service, lo, hi time.Duration) error {
	return &AnnotationError{Key: key, Value: svc.Annotations[key], Reason: fmt.Sprintf("is not between %s and %s", lo, hi)}
}

func sessionTimeout(svc *v1.Service, s Settings) time.Duration {
	d := 10800 * time.Second // Kubernetes' default for ClientIP affinity
	if c := svc.Spec.SessionAffinityConfig; c != nil && c.ClientIP != nil && c.ClientIP.TimeoutSeconds != nil {
		d = time.Duration(*c.ClientIP.TimeoutSeconds) * time.Second
	}
	// The cloud keeps sessions between SessionTimeoutMin and SessionMax: use the nearest.
	return min(max(d, s.SessionTimeoutMin), s.SessionMax)
}

// resolveTargets are the nodes that get traffic, with their weights (ports are filled in
// per listener).
func resolveTargets(errs *[]error, in Input, s Settings) []Target {
	svc := in.Service
	selector := labels.Everything()
	resolve(errs, svc, annBackendsSelector, &selector)
	var onlyWithPod, weighted bool
	resolve(errs, svc, annOnlyBindWithPod, &onlyWithPod)
	resolve(errs, svc, annWeightedBalance, &weighted)
	local := svc.Spec.ExternalTrafficPolicy == v1.ServiceExternalTrafficPolicyLocal
	// TKE's meaning: both annotations act only with externalTrafficPolicy Local.
	onlyWithPod, weighted = onlyWithPod && local, weighted && local

	var out []Target
	seen := map[string]bool{}
	for _, n := range in.Nodes {
		if n == nil || !selector.Matches(labels.Set(n.Labels)) {
			continue
		}
		id, ok := in.NodeID(n)
		if !ok || seen[id] {
			continue
		}
		eps := in.Endpoints[n.Name]
		if onlyWithPod && eps == 0 {
			continue
		}
		w := s.DefaultWeight
		if weighted {
			w = min(eps, s.MaxWeight)
		}
		seen[id] = true
		out = append(out, Target{ID: id, Weight: w})
	}
	return out
}

func sourceRanges(svc *v1.Service, internal bool, s Settings) ([]netip.Prefix, error) {
	set, err := servicehelpers.GetLoadBalancerSourceRanges(svc)
	if err != nil {
		return nil, fmt.Errorf("spec.loadBalancerSourceRanges: %v", err)
	}
	if servicehelpers.IsAllowAll(set) {
		return nil, nil
	}
	var out []netip.Prefix
	for _, n := range set {
		p, err := netip.ParsePrefix(n.String())
		if err != nil || !p.Addr().Is4() {
			return nil, fmt.Errorf("spec.loadBalancerSourceRanges: %s is not an IPv4 range", n)
		}
		out = append(out, p.Masked())
	}
	slices.SortFunc(out, func(a, b netip.Prefix) int {
		return cmp.Or(a.Addr().Compare(b.Addr()), cmp.Compare(a.Bits(), b.Bits()))
	})
	switch {
	case len(out) > s.MaxSourceRanges:
		return nil, fmt.Errorf("spec.loadBalancerSourceRanges: %d ranges, at most %d are supported", len(out), s.MaxSourceRanges)
	case internal && !s.SourceRangesOnInternal:
		return nil, errors.New("spec.loadBalancerSourceRanges: internal load balancers cannot filter sources on this cloud (its security groups bind public load balancers only); remove the ranges or make the load balancer public")
	}
	return out, nil
}
