package podlet

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"

	csi "github.com/container-storage-interface/spec/lib/go/csi"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
)

// fakeNode is a CSI node plugin that records its calls and makes the directories a real
// one would mount.
type fakeNode struct {
	csi.UnimplementedNodeServer
	mu    sync.Mutex
	calls []string
}

func (f *fakeNode) record(s string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, s)
}

func (f *fakeNode) Calls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.calls...)
}

func (f *fakeNode) NodeGetCapabilities(context.Context, *csi.NodeGetCapabilitiesRequest) (*csi.NodeGetCapabilitiesResponse, error) {
	return &csi.NodeGetCapabilitiesResponse{Capabilities: []*csi.NodeServiceCapability{{Type: &csi.NodeServiceCapability_Rpc{
		Rpc: &csi.NodeServiceCapability_RPC{Type: csi.NodeServiceCapability_RPC_STAGE_UNSTAGE_VOLUME}}}}}, nil
}

func (f *fakeNode) NodeStageVolume(_ context.Context, r *csi.NodeStageVolumeRequest) (*csi.NodeStageVolumeResponse, error) {
	f.record("stage " + r.VolumeId + " " + r.PublishContext["devicePath"] + " " + r.VolumeCapability.GetAccessMode().GetMode().String())
	return &csi.NodeStageVolumeResponse{}, os.MkdirAll(r.StagingTargetPath, 0o755)
}

func (f *fakeNode) NodePublishVolume(_ context.Context, r *csi.NodePublishVolumeRequest) (*csi.NodePublishVolumeResponse, error) {
	f.record("publish " + r.VolumeId)
	return &csi.NodePublishVolumeResponse{}, os.MkdirAll(r.TargetPath, 0o755)
}

func (f *fakeNode) NodeUnpublishVolume(_ context.Context, r *csi.NodeUnpublishVolumeRequest) (*csi.NodeUnpublishVolumeResponse, error) {
	f.record("unpublish " + r.VolumeId)
	return &csi.NodeUnpublishVolumeResponse{}, os.RemoveAll(r.TargetPath)
}

func (f *fakeNode) NodeUnstageVolume(_ context.Context, r *csi.NodeUnstageVolumeRequest) (*csi.NodeUnstageVolumeResponse, error) {
	f.record("unstage " + r.VolumeId)
	return &csi.NodeUnstageVolumeResponse{}, os.RemoveAll(r.StagingTargetPath)
}

func serveFakeNode(t *testing.T) (*fakeNode, string) {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "csi.sock")
	l, err := net.Listen("unix", sock)
	require.NoError(t, err)
	srv := grpc.NewServer()
	f := &fakeNode{}
	csi.RegisterNodeServer(srv, f)
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(srv.Stop)
	return f, sock
}

// TestCSIVolumesLifecycle: a pod's claim is attached (the podlet's VolumeAttachment,
// waited on until the attacher marks it), staged and published, and served at the
// container's mount path; an attach error is the driver's reason; release unpublishes,
// unstages and detaches, waiting for the attachment to go.
func TestCSIVolumesLifecycle(t *testing.T) {
	ctx := context.Background()
	fs := "ext4"
	pv := &corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: "pv-1"},
		Spec: corev1.PersistentVolumeSpec{AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			PersistentVolumeSource: corev1.PersistentVolumeSource{CSI: &corev1.CSIPersistentVolumeSource{Driver: "cbs.csi.stratus.io", VolumeHandle: "disk-1", FSType: fs}}},
	}
	pvc := &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: "data", Namespace: "default"},
		Spec:       corev1.PersistentVolumeClaimSpec{VolumeName: "pv-1"},
		Status:     corev1.PersistentVolumeClaimStatus{Phase: corev1.ClaimBound},
	}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "writer", Namespace: "default", UID: "uid-1"},
		Spec: corev1.PodSpec{
			Volumes: []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "data"}}}},
			Containers: []corev1.Container{{Name: "echo", Image: EchoImage,
				VolumeMounts: []corev1.VolumeMount{{Name: "data", MountPath: "/data/"}}}},
		},
	}
	client := fake.NewClientset(pv, pvc)
	node, sock := serveFakeNode(t)
	v := &CSIVolumes{Client: client, NodeName: "node-1", Driver: "cbs.csi.stratus.io", Socket: sock, KubeletDir: t.TempDir()}
	t.Cleanup(func() { _ = v.Close() })
	vas := client.StorageV1().VolumeAttachments()
	vaName := AttachmentName("disk-1", "cbs.csi.stratus.io", "node-1")

	_, err := v.Prepare(ctx, pod)
	require.Error(t, err)
	assert.True(t, isPending(err), "waits for the attacher: %v", err)
	va, err := vas.Get(ctx, vaName, metav1.GetOptions{})
	require.NoError(t, err, "the podlet created the VolumeAttachment")
	assert.Equal(t, "node-1", va.Spec.NodeName)
	assert.Equal(t, "pv-1", *va.Spec.Source.PersistentVolumeName)
	assert.Empty(t, node.Calls(), "nothing staged before the attach")

	// The attacher refuses: the driver's reason on the pod, still pending.
	va.Status.AttachError = &storagev1.VolumeError{Message: "rpc error: code = FailedPrecondition desc = attached elsewhere"}
	_, err = vas.UpdateStatus(ctx, va, metav1.UpdateOptions{})
	require.NoError(t, err)
	_, err = v.Prepare(ctx, pod)
	require.Error(t, err)
	assert.Equal(t, ReasonAttach, reasonOf(err))
	assert.Contains(t, err.Error(), "FailedPrecondition")

	// Attached: staged with the publish context, published, served at /data.
	va.Status = storagev1.VolumeAttachmentStatus{Attached: true, AttachmentMetadata: map[string]string{"devicePath": "/dev/vdb"}}
	_, err = vas.UpdateStatus(ctx, va, metav1.UpdateOptions{})
	require.NoError(t, err)
	mounts, err := v.Prepare(ctx, pod)
	require.NoError(t, err)
	require.Len(t, mounts, 1)
	assert.Equal(t, "/data", mounts[0].Path)
	assert.False(t, mounts[0].ReadOnly)
	assert.DirExists(t, mounts[0].Dir)
	assert.Equal(t, []string{"stage disk-1 /dev/vdb SINGLE_NODE_WRITER", "publish disk-1"}, node.Calls())
	again, err := v.Prepare(ctx, pod)
	require.NoError(t, err)
	assert.Equal(t, mounts, again, "a second Prepare changes nothing")
	assert.Len(t, node.Calls(), 2)

	// Release: unpublish, unstage, detach; pending until the attachment is gone.
	err = v.Release(ctx, "uid-1")
	require.Error(t, err)
	assert.True(t, isPending(err), "waits for the detach: %v", err)
	assert.Equal(t, []string{"unpublish disk-1", "unstage disk-1"}, node.Calls()[2:])
	_, err = vas.Get(ctx, vaName, metav1.GetOptions{})
	assert.True(t, apierrors.IsNotFound(err), "the VolumeAttachment is deleted (the fake clientset has no finalizers)")
	require.NoError(t, v.Release(ctx, "uid-1"))
	assert.Empty(t, v.UIDs(), "no record left")
	assert.NoDirExists(t, filepath.Join(v.KubeletDir, "pods", "uid-1"))
	assert.Len(t, node.Calls(), 4, "nothing called twice")
}
