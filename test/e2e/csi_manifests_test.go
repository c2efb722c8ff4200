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
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/restmapper"

	"github.com/stratus-cloud/stratus/test/e2e/framework"
)

// decodeYAMLFiles decodes every object of the YAML files matching pattern.
func decodeYAMLFiles(t *testing.T, pattern string) []*unstructured.Unstructured {
	t.Helper()
	files, err := filepath.Glob(pattern)
	require.NoError(t, err)
	require.NotEmpty(t, files, pattern)
	var objs []*unstructured.Unstructured
	for _, f := range files {
		if filepath.Base(f) == "kustomization.yaml" {
			continue // kustomize's input, not an object (images_manifests_test.go applies it)
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
			if len(m) > 0 {
				objs = append(objs, &unstructured.Unstructured{Object: m})
			}
		}
	}
	return objs
}

// TestCSIManifestsServerDryRun sends every object of examples/manifests/csi to a real
// kube-apiserver with dryRun=All and strict field validation, after installing the
// VolumeSnapshot CRDs the VolumeSnapshotClass and the readers example need.
func TestCSIManifestsServerDryRun(t *testing.T) {
	ctx := context.Background()
	etcd := framework.StartEtcd(t)
	api := framework.StartAPIServer(t, etcd)
	dyn, err := dynamic.NewForConfig(api.Config)
	require.NoError(t, err)

	crdDir, err := framework.SnapshotCRDDir()
	require.NoError(t, err)
	crdGVR := schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}
	for _, crd := range decodeYAMLFiles(t, filepath.Join(crdDir, "snapshot.storage.k8s.io_*.yaml")) {
		_, err := dyn.Resource(crdGVR).Create(ctx, crd, metav1.CreateOptions{})
		require.NoError(t, err, "install CRD %s", crd.GetName())
	}
	var mapper meta.RESTMapper
	framework.Eventually(t, time.Minute, "the snapshot CRDs served", func(ctx context.Context) error {
		groups, err := restmapper.GetAPIGroupResources(api.Client.Discovery())
		if err != nil {
			return err
		}
		mapper = restmapper.NewDiscoveryRESTMapper(groups)
		for _, kind := range []string{"VolumeSnapshotClass", "VolumeSnapshot", "VolumeSnapshotContent"} {
			if _, err := mapper.RESTMapping(schema.GroupKind{Group: "snapshot.storage.k8s.io", Kind: kind}, "v1"); err != nil {
				return err
			}
		}
		return nil
	})

	// kube-controller-manager's service account controller is not running: make the
	// account the example pods run as.
	_, err = api.Client.CoreV1().ServiceAccounts("default").Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default"}}, metav1.CreateOptions{})
	require.NoError(t, err)

	root, err := framework.RepoRoot()
	require.NoError(t, err)
	objs := decodeYAMLFiles(t, filepath.Join(root, "examples", "manifests", "csi", "*.yaml"))
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
		_, err = ri.Create(ctx, o, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}, FieldValidation: "Strict"})
		require.NoError(t, err, "dry-run create %s %s/%s", gvk.Kind, o.GetNamespace(), o.GetName())
		_, err = ri.Get(ctx, o.GetName(), metav1.GetOptions{})
		assert.True(t, apierrors.IsNotFound(err), "dry run stored %s %s: %v", gvk.Kind, o.GetName(), err)
	}
	for _, want := range []string{"CSIDriver", "Deployment", "DaemonSet", "StorageClass", "VolumeSnapshotClass", "ServiceAccount",
		"ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding", "PersistentVolume", "PersistentVolumeClaim", "VolumeSnapshot"} {
		assert.Contains(t, kinds, want)
	}

	get := func(kind, name string, into any) {
		t.Helper()
		for _, o := range objs {
			if o.GetKind() == kind && o.GetName() == name {
				require.NoError(t, runtime.DefaultUnstructuredConverter.FromUnstructured(o.Object, into))
				return
			}
		}
		t.Fatalf("no %s %s in examples/manifests/csi", kind, name)
	}
	var driver storagev1.CSIDriver
	get("CSIDriver", "cbs.csi.stratus.io", &driver)
	assert.True(t, *driver.Spec.AttachRequired)
	assert.Equal(t, storagev1.FileFSGroupPolicy, *driver.Spec.FSGroupPolicy)

	var sc storagev1.StorageClass
	get("StorageClass", "stratus-cbs", &sc)
	assert.Equal(t, storagev1.VolumeBindingWaitForFirstConsumer, *sc.VolumeBindingMode)
	assert.True(t, *sc.AllowVolumeExpansion)

	var ctrl appsv1.Deployment
	get("Deployment", "stratus-csi-controller", &ctrl)
	images := map[string][]string{}
	for _, c := range ctrl.Spec.Template.Spec.Containers {
		images[c.Name] = c.Args
	}
	for _, sidecar := range []string{"csi-provisioner", "csi-attacher", "csi-resizer", "csi-snapshotter"} {
		require.Contains(t, images, sidecar)
		assert.Contains(t, images[sidecar], "--leader-election", "%s elects a leader", sidecar)
	}
	assert.Contains(t, images, "liveness-probe")
	assert.Contains(t, images["csi-provisioner"], "--controller-publish-readonly")
	assert.Contains(t, images["driver"], "--mode=controller")

	var node appsv1.DaemonSet
	get("DaemonSet", "stratus-csi-node", &node)
	var names []string
	for _, c := range node.Spec.Template.Spec.Containers {
		names = append(names, c.Name)
		if c.Name == "driver" {
			require.NotNil(t, c.Lifecycle)
			require.NotNil(t, c.Lifecycle.PreStop)
			assert.True(t, slices.ContainsFunc(c.Lifecycle.PreStop.Exec.Command, func(a string) bool { return strings.HasPrefix(a, "--wait-drain=") }),
				"the preStop waits for volumes to drain")
			assert.Contains(t, c.Args, "--mode=node")
		}
	}
	assert.Contains(t, names, "node-driver-registrar")
}
