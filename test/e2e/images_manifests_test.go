//go:build e2e

package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/stratus-cloud/stratus/test/e2e/framework"
)

// TestManifestsApplyKustomizeServerDryRun runs the command docs/install.md gives an
// operator, `kubectl apply -k examples/manifests --dry-run=server`, with a real kubectl
// against a real kube-apiserver: kustomize renders the set with the images it names,
// and every object passes the server's validation, defaulting and admission without
// being stored.
func TestManifestsApplyKustomizeServerDryRun(t *testing.T) {
	etcd := framework.StartEtcd(t)
	api := framework.StartAPIServer(t, etcd)
	kubectl := framework.KubeBinary(t, "kubectl")
	root, err := framework.RepoRoot()
	require.NoError(t, err)
	manifests := filepath.Join(root, "examples", "manifests")

	// What kustomize renders: every image is the one the kustomization sets.
	rendered, err := exec.Command(kubectl, "kustomize", manifests).CombinedOutput()
	require.NoError(t, err, "kubectl kustomize: %s", rendered)
	var images []string
	for _, line := range strings.Split(string(rendered), "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "image: "); ok {
			images = append(images, v)
		}
	}
	require.NotEmpty(t, images)
	version, err := os.ReadFile(filepath.Join(root, "VERSION"))
	require.NoError(t, err)
	for _, im := range images {
		if strings.HasPrefix(im, "registry.k8s.io/sig-storage/") {
			continue // the upstream CSI sidecars, pinned by their own versions
		}
		assert.True(t, strings.HasPrefix(im, "stratus/"), "rendered image %s", im)
		assert.True(t, strings.HasSuffix(im, ":"+strings.TrimSpace(string(version))), "rendered image %s carries the project version (make images' tag)", im)
	}

	out, err := exec.Command(kubectl, "--kubeconfig", api.KubeconfigPath,
		"apply", "-k", manifests, "--dry-run=server", "--validate=strict").CombinedOutput()
	require.NoError(t, err, "kubectl apply -k --dry-run=server:\n%s", out)
	for _, want := range []string{
		"serviceaccount/cloud-controller-manager",
		"clusterrole.rbac.authorization.k8s.io/system:stratus-cloud-controller-manager",
		"deployment.apps/stratus-cloud-controller-manager",
		"serviceaccount/stratus-cni",
		"daemonset.apps/stratus-cni",
		"csidriver.storage.k8s.io/cbs.csi.stratus.io",
		"deployment.apps/stratus-csi-controller",
		"daemonset.apps/stratus-csi-node",
	} {
		assert.Contains(t, string(out), want+" created (server dry run)")
	}
	// A dry run stores nothing.
	_, err = api.Client.AppsV1().Deployments("kube-system").Get(context.Background(), "stratus-cloud-controller-manager", metav1.GetOptions{})
	assert.True(t, apierrors.IsNotFound(err), "dry run stored the Deployment: %v", err)
	_, err = api.Client.AppsV1().DaemonSets("kube-system").Get(context.Background(), "stratus-cni", metav1.GetOptions{})
	assert.True(t, apierrors.IsNotFound(err), "dry run stored the DaemonSet: %v", err)
}
