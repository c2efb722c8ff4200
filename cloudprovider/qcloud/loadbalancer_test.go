package qcloud

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	v1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/utils/ptr"

	"github.com/stratus-cloud/stratus/cloudapi"
	"github.com/stratus-cloud/stratus/cloudapi/clb"
	"github.com/stratus-cloud/stratus/loadbalancer"
)

func lbNode(name, instance string) *v1.Node {
	return &v1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: v1.NodeSpec{ProviderID: "qcloud:///ap-guangzhou-1/" + instance}}
}

func TestLoadBalancerAgainstFakecloud(t *testing.T) {
	c, fc, _, counter := startFakecloud(t, true, time.Second)
	id, key := fc.Credentials()
	user, err := cloudapi.New(cloudapi.Config{Endpoint: c.cfg.Endpoint, Region: fc.Region(), Credentials: cloudapi.Credentials{SecretID: id, SecretKey: key}, RateLimit: -1})
	require.NoError(t, err)
	ctx := context.Background()

	svc := &v1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web", UID: "uid-web",
			Annotations: map[string]string{loadbalancer.AnnotationLocalOnlyBindNodeWithPod: "true"}},
		Spec: v1.ServiceSpec{Type: v1.ServiceTypeLoadBalancer, ExternalTrafficPolicy: v1.ServiceExternalTrafficPolicyLocal, HealthCheckNodePort: 32100,
			Ports: []v1.ServicePort{{Name: "http", Protocol: v1.ProtocolTCP, Port: 80, NodePort: 30080}}},
	}
	ns := []*v1.Node{lbNode("node-1", "ins-node0001"), lbNode("node-2", "ins-node0002")}
	// The Nodes exist in the cluster: the endpoint watcher resyncs with the informer's.
	kube := fake.NewClientset(svc.DeepCopy(), ns[0].DeepCopy(), ns[1].DeepCopy())
	stop := make(chan struct{})
	t.Cleanup(func() { close(stop) })
	c.SetKubeClient(kube, stop)
	factory := informers.NewSharedInformerFactory(kube, 0)
	c.SetInformers(factory)
	factory.Start(stop)
	factory.WaitForCacheSync(stop)

	lbi, ok := c.LoadBalancer()
	require.True(t, ok)

	// The pods run on node-1 only.
	slice := &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Namespace: "default", Name: "web-1", Labels: map[string]string{discoveryv1.LabelServiceName: "web"}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{"192.168.1.5"}, NodeName: ptr.To("node-1"), Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)}}},
	}
	_, err = kube.DiscoveryV1().EndpointSlices("default").Create(ctx, slice, metav1.CreateOptions{})
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		got, _ := factory.Discovery().V1().EndpointSlices().Lister().EndpointSlices("default").Get("web-1")
		nodes, _ := factory.Core().V1().Nodes().Lister().List(labels.Everything())
		return got != nil && len(nodes) == 2
	}, 5*time.Second, 10*time.Millisecond)

	st, err := lbi.EnsureLoadBalancer(ctx, "kubernetes", svc, ns)
	require.NoError(t, err)
	require.Len(t, st.Ingress, 1)
	assert.Equal(t, v1.LoadBalancerIPModeProxy, *st.Ingress[0].IPMode)
	assert.Positive(t, counter.Count("CreateLoadBalancer"))

	out, err := clb.New(user).DescribeLoadBalancers(ctx, &clb.DescribeLoadBalancersRequest{})
	require.NoError(t, err)
	require.Len(t, out.LoadBalancerSet, 1)
	lbID := out.LoadBalancerSet[0].LoadBalancerId
	targets := func() []string {
		ts, err := clb.New(user).DescribeTargets(ctx, &clb.DescribeTargetsRequest{LoadBalancerId: lbID})
		require.NoError(t, err)
		var ids []string
		for _, l := range ts.Listeners {
			for _, tg := range l.Targets {
				ids = append(ids, tg.InstanceId)
			}
		}
		return ids
	}
	assert.Equal(t, []string{"ins-node0001"}, targets(), "only the node with a pod")

	got, err := kube.CoreV1().Services("default").Get(ctx, "web", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, lbID, got.Annotations[loadbalancer.AnnotationLoadBalancerID], "the read-only TKE annotation is written")

	// The pod moves to node-2: the watcher moves the target without the service controller.
	slice.Endpoints[0].NodeName = ptr.To("node-2")
	_, err = kube.DiscoveryV1().EndpointSlices("default").Update(ctx, slice, metav1.UpdateOptions{})
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		ids := targets()
		return len(ids) == 1 && ids[0] == "ins-node0002"
	}, 10*time.Second, 50*time.Millisecond)

	require.NoError(t, lbi.EnsureLoadBalancerDeleted(ctx, "kubernetes", svc))
	out, err = clb.New(user).DescribeLoadBalancers(ctx, &clb.DescribeLoadBalancersRequest{})
	require.NoError(t, err)
	assert.Empty(t, out.LoadBalancerSet)
}

func TestLoadBalancerConfig(t *testing.T) {
	cfg := &Config{Region: "ap-guangzhou", VpcID: "vpc-a1", ClusterID: "c1"}
	assert.Equal(t, DefaultLBCacheMaxAge, cfg.LBCacheMaxAge())
	s := lbSettings(cfg)
	assert.Equal(t, loadbalancer.ModeNodePort, s.DefaultMode)
	assert.False(t, s.SourceRangesOnInternal, "CLB security groups bind public load balancers only")

	cfg.LoadBalancer = LoadBalancerConfig{DefaultMode: ModeVIP, InternalSubnetID: "subnet-gz1", CacheMaxAge: durationPtr(30 * time.Second)}
	s = lbSettings(cfg)
	assert.Equal(t, loadbalancer.ModeVIP, s.DefaultMode)
	assert.Equal(t, "subnet-gz1", s.DefaultInternalSubnet)
	errs := cfg.Validate()
	require.Len(t, errs, 1)
	assert.Contains(t, errs[0].Error(), "loadBalancer.cacheMaxAge")
}
