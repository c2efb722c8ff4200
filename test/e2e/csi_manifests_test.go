//go:build e2e

package e2e

import (
	"context"
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
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/restmapper"

	"github.com/stratus-cloud/stratus/test/e2e/framework"
)

// TestCSIManifestsServerDryRun sends every object of examples/manifests/csi to a real
// kube-apiserver with dryRun=All and strict field validation, after installing the
// VolumeSnapshot CRDs the VolumeSnapshotClass and the readers example need.
func TestCSIManifestsServerDryRun(t *testing.T) {
	ctx := context.Background()
	etcd := framework.StartEtcd(t)
	api := framework.StartAPIServer(t, etcd)
	crdDir, err := framework.SnapshotCRDDir()
	require.NoError(t, err)
	framework.CreateManifests(ctx, t, api, nil, framework.DecodeManifests(t, filepath.Join(crdDir, "snapshot.storage.k8s.io_*.yaml")), false)
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

	objs := framework.ExampleManifests(t, "csi")
	kinds := framework.CreateManifests(ctx, t, api, mapper, objs, true)
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
