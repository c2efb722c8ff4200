package loadbalancer

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	v1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"
)

// targetPort is where a listener of service port port (node port nodePort) sends traffic.
func targetPort(m Mode, port, nodePort int32) int32 {
	if m == ModeVIP {
		return port
	}
	return nodePort
}

func targets(port int32, weight int, ids ...string) []Target {
	out := make([]Target, len(ids))
	for i, id := range ids {
		out[i] = Target{ID: id, Port: port, Weight: weight}
	}
	return out
}

var kubeProxyCheck = HealthCheck{Type: CheckHTTP, Port: 10256, Path: "/healthz", Interval: 5 * time.Second, Timeout: 2 * time.Second, HealthyThreshold: 3, UnhealthyThreshold: 3}

func TestResolve(t *testing.T) {
	for _, mode := range modes {
		t.Run(string(mode), func(t *testing.T) {
			tp := targetPort(mode, 80, 30080)
			for _, tc := range []struct {
				name  string
				svc   *v1.Service
				nodes []*v1.Node
				eps   map[string]int
				set   func(*Settings)
				check func(t *testing.T, s *Spec)
			}{
				{
					name:  "defaults",
					svc:   service(withMode(mode)),
					nodes: []*v1.Node{node("n2"), node("n1"), uninitialized("n3")},
					check: func(t *testing.T, s *Spec) {
						assert.Equal(t, mode, s.Mode)
						assert.False(t, s.Internal)
						assert.Empty(t, s.ExistingID)
						assert.Equal(t, "k8s-default-web-uidweb", s.Name)
						tags := map[string]string{TagCluster: testCluster, TagService: "default/web", TagServiceUID: "uid-web"}
						if mode == ModeVIP {
							tags[TagMode] = "vip"
						}
						assert.Equal(t, tags, s.Tags, "an L3 VIP load balancer says so in a tag")
						assert.Equal(t, "stratus-uid-web", s.ListenerName)
						assert.Equal(t, Token(testCluster, "uid-web"), s.Token)
						assert.LessOrEqual(t, len(s.Token), 64, "a ClientToken is at most 64 characters")
						require.Len(t, s.Listeners, 1)
						assert.Equal(t, ListenerSpec{
							ListenerKey: ListenerKey{TCP, 80}, Name: "stratus-uid-web", Scheduler: WRR,
							HealthCheck: kubeProxyCheck,
							Targets:     targets(tp, 10, "ins-n1", "ins-n2"), // the uninitialized node is no target
						}, s.Listeners[0])
						assert.Empty(t, s.SourceRanges)
					},
				},
				{
					name:  "externalTrafficPolicy Local checks healthCheckNodePort",
					svc:   service(withMode(mode), withLocal(32000)),
					nodes: nodes("n1"),
					check: func(t *testing.T, s *Spec) {
						hc := kubeProxyCheck
						hc.Port = 32000
						assert.Equal(t, hc, s.Listeners[0].HealthCheck)
					},
				},
				{
					name: "health check annotations check the traffic port",
					svc: service(withMode(mode), withLocal(32000), withAnnotation(AnnotationHealthCheckProtocol, "HTTP"), withAnnotation(AnnotationHealthCheckPath, "/ready"),
						withAnnotation(AnnotationHealthCheckInterval, "10s"), withAnnotation(AnnotationHealthCheckTimeout, "4"),
						withAnnotation(AnnotationHealthCheckHealthyThreshold, "2"), withAnnotation(AnnotationHealthCheckUnhealthyThreshold, "5")),
					nodes: nodes("n1"),
					check: func(t *testing.T, s *Spec) {
						assert.Equal(t, HealthCheck{Type: CheckHTTP, Port: 0, Path: "/ready", Interval: 10 * time.Second, Timeout: 4 * time.Second, HealthyThreshold: 2, UnhealthyThreshold: 5},
							s.Listeners[0].HealthCheck)
					},
				},
				{
					name:  "TCP health check",
					svc:   service(withMode(mode), withAnnotation(AnnotationHealthCheckProtocol, "tcp")),
					nodes: nodes("n1"),
					check: func(t *testing.T, s *Spec) {
						assert.Equal(t, HealthCheck{Type: CheckTCP, Interval: 5 * time.Second, Timeout: 2 * time.Second, HealthyThreshold: 3, UnhealthyThreshold: 3}, s.Listeners[0].HealthCheck)
					},
				},
				{
					name: "mixed TCP and UDP ports",
					svc: service(withMode(mode), withPorts(
						v1.ServicePort{Name: "dns-udp", Protocol: v1.ProtocolUDP, Port: 53, NodePort: 30053},
						v1.ServicePort{Name: "dns-tcp", Protocol: v1.ProtocolTCP, Port: 53, NodePort: 30054},
						v1.ServicePort{Name: "http", Protocol: v1.ProtocolTCP, Port: 80, NodePort: 30080})),
					nodes: nodes("n1"),
					check: func(t *testing.T, s *Spec) {
						require.Len(t, s.Listeners, 3)
						assert.Equal(t, []ListenerKey{{TCP, 53}, {TCP, 80}, {UDP, 53}}, []ListenerKey{s.Listeners[0].ListenerKey, s.Listeners[1].ListenerKey, s.Listeners[2].ListenerKey})
						assert.Equal(t, targets(targetPort(mode, 53, 30054), 10, "ins-n1"), s.Listeners[0].Targets)
						assert.Equal(t, targets(targetPort(mode, 53, 30053), 10, "ins-n1"), s.Listeners[2].Targets)
						assert.Equal(t, CheckPing, s.Listeners[2].HealthCheck.Type, "a UDP listener checks the host")
						assert.Equal(t, kubeProxyCheck, s.Listeners[0].HealthCheck)
					},
				},
				{
					name: "session affinity within the cloud's bounds",
					svc: service(withMode(mode), func(s *v1.Service) {
						s.Spec.SessionAffinity = v1.ServiceAffinityClientIP
					}),
					nodes: nodes("n1"),
					check: func(t *testing.T, s *Spec) {
						assert.Equal(t, time.Hour, s.Listeners[0].SessionTimeout, "Kubernetes' default 3h is above the cloud's 1h")
					},
				},
				{
					name: "session affinity timeout",
					svc: service(withMode(mode), func(s *v1.Service) {
						s.Spec.SessionAffinity = v1.ServiceAffinityClientIP
						s.Spec.SessionAffinityConfig = &v1.SessionAffinityConfig{ClientIP: &v1.ClientIPConfig{TimeoutSeconds: ptr.To[int32](90)}}
					}),
					nodes: nodes("n1"),
					check: func(t *testing.T, s *Spec) { assert.Equal(t, 90*time.Second, s.Listeners[0].SessionTimeout) },
				},
				{
					name:  "scheduler",
					svc:   service(withMode(mode), withAnnotation(AnnotationScheduler, "LEAST_CONN")),
					nodes: nodes("n1"),
					check: func(t *testing.T, s *Spec) { assert.Equal(t, LeastConn, s.Listeners[0].Scheduler) },
				},
				{
					name:  "internal subnet",
					svc:   service(withMode(mode), withAnnotation(AnnotationInternalSubnet, "subnet-gz1")),
					nodes: nodes("n1"),
					check: func(t *testing.T, s *Spec) {
						assert.True(t, s.Internal)
						assert.Equal(t, "subnet-gz1", s.SubnetID)
					},
				},
				{
					name:  "internal by default from the settings",
					svc:   service(withMode(mode)),
					set:   func(s *Settings) { s.DefaultInternalSubnet = "subnet-def1" },
					nodes: nodes("n1"),
					check: func(t *testing.T, s *Spec) {
						assert.True(t, s.Internal)
						assert.Equal(t, "subnet-def1", s.SubnetID)
					},
				},
				{
					name:  "adopt an existing load balancer",
					svc:   service(withMode(mode), withAnnotation(AnnotationExistingLB, "lb-abc123")),
					set:   func(s *Settings) { s.DefaultInternalSubnet = "subnet-def1" },
					nodes: nodes("n1"),
					check: func(t *testing.T, s *Spec) {
						assert.Equal(t, "lb-abc123", s.ExistingID)
						assert.False(t, s.Internal, "an adopted load balancer keeps its own type")
					},
				},
				{
					name:  "backends label selects nodes",
					svc:   service(withMode(mode), withAnnotation(AnnotationBackendsLabel, "group=access-layer")),
					nodes: []*v1.Node{node("n1", "group=access-layer"), node("n2", "group=apps"), node("n3")},
					check: func(t *testing.T, s *Spec) {
						assert.Equal(t, targets(tp, 10, "ins-n1"), s.Listeners[0].Targets)
					},
				},
				{
					name: "Local: only nodes with pods, weighted by endpoints",
					svc: service(withMode(mode), withLocal(32000), withAnnotation(AnnotationLocalOnlyBindNodeWithPod, "true"),
						withAnnotation(AnnotationLocalWeightedBalance, "true")),
					nodes: nodes("n1", "n2", "n3"),
					eps:   map[string]int{"n1": 3, "n3": 250},
					check: func(t *testing.T, s *Spec) {
						assert.Equal(t, []Target{{ID: "ins-n1", Port: tp, Weight: 3}, {ID: "ins-n3", Port: tp, Weight: 100}}, s.Listeners[0].Targets,
							"n2 has no endpoint; n3's weight is capped at the cloud's maximum")
					},
				},
				{
					name:  "Local: weighted without only-bind gives weight 0 to empty nodes",
					svc:   service(withMode(mode), withLocal(32000), withAnnotation(AnnotationLocalWeightedBalance, "true")),
					nodes: nodes("n1", "n2"),
					eps:   map[string]int{"n1": 2},
					check: func(t *testing.T, s *Spec) {
						assert.Equal(t, []Target{{ID: "ins-n1", Port: tp, Weight: 2}, {ID: "ins-n2", Port: tp, Weight: 0}}, s.Listeners[0].Targets)
					},
				},
				{
					name:  "Cluster ignores the Local-only annotations, as TKE does",
					svc:   service(withMode(mode), withAnnotation(AnnotationLocalOnlyBindNodeWithPod, "true"), withAnnotation(AnnotationLocalWeightedBalance, "true")),
					nodes: nodes("n1", "n2"),
					check: func(t *testing.T, s *Spec) {
						assert.Equal(t, targets(tp, 10, "ins-n1", "ins-n2"), s.Listeners[0].Targets)
					},
				},
				{
					name:  "source ranges sorted and masked",
					svc:   service(withMode(mode), withSourceRanges("127.77.0.9/24", "10.0.0.0/8")),
					nodes: nodes("n1"),
					check: func(t *testing.T, s *Spec) {
						assert.Equal(t, []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("127.77.0.0/24")}, s.SourceRanges)
					},
				},
				{
					name:  "source range 0.0.0.0/0 filters nothing",
					svc:   service(withMode(mode), withSourceRanges("0.0.0.0/0", "10.0.0.0/8")),
					nodes: nodes("n1"),
					check: func(t *testing.T, s *Spec) { assert.Empty(t, s.SourceRanges) },
				},
				{
					name:  "no eligible node: listeners without targets",
					svc:   service(withMode(mode)),
					nodes: []*v1.Node{uninitialized("n1")},
					check: func(t *testing.T, s *Spec) { assert.Empty(t, s.Listeners[0].Targets) },
				},
			} {
				t.Run(tc.name, func(t *testing.T) {
					set := testSettings()
					if tc.set != nil {
						tc.set(&set)
					}
					spec, err := Resolve(Input{Service: tc.svc, Nodes: tc.nodes, NodeID: testNodeID, Endpoints: tc.eps}, set)
					require.NoError(t, err)
					tc.check(t, spec)
				})
			}
		})
	}
}

func TestResolveReportsEveryProblemAtOnce(t *testing.T) {
	for _, mode := range modes {
		t.Run(string(mode), func(t *testing.T) {
			for _, tc := range []struct {
				name string
				svc  *v1.Service
				set  func(*Settings)
				want []string // substrings, one per problem
			}{
				{
					name: "several bad annotations",
					svc: service(withMode(mode),
						withAnnotation(AnnotationHealthCheckInterval, "5x"),
						withAnnotation(AnnotationScheduler, "RANDOM"),
						withAnnotation(AnnotationInternalSubnet, "gz1"),
						withAnnotation(AnnotationHealthCheckHealthyThreshold, "11"),
						withAnnotation(AnnotationBackendsLabel, "a in (b"),
						withAnnotation(AnnotationLocalOnlyBindNodeWithPod, "yes please")),
					want: []string{
						`annotation service.stratus.io/health-check-interval: "5x" is not a duration`,
						`annotation service.stratus.io/scheduler: "RANDOM" is not one of "WRR", "LEAST_CONN"`,
						`annotation service.kubernetes.io/qcloud-loadbalancer-internal-subnetid: "gz1" is not a subnet id`,
						`annotation service.stratus.io/health-check-healthy-threshold: "11" is not between 2 and 10`,
						`annotation service.kubernetes.io/qcloud-loadbalancer-backends-label: "a in (b" is not a label selector`,
						`annotation service.kubernetes.io/local-svc-only-bind-node-with-pod: "yes please" is not a boolean`,
					},
				},
				{
					name: "bad mode",
					svc:  service(withAnnotation(AnnotationMode, "l7")),
					want: []string{`annotation service.stratus.io/load-balancer-mode: "l7" is not one of "nodeport", "vip"`},
				},
				{
					name: "interval and timeout out of range and inverted",
					svc: service(withMode(mode), withAnnotation(AnnotationHealthCheckInterval, "1s"), withAnnotation(AnnotationHealthCheckTimeout, "61s"),
						withAnnotation(AnnotationHealthCheckUnhealthyThreshold, "x")),
					want: []string{
						`health-check-interval: "1s" is not between 5s and 5m0s`,
						`health-check-timeout: "61s" is not between 2s and 1m0s`,
						`health-check-unhealthy-threshold: "x" is not an integer`,
					},
				},
				{
					name: "timeout not below interval",
					svc:  service(withMode(mode), withAnnotation(AnnotationHealthCheckInterval, "5s"), withAnnotation(AnnotationHealthCheckTimeout, "5s")),
					want: []string{"the timeout must be shorter than the interval"},
				},
				{
					name: "fractional seconds and a bad path",
					svc:  service(withMode(mode), withAnnotation(AnnotationHealthCheckInterval, "5.5s"), withAnnotation(AnnotationHealthCheckPath, "healthz")),
					want: []string{`"5.5s" is not a whole number of seconds`, `health-check-path: "healthz" does not start with /`},
				},
				{
					name: "path with a TCP check",
					svc:  service(withMode(mode), withAnnotation(AnnotationHealthCheckProtocol, "TCP"), withAnnotation(AnnotationHealthCheckPath, "/x")),
					want: []string{`health-check-path: "/x" needs service.stratus.io/health-check-protocol: HTTP`},
				},
				{
					name: "existing load balancer and a subnet",
					svc:  service(withMode(mode), withAnnotation(AnnotationExistingLB, "lb-1"), withAnnotation(AnnotationInternalSubnet, "subnet-1")),
					want: []string{"tke-existed-lbid: \"lb-1\" cannot be combined with service.kubernetes.io/qcloud-loadbalancer-internal-subnetid"},
				},
				{
					name: "bad existing id",
					svc:  service(withMode(mode), withAnnotation(AnnotationExistingLB, "clb-12")),
					want: []string{`tke-existed-lbid: "clb-12" is not a load balancer id`},
				},
				{
					name: "SCTP",
					svc:  service(withMode(mode), withPorts(v1.ServicePort{Name: "s", Protocol: v1.ProtocolSCTP, Port: 9, NodePort: 30009})),
					want: []string{"spec.ports[s]: protocol SCTP is not supported"},
				},
				{
					name: "IPv6 source range",
					svc:  service(withMode(mode), withSourceRanges("2001:db8::/32")),
					want: []string{"2001:db8::/32 is not an IPv4 range"},
				},
				{
					name: "source ranges on an internal load balancer where the cloud cannot filter them",
					svc:  service(withMode(mode), withAnnotation(AnnotationInternalSubnet, "subnet-1"), withSourceRanges("10.0.0.0/8")),
					set:  func(s *Settings) { s.SourceRangesOnInternal = false },
					want: []string{"internal load balancers cannot filter sources on this cloud"},
				},
			} {
				t.Run(tc.name, func(t *testing.T) {
					set := testSettings()
					if tc.set != nil {
						tc.set(&set)
					}
					spec, err := Resolve(Input{Service: tc.svc, Nodes: nodes("n1"), NodeID: testNodeID}, set)
					require.Error(t, err)
					assert.Nil(t, spec)
					var inv *InvalidServiceError
					require.ErrorAs(t, err, &inv)
					assert.Len(t, inv.Errs, len(tc.want), "%v", err)
					for _, w := range tc.want {
						assert.Contains(t, err.Error(), w)
					}
					assert.True(t, strings.HasPrefix(err.Error(), "service default/web: "), err.Error())
				})
			}
		})
	}
}

func TestResolveNodePortModeNeedsNodePorts(t *testing.T) {
	svc := service(func(s *v1.Service) {
		s.Spec.AllocateLoadBalancerNodePorts = ptr.To(false)
		s.Spec.Ports[0].NodePort = 0
	})
	for _, tc := range []struct {
		mode    Mode
		wantErr bool
	}{{ModeNodePort, true}, {ModeVIP, false}} {
		t.Run(string(tc.mode), func(t *testing.T) {
			s := svc.DeepCopy()
			s.Annotations[AnnotationMode] = string(tc.mode)
			spec, err := Resolve(Input{Service: s, Nodes: nodes("n1"), NodeID: testNodeID}, testSettings())
			if tc.wantErr {
				require.Error(t, err)
				assert.Contains(t, err.Error(), "no node port (allocateLoadBalancerNodePorts is false)")
				return
			}
			require.NoError(t, err)
			assert.Equal(t, targets(80, 10, "ins-n1"), spec.Listeners[0].Targets, "VIP mode forwards to the Service port")
		})
	}
}

func TestAnnotationErrorsUnwrap(t *testing.T) {
	_, err := Resolve(Input{Service: service(withAnnotation(AnnotationScheduler, "x")), NodeID: testNodeID}, testSettings())
	var ae *AnnotationError
	require.True(t, errors.As(err, &ae), "%v", err)
	assert.Equal(t, AnnotationScheduler, ae.Key)
	assert.Equal(t, "x", ae.Value)
}

func TestLoadBalancerNameFits(t *testing.T) {
	s := testSettings()
	svc := service(withName(strings.Repeat("n", 63), strings.Repeat("s", 63)), withUID("0d3e51f2-aaaa-bbbb-cccc-123456789012"))
	name := LoadBalancerName(svc, s)
	assert.LessOrEqual(t, len(name), s.MaxLoadBalancerName)
	assert.True(t, strings.HasSuffix(name, "-0d3e51f2"), name)
	assert.True(t, strings.HasPrefix(name, "k8s-nnn"), name)
}

func TestNeedsEndpoints(t *testing.T) {
	for name, tc := range map[string]struct {
		svc  *v1.Service
		want bool
	}{
		"cluster":              {service(withAnnotation(AnnotationLocalOnlyBindNodeWithPod, "true")), false},
		"local, no annotation": {service(withLocal(1)), false},
		"local, only-bind":     {service(withLocal(1), withAnnotation(AnnotationLocalOnlyBindNodeWithPod, "true")), true},
		"local, weighted":      {service(withLocal(1), withAnnotation(AnnotationLocalWeightedBalance, "true")), true},
		"local, false":         {service(withLocal(1), withAnnotation(AnnotationLocalWeightedBalance, "false")), false},
	} {
		t.Run(name, func(t *testing.T) { assert.Equal(t, tc.want, NeedsEndpoints(tc.svc)) })
	}
}
