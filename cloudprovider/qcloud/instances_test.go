package qcloud

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/record"
	cloudprovider "k8s.io/cloud-provider"
	cloudproviderapi "k8s.io/cloud-provider/api"

	"github.com/stratus-cloud/stratus/cloudprovider/instancelookup"
)

// fakeAPI is an in-memory DescribeInstances that records its queries and fails the test
// on any request over the real API's limits (see overRealLimits).
type fakeAPI struct {
	t         *testing.T
	mu        sync.Mutex
	instances []instancelookup.Instance
	queries   []instancelookup.Query
	err       error
}

// overRealLimits says what the real DescribeInstances would refuse in q
// (tencentcloud-sdk-go v1.0.162 cvm/v20170312): more than 100 InstanceIds, InstanceIds
// with Filters, more than 5 values in a filter, a Limit over 100.
func overRealLimits(q instancelookup.Query) string {
	switch {
	case len(q.IDs) > 0 && (q.VpcID != "" || len(q.PrivateIPs) > 0):
		return "InstanceIds and Filters in one request"
	case len(q.IDs) > 100:
		return "more than 100 InstanceIds"
	case len(q.PrivateIPs) > 5:
		return "more than 5 values in a filter"
	case q.Limit > 100 || q.Limit < 0 || q.Offset < 0:
		return "Limit or Offset out of range"
	}
	return ""
}

func (f *fakeAPI) DescribeInstances(_ context.Context, q instancelookup.Query) (instancelookup.Page, error) {
	if v := overRealLimits(q); v != "" {
		f.t.Errorf("DescribeInstances over the real limits: %s: %+v", v, q)
		return instancelookup.Page{}, errors.New("InvalidParameterValue.LimitExceeded")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.queries = append(f.queries, q)
	if f.err != nil {
		return instancelookup.Page{}, f.err
	}
	var match []instancelookup.Instance
	for _, in := range f.instances {
		if q.VpcID != "" && in.VpcID != q.VpcID ||
			len(q.IDs) > 0 && !slices.Contains(q.IDs, in.ID) ||
			len(q.PrivateIPs) > 0 && !slices.ContainsFunc(in.PrivateIPs, func(ip string) bool { return slices.Contains(q.PrivateIPs, ip) }) {
			continue
		}
		match = append(match, in)
	}
	p := instancelookup.Page{Total: len(match)}
	if q.Offset < len(match) {
		p.Instances = slices.Clone(match[q.Offset:min(len(match), q.Offset+q.Limit)])
	}
	return p, nil
}

func (f *fakeAPI) setState(id, state string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := range f.instances {
		if f.instances[i].ID == id {
			f.instances[i].State = state
		}
	}
}

func (f *fakeAPI) remove(id string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.instances = slices.DeleteFunc(f.instances, func(in instancelookup.Instance) bool { return in.ID == id })
}

func (f *fakeAPI) calls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.queries)
}

func testInstances() []instancelookup.Instance {
	return []instancelookup.Instance{
		{ID: "ins-node0001", State: "RUNNING", Type: "S5.MEDIUM2", Zone: "ap-guangzhou-1", VpcID: "vpc-stratus1", PrivateIPs: []string{"10.0.1.11"}},
		{ID: "ins-node0003", State: "RUNNING", Type: "S5.LARGE8", Zone: "ap-guangzhou-2", VpcID: "vpc-stratus1", PrivateIPs: []string{"10.0.2.11"}, PublicIPs: []string{"203.0.113.10"}},
		{ID: "ins-stopped1", State: "STOPPED", Type: "S5.LARGE8", Zone: "ap-guangzhou-3", VpcID: "vpc-stratus1", PrivateIPs: []string{"10.0.3.11"}},
		// Same private IP as node0001, other VPC: private IPs are only unique in a VPC.
		{ID: "ins-othervpc", State: "RUNNING", Type: "S5.SMALL1", Zone: "ap-guangzhou-1", VpcID: "vpc-other", PrivateIPs: []string{"10.0.1.11", "10.9.9.9"}},
	}
}

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func newTestCloud(t *testing.T, batching bool) (*Cloud, *fakeAPI, *record.FakeRecorder) {
	c, api, rec, _ := newTestCloudClock(t, batching)
	return c, api, rec
}

func newTestCloudClock(t *testing.T, batching bool) (*Cloud, *fakeAPI, *record.FakeRecorder, *clock) {
	t.Helper()
	api := &fakeAPI{t: t, instances: testInstances()}
	clk := &clock{t: time.Unix(1e9, 0)}
	cfg := (&Config{Region: "ap-guangzhou", VpcID: "vpc-stratus1", ClusterID: "c1", Instances: InstancesConfig{Batching: &batching}})
	c, err := New(cfg, Options{API: api, Now: clk.Now})
	require.NoError(t, err)
	t.Cleanup(c.Stop)
	rec := record.NewFakeRecorder(10)
	c.instances.setRecorder(rec)
	return c, api, rec, clk
}

func node(name string, mutate ...func(*v1.Node)) *v1.Node {
	n := &v1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}}
	for _, m := range mutate {
		m(n)
	}
	return n
}

func withProviderID(id string) func(*v1.Node) { return func(n *v1.Node) { n.Spec.ProviderID = id } }
func withInternalIP(ip string) func(*v1.Node) {
	return func(n *v1.Node) {
		n.Status.Addresses = append(n.Status.Addresses, v1.NodeAddress{Type: v1.NodeInternalIP, Address: ip})
	}
}

func TestInstanceMetadataMatchesNodesWithoutProviderID(t *testing.T) {
	for _, batching := range []bool{true, false} {
		c, _, _ := newTestCloud(t, batching)
		v2, ok := c.InstancesV2()
		require.True(t, ok)
		ctx := context.Background()
		for name, n := range map[string]*v1.Node{
			"name is the IP": node("10.0.2.11"),
			"InternalIP":     node("worker-a", withInternalIP("192.168.0.1"), withInternalIP("10.0.2.11")),
			"kubelet node-ip": node("worker-b", func(n *v1.Node) {
				n.Annotations = map[string]string{cloudproviderapi.AnnotationAlphaProvidedIPAddr: "10.0.2.11"}
			}),
			"providerID first": node("10.0.1.11", withProviderID("qcloud:///ap-guangzhou-2/ins-node0003")),
		} {
			md, err := v2.InstanceMetadata(ctx, n)
			require.NoError(t, err, name)
			assert.Equal(t, "qcloud:///ap-guangzhou-2/ins-node0003", md.ProviderID, name)
			assert.Equal(t, "S5.LARGE8", md.InstanceType, name)
			assert.Equal(t, "ap-guangzhou-2", md.Zone, name)
			assert.Equal(t, "ap-guangzhou", md.Region, name)
			assert.Equal(t, []v1.NodeAddress{
				{Type: v1.NodeInternalIP, Address: "10.0.2.11"},
				{Type: v1.NodeExternalIP, Address: "203.0.113.10"},
				{Type: v1.NodeHostName, Address: n.Name},
			}, md.NodeAddresses, name)
		}
	}
}

func TestInstanceMetadataIsScopedToTheVPC(t *testing.T) {
	c, _, _ := newTestCloud(t, true)
	v2, _ := c.InstancesV2()
	md, err := v2.InstanceMetadata(context.Background(), node("10.0.1.11"))
	require.NoError(t, err)
	assert.Equal(t, "qcloud:///ap-guangzhou-1/ins-node0001", md.ProviderID)
	assert.Equal(t, []v1.NodeAddress{{Type: v1.NodeInternalIP, Address: "10.0.1.11"}, {Type: v1.NodeHostName, Address: "10.0.1.11"}}, md.NodeAddresses)

	_, err = v2.InstanceMetadata(context.Background(), node("10.9.9.9"))
	assert.ErrorIs(t, err, cloudprovider.InstanceNotFound, "an instance of another VPC is not a match")
}

func TestUnmatchedNodeSaysWhyInErrorAndEvent(t *testing.T) {
	c, _, rec := newTestCloud(t, true)
	v2, _ := c.InstancesV2()
	_, err := v2.InstanceMetadata(context.Background(), node("ghost", withInternalIP("10.0.9.99")))
	require.ErrorIs(t, err, cloudprovider.InstanceNotFound)
	assert.Contains(t, err.Error(), "node ghost")
	assert.Contains(t, err.Error(), "10.0.9.99")
	assert.Contains(t, err.Error(), "vpc-stratus1")
	ev := <-rec.Events
	assert.True(t, strings.HasPrefix(ev, "Warning InstanceNotFound Cannot initialize node: node ghost: no instance in VPC vpc-stratus1 has private IP 10.0.9.99"), ev)

	_, err = v2.InstanceMetadata(context.Background(), node("no-address"))
	require.Error(t, err)
	assert.NotErrorIs(t, err, cloudprovider.InstanceNotFound)
	assert.Contains(t, err.Error(), "node no-address: no providerID and no IP address")
	assert.True(t, strings.HasPrefix(<-rec.Events, "Warning NoInstanceKey"))

	// A node without providerID that matches nothing is not "gone": never delete a Node
	// that was never tied to an instance.
	exists, err := v2.InstanceExists(context.Background(), node("ghost", withInternalIP("10.0.9.99")))
	require.NoError(t, err)
	assert.True(t, exists)
}

func TestInstanceExistsAndShutdown(t *testing.T) {
	for _, batching := range []bool{true, false} {
		c, api, _, clk := newTestCloudClock(t, batching)
		v2, _ := c.InstancesV2()
		ctx := context.Background()
		running := node("n1", withProviderID("qcloud:///ap-guangzhou-1/ins-node0001"))
		stopped := node("n3", withProviderID("qcloud:///ap-guangzhou-3/ins-stopped1"))

		exists, err := v2.InstanceExists(ctx, running)
		require.NoError(t, err)
		assert.True(t, exists)
		shutdown, err := v2.InstanceShutdown(ctx, running)
		require.NoError(t, err)
		assert.False(t, shutdown)

		exists, err = v2.InstanceExists(ctx, stopped)
		require.NoError(t, err)
		assert.True(t, exists, "a stopped instance still exists")
		shutdown, err = v2.InstanceShutdown(ctx, stopped)
		require.NoError(t, err)
		assert.True(t, shutdown)

		// Terminating: even when the cached listing says so, a fresh query decides.
		api.setState("ins-node0001", "TERMINATING")
		if batching {
			exists, err = v2.InstanceExists(ctx, running)
			require.NoError(t, err)
			assert.True(t, exists, "the listing is younger than its TTL and says RUNNING")
		}
		api.remove("ins-node0001")
		if batching {
			// A stale listing may say "still there" (never "gone") until its TTL...
			exists, err = v2.InstanceExists(ctx, running)
			require.NoError(t, err)
			assert.True(t, exists)
			clk.Add(DefaultCacheTTL + time.Second)
		}
		// ... after which the instance is missing from the listing, and a direct query
		// confirms it is gone.
		exists, err = v2.InstanceExists(ctx, running)
		require.NoError(t, err)
		assert.False(t, exists, "batching=%v", batching)
	}
}

func TestTerminatingInstanceIsConfirmedBeforeGone(t *testing.T) {
	c, api, _ := newTestCloud(t, true)
	v2, _ := c.InstancesV2()
	api.setState("ins-node0003", "TERMINATING")
	n := node("n", withProviderID("qcloud:///ap-guangzhou-2/ins-node0003"))
	before := api.calls()
	exists, err := v2.InstanceExists(context.Background(), n)
	require.NoError(t, err)
	assert.False(t, exists)
	require.Greater(t, api.calls(), before)
	assert.Equal(t, []string{"ins-node0003"}, api.queries[len(api.queries)-1].IDs, "the last query is a direct confirmation")
}

func TestErrorsAreNotGone(t *testing.T) {
	c, api, _ := newTestCloud(t, true)
	v2, _ := c.InstancesV2()
	api.err = errors.New("InternalError")
	ctx := context.Background()
	for _, n := range []*v1.Node{
		node("n1", withProviderID("qcloud:///ap-guangzhou-1/ins-node0001")),
		node("10.0.1.11"),
	} {
		exists, err := v2.InstanceExists(ctx, n)
		require.Error(t, err)
		assert.False(t, errors.Is(err, cloudprovider.InstanceNotFound))
		assert.False(t, exists)
		_, err = v2.InstanceShutdown(ctx, n)
		require.Error(t, err)
		_, err = v2.InstanceMetadata(ctx, n)
		require.Error(t, err)
		assert.Contains(t, err.Error(), "InternalError")
	}
}

func TestForeignOrMalformedProviderIDIsAnError(t *testing.T) {
	c, api, _ := newTestCloud(t, true)
	v2, _ := c.InstancesV2()
	for _, id := range []string{"aws:///us-east-1a/i-123", "qcloud:///zone-only", "qcloud:///z/not-an-instance"} {
		exists, err := v2.InstanceExists(context.Background(), node("n", withProviderID(id)))
		require.Error(t, err, id)
		assert.False(t, exists)
		assert.Contains(t, err.Error(), "node n")
	}
	assert.Equal(t, 0, api.calls())
}

func TestZones(t *testing.T) {
	c, api, _ := newTestCloud(t, true)
	zones, ok := c.Zones()
	require.True(t, ok)
	ctx := context.Background()

	z, err := zones.GetZoneByProviderID(ctx, "qcloud:///ap-guangzhou-2/ins-node0003")
	require.NoError(t, err)
	assert.Equal(t, cloudprovider.Zone{FailureDomain: "ap-guangzhou-2", Region: "ap-guangzhou"}, z)
	assert.Equal(t, 0, api.calls(), "the zone is in the providerID")
	_, err = zones.GetZoneByProviderID(ctx, "bogus")
	require.Error(t, err)

	z, err = zones.GetZoneByNodeName(ctx, types.NodeName("10.0.3.11"))
	require.NoError(t, err)
	assert.Equal(t, "ap-guangzhou-3", z.FailureDomain)

	_, err = zones.GetZoneByNodeName(ctx, "worker-a")
	require.ErrorContains(t, err, "no Kubernetes client")

	client := fake.NewClientset(
		node("worker-a", withInternalIP("10.0.1.11")),
		node("worker-b", withProviderID("qcloud:///ap-guangzhou-9/ins-x1")),
	)
	stop := make(chan struct{})
	defer close(stop)
	c.SetKubeClient(client, stop)
	z, err = zones.GetZoneByNodeName(ctx, "worker-a")
	require.NoError(t, err)
	assert.Equal(t, "ap-guangzhou-1", z.FailureDomain)
	z, err = zones.GetZoneByNodeName(ctx, "worker-b")
	require.NoError(t, err)
	assert.Equal(t, "ap-guangzhou-9", z.FailureDomain)
	_, err = zones.GetZoneByNodeName(ctx, "missing")
	require.ErrorContains(t, err, "zone of node missing")

	_, err = zones.GetZone(ctx)
	assert.ErrorIs(t, err, cloudprovider.NotImplemented)
}

func TestProviderBasics(t *testing.T) {
	c, _, _ := newTestCloud(t, true)
	assert.Equal(t, "qcloud", c.ProviderName())
	assert.True(t, c.HasClusterID())
	_, ok := c.LoadBalancer()
	assert.False(t, ok)
	_, ok = c.Routes()
	assert.False(t, ok)
	_, ok = c.Instances()
	assert.False(t, ok)
	_, ok = c.Clusters()
	assert.False(t, ok)
	assert.True(t, cloudprovider.IsCloudProvider(ProviderName), "registered by import")
}
