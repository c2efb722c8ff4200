//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/retry"

	"github.com/stratus-cloud/stratus/cloudapi"
	"github.com/stratus-cloud/stratus/cloudapi/clb"
	"github.com/stratus-cloud/stratus/fakecloud"
	"github.com/stratus-cloud/stratus/loadbalancer"
	"github.com/stratus-cloud/stratus/test/e2e/framework"
)

const (
	// lbTimeout bounds every wait for the load balancer to follow a change. Health checks
	// run every 5s (the cloud's minimum) and take 2 strikes, so a node going unhealthy
	// shows within about 15s; the rest within seconds on an idle machine.
	lbTimeout = 2 * time.Minute
	// lbCloudConfig keeps the instance listing young (nodes get providerIDs quickly).
	lbCloudConfig = "instances: {cacheTTL: 2s}\n"
	// The CCM flags of the example Deployment (examples/manifests/ccm).
	lbConcurrentSyncs = "--concurrent-service-syncs=10"
)

// The example seed's instances.
var seedNodes = []struct{ name, ip string }{
	{"node-1", "10.0.1.11"}, {"node-2", "10.0.1.12"}, {"node-3", "10.0.2.11"}, {"node-4", "10.0.3.11"},
}

// lbEnv is a control plane, fakecloud with its data plane on this test's loopback
// network, a CCM running the service controller, and a NodeServer per seed node.
type lbEnv struct {
	t           *testing.T
	api         *framework.APIServer
	fc          *framework.Fakecloud
	ccm         *framework.CCM
	cloudConfig string
	client      kubernetes.Interface
	clb         *clb.Client
	net         *framework.LBNetwork
	nodes       map[string]*framework.NodeServer
	ctx         context.Context
}

func startLBEnv(t *testing.T, registered ...string) *lbEnv {
	t.Helper()
	n := framework.NewLBNetwork(t)
	etcd := framework.StartEtcd(t)
	api := framework.StartAPIServer(t, etcd)
	fc := framework.StartFakecloud(t, framework.WithFakecloudArgs(n.FakecloudArgs()...))
	env := &lbEnv{t: t, api: api, fc: fc, client: api.Client, clb: clb.New(fc.Client(t)), net: n,
		nodes: map[string]*framework.NodeServer{}, ctx: context.Background()}
	env.cloudConfig = framework.WriteCloudConfig(t, t.TempDir(), fc, lbCloudConfig)
	env.ccm = env.startCCM("ccm")
	for _, sn := range seedNodes {
		s := framework.NewNodeServer(t, sn.name, n.Mapped(sn.ip))
		s.ServeHealth(10256) // kube-proxy's /healthz, the default check
		env.nodes[sn.name] = s
	}
	for _, name := range registered {
		env.registerNode(name)
	}
	return env
}

func (env *lbEnv) startCCM(name string) *framework.CCM {
	return framework.StartCCM(env.t, env.api, env.cloudConfig, framework.WithCCMName(name),
		framework.WithControllers("cloud-node,cloud-node-lifecycle,service"), framework.WithCCMArgs(lbConcurrentSyncs))
}

func (env *lbEnv) registerNode(name string) {
	env.t.Helper()
	for _, sn := range seedNodes {
		if sn.name == name {
			_, err := framework.RegisterNode(env.ctx, env.client, name, sn.ip)
			require.NoError(env.t, err)
			waitInitialized(env.t, env.client, name)
			return
		}
	}
	env.t.Fatalf("no seed node %s", name)
}

func lbService(name string, ports ...v1.ServicePort) *v1.Service {
	return &v1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name, Annotations: map[string]string{
			// The cloud's fastest checks, so a node going down shows within seconds.
			loadbalancer.AnnotationHealthCheckInterval:           "5s",
			loadbalancer.AnnotationHealthCheckHealthyThreshold:   "2",
			loadbalancer.AnnotationHealthCheckUnhealthyThreshold: "2",
		}},
		Spec: v1.ServiceSpec{Type: v1.ServiceTypeLoadBalancer, Selector: map[string]string{"app": name}, Ports: ports},
	}
}

// update changes Service name with mut, retrying on conflicts with the CCM's writes.
func (env *lbEnv) update(name string, mut func(*v1.Service)) *v1.Service {
	env.t.Helper()
	var out *v1.Service
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		svc, err := env.client.CoreV1().Services("default").Get(env.ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		mut(svc)
		out, err = env.client.CoreV1().Services("default").Update(env.ctx, svc, metav1.UpdateOptions{})
		return err
	})
	require.NoError(env.t, err)
	return out
}

// waitIngress waits until the Service's status shows an ingress IP satisfying ok.
func (env *lbEnv) waitIngress(name string, ok func(v1.LoadBalancerIngress) bool) *v1.Service {
	env.t.Helper()
	var got *v1.Service
	framework.Eventually(env.t, lbTimeout, "service "+name+" to get its ingress IP", func(ctx context.Context) error {
		svc, err := env.client.CoreV1().Services("default").Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if in := svc.Status.LoadBalancer.Ingress; len(in) == 1 && ok(in[0]) {
			got = svc
			return nil
		}
		return errorf("status %+v", svc.Status.LoadBalancer)
	})
	return got
}

func anyIngress(in v1.LoadBalancerIngress) bool { return in.IP != "" }

// answeredBy waits until connections to addr from src are answered by exactly want (each
// at least once, nobody else, no failure) in one round of asks.
func (env *lbEnv) answeredBy(what string, src netip.Addr, addr netip.AddrPort, udp bool, want ...string) {
	env.t.Helper()
	sort.Strings(want)
	framework.Eventually(env.t, lbTimeout, what, func(ctx context.Context) error {
		got := framework.Spread(ctx, src, addr, 4*len(want)+4, udp)
		var names []string
		for n := range got {
			names = append(names, n)
		}
		sort.Strings(names)
		if !slices.Equal(names, want) {
			return errorf("%s from %s answered by %v, want each of %v", addr, src, got, want)
		}
		return nil
	})
}

// refused waits until addr gives no answer at all to src.
func (env *lbEnv) refused(what string, src netip.Addr, addr netip.AddrPort) {
	env.t.Helper()
	framework.Eventually(env.t, lbTimeout, what, func(ctx context.Context) error {
		if got := framework.Spread(ctx, src, addr, 4, false); got[""] != 4 {
			return errorf("%s from %s still answered: %v", addr, src, got)
		}
		return nil
	})
}

// clbs are the load balancers in fakecloud tagged for the Service with uid.
func (env *lbEnv) clbs(uid string) []clb.LoadBalancer {
	env.t.Helper()
	out, err := env.clb.DescribeLoadBalancers(env.ctx, &clb.DescribeLoadBalancersRequest{Limit: cloudapi.Int64(100)})
	require.NoError(env.t, err)
	var mine []clb.LoadBalancer
	for _, lb := range out.LoadBalancerSet {
		for _, tag := range lb.Tags {
			if tag.TagKey == loadbalancer.TagServiceUID && tag.TagValue == uid {
				mine = append(mine, lb)
			}
		}
	}
	return mine
}

// loopbackVIP is where fakecloud serves a load balancer whose VIP is not on this machine
// (an internal one), from the admin state dump.
func (env *lbEnv) loopbackVIP(lbID string) netip.Addr {
	env.t.Helper()
	state, err := env.fc.Admin.State(env.ctx)
	require.NoError(env.t, err)
	var rec struct{ LoopbackVip string }
	require.NoError(env.t, json.Unmarshal(state["clb.load-balancers"][lbID], &rec), "load balancer %s in the state dump", lbID)
	return netip.MustParseAddr(rec.LoopbackVip)
}

func nodePort(svc *v1.Service, proto v1.Protocol) int {
	for _, p := range svc.Spec.Ports {
		if p.Protocol == proto {
			return int(p.NodePort)
		}
	}
	return 0
}

func (env *lbEnv) serveTCP(port int) {
	for _, s := range env.nodes {
		s.ServeTCP(port)
	}
}

func (env *lbEnv) writes(ctx context.Context) (int, error) {
	calls, err := env.fc.Admin.Calls(ctx)
	if err != nil {
		return 0, err
	}
	n := 0
	for action, c := range calls {
		if !strings.HasPrefix(action, "Describe") {
			n += c
		}
	}
	return n, nil
}

// TestLoadBalancerL4 runs a NodePort-mode (L4) Service through its life against the real
// service controller and checks, with connections to the IP in its status, what users
// see. The subtests share the environment and run in order.
func TestLoadBalancerL4(t *testing.T) {
	env := startLBEnv(t, "node-1", "node-2", "node-3")
	client := env.net.Client(false)
	var svc *v1.Service

	t.Run("ExternalIPAnswersFromEveryNode", func(t *testing.T) {
		created, err := env.client.CoreV1().Services("default").Create(env.ctx, lbService("web", v1.ServicePort{Name: "http", Protocol: v1.ProtocolTCP, Port: 8080}), metav1.CreateOptions{})
		require.NoError(t, err)
		env.serveTCP(nodePort(created, v1.ProtocolTCP))
		svc = env.waitIngress("web", anyIngress)
		ing := svc.Status.LoadBalancer.Ingress[0]
		require.NotNil(t, ing.IPMode)
		assert.Equal(t, v1.LoadBalancerIPModeProxy, *ing.IPMode)
		ip := netip.MustParseAddr(ing.IP)
		assert.True(t, env.net.PublicPool.Contains(ip), "the EXTERNAL-IP %s is a public VIP (a loopback one here)", ip)
		env.answeredBy("every node to answer on EXTERNAL-IP:8080", client, netip.AddrPortFrom(ip, 8080), false, "node-1", "node-2", "node-3")

		lbs := env.clbs(string(svc.UID))
		require.Len(t, lbs, 1)
		assert.Contains(t, lbs[0].Tags, clb.TagInfo{TagKey: loadbalancer.TagCluster, TagValue: "e2e"})
		assert.Contains(t, lbs[0].Tags, clb.TagInfo{TagKey: loadbalancer.TagService, TagValue: "default/web"})
		framework.Eventually(t, lbTimeout, "the loadbalance-id annotation", func(ctx context.Context) error {
			s, err := env.client.CoreV1().Services("default").Get(ctx, "web", metav1.GetOptions{})
			if err != nil {
				return err
			}
			if s.Annotations[loadbalancer.AnnotationLoadBalancerID] != lbs[0].LoadBalancerId {
				return errorf("annotations %v", s.Annotations)
			}
			return nil
		})
		assert.Contains(t, svc.Finalizers, "service.kubernetes.io/load-balancer-cleanup")
	})

	addr := func(port uint16) netip.AddrPort {
		return netip.AddrPortFrom(netip.MustParseAddr(svc.Status.LoadBalancer.Ingress[0].IP), port)
	}

	t.Run("NodeAddedAndRemoved", func(t *testing.T) {
		env.registerNode("node-4")
		env.answeredBy("node-4 to join", client, addr(8080), false, "node-1", "node-2", "node-3", "node-4")
		require.NoError(t, env.client.CoreV1().Nodes().Delete(env.ctx, "node-2", metav1.DeleteOptions{}))
		env.answeredBy("node-2 to leave", client, addr(8080), false, "node-1", "node-3", "node-4")
	})

	t.Run("PortChanged", func(t *testing.T) {
		env.update("web", func(s *v1.Service) { s.Spec.Ports[0].Port = 9090 })
		env.answeredBy("the new port to answer", client, addr(9090), false, "node-1", "node-3", "node-4")
		env.refused("the old port to close", client, addr(8080))
	})

	t.Run("UDPPortAdded", func(t *testing.T) {
		s := env.update("web", func(s *v1.Service) {
			s.Spec.Ports = append(s.Spec.Ports, v1.ServicePort{Name: "dns", Protocol: v1.ProtocolUDP, Port: 5353})
		})
		for _, n := range env.nodes {
			n.ServeUDP(nodePort(s, v1.ProtocolUDP))
		}
		env.answeredBy("UDP to answer from every node", client, addr(5353), true, "node-1", "node-3", "node-4")
		env.answeredBy("TCP to keep answering", client, addr(9090), false, "node-1", "node-3", "node-4")
	})

	t.Run("SourceRanges", func(t *testing.T) {
		other := env.net.Client(true)
		env.update("web", func(s *v1.Service) { s.Spec.LoadBalancerSourceRanges = []string{env.net.ClientNet.String()} })
		env.refused("a source outside loadBalancerSourceRanges to get no connection", other, addr(9090))
		env.answeredBy("the allowed source to keep its answers", client, addr(9090), false, "node-1", "node-3", "node-4")
		env.update("web", func(s *v1.Service) { s.Spec.LoadBalancerSourceRanges = nil })
		env.answeredBy("every source to be accepted again", other, addr(9090), false, "node-1", "node-3", "node-4")
	})

	t.Run("InvalidAnnotationLeavesTheLoadBalancerAlone", func(t *testing.T) {
		last, quiet := -1, 0
		framework.Eventually(t, lbTimeout, "the CCM to stop writing to the cloud", func(ctx context.Context) error {
			n, err := env.writes(ctx)
			if err != nil {
				return err
			}
			if n != last {
				last, quiet = n, 0
			}
			if quiet++; quiet < 10 { // 10 polls in a row without a write
				return errorf("%d writes so far", n)
			}
			return nil
		})
		before, err := env.writes(env.ctx)
		require.NoError(t, err)
		env.update("web", func(s *v1.Service) {
			s.Annotations[loadbalancer.AnnotationHealthCheckInterval] = "5x"
			s.Annotations[loadbalancer.AnnotationScheduler] = "FASTEST"
		})
		framework.Eventually(t, lbTimeout, "a Warning event naming both annotations", func(ctx context.Context) error {
			events, err := env.client.CoreV1().Events("default").List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.kind=Service,involvedObject.name=web,reason=SyncLoadBalancerFailed"})
			if err != nil {
				return err
			}
			for _, e := range events.Items {
				if e.Type == v1.EventTypeWarning && strings.Contains(e.Message, loadbalancer.AnnotationHealthCheckInterval) && strings.Contains(e.Message, loadbalancer.AnnotationScheduler) {
					return nil
				}
			}
			return errorf("events: %v", events.Items)
		})
		framework.Consistently(t, 5*time.Second, "no cloud write", func(ctx context.Context) error {
			after, err := env.writes(ctx)
			if err != nil {
				return err
			}
			if after != before {
				return errorf("writes went from %d to %d", before, after)
			}
			return nil
		})
		env.answeredBy("the load balancer to keep working", client, addr(9090), false, "node-1", "node-3", "node-4")
		env.update("web", func(s *v1.Service) {
			delete(s.Annotations, loadbalancer.AnnotationHealthCheckInterval)
			delete(s.Annotations, loadbalancer.AnnotationScheduler)
		})
	})

	t.Run("SwitchInternalAndPublic", func(t *testing.T) {
		public := addr(9090)
		env.update("web", func(s *v1.Service) { s.Annotations[loadbalancer.AnnotationInternalSubnet] = "subnet-gz1" })
		s := env.waitIngress("web", func(in v1.LoadBalancerIngress) bool {
			return netip.MustParsePrefix("10.0.1.0/24").Contains(netip.MustParseAddr(in.IP))
		})
		lbs := env.clbs(string(s.UID))
		require.Len(t, lbs, 1, "the public load balancer is gone once the internal one works")
		assert.Equal(t, clb.TypeInternal, lbs[0].LoadBalancerType)
		assert.Equal(t, s.Status.LoadBalancer.Ingress[0].IP, lbs[0].LoadBalancerVips[0])
		env.refused("the public address to stop answering", client, public)
		// An internal VIP is not on this machine: fakecloud serves it on its loopback twin.
		env.answeredBy("the internal load balancer to answer", client, netip.AddrPortFrom(env.loopbackVIP(lbs[0].LoadBalancerId), 9090), false, "node-1", "node-3", "node-4")

		env.update("web", func(s *v1.Service) { delete(s.Annotations, loadbalancer.AnnotationInternalSubnet) })
		svc = env.waitIngress("web", func(in v1.LoadBalancerIngress) bool { return env.net.PublicPool.Contains(netip.MustParseAddr(in.IP)) })
		env.answeredBy("public again", client, addr(9090), false, "node-1", "node-3", "node-4")
		assert.Len(t, env.clbs(string(svc.UID)), 1)
	})

	t.Run("ExternalTrafficPolicyLocal", func(t *testing.T) {
		s := env.update("web", func(s *v1.Service) { s.Spec.ExternalTrafficPolicy = v1.ServiceExternalTrafficPolicyLocal })
		require.NotZero(t, s.Spec.HealthCheckNodePort)
		for _, n := range env.nodes {
			n.ServeHealth(int(s.Spec.HealthCheckNodePort))
		}
		// node-3 has no endpoint of the Service: kube-proxy answers 503 on its
		// healthCheckNodePort.
		env.nodes["node-3"].SetHealthy(false)
		env.answeredBy("node-3, without endpoints, to get no traffic", client, addr(9090), false, "node-1", "node-4")
		env.nodes["node-3"].SetHealthy(true)
		env.answeredBy("node-3 to come back", client, addr(9090), false, "node-1", "node-3", "node-4")
	})

	t.Run("CloudErrorIsAnEventAndLeavesNothing", func(t *testing.T) {
		bad := lbService("broken", v1.ServicePort{Name: "http", Protocol: v1.ProtocolTCP, Port: 8081})
		bad.Annotations[loadbalancer.AnnotationInternalSubnet] = "subnet-nothere1"
		created, err := env.client.CoreV1().Services("default").Create(env.ctx, bad, metav1.CreateOptions{})
		require.NoError(t, err)
		framework.Eventually(t, lbTimeout, "a Warning event with the cloud's code and message", func(ctx context.Context) error {
			events, err := env.client.CoreV1().Events("default").List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.kind=Service,involvedObject.name=broken,reason=SyncLoadBalancerFailed"})
			if err != nil {
				return err
			}
			for _, e := range events.Items {
				if e.Type == v1.EventTypeWarning && strings.Contains(e.Message, "InvalidParameter.SubnetIdNotFound") && strings.Contains(e.Message, "subnet-nothere1") {
					return nil
				}
			}
			return errorf("events: %v", events.Items)
		})
		assert.Empty(t, env.clbs(string(created.UID)), "nothing was made")
		require.NoError(t, env.client.CoreV1().Services("default").Delete(env.ctx, "broken", metav1.DeleteOptions{}))
		framework.Eventually(t, lbTimeout, "the broken Service to be deleted", func(ctx context.Context) error {
			_, err := env.client.CoreV1().Services("default").Get(ctx, "broken", metav1.GetOptions{})
			if apierrors.IsNotFound(err) {
				return nil
			}
			return errorf("still there: %v", err)
		})
	})

	t.Run("DeleteRemovesTheCLBAndTheFinalizer", func(t *testing.T) {
		uid := string(svc.UID)
		require.NoError(t, env.client.CoreV1().Services("default").Delete(env.ctx, "web", metav1.DeleteOptions{}))
		framework.Eventually(t, lbTimeout, "the Service to be gone", func(ctx context.Context) error {
			_, err := env.client.CoreV1().Services("default").Get(ctx, "web", metav1.GetOptions{})
			if apierrors.IsNotFound(err) {
				return nil
			}
			return errorf("still there: %v", err)
		})
		assert.Empty(t, env.clbs(uid))
		env.refused("the deleted load balancer's address to be closed", client, addr(9090))
	})

	if exited, err := env.ccm.Process.Exited(); exited {
		t.Fatalf("the CCM exited during the test: %v", err)
	}
}

// TestLoadBalancerL3VIP: in VIP mode the load balancer forwards to the nodes on the
// Service port (which kube-proxy DNATs for ipMode VIP; the NodeServers stand in for that
// here), so a Service without node ports works.
func TestLoadBalancerL3VIP(t *testing.T) {
	env := startLBEnv(t, "node-1", "node-2", "node-3")
	svc := lbService("vip", v1.ServicePort{Name: "http", Protocol: v1.ProtocolTCP, Port: 8443})
	svc.Annotations[loadbalancer.AnnotationMode] = "vip"
	allocate := false
	svc.Spec.AllocateLoadBalancerNodePorts = &allocate
	created, err := env.client.CoreV1().Services("default").Create(env.ctx, svc, metav1.CreateOptions{})
	require.NoError(t, err)
	assert.Zero(t, created.Spec.Ports[0].NodePort, "no node port allocated")
	env.serveTCP(8443)
	got := env.waitIngress("vip", anyIngress)
	ing := got.Status.LoadBalancer.Ingress[0]
	require.NotNil(t, ing.IPMode)
	assert.Equal(t, v1.LoadBalancerIPModeVIP, *ing.IPMode, "kube-proxy DNATs the VIP on the nodes")
	env.answeredBy("every node to answer on the Service port", env.net.Client(false), netip.AddrPortFrom(netip.MustParseAddr(ing.IP), 8443), false, "node-1", "node-2", "node-3")
	lbs := env.clbs(string(got.UID))
	require.Len(t, lbs, 1)
	ts, err := env.clb.DescribeTargets(env.ctx, &clb.DescribeTargetsRequest{LoadBalancerId: lbs[0].LoadBalancerId})
	require.NoError(t, err)
	for _, tg := range ts.Listeners[0].Targets {
		assert.Equal(t, int64(8443), tg.Port, "targets are the nodes on the Service port")
	}
}

// TestLoadBalancerCCMKilledBeforeStatus kills the CCM after it created the CLB but before
// it wrote the Service's status; the restarted CCM finishes the job with that same CLB.
// Then the CLB is deleted by hand: the Service still deletes cleanly.
func TestLoadBalancerCCMKilledBeforeStatus(t *testing.T) {
	env := startLBEnv(t, "node-1", "node-2")
	// Listener creation hangs: the CCM will be stuck between CreateLoadBalancer and the
	// status update.
	require.NoError(t, env.fc.Admin.AddFault(env.ctx, fakecloud.FaultRule{Action: "CreateListener", LatencyMs: 25000}))
	created, err := env.client.CoreV1().Services("default").Create(env.ctx, lbService("crash", v1.ServicePort{Name: "http", Protocol: v1.ProtocolTCP, Port: 7070}), metav1.CreateOptions{})
	require.NoError(t, err)
	env.serveTCP(nodePort(created, v1.ProtocolTCP))
	framework.Eventually(t, lbTimeout, "the CCM to create the CLB and start on its listeners", func(ctx context.Context) error {
		calls, err := env.fc.Admin.Calls(ctx)
		if err != nil {
			return err
		}
		if calls["CreateLoadBalancer"] < 1 || calls["CreateListener"] < 1 {
			return errorf("calls %v", calls)
		}
		return nil
	})
	require.NoError(t, env.ccm.Process.Signal(syscall.SIGKILL))
	<-env.ccm.Process.Done()
	s, err := env.client.CoreV1().Services("default").Get(env.ctx, "crash", metav1.GetOptions{})
	require.NoError(t, err)
	require.Empty(t, s.Status.LoadBalancer.Ingress, "killed before the status update")
	require.Len(t, env.clbs(string(s.UID)), 1)

	require.NoError(t, env.fc.Admin.ClearFaults(env.ctx))
	env.ccm = env.startCCM("ccm-restarted")
	got := env.waitIngress("crash", anyIngress)
	lbs := env.clbs(string(got.UID))
	require.Len(t, lbs, 1, "exactly one CLB after the restart")
	assert.Equal(t, lbs[0].LoadBalancerVips[0], got.Status.LoadBalancer.Ingress[0].IP)
	env.answeredBy("the finished load balancer to answer", env.net.Client(false), netip.AddrPortFrom(netip.MustParseAddr(lbs[0].LoadBalancerVips[0]), 7070), false, "node-1", "node-2")
	calls, err := env.fc.Admin.Calls(env.ctx)
	require.NoError(t, err)
	assert.Equal(t, 1, calls["CreateLoadBalancer"], "the restarted CCM found the CLB by its tags")

	// Someone deletes the CLB by hand; deleting the Service must not hang on it.
	del, err := env.clb.DeleteLoadBalancer(env.ctx, &clb.DeleteLoadBalancerRequest{LoadBalancerIds: []string{lbs[0].LoadBalancerId}})
	require.NoError(t, err)
	require.NoError(t, env.clb.WaitTask(env.ctx, del.RequestId))
	require.NoError(t, env.client.CoreV1().Services("default").Delete(env.ctx, "crash", metav1.DeleteOptions{}))
	framework.Eventually(t, lbTimeout, "the Service to be gone (finalizer removed)", func(ctx context.Context) error {
		_, err := env.client.CoreV1().Services("default").Get(ctx, "crash", metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("still there: %v", err)
	})
}
