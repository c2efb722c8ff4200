package controlplane

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// CSIDriverName is the CSI driver the sandbox runs (csi.DriverName; a test keeps the two
// equal without this package linking the driver).
const CSIDriverName = "cbs.csi.stratus.io"

// StorageClassName is the sandbox's default StorageClass.
const StorageClassName = "stratus-cbs"

// CSIDriver is the driver's registration, as examples/manifests/csi/csidriver.yaml has
// it: the controller attaches disks (attachRequired), volumes are persistent.
func CSIDriver() *storagev1.CSIDriver {
	attach, podInfo, republish, capacity := true, false, false, false
	policy := storagev1.FileFSGroupPolicy
	return &storagev1.CSIDriver{
		ObjectMeta: metav1.ObjectMeta{Name: CSIDriverName, Labels: map[string]string{"app.kubernetes.io/managed-by": "stratus-sandbox"}},
		Spec: storagev1.CSIDriverSpec{
			AttachRequired: &attach, PodInfoOnMount: &podInfo, RequiresRepublish: &republish, StorageCapacity: &capacity,
			FSGroupPolicy:        &policy,
			VolumeLifecycleModes: []storagev1.VolumeLifecycleMode{storagev1.VolumeLifecyclePersistent},
		},
	}
}

// StorageClass is the default class, as examples/manifests/csi/storageclass.yaml has
// it: a CLOUD_PREMIUM disk per claim, in the zone of the node its first pod lands on.
func StorageClass() *storagev1.StorageClass {
	wait := storagev1.VolumeBindingWaitForFirstConsumer
	reclaim := corev1.PersistentVolumeReclaimDelete
	expand := true
	return &storagev1.StorageClass{
		ObjectMeta: metav1.ObjectMeta{
			Name:        StorageClassName,
			Labels:      map[string]string{"app.kubernetes.io/managed-by": "stratus-sandbox"},
			Annotations: map[string]string{"storageclass.kubernetes.io/is-default-class": "true"},
		},
		Provisioner:          CSIDriverName,
		Parameters:           map[string]string{"diskType": "CLOUD_PREMIUM", "csi.storage.k8s.io/fstype": "ext4"},
		ReclaimPolicy:        &reclaim,
		VolumeBindingMode:    &wait,
		AllowVolumeExpansion: &expand,
	}
}

// EnsureObjects creates the cluster objects the sandbox brings (the CSIDriver and the
// StorageClass) where they are missing; objects already there are left as they are (a
// user may have changed them).
func EnsureObjects(ctx context.Context, client kubernetes.Interface) error {
	if _, err := client.StorageV1().CSIDrivers().Create(ctx, CSIDriver(), metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create CSIDriver %s: %w", CSIDriverName, err)
	}
	if _, err := client.StorageV1().StorageClasses().Create(ctx, StorageClass(), metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create StorageClass %s: %w", StorageClassName, err)
	}
	return nil
}
