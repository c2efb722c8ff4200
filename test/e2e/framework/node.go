package framework

import (
	"context"
	"fmt"
	"net"
	"runtime"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/retry"
)

const (
	// UninitializedTaintKey is the taint a kubelet with --cloud-provider=external registers
	// with and the cloud-node controller removes once it has initialized the Node
	// (k8s.io/cloud-provider/api.TaintExternalCloudProvider).
	UninitializedTaintKey = "node.cloudprovider.kubernetes.io/uninitialized"
	// ProvidedNodeIPAnnotation is set by such a kubelet from --node-ip; the cloud-node
	// controller then keeps only cloud addresses consistent with it
	// (k8s.io/cloud-provider/api.AnnotationAlphaProvidedIPAddr).
	ProvidedNodeIPAnnotation = "alpha.kubernetes.io/provided-node-ip"

	controllerManagedAttachAnnotation = "volumes.kubernetes.io/controller-managed-attach-detach"
	kubeletVersion                    = "v1.37.2"
)

// NewNode returns the Node a kubelet started with --cloud-provider=external and
// --node-ip=internalIP registers: the uninitialized taint, no providerID, no cloud labels,
// addresses InternalIP and Hostname, Ready, and a small capacity.
func NewNode(name, internalIP string) *corev1.Node {
	now := metav1.NewTime(time.Now())
	condition := func(t corev1.NodeConditionType, s corev1.ConditionStatus, reason, msg string) corev1.NodeCondition {
		return corev1.NodeCondition{Type: t, Status: s, Reason: reason, Message: msg, LastHeartbeatTime: now, LastTransitionTime: now}
	}
	capacity := corev1.ResourceList{
		corev1.ResourceCPU:              resource.MustParse("2"),
		corev1.ResourceMemory:           resource.MustParse("4Gi"),
		corev1.ResourceEphemeralStorage: resource.MustParse("20Gi"),
		corev1.ResourcePods:             resource.MustParse("110"),
	}
	return &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{
			Name: name,
			Labels: map[string]string{
				corev1.LabelHostname:      name,
				corev1.LabelOSStable:      runtime.GOOS,
				corev1.LabelArchStable:    runtime.GOARCH,
				"beta.kubernetes.io/os":   runtime.GOOS,
				"beta.kubernetes.io/arch": runtime.GOARCH,
			},
			Annotations: map[string]string{
				controllerManagedAttachAnnotation: "true",
				ProvidedNodeIPAnnotation:          internalIP,
			},
		},
		Spec: corev1.NodeSpec{
			Taints: []corev1.Taint{{Key: UninitializedTaintKey, Value: "true", Effect: corev1.TaintEffectNoSchedule}},
		},
		Status: corev1.NodeStatus{
			Capacity:    capacity,
			Allocatable: capacity.DeepCopy(),
			Addresses: []corev1.NodeAddress{
				{Type: corev1.NodeInternalIP, Address: internalIP},
				{Type: corev1.NodeHostName, Address: name},
			},
			Conditions: []corev1.NodeCondition{
				condition(corev1.NodeMemoryPressure, corev1.ConditionFalse, "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
				condition(corev1.NodeDiskPressure, corev1.ConditionFalse, "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
				condition(corev1.NodePIDPressure, corev1.ConditionFalse, "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
				condition(corev1.NodeReady, corev1.ConditionTrue, "KubeletReady", "kubelet is posting ready status"),
			},
			DaemonEndpoints: corev1.NodeDaemonEndpoints{KubeletEndpoint: corev1.DaemonEndpoint{Port: 10250}},
			NodeInfo: corev1.NodeSystemInfo{
				KubeletVersion:          kubeletVersion,
				OperatingSystem:         runtime.GOOS,
				Architecture:            runtime.GOARCH,
				ContainerRuntimeVersion: "containerd://2.1.0",
				OSImage:                 "Debian GNU/Linux 12 (bookworm)",
			},
		},
	}
}

// RegisterNode creates NewNode(name, internalIP) through the API, as the kubelet does on
// its first start, and returns what the server stored.
//
// No heartbeat is needed afterwards: the CCM's cloud-node-lifecycle controller looks only
// at the Ready condition's status (True: leave the Node alone; otherwise ask the cloud
// whether the instance still exists or is shut down). Marking a Node NotReady after missed
// heartbeats is kube-controller-manager's job, which these tests do not run; use
// SetNodeReady to play that part.
func RegisterNode(ctx context.Context, client kubernetes.Interface, name, internalIP string) (*corev1.Node, error) {
	if net.ParseIP(internalIP) == nil {
		return nil, fmt.Errorf("register node %s: internal IP %q is not an IP", name, internalIP)
	}
	want := NewNode(name, internalIP)
	created, err := client.CoreV1().Nodes().Create(ctx, want, metav1.CreateOptions{})
	if err != nil {
		return nil, fmt.Errorf("register node %s: %w", name, err)
	}
	// The kubelet creates the Node with its status and the API keeps it; if a future
	// server drops status on create, post it the way the kubelet's status loop would.
	if len(created.Status.Conditions) == 0 {
		created.Status = want.Status
		if created, err = client.CoreV1().Nodes().UpdateStatus(ctx, created, metav1.UpdateOptions{}); err != nil {
			return nil, fmt.Errorf("register node %s: post status: %w", name, err)
		}
	}
	return created, nil
}

// SetNodeReady sets the Node's Ready condition, as a kubelet posting status (True) or
// kube-controller-manager's node lifecycle controller after missed heartbeats (Unknown)
// would. The heartbeat time is refreshed either way.
func SetNodeReady(ctx context.Context, client kubernetes.Interface, name string, status corev1.ConditionStatus) error {
	// The CCM patches the same Node (addresses, labels, taints); retry on its conflicts.
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		node, err := client.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		setReadyCondition(node, status, metav1.NewTime(time.Now()))
		_, err = client.CoreV1().Nodes().UpdateStatus(ctx, node, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		return fmt.Errorf("set node %s Ready=%s: %w", name, status, err)
	}
	return nil
}

func setReadyCondition(node *corev1.Node, status corev1.ConditionStatus, now metav1.Time) {
	reason := map[corev1.ConditionStatus]string{
		corev1.ConditionTrue:    "KubeletReady",
		corev1.ConditionFalse:   "KubeletNotReady",
		corev1.ConditionUnknown: "NodeStatusUnknown",
	}[status]
	for i := range node.Status.Conditions {
		c := &node.Status.Conditions[i]
		if c.Type != corev1.NodeReady {
			continue
		}
		if c.Status != status {
			c.LastTransitionTime = now
		}
		c.Status, c.Reason, c.Message, c.LastHeartbeatTime = status, reason, "set by the e2e test", now
		return
	}
	node.Status.Conditions = append(node.Status.Conditions, corev1.NodeCondition{
		Type: corev1.NodeReady, Status: status, Reason: reason, Message: "set by the e2e test",
		LastHeartbeatTime: now, LastTransitionTime: now,
	})
}
