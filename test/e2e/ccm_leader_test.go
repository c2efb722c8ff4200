//go:build e2e

package e2e

import (
	"context"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/stratus-cloud/stratus/test/e2e/framework"
)

const acquiredLease = `"Successfully acquired lease" lock="kube-system/cloud-controller-manager"`

// TestCCMLeaderElection runs two replicas with the flags of the example Deployment
// (leader election on the Lease kube-system/cloud-controller-manager). Only the leader
// initializes nodes; when it stops, the other takes the lease and initializes a new node.
func TestCCMLeaderElection(t *testing.T) {
	ctx := context.Background()
	etcd := framework.StartEtcd(t)
	api := framework.StartAPIServer(t, etcd)
	fc := framework.StartFakecloud(t)
	cloudConfig := framework.WriteCloudConfig(t, t.TempDir(), fc, e2eCloudConfig)

	// The Deployment's flags, but the test's cloud-config and serving address.
	var args []string
	for _, a := range manifestDeployment(t).Spec.Template.Spec.Containers[0].Args {
		switch name, _, _ := strings.Cut(a, "="); name {
		case "--cloud-config", "--secure-port", "--bind-address":
		default:
			args = append(args, a)
		}
	}
	require.Contains(t, args, "--leader-elect=true")
	replicas := map[string]*framework.CCM{}
	for _, name := range []string{"ccm-a", "ccm-b"} {
		replicas[name] = framework.StartCCM(t, api, cloudConfig, framework.WithCCMName(name), framework.WithServing(),
			framework.WithLeaderElection(), framework.WithCCMArgs(args...))
	}

	var leader, follower *framework.CCM
	framework.Eventually(t, initTimeout, "one replica to acquire the lease", func(context.Context) error {
		var holders []*framework.CCM
		for _, c := range replicas {
			if c.LogContains(acquiredLease) {
				holders = append(holders, c)
			}
		}
		if len(holders) != 1 {
			return errorf("%d replicas say they acquired the lease", len(holders))
		}
		leader = holders[0]
		return nil
	})
	for _, c := range replicas {
		if c != leader {
			follower = c
		}
	}
	t.Logf("leader %s, follower %s", leader.Name, follower.Name)
	lease, err := api.Client.CoordinationV1().Leases("kube-system").Get(ctx, "cloud-controller-manager", metav1.GetOptions{})
	require.NoError(t, err)
	require.NotNil(t, lease.Spec.HolderIdentity)
	firstHolder := *lease.Spec.HolderIdentity

	_, err = framework.RegisterNode(ctx, api.Client, "node-1", "10.0.1.11")
	require.NoError(t, err)
	n1 := waitInitialized(t, api.Client, "node-1")
	assert.Equal(t, "qcloud:///ap-guangzhou-1/ins-node0001", n1.Spec.ProviderID)
	assert.False(t, follower.LogContains("Successfully initialized node node-1"), "only the leader runs controllers")
	assert.Zero(t, describeCalls(t, follower), "a standby replica does not call the cloud")

	// The leader goes away; the follower takes the lease and does the work.
	require.NoError(t, leader.Process.Stop())
	framework.Eventually(t, initTimeout, follower.Name+" to acquire the lease", func(ctx context.Context) error {
		if !follower.LogContains(acquiredLease) {
			return errorf("%s has not acquired the lease", follower.Name)
		}
		l, err := api.Client.CoordinationV1().Leases("kube-system").Get(ctx, "cloud-controller-manager", metav1.GetOptions{})
		if err != nil {
			return err
		}
		if l.Spec.HolderIdentity == nil || *l.Spec.HolderIdentity == firstHolder {
			return errorf("lease still held by %v", l.Spec.HolderIdentity)
		}
		return nil
	})
	_, err = framework.RegisterNode(ctx, api.Client, "node-3", "10.0.2.11")
	require.NoError(t, err)
	n3 := waitInitialized(t, api.Client, "node-3")
	assert.Equal(t, "qcloud:///ap-guangzhou-2/ins-node0003", n3.Spec.ProviderID)
	assertCloudLabels(t, n3, "ap-guangzhou-2", "S5.LARGE8")
	framework.Eventually(t, initTimeout, follower.Name+" to log the initialization", func(context.Context) error {
		if follower.LogContains("Successfully initialized node node-3") {
			return nil
		}
		return errorf("not logged")
	})
	// The new leader's own metrics and fakecloud's count agree that it asked the cloud.
	asked := describeCalls(t, follower)
	assert.Positive(t, asked, "the new leader asked fakecloud")
	total, err := fc.DescribeInstancesCalls(ctx)
	require.NoError(t, err)
	assert.GreaterOrEqual(t, total, asked)
	code, body, err := follower.Get(ctx, "/healthz")
	require.NoError(t, err)
	assert.Equal(t, 200, code, body)
}

// describeCalls reads the successful DescribeInstances calls a CCM reports on /metrics.
func describeCalls(t *testing.T, c *framework.CCM) int {
	t.Helper()
	code, body, err := c.Get(context.Background(), "/metrics")
	require.NoError(t, err)
	require.Equal(t, 200, code)
	const series = `stratus_cloudapi_requests_total{action="DescribeInstances",result="success",service="cvm"} `
	for _, line := range strings.Split(body, "\n") {
		if v, ok := strings.CutPrefix(line, series); ok {
			n, err := strconv.ParseFloat(v, 64)
			require.NoError(t, err, line)
			return int(n)
		}
	}
	return 0
}
