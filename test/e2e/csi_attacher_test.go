//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/stratus-cloud/stratus/cloudapi"
	"github.com/stratus-cloud/stratus/cloudapi/cbs"
	"github.com/stratus-cloud/stratus/test/e2e/framework"
)

// TestCSIAttacher runs the real external-attacher sidecar against kube-apiserver and the
// driver's controller (on fakecloud): a VolumeAttachment for a PV of this cluster
// becomes attached, its disk attached to the node's instance, with the publish context
// the node needs; deleting it detaches the disk.
func TestCSIAttacher(t *testing.T) {
	ctx := context.Background()
	etcd := framework.StartEtcd(t)
	api := framework.StartAPIServer(t, etcd)
	fc := framework.StartFakecloud(t)
	cloudConfig := framework.WriteCloudConfig(t, t.TempDir(), fc, "")
	driver := framework.StartCSIDriver(t, "csi-controller", cloudConfig, "--mode=controller", "--default-zone=ap-guangzhou-1")
	disks := cbs.New(fc.Client(t))
	kube := api.Client

	// A disk as the provisioner would have made it for this cluster.
	out, err := disks.CreateDisks(ctx, &cbs.CreateDisksRequest{DiskType: cbs.DiskTypePremium, Placement: &cbs.Placement{Zone: "ap-guangzhou-1"},
		DiskSize: cloudapi.Int64(10), Tags: []cloudapi.Tag{{Key: "stratus.io/cluster", Value: "e2e"}, {Key: "stratus.io/csi-volume", Value: "pv-attach"}}})
	require.NoError(t, err)
	diskID := out.DiskIdSet[0]

	_, err = kube.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-1"}}, metav1.CreateOptions{})
	require.NoError(t, err)
	_, err = kube.StorageV1().CSINodes().Create(ctx, &storagev1.CSINode{ObjectMeta: metav1.ObjectMeta{Name: "node-1"},
		Spec: storagev1.CSINodeSpec{Drivers: []storagev1.CSINodeDriver{{Name: "cbs.csi.stratus.io", NodeID: "ins-node0001"}}}}, metav1.CreateOptions{})
	require.NoError(t, err)
	_, err = kube.CoreV1().PersistentVolumes().Create(ctx, &corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: "pv-attach"},
		Spec: corev1.PersistentVolumeSpec{
			Capacity:    corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("10Gi")},
			AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			PersistentVolumeSource: corev1.PersistentVolumeSource{CSI: &corev1.CSIPersistentVolumeSource{
				Driver: "cbs.csi.stratus.io", VolumeHandle: diskID, FSType: "ext4"}},
		},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	framework.StartCSIAttacher(t, api, driver)

	pv := "pv-attach"
	_, err = kube.StorageV1().VolumeAttachments().Create(ctx, &storagev1.VolumeAttachment{
		ObjectMeta: metav1.ObjectMeta{Name: "va-1"},
		Spec: storagev1.VolumeAttachmentSpec{Attacher: "cbs.csi.stratus.io", NodeName: "node-1",
			Source: storagev1.VolumeAttachmentSource{PersistentVolumeName: &pv}},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	framework.Eventually(t, 2*time.Minute, "VolumeAttachment va-1 attached", func(ctx context.Context) error {
		va, err := kube.StorageV1().VolumeAttachments().Get(ctx, "va-1", metav1.GetOptions{})
		if err != nil {
			return err
		}
		if !va.Status.Attached {
			return fmt.Errorf("not attached (%v)", va.Status.AttachError)
		}
		if va.Status.AttachmentMetadata["diskId"] != diskID || va.Status.AttachmentMetadata["readOnly"] != "false" {
			return framework.Permanent(fmt.Errorf("publish context %v", va.Status.AttachmentMetadata))
		}
		return nil
	})
	d, err := disks.GetDisk(ctx, diskID)
	require.NoError(t, err)
	require.Equal(t, cbs.DiskStateAttached, d.DiskState)
	require.Equal(t, "ins-node0001", d.InstanceId, "attached to the node's instance")

	require.NoError(t, kube.StorageV1().VolumeAttachments().Delete(ctx, "va-1", metav1.DeleteOptions{}))
	framework.Eventually(t, 2*time.Minute, "va-1 gone and disk "+diskID+" detached", func(ctx context.Context) error {
		if _, err := kube.StorageV1().VolumeAttachments().Get(ctx, "va-1", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			return fmt.Errorf("VolumeAttachment still there (%v)", err)
		}
		d, err := disks.GetDisk(ctx, diskID)
		if err != nil {
			return err
		}
		if d.DiskState != cbs.DiskStateUnattached {
			return fmt.Errorf("disk is %s", d.DiskState)
		}
		return nil
	})
}
