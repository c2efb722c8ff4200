//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/yaml"

	"github.com/stratus-cloud/stratus/cloudapi/cvm"
	"github.com/stratus-cloud/stratus/cloudapi/vpc"
	"github.com/stratus-cloud/stratus/fakecloud"
	fccvm "github.com/stratus-cloud/stratus/fakecloud/cvm"
	"github.com/stratus-cloud/stratus/test/e2e/framework"
)

const (
	routesClusterCIDR = "10.244.0.0/16"
	routesMarker      = "stratus.io/cluster=e2e" // the cluster id framework.WriteCloudConfig sets
	routeTimeout      = 90 * time.Second
	routesNodes       = 50
	// Routes that are not this cluster's, inside its cluster CIDR: they must survive
	// every scenario.
	otherClusterDest = "10.244.250.0/24"
	handMadeDest     = "10.244.251.0/24"
)

// routesEnv is a control plane, a fakecloud with an instance per node, and a CCM running
// the route controller, as a cluster with --configure-cloud-routes runs it.
type routesEnv struct {
	api    *framework.APIServer
	fc     *framework.Fakecloud
	ccm    *framework.CCM
	client kubernetes.Interface
	vpc    *vpc.Client
	cvm    *cvm.Client
}

// routesNode is node i: instance ins-rt<i>, private IP 10.0.1.<100+i>, podCIDR 10.244.<i>.0/24.
func routesNode(i int) (name, instanceID, ip, podCIDR string) {
	return fmt.Sprintf("rt-node-%02d", i), fmt.Sprintf("ins-rt%04d", i), fmt.Sprintf("10.0.1.%d", 100+i), fmt.Sprintf("10.244.%d.0/24", i)
}

func writeRoutesSeed(t *testing.T, instances int) string {
	t.Helper()
	root, err := framework.RepoRoot()
	require.NoError(t, err)
	seed, err := fakecloud.LoadSeed(filepath.Join(root, "examples", "fakecloud", "seed.yaml"))
	require.NoError(t, err)
	seeded, err := fccvm.SeedInstances(seed)
	require.NoError(t, err)
	for i := range instances {
		_, id, ip, _ := routesNode(i)
		seeded = append(seeded, fccvm.SeedInstance{InstanceID: id, Name: id, Zone: "ap-guangzhou-1", InstanceType: "S5.MEDIUM2", SubnetID: "subnet-gz1", PrivateIP: ip})
	}
	fccvm.SetSeed(seed, seeded)
	b, err := yaml.Marshal(seed)
	require.NoError(t, err)
	path := filepath.Join(t.TempDir(), "seed.yaml")
	require.NoError(t, os.WriteFile(path, b, 0o600))
	return path
}

func startRoutesEnv(t *testing.T) *routesEnv {
	t.Helper()
	etcd := framework.StartEtcd(t)
	apiServer := framework.StartAPIServer(t, etcd)
	fc := framework.StartFakecloud(t, framework.WithSeed(writeRoutesSeed(t, routesNodes+10)))
	env := &routesEnv{api: apiServer, fc: fc, client: apiServer.Client, vpc: vpc.New(fc.Client(t)), cvm: fc.CVM(t)}

	// Before the CCM starts: another cluster's route and one made by hand, in the table
	// the CCM manages and inside its cluster CIDR.
	_, err := env.vpc.CreateRoutes(context.Background(), &vpc.CreateRoutesRequest{RouteTableId: "rtb-stratus1", Routes: []vpc.Route{
		{DestinationCidrBlock: otherClusterDest, GatewayType: vpc.GatewayTypeNormalCVM, GatewayId: "10.0.1.11", RouteDescription: "stratus.io/cluster=other"},
		{DestinationCidrBlock: handMadeDest, GatewayType: vpc.GatewayTypeNormalCVM, GatewayId: "10.0.1.12", RouteDescription: "ops: to the build box"},
	}})
	require.NoError(t, err)

	cloudConfig := framework.WriteCloudConfig(t, t.TempDir(), fc, e2eCloudConfig)
	env.ccm = framework.StartCCM(t, apiServer, cloudConfig,
		framework.WithControllers("cloud-node,cloud-node-lifecycle,route"),
		framework.WithCCMArgs("--configure-cloud-routes=true", "--allocate-node-cidrs=false",
			"--cluster-cidr="+routesClusterCIDR, "--route-reconciliation-period=3s"))
	return env
}

// TestCCMRoutes runs the route controller in the CCM against kube-apiserver and
// fakecloud: pod routes appear for Nodes with a podCIDR, follow the nodes and their
// instances, survive cloud faults, and never touch routes that are not the cluster's.
func TestCCMRoutes(t *testing.T) {
	env := startRoutesEnv(t)

	t.Run("FiftyNodesFiftyRoutes", func(t *testing.T) { testFiftyRoutes(t, env) })
	t.Run("DeletedNodeLosesItsRoute", func(t *testing.T) { testDeletedNode(t, env) })
	t.Run("PodCIDRMovesToAnotherNode", func(t *testing.T) { testPodCIDRMoves(t, env) })
	t.Run("StoppedThenTerminatedInstance", func(t *testing.T) { testStoppedThenTerminated(t, env) })
	t.Run("FaultsOnlyDelay", func(t *testing.T) { testRouteFaults(t, env) })
	t.Run("RefusedPodCIDRsGiveEvents", func(t *testing.T) { testRefusedPodCIDRs(t, env) })

	if exited, err := env.ccm.Process.Exited(); exited {
		t.Fatalf("the CCM exited during the test: %v", err)
	}
}

// registerRoutedNode registers node i as a kubelet does and gives it its podCIDR as node
// IPAM would.
func registerRoutedNode(t *testing.T, env *routesEnv, i int, podCIDR string) string {
	t.Helper()
	ctx := context.Background()
	name, _, ip, cidr := routesNode(i)
	if podCIDR != "" {
		cidr = podCIDR
	}
	_, err := framework.RegisterNode(ctx, env.client, name, ip)
	require.NoError(t, err)
	require.NoError(t, retry.RetryOnConflict(retry.DefaultRetry, func() error {
		n, err := env.client.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		n.Spec.PodCIDR, n.Spec.PodCIDRs = cidr, []string{cidr}
		_, err = env.client.CoreV1().Nodes().Update(ctx, n, metav1.UpdateOptions{})
		return err
	}))
	return name
}

// table returns the route table by destination.
func (env *routesEnv) table(ctx context.Context) (map[string]vpc.Route, error) {
	out, err := env.vpc.DescribeRouteTables(ctx, &vpc.DescribeRouteTablesRequest{RouteTableIds: []string{"rtb-stratus1"}})
	if err != nil {
		return nil, err
	}
	if len(out.RouteTableSet) != 1 {
		return nil, errorf("route table rtb-stratus1: %d tables in the answer", len(out.RouteTableSet))
	}
	m := map[string]vpc.Route{}
	for _, r := range out.RouteTableSet[0].RouteSet {
		if old, dup := m[r.DestinationCidrBlock]; dup {
			return nil, framework.Permanent(errorf("two routes to %s: via %s and via %s", r.DestinationCidrBlock, old.GatewayId, r.GatewayId))
		}
		m[r.DestinationCidrBlock] = r
	}
	return m, nil
}

// routed waits until dest is routed by this cluster via gateway ("" = not routed at all).
func routed(env *routesEnv, dest, gateway string) framework.Condition {
	return func(ctx context.Context) error {
		tbl, err := env.table(ctx)
		if err != nil {
			return err
		}
		r, ok := tbl[dest]
		switch {
		case gateway == "" && ok:
			return errorf("%s is still routed via %s (%q)", dest, r.GatewayId, r.RouteDescription)
		case gateway == "":
			return nil
		case !ok:
			return errorf("no route to %s yet", dest)
		case r.GatewayId != gateway || r.GatewayType != vpc.GatewayTypeNormalCVM || r.RouteDescription != routesMarker:
			return errorf("route to %s is %s %s %q", dest, r.GatewayType, r.GatewayId, r.RouteDescription)
		}
		return nil
	}
}

func networkCondition(n *corev1.Node) *corev1.NodeCondition {
	for i := range n.Status.Conditions {
		if n.Status.Conditions[i].Type == corev1.NodeNetworkUnavailable {
			return &n.Status.Conditions[i]
		}
	}
	return nil
}

func networkAvailable(client kubernetes.Interface, name string) framework.Condition {
	return func(ctx context.Context) error {
		n, err := client.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if c := networkCondition(n); c == nil || c.Status != corev1.ConditionFalse || c.Reason != "RouteCreated" {
			return errorf("node %s: NetworkUnavailable is %+v", name, c)
		}
		return nil
	}
}

// foreignRoutesIntact fails unless the other cluster's and the hand-made route are as made.
func foreignRoutesIntact(t *testing.T, env *routesEnv) {
	t.Helper()
	tbl, err := env.table(context.Background())
	require.NoError(t, err)
	assert.Equal(t, "10.0.1.11", tbl[otherClusterDest].GatewayId)
	assert.Equal(t, "stratus.io/cluster=other", tbl[otherClusterDest].RouteDescription)
	assert.Equal(t, "10.0.1.12", tbl[handMadeDest].GatewayId)
	assert.Equal(t, "ops: to the build box", tbl[handMadeDest].RouteDescription)
}

func testFiftyRoutes(t *testing.T, env *routesEnv) {
	start := time.Now()
	for i := range routesNodes {
		registerRoutedNode(t, env, i, "")
	}
	framework.Eventually(t, routeTimeout, fmt.Sprintf("%d routes of cluster e2e", routesNodes), func(ctx context.Context) error {
		tbl, err := env.table(ctx)
		if err != nil {
			return err
		}
		var missing []string
		for i := range routesNodes {
			_, _, ip, cidr := routesNode(i)
			if err := routed(env, cidr, ip)(ctx); err != nil {
				missing = append(missing, cidr)
			}
		}
		if len(missing) > 0 {
			return errorf("%d of %d routes missing or wrong (table has %d): %v", len(missing), routesNodes, len(tbl), missing[:min(5, len(missing))])
		}
		return nil
	})
	t.Logf("%d routes created %s after the first registration", routesNodes, time.Since(start).Round(time.Millisecond))
	for i := range routesNodes {
		name, _, _, _ := routesNode(i)
		framework.Eventually(t, routeTimeout, "node "+name+" NetworkUnavailable=False RouteCreated", networkAvailable(env.client, name))
	}
	calls, err := env.fc.Admin.Calls(context.Background())
	require.NoError(t, err)
	t.Logf("cloud calls so far: %v", calls)
	assert.LessOrEqual(t, calls["CreateRoutes"], routesNodes/5, "routes are created in batches, not one call per node")
	foreignRoutesIntact(t, env)
}

func testDeletedNode(t *testing.T, env *routesEnv) {
	ctx := context.Background()
	name, _, _, cidr := routesNode(3)
	require.NoError(t, env.client.CoreV1().Nodes().Delete(ctx, name, metav1.DeleteOptions{}))
	framework.Eventually(t, routeTimeout, "the route of deleted node "+name+" to go", routed(env, cidr, ""))
	// The others stay.
	_, _, ip4, cidr4 := routesNode(4)
	require.NoError(t, routed(env, cidr4, ip4)(ctx))
	foreignRoutesIntact(t, env)
}

// A node goes and a new one gets its podCIDR at once (node IPAM reuses it): the route to
// that destination is replaced by one via the new node, never duplicated.
func testPodCIDRMoves(t *testing.T, env *routesEnv) {
	ctx := context.Background()
	oldName, _, oldIP, cidr := routesNode(10)
	require.NoError(t, routed(env, cidr, oldIP)(ctx))
	require.NoError(t, env.client.CoreV1().Nodes().Delete(ctx, oldName, metav1.DeleteOptions{}))
	newName := registerRoutedNode(t, env, routesNodes+7, cidr)
	_, _, newIP, _ := routesNode(routesNodes + 7)
	framework.Eventually(t, routeTimeout, cidr+" via the new node "+newName, routed(env, cidr, newIP))
	framework.Eventually(t, routeTimeout, "node "+newName+" NetworkUnavailable=False", networkAvailable(env.client, newName))
	foreignRoutesIntact(t, env)
}

func testStoppedThenTerminated(t *testing.T, env *routesEnv) {
	ctx := context.Background()
	name, id, ip, cidr := routesNode(5)
	_, err := env.cvm.StopInstances(ctx, &cvm.StopInstancesRequest{InstanceIds: []string{id}})
	require.NoError(t, err)
	// A stopped instance carries no traffic: its route is a blackhole, removed, and not
	// made again while it is stopped; the node says its network is unavailable.
	framework.Eventually(t, routeTimeout, "the route of stopped "+name+" to go", routed(env, cidr, ""))
	framework.Eventually(t, routeTimeout, "node "+name+" NetworkUnavailable=True", nodeCond(env.client, name, func(n *corev1.Node) bool {
		c := networkCondition(n)
		return c != nil && c.Status == corev1.ConditionTrue
	}))
	// Terminated: kube-controller-manager marks the Node Unknown (played by the test),
	// the CCM deletes it, and the route never comes back.
	require.NoError(t, framework.SetNodeReady(ctx, env.client, name, corev1.ConditionUnknown))
	_, err = env.cvm.TerminateInstances(ctx, &cvm.TerminateInstancesRequest{InstanceIds: []string{id}})
	require.NoError(t, err)
	framework.Eventually(t, routeTimeout, "node "+name+" to be deleted", func(ctx context.Context) error {
		_, err := env.client.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		return errorf("node %s still there (%v)", name, err)
	})
	framework.Consistently(t, 8*time.Second, "no route to "+cidr+" via "+ip, routed(env, cidr, ""))
	foreignRoutesIntact(t, env)
}

func testRouteFaults(t *testing.T, env *routesEnv) {
	ctx := context.Background()
	for _, f := range []fakecloud.FaultRule{
		{Action: "CreateRoutes", FailNext: 4, Code: "InternalError"},
		{Action: "CreateRoutes", ErrorRate: 0.3, Code: "RequestLimitExceeded"},
		{Action: "DescribeRouteTables", ErrorRate: 0.3, Code: "InternalError"},
		{Action: "DescribeInstances", FailNext: 3, Code: "RequestLimitExceeded"},
	} {
		require.NoError(t, env.fc.Admin.AddFault(ctx, f))
	}
	var names []string
	for i := routesNodes; i < routesNodes+5; i++ {
		names = append(names, registerRoutedNode(t, env, i, ""))
	}
	for i := routesNodes; i < routesNodes+5; i++ {
		_, _, ip, cidr := routesNode(i)
		framework.Eventually(t, routeTimeout, "route "+cidr+" despite the faults", routed(env, cidr, ip))
	}
	require.NoError(t, env.fc.Admin.ClearFaults(ctx))
	for _, name := range names {
		framework.Eventually(t, routeTimeout, "node "+name+" NetworkUnavailable=False", networkAvailable(env.client, name))
	}
	foreignRoutesIntact(t, env)
}

func testRefusedPodCIDRs(t *testing.T, env *routesEnv) {
	ctx := context.Background()
	cases := []struct {
		name, podCIDR, code string
		node                int
	}{
		{"inside the VPC CIDR", "10.0.200.0/24", "InvalidParameterValue.VpcCidrConflict", routesNodes + 5},
		{"a hand-made route's destination", handMadeDest, "InvalidParameterValue.Duplicate", routesNodes + 6},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			name := registerRoutedNode(t, env, tc.node, tc.podCIDR)
			framework.Eventually(t, routeTimeout, "a Warning event on node "+name+" with "+tc.code, func(ctx context.Context) error {
				evs, err := env.client.CoreV1().Events("").List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.kind=Node,involvedObject.name=" + name})
				if err != nil {
					return err
				}
				var seen []string
				for _, e := range evs.Items {
					if e.Type == corev1.EventTypeWarning && strings.Contains(e.Message, tc.code) {
						return nil
					}
					seen = append(seen, e.Reason+": "+e.Message)
				}
				return errorf("events of node %s: %v", name, seen)
			})
			framework.Eventually(t, routeTimeout, "node "+name+" NetworkUnavailable=True", nodeCond(env.client, name, func(n *corev1.Node) bool {
				c := networkCondition(n)
				return c != nil && c.Status == corev1.ConditionTrue
			}))
		})
	}
	// Only those nodes: every other routed node still has its network.
	nodes, err := env.client.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	require.NoError(t, err)
	refused := []string{}
	for _, tc := range cases {
		n, _, _, _ := routesNode(tc.node)
		refused = append(refused, n)
	}
	for _, n := range nodes.Items {
		if slices.Contains(refused, n.Name) || len(n.Spec.PodCIDRs) == 0 {
			continue
		}
		c := networkCondition(&n)
		if assert.NotNil(t, c, n.Name) {
			assert.Equal(t, corev1.ConditionFalse, c.Status, "node %s: %s", n.Name, c.Message)
		}
	}
	foreignRoutesIntact(t, env)
}

// TestCCMRoutesWithManifestFlags runs the CCM with the example Deployment's own flags (its
// cloud-config and serving address aside): routes are on there, and a Node with a
// podCIDR gets its route.
func TestCCMRoutesWithManifestFlags(t *testing.T) {
	var args []string
	for _, a := range manifestDeployment(t).Spec.Template.Spec.Containers[0].Args {
		switch name, _, _ := strings.Cut(a, "="); name {
		case "--cloud-config", "--secure-port", "--bind-address", "--leader-elect", "--leader-elect-resource-namespace", "--leader-elect-resource-name":
		default:
			args = append(args, a)
		}
	}
	require.Contains(t, args, "--configure-cloud-routes=true")
	etcd := framework.StartEtcd(t)
	apiServer := framework.StartAPIServer(t, etcd)
	fc := framework.StartFakecloud(t, framework.WithSeed(writeRoutesSeed(t, 2)))
	cloudConfig := framework.WriteCloudConfig(t, t.TempDir(), fc, e2eCloudConfig)
	ccm := framework.StartCCM(t, apiServer, cloudConfig, framework.WithCCMArgs(args...))
	env := &routesEnv{api: apiServer, fc: fc, ccm: ccm, client: apiServer.Client, vpc: vpc.New(fc.Client(t)), cvm: fc.CVM(t)}
	for i := range 2 {
		registerRoutedNode(t, env, i, "")
	}
	for i := range 2 {
		name, _, ip, cidr := routesNode(i)
		framework.Eventually(t, routeTimeout, "route "+cidr+" via "+ip, routed(env, cidr, ip))
		framework.Eventually(t, routeTimeout, "node "+name+" NetworkUnavailable=False", networkAvailable(env.client, name))
	}
}
