//go:build e2e

package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/stratus-cloud/stratus/cloudapi"
	"github.com/stratus-cloud/stratus/cloudapi/cvm"
	"github.com/stratus-cloud/stratus/fakecloud"
	"github.com/stratus-cloud/stratus/test/e2e/framework"
)

const (
	shutdownTaintKey = "node.cloudprovider.kubernetes.io/shutdown"
	// initTimeout is generous for CI next to compilers; on an idle machine a node is
	// initialized in well under a second.
	initTimeout = 45 * time.Second
	// e2eCloudConfig keeps the instance listing young so that stop/start/terminate show up
	// within a few node-monitor periods.
	e2eCloudConfig = "instances: {cacheTTL: 2s}\n"
)

// ccmEnv is a control plane, a fakecloud serving the example seed, and one CCM.
type ccmEnv struct {
	api    *framework.APIServer
	fc     *framework.Fakecloud
	ccm    *framework.CCM
	client kubernetes.Interface
	cvm    *cvm.Client
}

func startCCMEnv(t *testing.T, opts ...framework.CCMOption) *ccmEnv {
	t.Helper()
	etcd := framework.StartEtcd(t)
	api := framework.StartAPIServer(t, etcd)
	fc := framework.StartFakecloud(t)
	cloudConfig := framework.WriteCloudConfig(t, t.TempDir(), fc, e2eCloudConfig)
	ccm := framework.StartCCM(t, api, cloudConfig, opts...)
	return &ccmEnv{api: api, fc: fc, ccm: ccm, client: api.Client, cvm: fc.CVM(t)}
}

// TestCCMNodeLifecycle runs the CCM as a process against kube-apiserver and fakecloud and
// checks, on the Node objects and in fakecloud, what happens to nodes over their life.
// The subtests share the environment and run in order.
func TestCCMNodeLifecycle(t *testing.T) {
	env := startCCMEnv(t, framework.WithServing())

	t.Run("InitializesNodes", func(t *testing.T) { testInitializesNodes(t, env) })
	t.Run("ShutdownTaintAndDeletion", func(t *testing.T) { testShutdownAndDeletion(t, env) })
	t.Run("UnmatchedNodeStaysUninitialized", func(t *testing.T) { testUnmatchedNode(t, env) })
	t.Run("CloudErrorsDelayButNeverCorrupt", func(t *testing.T) { testCloudErrors(t, env) })
	t.Run("HealthzAndMetrics", func(t *testing.T) { testHealthzAndMetrics(t, env) })

	if exited, err := env.ccm.Process.Exited(); exited {
		t.Fatalf("the CCM exited during the test: %v", err)
	}
	log, err := os.ReadFile(env.ccm.Process.LogPath)
	require.NoError(t, err)
	assert.NotContains(t, string(log), env.fc.Credentials.SecretKey, "the secret key must never be logged")
	assert.Contains(t, string(log), env.fc.Credentials.SecretID[:6], "the log says which key is used")
}

func testInitializesNodes(t *testing.T, env *ccmEnv) {
	ctx := context.Background()
	start := time.Now()
	_, err := framework.RegisterNode(ctx, env.client, "node-3", "10.0.2.11")
	require.NoError(t, err)
	_, err = framework.RegisterNode(ctx, env.client, "node-1", "10.0.1.11")
	require.NoError(t, err)

	n3 := waitInitialized(t, env.client, "node-3")
	t.Logf("node-3 initialized %s after registration", time.Since(start).Round(time.Millisecond))
	assert.Equal(t, "qcloud:///ap-guangzhou-2/ins-node0003", n3.Spec.ProviderID)
	assert.ElementsMatch(t, []corev1.NodeAddress{
		{Type: corev1.NodeInternalIP, Address: "10.0.2.11"},
		{Type: corev1.NodeExternalIP, Address: "203.0.113.10"},
		{Type: corev1.NodeHostName, Address: "node-3"},
	}, n3.Status.Addresses)
	assertCloudLabels(t, n3, "ap-guangzhou-2", "S5.LARGE8")

	n1 := waitInitialized(t, env.client, "node-1")
	assert.Equal(t, "qcloud:///ap-guangzhou-1/ins-node0001", n1.Spec.ProviderID)
	assert.ElementsMatch(t, []corev1.NodeAddress{
		{Type: corev1.NodeInternalIP, Address: "10.0.1.11"},
		{Type: corev1.NodeHostName, Address: "node-1"},
	}, n1.Status.Addresses, "no public IP, no ExternalIP")
	assertCloudLabels(t, n1, "ap-guangzhou-1", "S5.MEDIUM2")

	// In fakecloud: the CCM asked for instances and changed nothing.
	calls, err := env.fc.Admin.Calls(ctx)
	require.NoError(t, err)
	assert.Positive(t, calls["DescribeInstances"])
	for action := range calls {
		assert.Equal(t, "DescribeInstances", action, "the node controllers only read the cloud")
	}
	inst := describe(t, env, "ins-node0003")
	require.NotNil(t, inst)
	assert.Equal(t, cvm.StateRunning, inst.InstanceState)
	assert.Equal(t, n3.Labels[corev1.LabelTopologyZone], inst.Placement.Zone)
	assert.Equal(t, n3.Labels[corev1.LabelInstanceTypeStable], inst.InstanceType)
}

func testShutdownAndDeletion(t *testing.T, env *ccmEnv) {
	ctx := context.Background()
	_, err := framework.RegisterNode(ctx, env.client, "node-2", "10.0.1.12")
	require.NoError(t, err)
	n := waitInitialized(t, env.client, "node-2")
	require.Equal(t, "qcloud:///ap-guangzhou-1/ins-node0002", n.Spec.ProviderID)
	assert.False(t, hasTaint(n, shutdownTaintKey))

	// The instance stops: its kubelet stops posting status, kube-controller-manager marks
	// the Node Unknown (played by the test), and the CCM finds the instance STOPPED.
	_, err = env.cvm.StopInstances(ctx, &cvm.StopInstancesRequest{InstanceIds: []string{"ins-node0002"}})
	require.NoError(t, err)
	require.NoError(t, framework.SetNodeReady(ctx, env.client, "node-2", corev1.ConditionUnknown))
	framework.Eventually(t, initTimeout, "node-2 to get the shutdown taint", nodeCond(env.client, "node-2", func(n *corev1.Node) bool {
		return hasTaint(n, shutdownTaintKey)
	}))
	assert.Equal(t, cvm.StateStopped, describe(t, env, "ins-node0002").InstanceState)

	// Started again: the kubelet comes back and reports Ready; the taint goes.
	_, err = env.cvm.StartInstances(ctx, &cvm.StartInstancesRequest{InstanceIds: []string{"ins-node0002"}})
	require.NoError(t, err)
	assert.Equal(t, cvm.StateRunning, describe(t, env, "ins-node0002").InstanceState)
	require.NoError(t, framework.SetNodeReady(ctx, env.client, "node-2", corev1.ConditionTrue))
	framework.Eventually(t, initTimeout, "node-2 to lose the shutdown taint", nodeCond(env.client, "node-2", func(n *corev1.Node) bool {
		return !hasTaint(n, shutdownTaintKey)
	}))

	// Terminated: the Node is deleted.
	require.NoError(t, framework.SetNodeReady(ctx, env.client, "node-2", corev1.ConditionUnknown))
	_, err = env.cvm.TerminateInstances(ctx, &cvm.TerminateInstancesRequest{InstanceIds: []string{"ins-node0002"}})
	require.NoError(t, err)
	framework.Eventually(t, initTimeout, "node-2 to be deleted", func(ctx context.Context) error {
		_, err := env.client.CoreV1().Nodes().Get(ctx, "node-2", metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		if err != nil {
			return err
		}
		return errorf("node-2 still exists")
	})
	assert.Nil(t, describe(t, env, "ins-node0002"), "gone from fakecloud too")
	// The other nodes are untouched.
	for _, name := range []string{"node-1", "node-3"} {
		_, err := env.client.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
		assert.NoError(t, err, name)
	}
}

func testUnmatchedNode(t *testing.T, env *ccmEnv) {
	ctx := context.Background()
	out, err := env.cvm.DescribeInstances(ctx, &cvm.DescribeInstancesRequest{Filters: []cloudapi.Filter{{Name: "private-ip-address", Values: []string{"10.0.1.99"}}}})
	require.NoError(t, err)
	require.Zero(t, out.TotalCount, "no instance in fakecloud has 10.0.1.99")

	_, err = framework.RegisterNode(ctx, env.client, "ghost", "10.0.1.99")
	require.NoError(t, err)

	// The reason is visible on the Node as an event, and in the CCM's log.
	framework.Eventually(t, initTimeout, "an InstanceNotFound event on node ghost", func(ctx context.Context) error {
		events, err := env.client.CoreV1().Events("").List(ctx, metav1.ListOptions{
			FieldSelector: "involvedObject.kind=Node,involvedObject.name=ghost,reason=InstanceNotFound",
		})
		if err != nil {
			return err
		}
		for _, e := range events.Items {
			if e.Type == corev1.EventTypeWarning && strings.Contains(e.Message, "node ghost") && strings.Contains(e.Message, "10.0.1.99") {
				return nil
			}
		}
		return errorf("events: %v", events.Items)
	})
	framework.Eventually(t, initTimeout, "a CCM log line naming node ghost", func(context.Context) error {
		if env.ccm.LogContains("node ghost: no instance in VPC vpc-stratus1 has private IP 10.0.1.99") {
			return nil
		}
		return errorf("not logged yet")
	})

	// It stays uninitialized and is not deleted, even once it looks NotReady to the
	// lifecycle controller, and nothing crashes.
	require.NoError(t, framework.SetNodeReady(ctx, env.client, "ghost", corev1.ConditionUnknown))
	framework.Consistently(t, 8*time.Second, "node ghost to stay, uninitialized", nodeCond(env.client, "ghost", func(n *corev1.Node) bool {
		return hasTaint(n, framework.UninitializedTaintKey) && n.Spec.ProviderID == "" && n.Labels[corev1.LabelTopologyZone] == ""
	}))
	exited, _ := env.ccm.Process.Exited()
	require.False(t, exited, "the CCM is still running")
}

func testCloudErrors(t *testing.T, env *ccmEnv) {
	ctx := context.Background()
	// node-1 looks NotReady: the lifecycle controller asks the cloud about it every 2s.
	require.NoError(t, framework.SetNodeReady(ctx, env.client, "node-1", corev1.ConditionUnknown))
	before, err := env.fc.DescribeInstancesCalls(ctx)
	require.NoError(t, err)

	// Phase 1: every DescribeInstances fails. An instance created now (so that no listing
	// the CCM made before the failures can hold it) and its node cannot be matched, and no
	// error may read as "instance gone" or "shut down".
	require.NoError(t, env.fc.Admin.AddFault(ctx, fakecloud.FaultRule{Action: "DescribeInstances", ErrorRate: 1, Code: cloudapi.CodeInternalError}))
	run, err := env.cvm.RunInstances(ctx, &cvm.RunInstancesRequest{
		Placement:    &cvm.Placement{Zone: "ap-guangzhou-3"},
		InstanceType: "S5.LARGE8",
		ImageId:      "img-12345678",
		VirtualPrivateCloud: &cvm.VirtualPrivateCloud{
			VpcId: "vpc-stratus1", SubnetId: "subnet-gz3", PrivateIpAddresses: []string{"10.0.3.50"},
		},
		InstanceName: "node-5",
	})
	require.NoError(t, err)
	require.Len(t, run.InstanceIdSet, 1)
	id := run.InstanceIdSet[0]
	_, err = framework.RegisterNode(ctx, env.client, "node-5", "10.0.3.50")
	require.NoError(t, err)
	framework.Consistently(t, 8*time.Second, "node-1 kept and node-5 uninitialized while the cloud fails", func(ctx context.Context) error {
		n1, err := env.client.CoreV1().Nodes().Get(ctx, "node-1", metav1.GetOptions{})
		if err != nil {
			return err
		}
		if hasTaint(n1, shutdownTaintKey) || n1.Spec.ProviderID != "qcloud:///ap-guangzhou-1/ins-node0001" {
			return errorf("node-1 changed: taints %v providerID %q", n1.Spec.Taints, n1.Spec.ProviderID)
		}
		n5, err := env.client.CoreV1().Nodes().Get(ctx, "node-5", metav1.GetOptions{})
		if err != nil {
			return err
		}
		if !hasTaint(n5, framework.UninitializedTaintKey) || n5.Spec.ProviderID != "" {
			return errorf("node-5 initialized without the cloud: %v %q", n5.Spec.Taints, n5.Spec.ProviderID)
		}
		return nil
	})
	during, err := env.fc.DescribeInstancesCalls(ctx)
	require.NoError(t, err)
	assert.Greater(t, during, before, "the CCM kept asking (and got errors)")

	// Phase 2: throttling for the next calls and random failures, then recovery: node-5
	// gets exactly its instance's values.
	require.NoError(t, env.fc.Admin.ClearFaults(ctx))
	require.NoError(t, env.fc.Admin.AddFault(ctx, fakecloud.FaultRule{Action: "DescribeInstances", FailNext: 4, Code: cloudapi.CodeRequestLimitExceeded}))
	require.NoError(t, env.fc.Admin.AddFault(ctx, fakecloud.FaultRule{Action: "DescribeInstances", ErrorRate: 0.3, Code: cloudapi.CodeInternalError}))
	n5 := waitInitialized(t, env.client, "node-5")
	require.NoError(t, env.fc.Admin.ClearFaults(ctx))
	assert.Equal(t, "qcloud:///ap-guangzhou-3/"+id, n5.Spec.ProviderID)
	assert.ElementsMatch(t, []corev1.NodeAddress{
		{Type: corev1.NodeInternalIP, Address: "10.0.3.50"},
		{Type: corev1.NodeHostName, Address: "node-5"},
	}, n5.Status.Addresses)
	assertCloudLabels(t, n5, "ap-guangzhou-3", "S5.LARGE8")
	after, err := env.fc.DescribeInstancesCalls(ctx)
	require.NoError(t, err)
	assert.GreaterOrEqual(t, after-during, 5, "the 4 throttled calls were made and retried")
	inst := describe(t, env, id)
	require.NotNil(t, inst)
	assert.Equal(t, []string{"10.0.3.50"}, inst.PrivateIpAddresses)

	n1, err := env.client.CoreV1().Nodes().Get(ctx, "node-1", metav1.GetOptions{})
	require.NoError(t, err)
	assert.False(t, hasTaint(n1, shutdownTaintKey))
	assert.Equal(t, "qcloud:///ap-guangzhou-1/ins-node0001", n1.Spec.ProviderID)
	assertCloudLabels(t, n1, "ap-guangzhou-1", "S5.MEDIUM2")
	require.NoError(t, framework.SetNodeReady(ctx, env.client, "node-1", corev1.ConditionTrue))
}

func testHealthzAndMetrics(t *testing.T, env *ccmEnv) {
	ctx := context.Background()
	code, body, err := env.ccm.Get(ctx, "/healthz")
	require.NoError(t, err)
	assert.Equal(t, 200, code, body)
	assert.Equal(t, "ok", body)

	code, body, err = env.ccm.Get(ctx, "/metrics")
	require.NoError(t, err)
	require.Equal(t, 200, code)
	for _, want := range []string{
		`stratus_cloudapi_requests_total{action="DescribeInstances",result="success",service="cvm"}`,
		`stratus_cloudapi_requests_total{action="DescribeInstances",result="InternalError",service="cvm"}`,
		`stratus_cloudapi_requests_total{action="DescribeInstances",result="RequestLimitExceeded",service="cvm"}`,
		`stratus_cloudapi_request_duration_seconds_bucket{action="DescribeInstances",result="success",service="cvm",le="0.1"}`,
		`node_controller_initial_node_sync_delay_seconds`,
		`cloud_node_lifecycle_controller_`,
	} {
		assert.True(t, strings.Contains(body, want), "/metrics has %s", want)
	}
}

// TestCCMRejectsBadCloudConfig: a bad key ends the process with an error naming it, and
// --version answers without any configuration.
func TestCCMRejectsBadCloudConfig(t *testing.T) {
	bin := framework.BuildBinary(t, "./cmd/stratus-cloud-controller-manager")
	out, err := exec.Command(bin, "--version").CombinedOutput()
	require.NoError(t, err, string(out))
	assert.True(t, strings.HasPrefix(string(out), "stratus-cloud-controller-manager "), string(out))
	assert.Contains(t, string(out), "provider qcloud")

	dir := t.TempDir()
	kubeconfig := filepath.Join(dir, "kubeconfig")
	// Never contacted: the cloud config is read before any controller starts.
	require.NoError(t, os.WriteFile(kubeconfig, []byte(`apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:1"}}]
users: [{name: u, user: {token: x}}]
contexts: [{name: c, context: {cluster: c, user: u}}]
current-context: c
`), 0o600))
	for name, tc := range map[string]struct{ config, want string }{
		"typo":             {"region: ap-guangzhou\nvpcID: vpc-stratus1\nclusterId: e2e\n", `unknown field "vpcID"`},
		"missing cluster":  {"region: ap-guangzhou\nvpcId: vpc-stratus1\n", "clusterId: Required value"},
		"bad route table":  {"region: ap-guangzhou\nvpcId: vpc-stratus1\nclusterId: e2e\nrouteTableId: table1\n", `routeTableId: Invalid value: "table1"`},
		"no credentials":   {"region: ap-guangzhou\nvpcId: vpc-stratus1\nclusterId: e2e\n", "credentialsFile: not set"},
		"credentials file": {"region: ap-guangzhou\nvpcId: vpc-stratus1\nclusterId: e2e\ncredentialsFile: /nonexistent\n", "credentialsFile: read credentials file"},
	} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "cloud-config.yaml")
			require.NoError(t, os.WriteFile(path, []byte(tc.config), 0o600))
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, bin, "--cloud-provider=qcloud", "--cloud-config="+path,
				"--kubeconfig="+kubeconfig, "--authentication-kubeconfig="+kubeconfig, "--authorization-kubeconfig="+kubeconfig,
				"--leader-elect=false", "--secure-port=0", "--webhook-secure-port=0", "--use-service-account-credentials=false",
				"--controllers=cloud-node,cloud-node-lifecycle")
			cmd.Env = append(os.Environ(), cloudapi.EnvSecretID+"=", cloudapi.EnvSecretKey+"=")
			out, err := cmd.CombinedOutput()
			require.Error(t, err, "the CCM must not start")
			assert.NotErrorIs(t, ctx.Err(), context.DeadlineExceeded, "it exits at once")
			// klog quotes the error as a structured value: unescape it before matching.
			assert.Contains(t, strings.ReplaceAll(string(out), `\"`, `"`), tc.want)
		})
	}
}

func waitInitialized(t *testing.T, client kubernetes.Interface, name string) *corev1.Node {
	t.Helper()
	var node *corev1.Node
	framework.Eventually(t, initTimeout, "node "+name+" to be initialized", func(ctx context.Context) error {
		n, err := client.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if hasTaint(n, framework.UninitializedTaintKey) || n.Spec.ProviderID == "" {
			return errorf("node %s: taints %v, providerID %q", name, n.Spec.Taints, n.Spec.ProviderID)
		}
		node = n
		return nil
	})
	return node
}

func nodeCond(client kubernetes.Interface, name string, ok func(*corev1.Node) bool) framework.Condition {
	return func(ctx context.Context) error {
		n, err := client.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if !ok(n) {
			return errorf("node %s: taints %v, providerID %q, labels %v", name, n.Spec.Taints, n.Spec.ProviderID, n.Labels)
		}
		return nil
	}
}

func assertCloudLabels(t *testing.T, n *corev1.Node, zone, instanceType string) {
	t.Helper()
	assert.Equal(t, zone, n.Labels[corev1.LabelTopologyZone], n.Name)
	assert.Equal(t, "ap-guangzhou", n.Labels[corev1.LabelTopologyRegion], n.Name)
	assert.Equal(t, instanceType, n.Labels[corev1.LabelInstanceTypeStable], n.Name)
}

func hasTaint(n *corev1.Node, key string) bool {
	for _, taint := range n.Spec.Taints {
		if taint.Key == key {
			return true
		}
	}
	return false
}

// describe returns the instance as fakecloud reports it, or nil when it does not exist.
func describe(t *testing.T, env *ccmEnv, id string) *cvm.Instance {
	t.Helper()
	out, err := env.cvm.DescribeInstances(context.Background(), &cvm.DescribeInstancesRequest{
		Filters: []cloudapi.Filter{{Name: "instance-id", Values: []string{id}}},
	})
	require.NoError(t, err)
	if len(out.InstanceSet) == 0 {
		return nil
	}
	return &out.InstanceSet[0]
}
