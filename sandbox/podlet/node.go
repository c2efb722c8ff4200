package podlet

import (
	"context"
	"fmt"
	"runtime"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/retry"
)

// Node-level constants a kubelet with --cloud-provider=external would use.
const (
	// UninitializedTaint is what the CCM's cloud-node controller removes once it has
	// initialized the Node.
	UninitializedTaint = "node.cloudprovider.kubernetes.io/uninitialized"
	// ProvidedNodeIPAnnotation carries --node-ip to the CCM.
	ProvidedNodeIPAnnotation = "alpha.kubernetes.io/provided-node-ip"
	// KubeletVersion is reported in the Node's status (the control plane's version, so
	// skew checks are happy).
	KubeletVersion = "v1.37.2"
	// LeaseDuration and the heartbeat period are the kubelet's defaults: 40s and 10s.
	LeaseDuration     = 40 * time.Second
	HeartbeatInterval = 10 * time.Second
)

// NodeInfo describes the node the podlet plays.
type NodeInfo struct {
	Name string
	IP   string
}

// newNode is what the kubelet registers: the uninitialized taint, no providerID, no
// cloud labels, addresses InternalIP and Hostname, and the conditions of now.
func newNode(n NodeInfo, ready error, now time.Time) *corev1.Node {
	capacity := corev1.ResourceList{
		corev1.ResourceCPU:              resource.MustParse("2"),
		corev1.ResourceMemory:           resource.MustParse("4Gi"),
		corev1.ResourceEphemeralStorage: resource.MustParse("20Gi"),
		corev1.ResourcePods:             resource.MustParse("110"),
	}
	node := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{
			Name: n.Name,
			Labels: map[string]string{
				corev1.LabelHostname:   n.Name,
				corev1.LabelOSStable:   runtime.GOOS,
				corev1.LabelArchStable: runtime.GOARCH,
			},
			// No volumes.kubernetes.io/controller-managed-attach-detach: the podlet
			// attaches its pods' volumes itself, as a kubelet with
			// --enable-controller-attach-detach=false does (CSIVolumes).
			Annotations: map[string]string{ProvidedNodeIPAnnotation: n.IP},
		},
		Spec: corev1.NodeSpec{
			Taints: []corev1.Taint{{Key: UninitializedTaint, Value: "true", Effect: corev1.TaintEffectNoSchedule}},
		},
		Status: corev1.NodeStatus{
			Capacity:    capacity,
			Allocatable: capacity.DeepCopy(),
			Addresses: []corev1.NodeAddress{
				{Type: corev1.NodeInternalIP, Address: n.IP},
				{Type: corev1.NodeHostName, Address: n.Name},
			},
			DaemonEndpoints: corev1.NodeDaemonEndpoints{KubeletEndpoint: corev1.DaemonEndpoint{Port: 10250}},
			NodeInfo: corev1.NodeSystemInfo{
				KubeletVersion:          KubeletVersion,
				OperatingSystem:         runtime.GOOS,
				Architecture:            runtime.GOARCH,
				ContainerRuntimeVersion: "podlet://" + KubeletVersion,
				OSImage:                 "Stratus sandbox node",
			},
		},
	}
	setConditions(node, ready, now)
	return node
}

// setConditions refreshes the kubelet's conditions: no pressure, and Ready unless the
// network is not (no CNI config yet).
func setConditions(node *corev1.Node, ready error, now time.Time) {
	t := metav1.NewTime(now)
	readyStatus, reason, msg := corev1.ConditionTrue, "KubeletReady", "podlet is posting ready status"
	if ready != nil {
		readyStatus, reason, msg = corev1.ConditionFalse, "KubeletNotReady", "container runtime network not ready: NetworkReady=false reason:NetworkPluginNotReady message:"+ready.Error()
	}
	want := []corev1.NodeCondition{
		{Type: corev1.NodeMemoryPressure, Status: corev1.ConditionFalse, Reason: "KubeletHasSufficientMemory", Message: "kubelet has sufficient memory available"},
		{Type: corev1.NodeDiskPressure, Status: corev1.ConditionFalse, Reason: "KubeletHasNoDiskPressure", Message: "kubelet has no disk pressure"},
		{Type: corev1.NodePIDPressure, Status: corev1.ConditionFalse, Reason: "KubeletHasSufficientPID", Message: "kubelet has sufficient PID available"},
		{Type: corev1.NodeReady, Status: readyStatus, Reason: reason, Message: msg},
	}
	for _, w := range want {
		w.LastHeartbeatTime = t
		w.LastTransitionTime = t
		found := false
		for i := range node.Status.Conditions {
			c := &node.Status.Conditions[i]
			if c.Type != w.Type {
				continue
			}
			found = true
			if c.Status == w.Status {
				w.LastTransitionTime = c.LastTransitionTime
			}
			*c = w
		}
		if !found {
			node.Status.Conditions = append(node.Status.Conditions, w)
		}
	}
}

// registerNode creates the Node, or, after a restart, keeps the one there (whose spec
// and addresses the CCM and kube-controller-manager own by now) and only posts status.
func registerNode(ctx context.Context, client kubernetes.Interface, n NodeInfo, ready error, now time.Time) error {
	_, err := client.CoreV1().Nodes().Create(ctx, newNode(n, ready, now), metav1.CreateOptions{})
	switch {
	case err == nil:
		return nil
	case apierrors.IsAlreadyExists(err):
		return postStatus(ctx, client, n, ready, now)
	default:
		return fmt.Errorf("register node %s: %w", n.Name, err)
	}
}

// postStatus refreshes the conditions, retrying on the CCM's and kube-controller-
// manager's concurrent writes.
func postStatus(ctx context.Context, client kubernetes.Interface, n NodeInfo, ready error, now time.Time) error {
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		node, err := client.CoreV1().Nodes().Get(ctx, n.Name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		setConditions(node, ready, now)
		_, err = client.CoreV1().Nodes().UpdateStatus(ctx, node, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		return fmt.Errorf("node %s: post status: %w", n.Name, err)
	}
	return nil
}

// renewLease creates or renews the node's Lease in kube-node-lease, which is what
// kube-controller-manager's node lifecycle controller watches for liveness.
func renewLease(ctx context.Context, client kubernetes.Interface, n NodeInfo, now time.Time) error {
	leases := client.CoordinationV1().Leases(corev1.NamespaceNodeLease)
	renew := metav1.NewMicroTime(now)
	l, err := leases.Get(ctx, n.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		l = &coordinationv1.Lease{
			ObjectMeta: metav1.ObjectMeta{Name: n.Name, Namespace: corev1.NamespaceNodeLease},
			Spec: coordinationv1.LeaseSpec{
				HolderIdentity:       ptrTo(n.Name),
				LeaseDurationSeconds: ptrTo(int32(LeaseDuration / time.Second)),
				RenewTime:            &renew,
			},
		}
		if node, err := client.CoreV1().Nodes().Get(ctx, n.Name, metav1.GetOptions{}); err == nil {
			l.OwnerReferences = []metav1.OwnerReference{{APIVersion: "v1", Kind: "Node", Name: node.Name, UID: node.UID}}
		}
		if _, err := leases.Create(ctx, l, metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("node %s: create lease: %w", n.Name, err)
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("node %s: get lease: %w", n.Name, err)
	}
	l.Spec.RenewTime = &renew
	l.Spec.HolderIdentity = ptrTo(n.Name)
	if _, err := leases.Update(ctx, l, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("node %s: renew lease: %w", n.Name, err)
	}
	return nil
}

func ptrTo[T any](v T) *T { return &v }
