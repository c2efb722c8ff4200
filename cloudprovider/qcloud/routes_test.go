package qcloud

import (
	"context"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	cloudprovider "k8s.io/cloud-provider"

	"github.com/stratus-cloud/stratus/cloudapi"
	"github.com/stratus-cloud/stratus/cloudapi/cvm"
	"github.com/stratus-cloud/stratus/cloudapi/vpc"
	"github.com/stratus-cloud/stratus/fakecloud"
)

// routesEnv is the provider over an in-process fakecloud, with Nodes in a fake clientset
// behind the informers the controller manager would hand over.
type routesEnv struct {
	cloud *Cloud
	fc    *fakecloud.Cloud
	vpc   *vpc.Client
	cvm   *cvm.Client
	kube  *fake.Clientset
}

func newRoutesEnv(t *testing.T, extra func(*Config)) *routesEnv {
	t.Helper()
	seed, err := fakecloud.LoadSeed(filepath.Join("..", "..", "examples", "fakecloud", "seed.yaml"))
	require.NoError(t, err)
	fc, err := fakecloud.New(fakecloud.Config{Seed: seed, RateLimit: -1})
	require.NoError(t, err)
	t.Cleanup(func() { _ = fc.Close() })
	srv := httptest.NewServer(fc)
	t.Cleanup(srv.Close)
	id, key := fc.Credentials()
	creds := cloudapi.Credentials{SecretID: id, SecretKey: key}
	cfg := (&Config{Region: fc.Region(), VpcID: "vpc-stratus1", ClusterID: "test", Endpoint: srv.URL, RouteTableID: "rtb-stratus1",
		Instances: InstancesConfig{CacheTTL: durationPtr(20 * time.Millisecond)}}).WithCredentials(creds)
	if extra != nil {
		extra(cfg)
	}
	c, err := New(cfg, Options{})
	require.NoError(t, err)

	kube := fake.NewClientset()
	factory := informers.NewSharedInformerFactory(kube, 0)
	c.SetInformers(factory)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	factory.Start(ctx.Done())
	factory.WaitForCacheSync(ctx.Done())

	client, err := cloudapi.New(cloudapi.Config{Endpoint: srv.URL, Region: fc.Region(), Credentials: creds, RateLimit: -1})
	require.NoError(t, err)
	return &routesEnv{cloud: c, fc: fc, vpc: vpc.New(client), cvm: cvm.New(client), kube: kube}
}

func (e *routesEnv) addNode(t *testing.T, name, ip, podCIDR string) *v1.Node {
	t.Helper()
	n := node(name, withInternalIP(ip))
	n.Spec.PodCIDR, n.Spec.PodCIDRs = podCIDR, []string{podCIDR}
	_, err := e.kube.CoreV1().Nodes().Create(context.Background(), n, metav1.CreateOptions{})
	require.NoError(t, err)
	return n
}

func TestRoutesAgainstFakecloud(t *testing.T) {
	e := newRoutesEnv(t, nil)
	ctx := context.Background()
	r, ok := e.cloud.Routes()
	require.True(t, ok)
	n1 := e.addNode(t, "node-1", "10.0.1.11", "10.244.1.0/24")
	n2 := e.addNode(t, "node-2", "10.0.1.12", "10.244.2.0/24")
	for _, n := range []*v1.Node{n1, n2} {
		require.NoError(t, r.CreateRoute(ctx, "kubernetes", "", &cloudprovider.Route{TargetNode: types.NodeName(n.Name), TargetNodeAddresses: n.Status.Addresses, DestinationCIDR: n.Spec.PodCIDR}))
	}
	require.Eventually(t, func() bool {
		got, err := r.ListRoutes(ctx, "kubernetes")
		return err == nil && len(got) == 2 && got[0].TargetNode != "" && got[1].TargetNode != ""
	}, 5*time.Second, 10*time.Millisecond, "the informer sees both nodes")

	// The instance behind node-2 stops: its route is a blackhole once the listing is fresh.
	_, err := e.cvm.StopInstances(ctx, &cvm.StopInstancesRequest{InstanceIds: []string{"ins-node0002"}})
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		got, err := r.ListRoutes(ctx, "kubernetes")
		if err != nil {
			return false
		}
		for _, x := range got {
			if x.DestinationCIDR == "10.244.2.0/24" {
				return x.Blackhole && x.TargetNode == "node-2"
			}
		}
		return false
	}, 5*time.Second, 20*time.Millisecond)
	got, err := r.ListRoutes(ctx, "kubernetes")
	require.NoError(t, err)
	for _, x := range got {
		assert.Equal(t, x.DestinationCIDR == "10.244.2.0/24", x.Blackhole, x.DestinationCIDR)
	}
	// A stopped node gets no new route: it would only be a blackhole.
	err = r.CreateRoute(ctx, "kubernetes", "", &cloudprovider.Route{TargetNode: "node-2", TargetNodeAddresses: n2.Status.Addresses, DestinationCIDR: "10.244.22.0/24"})
	assert.ErrorContains(t, err, "not live")
}

func TestRoutesTableDiscovery(t *testing.T) {
	e := newRoutesEnv(t, func(c *Config) { c.RouteTableID = "" })
	r, ok := e.cloud.Routes()
	require.True(t, ok, "the route controller starts; ListRoutes says what is wrong")
	_, err := r.ListRoutes(context.Background(), "kubernetes")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "no route table of VPC vpc-stratus1 is tagged stratus.io/cluster=test")

	out, err := e.vpc.CreateRouteTable(context.Background(), &vpc.CreateRouteTableRequest{VpcId: "vpc-stratus1", RouteTableName: "pods",
		Tags: []cloudapi.Tag{{Key: "stratus.io/cluster", Value: "test"}}})
	require.NoError(t, err)
	_, err = r.ListRoutes(context.Background(), "kubernetes")
	require.NoError(t, err, "tagging the table fixes it without a restart")
	id, err := e.cloud.routes.table.Resolve(context.Background())
	require.NoError(t, err)
	assert.Equal(t, out.RouteTable.RouteTableId, id)
}
