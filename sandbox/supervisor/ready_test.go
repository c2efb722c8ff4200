package supervisor

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/stratus-cloud/stratus/sandbox/controlplane"
	"github.com/stratus-cloud/stratus/sandbox/plan"
)

// readyNode is a node as the cluster has it once everything is done for it.
func readyNode(name string) *corev1.Node {
	return &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec:       corev1.NodeSpec{ProviderID: "qcloud:///ap-guangzhou-1/ins-" + name, PodCIDR: "10.244.1.0/24"},
		Status: corev1.NodeStatus{Conditions: []corev1.NodeCondition{
			{Type: corev1.NodeReady, Status: corev1.ConditionTrue},
			{Type: corev1.NodeNetworkUnavailable, Status: corev1.ConditionFalse},
		}},
	}
}

func csiNode(name, driver, id string) *storagev1.CSINode {
	return &storagev1.CSINode{ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: storagev1.CSINodeSpec{Drivers: []storagev1.CSINodeDriver{{Name: driver, NodeID: id}}}}
}

// TestCheckCluster: ready needs, per node, the CCM's initialization, a podCIDR with its
// VPC route (NetworkUnavailable False), Ready, and the CSI driver registered; each
// missing piece is named.
func TestCheckCluster(t *testing.T) {
	p, err := plan.New(plan.Options{StateDir: t.TempDir(), Nodes: 1, VPCCIDR: "10.0.0.0/16", ClusterCIDR: "10.244.0.0/16", PublicPool: "198.18.0.0/24"})
	require.NoError(t, err)
	name := p.Nodes[0].Name
	for _, c := range []struct {
		name    string
		node    func(*corev1.Node)
		csi     *storagev1.CSINode
		waiting string
	}{
		{name: "ready", csi: csiNode(name, controlplane.CSIDriverName, "ins-1")},
		{name: "no route yet", node: func(n *corev1.Node) { n.Status.Conditions[1].Status = corev1.ConditionTrue },
			csi: csiNode(name, controlplane.CSIDriverName, "ins-1"), waiting: name + ": no VPC route for its podCIDR yet"},
		{name: "route condition missing", node: func(n *corev1.Node) { n.Status.Conditions = n.Status.Conditions[:1] },
			csi: csiNode(name, controlplane.CSIDriverName, "ins-1"), waiting: name + ": no VPC route for its podCIDR yet"},
		{name: "no CSINode", waiting: name + ": CSI driver not registered"},
		{name: "another driver only", csi: csiNode(name, "other.csi.example.com", "x"), waiting: name + ": CSI driver not registered"},
		{name: "driver without node ID", csi: csiNode(name, controlplane.CSIDriverName, ""), waiting: name + ": CSI driver not registered"},
		{name: "not initialized, no podCIDR", node: func(n *corev1.Node) { n.Spec = corev1.NodeSpec{} },
			csi: csiNode(name, controlplane.CSIDriverName, "ins-1"), waiting: name + ": no providerID from the CCM, no podCIDR"},
	} {
		t.Run(c.name, func(t *testing.T) {
			n := readyNode(name)
			if c.node != nil {
				c.node(n)
			}
			objs := []runtime.Object{n}
			if c.csi != nil {
				objs = append(objs, c.csi)
			}
			err := CheckCluster(context.Background(), fake.NewClientset(objs...), p)
			if c.waiting == "" {
				assert.NoError(t, err)
				return
			}
			require.Error(t, err)
			assert.Equal(t, "waiting for "+c.waiting, err.Error())
		})
	}
}
