package supervisor

import (
	"context"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/stratus-cloud/stratus/sandbox/controlplane"
	"github.com/stratus-cloud/stratus/sandbox/plan"
	"github.com/stratus-cloud/stratus/sandbox/podlet"
)

// CheckCluster reports nil when every planned node is what a user needs to schedule on:
// registered, initialized by the CCM (providerID set, uninitialized taint gone), given a
// podCIDR by node IPAM and a route for it in the VPC by the CCM's route controller
// (NetworkUnavailable False), Ready, free of the not-ready taints, and with the CSI
// driver registered on it (its CSINode lists the driver). Otherwise it says what it is
// still waiting for.
func CheckCluster(ctx context.Context, client kubernetes.Interface, p *plan.Plan) error {
	list, err := client.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return fmt.Errorf("list nodes: %w", err)
	}
	csiNodes, err := client.StorageV1().CSINodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return fmt.Errorf("list CSINodes: %w", err)
	}
	registered := map[string]bool{}
	for _, cn := range csiNodes.Items {
		for _, d := range cn.Spec.Drivers {
			if d.Name == controlplane.CSIDriverName && d.NodeID != "" {
				registered[cn.Name] = true
			}
		}
	}
	byName := map[string]*corev1.Node{}
	for i := range list.Items {
		byName[list.Items[i].Name] = &list.Items[i]
	}
	var waiting []string
	for _, n := range p.Nodes {
		node, ok := byName[n.Name]
		if !ok {
			waiting = append(waiting, n.Name+": not registered")
			continue
		}
		why := nodeNotReady(node)
		if !registered[n.Name] {
			why = append(why, "CSI driver not registered")
		}
		if len(why) > 0 {
			waiting = append(waiting, n.Name+": "+strings.Join(why, ", "))
		}
	}
	if len(waiting) > 0 {
		return fmt.Errorf("waiting for %s", strings.Join(waiting, "; "))
	}
	return nil
}

func nodeNotReady(node *corev1.Node) []string {
	var why []string
	if !strings.HasPrefix(node.Spec.ProviderID, "qcloud://") {
		why = append(why, "no providerID from the CCM")
	}
	for _, t := range node.Spec.Taints {
		switch t.Key {
		case podlet.UninitializedTaint, corev1.TaintNodeNotReady, corev1.TaintNodeUnreachable:
			why = append(why, "taint "+t.Key)
		}
	}
	if node.Spec.PodCIDR == "" {
		why = append(why, "no podCIDR")
	}
	ready, routed := false, false
	for _, c := range node.Status.Conditions {
		switch {
		case c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue:
			ready = true
		case c.Type == corev1.NodeNetworkUnavailable && c.Status == corev1.ConditionFalse:
			routed = true
		}
	}
	if !ready {
		why = append(why, "not Ready")
	}
	if node.Spec.PodCIDR != "" && !routed {
		why = append(why, "no VPC route for its podCIDR yet")
	}
	return why
}
