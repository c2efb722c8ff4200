//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/restmapper"

	"github.com/stratus-cloud/stratus/test/e2e/framework"
)

// ccmManifests decodes every object of examples/manifests/ccm.
func ccmManifests(t *testing.T) []*unstructured.Unstructured {
	t.Helper()
	root, err := framework.RepoRoot()
	require.NoError(t, err)
	files, err := filepath.Glob(filepath.Join(root, "examples", "manifests", "ccm", "*.yaml"))
	require.NoError(t, err)
	require.NotEmpty(t, files)
	var objs []*unstructured.Unstructured
	for _, f := range files {
		if filepath.Base(f) == "kustomization.yaml" {
			continue // kustomize's file, not an object for the API server
		}
		data, err := os.ReadFile(f)
		require.NoError(t, err)
		dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
		for {
			var m map[string]any
			err := dec.Decode(&m)
			if errors.Is(err, io.EOF) {
				break
			}
			require.NoError(t, err, f)
			if len(m) == 0 {
				continue
			}
			objs = append(objs, &unstructured.Unstructured{Object: m})
		}
	}
	return objs
}

// manifestDeployment returns the CCM Deployment of the manifests.
func manifestDeployment(t *testing.T) *appsv1.Deployment {
	t.Helper()
	for _, o := range ccmManifests(t) {
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
	dyn, err := dynamic.NewForConfig(api.Config)
	require.NoError(t, err)
	groups, err := restmapper.GetAPIGroupResources(api.Client.Discovery())
	require.NoError(t, err)
	mapper := restmapper.NewDiscoveryRESTMapper(groups)

	objs := ccmManifests(t)
	var kinds []string
	for _, o := range objs {
		gvk := o.GroupVersionKind()
		kinds = append(kinds, gvk.Kind)
		mapping, err := mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
		require.NoError(t, err, "%s %s", gvk, o.GetName())
		var ri dynamic.ResourceInterface = dyn.Resource(mapping.Resource)
		if o.GetNamespace() != "" {
			ri = dyn.Resource(mapping.Resource).Namespace(o.GetNamespace())
		}
		created, err := ri.Create(ctx, o, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}, FieldValidation: "Strict"})
		require.NoError(t, err, "dry-run create %s %s/%s", gvk.Kind, o.GetNamespace(), o.GetName())
		assert.Equal(t, o.GetName(), created.GetName())
		_, err = ri.Get(ctx, o.GetName(), metav1.GetOptions{})
		assert.True(t, apierrors.IsNotFound(err), "dry run stored %s %s: %v", gvk.Kind, o.GetName(), err)
	}
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
