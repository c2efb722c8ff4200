package supervisor

import (
	"context"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/stratus-cloud/stratus/sandbox/plan"
	"github.com/stratus-cloud/stratus/sandbox/podlet"
)

// CheckCluster reports nil when every planned node is what a user needs to schedule on:
// registered, initialized by the CCM (providerID set, uninitialized taint gone), given a
// podCIDR by node IPAM, Ready, and free of the not-ready taints. Otherwise it says what
// it is still waiting for.
func CheckCluster(ctx context.Context, client kubernetes.Interface, p *plan.Plan) error {
	list, err := client.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return fmt.Errorf("list nodes: %w", err)
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
		if why := nodeNotReady(node); why != "" {
			waiting = append(waiting, n.Name+": "+why)
		}
	}
	if len(waiting) > 0 {
		return fmt.Errorf("waiting for %s", strings.Join(waiting, "; "))
	}
	return nil
}

func nodeNotReady(node *corev1.Node) string {
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
	ready := false
	for _, c := range node.Status.Conditions {
		if c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue {
			ready = true
		}
	}
	if !ready {
		why = append(why, "not Ready")
	}
	return strings.Join(why, ", ")
}
