package loadbalancer

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// Annotation keys a Service may carry. The TKE keys keep TKE's names and meaning so that
// manifests written for TKE work unchanged.
const (
	// AnnotationMode is "nodeport" (L4) or "vip" (L3); default Settings.DefaultMode.
	AnnotationMode = "service.stratus.io/load-balancer-mode"
	// AnnotationInternalSubnet makes the load balancer internal, with its VIP in that subnet.
	AnnotationInternalSubnet = "service.kubernetes.io/qcloud-loadbalancer-internal-subnetid"
	// AnnotationExistingLB adopts an existing load balancer: Stratus adds and removes only
	// its own listeners on it and never deletes it.
	AnnotationExistingLB = "service.kubernetes.io/tke-existed-lbid"
	// AnnotationLoadBalancerID is written by Stratus (read-only for users): the load
	// balancer the Service uses.
	AnnotationLoadBalancerID = "service.kubernetes.io/loadbalance-id"

	AnnotationHealthCheckProtocol           = "service.stratus.io/health-check-protocol"
	AnnotationHealthCheckPath               = "service.stratus.io/health-check-path"
	AnnotationHealthCheckInterval           = "service.stratus.io/health-check-interval"
	AnnotationHealthCheckTimeout            = "service.stratus.io/health-check-timeout"
	AnnotationHealthCheckHealthyThreshold   = "service.stratus.io/health-check-healthy-threshold"
	AnnotationHealthCheckUnhealthyThreshold = "service.stratus.io/health-check-unhealthy-threshold"

	// AnnotationScheduler is "WRR" (default) or "LEAST_CONN".
	AnnotationScheduler = "service.stratus.io/scheduler"

	// AnnotationLocalOnlyBindNodeWithPod: with externalTrafficPolicy Local, only nodes
	// with a ready endpoint of the Service become targets.
	AnnotationLocalOnlyBindNodeWithPod = "service.kubernetes.io/local-svc-only-bind-node-with-pod"
	// AnnotationLocalWeightedBalance: with externalTrafficPolicy Local, a node's weight is
	// the number of ready endpoints on it.
	AnnotationLocalWeightedBalance = "service.cloud.tencent.com/local-svc-weighted-balance"
	// AnnotationBackendsLabel is a label selector: only matching nodes become targets.
	AnnotationBackendsLabel = "service.kubernetes.io/qcloud-loadbalancer-backends-label"
)

// Tags the engine puts on every load balancer it creates (and the Backend on every other
// resource it makes for one, such as a source filter).
const (
	TagCluster    = "stratus.io/cluster"
	TagService    = "stratus.io/service"
	TagServiceUID = "stratus.io/service-uid"
	// TagMode marks a load balancer created for an L3 VIP Service (value "vip"): how a
	// cloud (fakecloud's VPC router) knows to route the VIP to the nodes unchanged
	// instead of proxying to NodePorts.
	TagMode = "stratus.io/load-balancer-mode"
)

// errNotSet says an annotation is absent.
var errNotSet = errors.New("not set")

// annotation is a typed Service annotation: its key and how its value parses.
type annotation[T any] struct {
	key   string
	parse func(string) (T, error)
}

// from reads a from svc: errNotSet when absent, otherwise the parse result. A parse error
// is an *AnnotationError naming the key, the value and why.
func (a annotation[T]) from(svc *v1.Service) (T, error) {
	var zero T
	raw, ok := svc.Annotations[a.key]
	if !ok {
		return zero, errNotSet
	}
	v, err := a.parse(strings.TrimSpace(raw))
	if err != nil {
		return zero, &AnnotationError{Key: a.key, Value: raw, Reason: err.Error()}
	}
	return v, nil
}

// AnnotationError is one invalid annotation.
type AnnotationError struct {
	Key, Value, Reason string
}

func (e *AnnotationError) Error() string {
	return fmt.Sprintf("annotation %s: %q %s", e.Key, e.Value, e.Reason)
}

var (
	subnetIDRE = regexp.MustCompile(`^subnet-[a-z0-9]+$`)
	lbIDRE     = regexp.MustCompile(`^lb-[a-z0-9]+$`)
)

func oneOf[T ~string](values ...T) func(string) (T, error) {
	return func(s string) (T, error) {
		for _, v := range values {
			if strings.EqualFold(s, string(v)) {
				return v, nil
			}
		}
		quoted := make([]string, len(values))
		for i, v := range values {
			quoted[i] = strconv.Quote(string(v))
		}
		return "", fmt.Errorf("is not one of %s", strings.Join(quoted, ", "))
	}
}

func matching(re *regexp.Regexp, what string) func(string) (string, error) {
	return func(s string) (string, error) {
		if !re.MatchString(s) {
			return "", fmt.Errorf("is not %s", what)
		}
		return s, nil
	}
}

func parseBool(s string) (bool, error) {
	b, err := strconv.ParseBool(s)
	if err != nil {
		return false, errors.New("is not a boolean (true or false)")
	}
	return b, nil
}

func parseInt(s string) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0, errors.New("is not an integer")
	}
	return n, nil
}

// parseSeconds takes a Go duration ("10s", "1m") or a bare number of seconds, and
// insists on whole seconds, the cloud's unit.
func parseSeconds(s string) (time.Duration, error) {
	if n, err := strconv.Atoi(s); err == nil {
		return time.Duration(n) * time.Second, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, errors.New("is not a duration (such as 10s) or a number of seconds")
	}
	if d%time.Second != 0 {
		return 0, errors.New("is not a whole number of seconds")
	}
	return d, nil
}

func parsePath(s string) (string, error) {
	if !strings.HasPrefix(s, "/") {
		return "", errors.New("does not start with /")
	}
	for _, r := range s {
		if r <= ' ' || r > '~' {
			return "", errors.New("has a character that is not printable ASCII")
		}
	}
	return s, nil
}

func parseSelector(s string) (labels.Selector, error) {
	sel, err := labels.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("is not a label selector: %v", err)
	}
	return sel, nil
}

var (
	annMode              = annotation[Mode]{AnnotationMode, oneOf(ModeNodePort, ModeVIP)}
	annInternalSubnet    = annotation[string]{AnnotationInternalSubnet, matching(subnetIDRE, "a subnet id (subnet-...)")}
	annExistingLB        = annotation[string]{AnnotationExistingLB, matching(lbIDRE, "a load balancer id (lb-...)")}
	annLoadBalancerID    = annotation[string]{AnnotationLoadBalancerID, matching(lbIDRE, "a load balancer id (lb-...)")}
	annHealthProtocol    = annotation[CheckType]{AnnotationHealthCheckProtocol, oneOf(CheckTCP, CheckHTTP)}
	annHealthPath        = annotation[string]{AnnotationHealthCheckPath, parsePath}
	annHealthInterval    = annotation[time.Duration]{AnnotationHealthCheckInterval, parseSeconds}
	annHealthTimeout     = annotation[time.Duration]{AnnotationHealthCheckTimeout, parseSeconds}
	annHealthyThreshold  = annotation[int]{AnnotationHealthCheckHealthyThreshold, parseInt}
	annUnhealthyThresh   = annotation[int]{AnnotationHealthCheckUnhealthyThreshold, parseInt}
	annScheduler         = annotation[Scheduler]{AnnotationScheduler, oneOf(WRR, LeastConn)}
	annOnlyBindWithPod   = annotation[bool]{AnnotationLocalOnlyBindNodeWithPod, parseBool}
	annWeightedBalance   = annotation[bool]{AnnotationLocalWeightedBalance, parseBool}
	annBackendsSelector  = annotation[labels.Selector]{AnnotationBackendsLabel, parseSelector}
	errExistingAndSubnet = fmt.Errorf("cannot be combined with %s: an existing load balancer keeps its own network type", AnnotationInternalSubnet)
)

// resolve reads a into *dst when set; an invalid value is appended to errs and leaves
// *dst alone. It reports whether the annotation was set and valid.
func resolve[T any](errs *[]error, svc *v1.Service, a annotation[T], dst *T) bool {
	v, err := a.from(svc)
	switch {
	case err == nil:
		*dst = v
		return true
	case errors.Is(err, errNotSet):
		return false
	default:
		*errs = append(*errs, err)
		return false
	}
}
