//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"

	"github.com/stratus-cloud/stratus/cloudapi"
	"github.com/stratus-cloud/stratus/cloudapi/cbs"
	"github.com/stratus-cloud/stratus/test/e2e/framework"
)

// TestCSIProvisioner runs the real external-provisioner sidecar against kube-apiserver
// (with kube-controller-manager's PV controller) and the driver's controller (on
// fakecloud): a claim becomes a Bound PV whose disk has
// the size and zone the claim and class ask for, deleting the claim deletes the disk, and
// a class with an unknown diskType leaves its claim Pending with an event naming the
// parameter.
func TestCSIProvisioner(t *testing.T) {
	ctx := context.Background()
	etcd := framework.StartEtcd(t)
	api := framework.StartAPIServer(t, etcd)
	// The PV controller binds claims and hands them to the external provisioner.
	framework.StartKubeControllerManager(t, api, "persistentvolume-binder-controller,persistentvolume-protection-controller,persistentvolumeclaim-protection-controller")
	fc := framework.StartFakecloud(t)
	cloudConfig := framework.WriteCloudConfig(t, t.TempDir(), fc, "")
	metricsAddr := fmt.Sprintf("127.0.0.1:%d", framework.FreePort(t))
	driver := framework.StartCSIDriver(t, "csi-controller", cloudConfig, "--mode=controller", "--default-zone=ap-guangzhou-1", "--http-endpoint="+metricsAddr)
	disks := cbs.New(fc.Client(t))
	kube := api.Client

	// A node as kubelet and node-driver-registrar leave it: the zone label and a CSINode
	// naming the driver's node id and topology key. The provisioner takes the topology of
	// Immediate claims from these.
	_, err := kube.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-3",
		Labels: map[string]string{"topology.kubernetes.io/zone": "ap-guangzhou-2"}}}, metav1.CreateOptions{})
	require.NoError(t, err)
	_, err = kube.StorageV1().CSINodes().Create(ctx, &storagev1.CSINode{ObjectMeta: metav1.ObjectMeta{Name: "node-3"},
		Spec: storagev1.CSINodeSpec{Drivers: []storagev1.CSINodeDriver{{Name: "cbs.csi.stratus.io", NodeID: "ins-node0003",
			TopologyKeys: []string{"topology.kubernetes.io/zone"}}}}}, metav1.CreateOptions{})
	require.NoError(t, err)
	framework.StartCSIProvisioner(t, api, driver)

	immediate := storagev1.VolumeBindingImmediate
	deletePolicy := corev1.PersistentVolumeReclaimDelete
	newClass := func(name string, params map[string]string) {
		_, err := kube.StorageV1().StorageClasses().Create(ctx, &storagev1.StorageClass{
			ObjectMeta: metav1.ObjectMeta{Name: name}, Provisioner: "cbs.csi.stratus.io", Parameters: params,
			VolumeBindingMode: &immediate, ReclaimPolicy: &deletePolicy,
		}, metav1.CreateOptions{})
		require.NoError(t, err)
	}
	newClaim := func(name, class, size string) {
		_, err := kube.CoreV1().PersistentVolumeClaims("default").Create(ctx, &corev1.PersistentVolumeClaim{
			ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec: corev1.PersistentVolumeClaimSpec{
				StorageClassName: &class,
				AccessModes:      []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
				Resources:        corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse(size)}},
			},
		}, metav1.CreateOptions{})
		require.NoError(t, err)
	}

	newClass("ssd", map[string]string{"diskType": "CLOUD_SSD", "csi.storage.k8s.io/fstype": "ext4"})
	newClaim("data", "ssd", "15Gi")

	var pv *corev1.PersistentVolume
	framework.Eventually(t, 2*time.Minute, "claim default/data Bound", func(ctx context.Context) error {
		c, err := kube.CoreV1().PersistentVolumeClaims("default").Get(ctx, "data", metav1.GetOptions{})
		if err != nil {
			return err
		}
		if c.Status.Phase != corev1.ClaimBound {
			return fmt.Errorf("claim is %s", c.Status.Phase)
		}
		pv, err = kube.CoreV1().PersistentVolumes().Get(ctx, c.Spec.VolumeName, metav1.GetOptions{})
		return err
	})
	require.NotNil(t, pv.Spec.CSI)
	assert.Equal(t, "cbs.csi.stratus.io", pv.Spec.CSI.Driver)
	assert.Equal(t, "ext4", pv.Spec.CSI.FSType)
	size := pv.Spec.Capacity[corev1.ResourceStorage]
	assert.Equal(t, "20Gi", size.String(), "15Gi rounded up to CLOUD_SSD's 10 GiB step")

	diskID := pv.Spec.CSI.VolumeHandle
	d, err := disks.GetDisk(ctx, diskID)
	require.NoError(t, err, "the PV's disk exists")
	assert.Equal(t, int64(20), d.DiskSize)
	assert.Equal(t, "CLOUD_SSD", d.DiskType)
	assert.Equal(t, "ap-guangzhou-2", d.Placement.Zone, "the zone of the claim's topology, not the driver's default")
	require.NotNil(t, pv.Spec.NodeAffinity)
	assert.Equal(t, "ap-guangzhou-2", pv.Spec.NodeAffinity.Required.NodeSelectorTerms[0].MatchExpressions[0].Values[0])
	assert.Contains(t, d.Tags, cloudapi.Tag{Key: "stratus.io/cluster", Value: "e2e"})
	assert.Contains(t, d.Tags, cloudapi.Tag{Key: "stratus.io/csi-volume", Value: pv.Name})

	// One disk, one CreateDisks: the driver's cloud calls, as its /metrics reports them.
	resp, err := http.Get("http://" + metricsAddr + "/metrics")
	require.NoError(t, err)
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.NoError(t, err)
	assert.Contains(t, string(body), `stratus_cloudapi_requests_total{action="CreateDisks",result="success",service="cbs"} 1`)

	require.NoError(t, kube.CoreV1().PersistentVolumeClaims("default").Delete(ctx, "data", metav1.DeleteOptions{}))
	framework.Eventually(t, 2*time.Minute, "PV "+pv.Name+" and disk "+diskID+" deleted", func(ctx context.Context) error {
		if _, err := kube.CoreV1().PersistentVolumes().Get(ctx, pv.Name, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			return fmt.Errorf("PV still there (%v)", err)
		}
		if _, err := disks.GetDisk(ctx, diskID); !cloudapi.IsNotFound(err) {
			return fmt.Errorf("disk still there (%v)", err)
		}
		return nil
	})

	newClass("typo", map[string]string{"diskType": "CLOUD_NOPE"})
	newClaim("typo", "typo", "10Gi")
	framework.Eventually(t, 2*time.Minute, "a ProvisioningFailed event on default/typo naming diskType", func(ctx context.Context) error {
		evs, err := kube.CoreV1().Events("default").List(ctx, metav1.ListOptions{
			FieldSelector: fields.AndSelectors(fields.OneTermEqualSelector("involvedObject.name", "typo"),
				fields.OneTermEqualSelector("reason", "ProvisioningFailed")).String()})
		if err != nil {
			return err
		}
		for _, e := range evs.Items {
			if e.Type == corev1.EventTypeWarning && strings.Contains(e.Message, "diskType") && strings.Contains(e.Message, "CLOUD_NOPE") {
				return nil
			}
		}
		return fmt.Errorf("%d ProvisioningFailed events, none naming diskType", len(evs.Items))
	})
	framework.Consistently(t, 3*time.Second, "claim default/typo stays Pending and no disk is made", func(ctx context.Context) error {
		c, err := kube.CoreV1().PersistentVolumeClaims("default").Get(ctx, "typo", metav1.GetOptions{})
		if err != nil {
			return err
		}
		if c.Status.Phase != corev1.ClaimPending {
			return fmt.Errorf("claim is %s", c.Status.Phase)
		}
		out, err := disks.DescribeDisks(ctx, &cbs.DescribeDisksRequest{Filters: []cloudapi.Filter{{Name: "tag:stratus.io/cluster", Values: []string{"e2e"}}}})
		if err != nil {
			return err
		}
		if out.TotalCount != 0 {
			return fmt.Errorf("%d disks of the cluster exist", out.TotalCount)
		}
		return nil
	})
}
