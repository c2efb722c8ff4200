package framework

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	cloudproviderapi "k8s.io/cloud-provider/api"
)

func TestNewNodeLooksLikeExternalCloudProviderKubelet(t *testing.T) {
	n := NewNode("node-a", "10.0.1.5")

	// The constants must match what the CCM's cloud-node controller looks for.
	assert.Equal(t, cloudproviderapi.TaintExternalCloudProvider, UninitializedTaintKey)
	assert.Equal(t, cloudproviderapi.AnnotationAlphaProvidedIPAddr, ProvidedNodeIPAnnotation)

	assert.Equal(t, []corev1.Taint{{Key: UninitializedTaintKey, Value: "true", Effect: corev1.TaintEffectNoSchedule}}, n.Spec.Taints)
	assert.Empty(t, n.Spec.ProviderID, "a kubelet with --cloud-provider=external leaves providerID to the CCM")
	assert.Equal(t, "10.0.1.5", n.Annotations[ProvidedNodeIPAnnotation])
	assert.Equal(t, "node-a", n.Labels[corev1.LabelHostname])
	assert.NotContains(t, n.Labels, corev1.LabelTopologyZone, "zone labels are the CCM's to set")
	assert.NotContains(t, n.Labels, corev1.LabelInstanceTypeStable)
	assert.Equal(t, []corev1.NodeAddress{
		{Type: corev1.NodeInternalIP, Address: "10.0.1.5"},
		{Type: corev1.NodeHostName, Address: "node-a"},
	}, n.Status.Addresses)
	ready := readyCondition(t, n)
	assert.Equal(t, corev1.ConditionTrue, ready.Status)
	assert.False(t, n.Status.Capacity.Cpu().IsZero())
	assert.Equal(t, n.Status.Capacity, n.Status.Allocatable)
}

func TestSetReadyCondition(t *testing.T) {
	n := NewNode("node-a", "10.0.1.5")
	before := readyCondition(t, n)
	later := metav1.NewTime(before.LastTransitionTime.Add(time.Minute))

	setReadyCondition(n, corev1.ConditionUnknown, later)
	got := readyCondition(t, n)
	assert.Equal(t, corev1.ConditionUnknown, got.Status)
	assert.Equal(t, "NodeStatusUnknown", got.Reason)
	assert.True(t, got.LastTransitionTime.Equal(&later), "status changed, so the transition time moves")

	even := metav1.NewTime(later.Add(time.Minute))
	setReadyCondition(n, corev1.ConditionUnknown, even)
	got = readyCondition(t, n)
	assert.True(t, got.LastTransitionTime.Equal(&later), "same status keeps the transition time")
	assert.True(t, got.LastHeartbeatTime.Equal(&even), "but refreshes the heartbeat")

	n.Status.Conditions = nil
	setReadyCondition(n, corev1.ConditionFalse, even)
	assert.Equal(t, corev1.ConditionFalse, readyCondition(t, n).Status)
}

func readyCondition(t *testing.T, n *corev1.Node) corev1.NodeCondition {
	t.Helper()
	var found []corev1.NodeCondition
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			found = append(found, c)
		}
	}
	require.Len(t, found, 1, "exactly one Ready condition")
	return found[0]
}
