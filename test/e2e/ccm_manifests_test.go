//go:build e2e

package e2e

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/stratus-cloud/stratus/test/e2e/framework"
)

// manifestDeployment returns the CCM Deployment of the manifests.
func manifestDeployment(t *testing.T) *appsv1.Deployment {
	t.Helper()
	for _, o := range framework.ExampleManifests(t, "ccm") {
		if o.GetKind() == "Deployment" {
			d := &appsv1.Deployment{}
			require.NoError(t, runtime.DefaultUnstructuredConverter.FromUnstructured(o.Object, d))
			return d
		}
	}
	t.Fatal("no Deployment in examples/manifests/ccm")
	return nil
}

// TestCCMManifestsServerDryRun sends every object of examples/manifests/ccm to a real
// kube-apiserver with dryRun=All (what `kubectl apply --dry-run=server` does): schema,
// defaulting, admission (RBAC escalation checks, priority classes) all run, nothing is
// stored.
func TestCCMManifestsServerDryRun(t *testing.T) {
	ctx := context.Background()
	etcd := framework.StartEtcd(t)
	api := framework.StartAPIServer(t, etcd)
	kinds := framework.CreateManifests(ctx, t, api, nil, framework.ExampleManifests(t, "ccm"), true)
	for _, want := range []string{"ServiceAccount", "ClusterRole", "ClusterRoleBinding", "RoleBinding", "Secret", "Deployment"} {
		assert.Contains(t, kinds, want)
	}

	d := manifestDeployment(t)
	require.NotNil(t, d.Spec.Replicas)
	assert.Equal(t, int32(2), *d.Spec.Replicas)
	args := d.Spec.Template.Spec.Containers[0].Args
	for _, want := range []string{"--cloud-provider=qcloud", "--leader-elect=true", "--leader-elect-resource-namespace=kube-system"} {
		assert.Contains(t, args, want)
	}
	assert.True(t, slices.ContainsFunc(d.Spec.Template.Spec.Volumes, func(v corev1.Volume) bool {
		return v.Secret != nil && v.Secret.SecretName == "stratus-cloud-config"
	}), "the cloud-config comes from the Secret")
	assert.True(t, slices.ContainsFunc(args, func(a string) bool { return strings.HasPrefix(a, "--cloud-config=/etc/stratus/") }))
}
