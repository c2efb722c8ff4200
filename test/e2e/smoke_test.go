//go:build e2e

// Package e2e runs Stratus against a real control plane (etcd and kube-apiserver, started
// by the framework package). Run with: go test -tags e2e -timeout 40m ./test/e2e/...
// The first run on a machine builds kube-apiserver (about 9 minutes on 2 cores); set
// STRATUS_KUBE_BIN_DIR to use binaries built elsewhere.
package e2e

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
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

// TestSmokeKubeProxyInNetns proves the harness can run the node side for real: kube-proxy,
// built by hack/kube-binaries.sh, runs in a network namespace standing in for node-a,
// watches the apiserver across the veth, and its iptables rules DNAT a NodePort to a
// backend in the same namespace.
func TestSmokeKubeProxyInNetns(t *testing.T) {
	framework.RequireNetworkAdmin(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	ns := framework.NewNetns(t)
	etcd := framework.StartEtcd(t)
	api := framework.StartAPIServer(t, etcd, framework.WithBindAddress(ns.HostIP))
	_, err := framework.RegisterNode(ctx, api.Client, "node-a", ns.IP)
	require.NoError(t, err)

	echo := framework.BuildBinary(t, "./test/e2e/framework/testdata/tcpecho")
	ns.StartProcess(t, "backend", echo, net.JoinHostPort(ns.IP, "8080"), "backend-1")

	// No pods and no kube-controller-manager: a selectorless Service with a hand-made
	// EndpointSlice, as an external controller would publish it.
	svc, err := api.Client.CoreV1().Services("default").Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "echo"},
		Spec: corev1.ServiceSpec{
			Type:  corev1.ServiceTypeNodePort,
			Ports: []corev1.ServicePort{{Name: "tcp", Port: 80, TargetPort: intstr.FromInt32(8080), Protocol: corev1.ProtocolTCP}},
		},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	nodePort := svc.Spec.Ports[0].NodePort
	require.NotZero(t, nodePort)
	ready := true
	_, err = api.Client.DiscoveryV1().EndpointSlices("default").Create(ctx, &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{
			Name: "echo-manual",
			Labels: map[string]string{
				discoveryv1.LabelServiceName: "echo",
				discoveryv1.LabelManagedBy:   "e2e.stratus.io",
			},
		},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints: []discoveryv1.Endpoint{{
			Addresses:  []string{ns.IP},
			Conditions: discoveryv1.EndpointConditions{Ready: &ready},
			NodeName:   ptr("node-a"),
		}},
		Ports: []discoveryv1.EndpointPort{{Name: ptr("tcp"), Port: ptr(int32(8080)), Protocol: ptr(corev1.ProtocolTCP)}},
	}, metav1.CreateOptions{})
	require.NoError(t, err)

	framework.StartKubeProxy(t, api, ns, "node-a")

	// Nothing listens on the NodePort: only kube-proxy's DNAT can make this answer.
	target := net.JoinHostPort(ns.IP, fmt.Sprint(nodePort))
	framework.Eventually(t, time.Minute, "NodePort "+target+" to reach the backend through kube-proxy's DNAT", func(ctx context.Context) error {
		conn, err := (&net.Dialer{Timeout: 2 * time.Second}).DialContext(ctx, "tcp", target)
		if err != nil {
			return err
		}
		defer conn.Close()
		_ = conn.SetReadDeadline(time.Now().Add(2 * time.Second))
		line, err := bufio.NewReader(conn).ReadString('\n')
		if err != nil {
			return fmt.Errorf("read from %s: %w", target, err)
		}
		if strings.TrimSpace(line) != "hello from backend-1" {
			return fmt.Errorf("%s answered %q", target, line)
		}
		return nil
	})
}

func ptr[T any](v T) *T { return &v }
