package loadbalancer

import (
	"errors"
	"fmt"
	"time"
)

// Settings are the cluster-wide defaults and the cloud's bounds that Resolve applies.
// The cloud-config fills the defaults; the Backend's cloud dictates the bounds (see
// DefaultSettings for values that suit most clouds).
type Settings struct {
	// ClusterID is written into TagCluster of everything created, and is how the engine
	// recognizes what it owns.
	ClusterID string
	// DefaultMode applies to Services without AnnotationMode.
	DefaultMode Mode
	// DefaultInternalSubnet, when set, makes load balancers internal by default (in that
	// subnet); AnnotationInternalSubnet overrides it per Service.
	DefaultInternalSubnet string

	// KubeProxyHealthPort is where a node's kube-proxy answers /healthz; with
	// externalTrafficPolicy Cluster it is every TCP listener's default health check.
	KubeProxyHealthPort int32
	// HealthCheck holds the default interval, timeout and thresholds.
	HealthCheck HealthCheck
	// Bounds the cloud puts on health checks and session persistence.
	IntervalMin, IntervalMax       time.Duration
	TimeoutMin, TimeoutMax         time.Duration
	ThresholdMin, ThresholdMax     int
	MaxHealthCheckPath             int
	SessionTimeoutMin, SessionMax  time.Duration
	DefaultWeight, MaxWeight       int
	MaxSourceRanges                int
	SourceRangesOnInternal         bool
	MaxLoadBalancerName            int
	ListenerNamePrefix, NamePrefix string
}

// DefaultSettings are sensible defaults and bounds: checks every 5s with a 2s timeout and
// 3 strikes either way, intervals 5s-300s, timeouts 2s-60s, thresholds 2-10, session
// persistence 30s-3600s, weights 0-100 (default 10), 50 source ranges, load balancer
// names of 60 characters.
func DefaultSettings(clusterID string) Settings {
	return Settings{
		ClusterID:           clusterID,
		DefaultMode:         ModeNodePort,
		KubeProxyHealthPort: 10256,
		HealthCheck: HealthCheck{
			Interval: 5 * time.Second, Timeout: 2 * time.Second,
			HealthyThreshold: 3, UnhealthyThreshold: 3,
		},
		IntervalMin: 5 * time.Second, IntervalMax: 300 * time.Second,
		TimeoutMin: 2 * time.Second, TimeoutMax: 60 * time.Second,
		ThresholdMin: 2, ThresholdMax: 10,
		MaxHealthCheckPath: 200,
		SessionTimeoutMin:  30 * time.Second, SessionMax: time.Hour,
		DefaultWeight: 10, MaxWeight: 100,
		MaxSourceRanges:        50,
		SourceRangesOnInternal: true,
		MaxLoadBalancerName:    60,
		NamePrefix:             "k8s-",
		ListenerNamePrefix:     "stratus-",
	}
}

// Validate reports what makes s unusable.
func (s *Settings) Validate() error {
	var errs []error
	if s.ClusterID == "" {
		errs = append(errs, errors.New("ClusterID is empty"))
	}
	if s.DefaultMode != ModeNodePort && s.DefaultMode != ModeVIP {
		errs = append(errs, fmt.Errorf("DefaultMode %q is not %q or %q", s.DefaultMode, ModeNodePort, ModeVIP))
	}
	if s.DefaultInternalSubnet != "" && !subnetIDRE.MatchString(s.DefaultInternalSubnet) {
		errs = append(errs, fmt.Errorf("DefaultInternalSubnet %q is not a subnet id", s.DefaultInternalSubnet))
	}
	if s.MaxLoadBalancerName < 20 {
		errs = append(errs, fmt.Errorf("MaxLoadBalancerName %d is too short for a unique name", s.MaxLoadBalancerName))
	}
	return errors.Join(errs...)
}
