//go:build e2e

// Package e2e runs Stratus against a real control plane (etcd and kube-apiserver, started
// by the framework package). Run with: go test -tags e2e -timeout 40m ./test/e2e/...
// The first run on a machine builds kube-apiserver (about 9 minutes on 2 cores); set
// STRATUS_KUBE_BIN_DIR to use binaries built elsewhere.
package e2e

import (
	"context"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/stratus-cloud/stratus/test/e2e/framework"
)

func TestMain(m *testing.M) { os.Exit(framework.Run(m)) }

// TestSmokeControlPlane proves the harness: a real apiserver on etcd accepts a Node
// registered the way an external-cloud-provider kubelet does and a Service, both through a
// client built from the admin kubeconfig the CCM will be given.
func TestSmokeControlPlane(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	etcd := framework.StartEtcd(t)
	api := framework.StartAPIServer(t, etcd)

	// The kubeconfig on disk is what other components get, so use it, not api.Client.
	cfg, err := clientcmd.BuildConfigFromFlags("", api.KubeconfigPath)
	require.NoError(t, err)
	client, err := kubernetes.NewForConfig(cfg)
	require.NoError(t, err)
	version, err := client.Discovery().ServerVersion()
	require.NoError(t, err)
	pinned, err := framework.KubeVersion()
	require.NoError(t, err)
	assert.Equal(t, pinned, version.GitVersion, "the apiserver is the version test/kube pins")

	_, err = framework.RegisterNode(ctx, client, "node-a", "10.0.1.5")
	require.NoError(t, err)
	node, err := client.CoreV1().Nodes().Get(ctx, "node-a", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Contains(t, node.Spec.Taints, corev1.Taint{
		Key: framework.UninitializedTaintKey, Value: "true", Effect: corev1.TaintEffectNoSchedule,
	})
	assert.Empty(t, node.Spec.ProviderID)
	assert.Equal(t, "10.0.1.5", node.Annotations[framework.ProvidedNodeIPAnnotation])
	assert.Contains(t, node.Status.Addresses, corev1.NodeAddress{Type: corev1.NodeInternalIP, Address: "10.0.1.5"})
	assert.Contains(t, node.Status.Addresses, corev1.NodeAddress{Type: corev1.NodeHostName, Address: "node-a"})
	assert.True(t, nodeReady(node) == corev1.ConditionTrue, "Ready condition kept on create, got %v", node.Status.Conditions)

	// What kube-controller-manager would do after missed heartbeats; the CCM's
	// cloud-node-lifecycle controller acts on exactly this.
	require.NoError(t, framework.SetNodeReady(ctx, client, "node-a", corev1.ConditionUnknown))
	node, err = client.CoreV1().Nodes().Get(ctx, "node-a", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, corev1.ConditionUnknown, nodeReady(node))

	svc, err := client.CoreV1().Services("default").Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: corev1.ServiceSpec{
			Type:     corev1.ServiceTypeLoadBalancer,
			Selector: map[string]string{"app": "web"},
			Ports:    []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromInt32(8080), Protocol: corev1.ProtocolTCP}},
		},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	clusterIP, err := netip.ParseAddr(svc.Spec.ClusterIP)
	require.NoError(t, err, "cluster IP %q", svc.Spec.ClusterIP)
	assert.True(t, netip.MustParsePrefix(framework.ServiceClusterIPRange).Contains(clusterIP),
		"cluster IP %s from --service-cluster-ip-range %s", clusterIP, framework.ServiceClusterIPRange)
	require.Len(t, svc.Spec.Ports, 1)
	assert.NotZero(t, svc.Spec.Ports[0].NodePort, "a LoadBalancer Service gets a NodePort")
	assert.Empty(t, svc.Status.LoadBalancer.Ingress, "no CCM runs, so nothing provisions it")

	got, err := client.CoreV1().Services("default").Get(ctx, "web", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, svc.UID, got.UID)
	assert.Equal(t, svc.Spec.ClusterIP, got.Spec.ClusterIP)
}

func nodeReady(n *corev1.Node) corev1.ConditionStatus {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status
		}
	}
	return ""
}
