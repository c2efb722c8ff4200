package podlet

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sync"

	csi "github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/retry"
	"k8s.io/klog/v2"

	"github.com/stratus-cloud/stratus/sandbox/state"
)

// Event reasons of volumes, the kubelet's.
const (
	ReasonAttach = "FailedAttachVolume"
)

// NodeIDAnnotation is where a kubelet records the CSI node IDs of its drivers.
const NodeIDAnnotation = "csi.volume.kubernetes.io/nodeid"

// CSIVolumes is the Volumes of a sandbox node: PersistentVolume claims of one CSI
// driver, served through the driver's node plugin socket the way a kubelet with
// --enable-controller-attach-detach=false serves them. The node is not managed by
// kube-controller-manager's attach/detach controller; the podlet attaches a pod's
// volume itself by creating its VolumeAttachment (named as the kubelet names it) and
// waits for the external-attacher to mark it attached (its error, the driver's reason,
// becomes a FailedAttachVolume event on the pod); then NodeStageVolume at the volume's
// global mount and NodePublishVolume at the pod's own directory, under KubeletDir as a
// kubelet lays them out. Release runs NodeUnpublishVolume, and once no other pod of
// the node uses the volume, NodeUnstageVolume and the detach (deleting the
// VolumeAttachment, waiting until the attacher has let it go).
//
// What it did for a pod is recorded (before each step) in KubeletDir/pods/<uid>, so a
// restarted podlet releases what an earlier one published.
type CSIVolumes struct {
	Client     kubernetes.Interface
	NodeName   string
	Driver     string
	Socket     string
	KubeletDir string

	mu   sync.Mutex // serializes Prepare, Release and Register
	conn *grpc.ClientConn
	caps map[csi.NodeServiceCapability_RPC_Type]bool
}

// publishedVolume is one claim of a pod as the podlet handled it.
type publishedVolume struct {
	Name       string `json:"name"` // the pod's volume name
	PV         string `json:"pv"`
	Handle     string `json:"handle"`
	Attachment string `json:"attachment"`
	Staging    string `json:"staging"`
	Target     string `json:"target"`
	Staged     bool   `json:"staged,omitempty"`
	Published  bool   `json:"published,omitempty"`
}

type volumeRecord struct {
	UID     string            `json:"uid"`
	Volumes []publishedVolume `json:"volumes"`
}

// AttachmentName is the VolumeAttachment of a volume handle on a node, as the kubelet
// and the attach/detach controller name it.
func AttachmentName(handle, driver, node string) string {
	sum := sha256.Sum256([]byte(handle + driver + node))
	return "csi-" + hex.EncodeToString(sum[:])
}

func (c *CSIVolumes) stagingPath(handle string) string {
	sum := sha256.Sum256([]byte(handle))
	return filepath.Join(c.KubeletDir, "plugins", "kubernetes.io", "csi", c.Driver, hex.EncodeToString(sum[:]), "globalmount")
}

func (c *CSIVolumes) podDir(uid string) string { return filepath.Join(c.KubeletDir, "pods", uid) }

func (c *CSIVolumes) targetPath(uid, pv string) string {
	return filepath.Join(c.podDir(uid), "volumes", "kubernetes.io~csi", pv, "mount")
}

func (c *CSIVolumes) recordPath(uid string) string {
	return filepath.Join(c.podDir(uid), "volumes.json")
}

func (c *CSIVolumes) load(uid string) (*volumeRecord, error) {
	var r volumeRecord
	if err := state.ReadJSON(c.recordPath(uid), &r); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
		return nil, err
	}
	return &r, nil
}

func (c *CSIVolumes) save(r *volumeRecord) error { return state.WriteJSON(c.recordPath(r.UID), r) }

// UIDs lists the pods the node has volume records of.
func (c *CSIVolumes) UIDs() []string {
	files, _ := filepath.Glob(filepath.Join(c.KubeletDir, "pods", "*", "volumes.json"))
	var out []string
	for _, f := range files {
		out = append(out, filepath.Base(filepath.Dir(f)))
	}
	return out
}

// node is the node plugin's client (the connection is made once and kept).
func (c *CSIVolumes) node(ctx context.Context) (csi.NodeClient, error) {
	if c.conn == nil {
		conn, err := grpc.NewClient("unix://"+c.Socket, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			return nil, fmt.Errorf("CSI node plugin %s: %w", c.Socket, err)
		}
		c.conn = conn
	}
	n := csi.NewNodeClient(c.conn)
	if c.caps == nil {
		out, err := n.NodeGetCapabilities(ctx, &csi.NodeGetCapabilitiesRequest{})
		if err != nil {
			return nil, fmt.Errorf("CSI node plugin %s: NodeGetCapabilities: %w", c.Socket, err)
		}
		caps := map[csi.NodeServiceCapability_RPC_Type]bool{}
		for _, cp := range out.GetCapabilities() {
			caps[cp.GetRpc().GetType()] = true
		}
		c.caps = caps
	}
	return n, nil
}

// Close drops the connection to the node plugin.
func (c *CSIVolumes) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.conn == nil {
		return nil
	}
	err := c.conn.Close()
	c.conn = nil
	return err
}

// Register does what a kubelet's plugin registration does with NodeGetInfo: it records
// the driver's node ID in the Node's annotation and in its CSINode (with the topology
// keys and the volume limit), and labels the Node with the driver's topology, so the
// external-attacher can translate the node and the provisioner and the scheduler place
// volumes in its zone.
func (c *CSIVolumes) Register(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	n, err := c.node(ctx)
	if err != nil {
		return err
	}
	info, err := n.NodeGetInfo(ctx, &csi.NodeGetInfoRequest{})
	if err != nil {
		return fmt.Errorf("CSI node plugin %s: NodeGetInfo: %w", c.Socket, err)
	}
	segments := info.GetAccessibleTopology().GetSegments()
	var node *corev1.Node
	err = retry.RetryOnConflict(retry.DefaultRetry, func() error {
		node, err = c.Client.CoreV1().Nodes().Get(ctx, c.NodeName, metav1.GetOptions{})
		if err != nil {
			return err
		}
		ids := map[string]string{}
		if raw := node.Annotations[NodeIDAnnotation]; raw != "" {
			_ = json.Unmarshal([]byte(raw), &ids)
		}
		changed := ids[c.Driver] != info.GetNodeId()
		ids[c.Driver] = info.GetNodeId()
		if node.Labels == nil {
			node.Labels = map[string]string{}
		}
		for k, v := range segments {
			if node.Labels[k] != v {
				node.Labels[k], changed = v, true
			}
		}
		if !changed {
			return nil
		}
		b, _ := json.Marshal(ids)
		if node.Annotations == nil {
			node.Annotations = map[string]string{}
		}
		node.Annotations[NodeIDAnnotation] = string(b)
		node, err = c.Client.CoreV1().Nodes().Update(ctx, node, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		return fmt.Errorf("node %s: record the CSI node ID: %w", c.NodeName, err)
	}
	entry := storagev1.CSINodeDriver{Name: c.Driver, NodeID: info.GetNodeId()}
	for k := range segments {
		entry.TopologyKeys = append(entry.TopologyKeys, k)
	}
	slices.Sort(entry.TopologyKeys)
	if m := info.GetMaxVolumesPerNode(); m > 0 {
		count := int32(m)
		entry.Allocatable = &storagev1.VolumeNodeResources{Count: &count}
	}
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		cn, err := c.Client.StorageV1().CSINodes().Get(ctx, c.NodeName, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			cn = &storagev1.CSINode{
				ObjectMeta: metav1.ObjectMeta{Name: c.NodeName, OwnerReferences: []metav1.OwnerReference{{APIVersion: "v1", Kind: "Node", Name: node.Name, UID: node.UID}}},
				Spec:       storagev1.CSINodeSpec{Drivers: []storagev1.CSINodeDriver{entry}},
			}
			_, err = c.Client.StorageV1().CSINodes().Create(ctx, cn, metav1.CreateOptions{})
			return err
		}
		if err != nil {
			return err
		}
		drivers := slices.DeleteFunc(slices.Clone(cn.Spec.Drivers), func(d storagev1.CSINodeDriver) bool { return d.Name == c.Driver })
		cn.Spec.Drivers = append(drivers, entry)
		_, err = c.Client.StorageV1().CSINodes().Update(ctx, cn, metav1.UpdateOptions{})
		return err
	})
}

// Prepare attaches, stages and publishes every claim of pod, and returns the mounts of
// its containers. Volumes that need no storage are accepted as they are.
func (c *CSIVolumes) Prepare(ctx context.Context, pod *corev1.Pod) ([]Mount, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	uid := string(pod.UID)
	rec, err := c.load(uid)
	if err != nil {
		return nil, err
	}
	if rec == nil {
		rec = &volumeRecord{UID: uid}
	}
	dirs := map[string]string{} // pod volume name -> published dir
	readOnly := map[string]bool{}
	for _, v := range pod.Spec.Volumes {
		switch {
		case v.CSI != nil:
			return nil, fmt.Errorf("%w: volume %s: inline CSI volumes (driver %s) are not served; use a PersistentVolumeClaim", ErrVolumeUnsupported, v.Name, v.CSI.Driver)
		case v.Ephemeral != nil:
			return nil, fmt.Errorf("%w: volume %s: generic ephemeral volumes are not served; use a PersistentVolumeClaim", ErrVolumeUnsupported, v.Name)
		case v.PersistentVolumeClaim == nil:
			continue
		}
		dir, err := c.prepareClaim(ctx, pod, v, rec)
		if err != nil {
			return nil, err
		}
		dirs[v.Name] = dir
		readOnly[v.Name] = v.PersistentVolumeClaim.ReadOnly
	}
	var mounts []Mount
	for _, ctr := range pod.Spec.Containers {
		for _, vm := range ctr.VolumeMounts {
			dir, ok := dirs[vm.Name]
			if !ok {
				continue
			}
			if vm.SubPath != "" || vm.SubPathExpr != "" {
				return nil, fmt.Errorf("%w: container %s: a subPath of volume %s is not served", ErrVolumeUnsupported, ctr.Name, vm.Name)
			}
			m := Mount{Path: filepath.Clean("/" + vm.MountPath), Dir: dir, ReadOnly: vm.ReadOnly || readOnly[vm.Name]}
			if !slices.ContainsFunc(mounts, func(o Mount) bool { return o.Path == m.Path }) {
				mounts = append(mounts, m)
			}
		}
	}
	return mounts, nil
}

func (c *CSIVolumes) prepareClaim(ctx context.Context, pod *corev1.Pod, v corev1.Volume, rec *volumeRecord) (string, error) {
	claim := v.PersistentVolumeClaim.ClaimName
	pvc, err := c.Client.CoreV1().PersistentVolumeClaims(pod.Namespace).Get(ctx, claim, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return "", pending(ReasonVolumes, "volume %s: persistentvolumeclaim %q not found", v.Name, claim)
	}
	if err != nil {
		return "", fmt.Errorf("volume %s: get claim %s: %w", v.Name, claim, err)
	}
	if pvc.Status.Phase != corev1.ClaimBound || pvc.Spec.VolumeName == "" {
		return "", pending("", "volume %s: claim %s is not bound yet", v.Name, claim)
	}
	pv, err := c.Client.CoreV1().PersistentVolumes().Get(ctx, pvc.Spec.VolumeName, metav1.GetOptions{})
	if err != nil {
		return "", fmt.Errorf("volume %s: get persistent volume %s: %w", v.Name, pvc.Spec.VolumeName, err)
	}
	switch {
	case pv.Spec.CSI == nil || pv.Spec.CSI.Driver != c.Driver:
		return "", fmt.Errorf("%w: volume %s: persistent volume %s is not a volume of CSI driver %s", ErrVolumeUnsupported, v.Name, pv.Name, c.Driver)
	case pv.Spec.VolumeMode != nil && *pv.Spec.VolumeMode == corev1.PersistentVolumeBlock:
		return "", fmt.Errorf("%w: volume %s: raw block volumes are not served (the pod's server reads files)", ErrVolumeUnsupported, v.Name)
	}
	handle := pv.Spec.CSI.VolumeHandle
	i := slices.IndexFunc(rec.Volumes, func(p publishedVolume) bool { return p.Name == v.Name })
	if i < 0 {
		rec.Volumes = append(rec.Volumes, publishedVolume{
			Name: v.Name, PV: pv.Name, Handle: handle, Attachment: AttachmentName(handle, c.Driver, c.NodeName),
			Staging: c.stagingPath(handle), Target: c.targetPath(rec.UID, pv.Name),
		})
		i = len(rec.Volumes) - 1
		// Recorded before the attachment exists, so a crash in between leaves nothing
		// that Release would not find.
		if err := c.save(rec); err != nil {
			return "", err
		}
	}
	pub := &rec.Volumes[i]
	if pub.Published {
		return pub.Target, nil
	}
	publishContext, err := c.attach(ctx, pv, pub)
	if err != nil {
		return "", err
	}
	n, err := c.node(ctx)
	if err != nil {
		return "", &VolumeError{Reason: ReasonVolumes, Err: err}
	}
	capability := c.capability(pv)
	if c.caps[csi.NodeServiceCapability_RPC_STAGE_UNSTAGE_VOLUME] && !pub.Staged {
		if _, err := n.NodeStageVolume(ctx, &csi.NodeStageVolumeRequest{
			VolumeId: handle, PublishContext: publishContext, StagingTargetPath: pub.Staging,
			VolumeCapability: capability, VolumeContext: pv.Spec.CSI.VolumeAttributes,
		}); err != nil {
			return "", &VolumeError{Reason: ReasonVolumes, Err: fmt.Errorf("MountVolume.MountDevice failed for volume %q: %w", pv.Name, err)}
		}
		pub.Staged = true
		if err := c.save(rec); err != nil {
			return "", err
		}
	}
	ro := v.PersistentVolumeClaim.ReadOnly || pv.Spec.CSI.ReadOnly
	if _, err := n.NodePublishVolume(ctx, &csi.NodePublishVolumeRequest{
		VolumeId: handle, PublishContext: publishContext, StagingTargetPath: pub.Staging, TargetPath: pub.Target,
		VolumeCapability: capability, Readonly: ro, VolumeContext: pv.Spec.CSI.VolumeAttributes,
	}); err != nil {
		return "", &VolumeError{Reason: ReasonVolumes, Err: fmt.Errorf("MountVolume.SetUp failed for volume %q: %w", pv.Name, err)}
	}
	pub.Published = true
	if err := c.save(rec); err != nil {
		return "", err
	}
	klog.InfoS("Volume published", "pod", pod.Namespace+"/"+pod.Name, "volume", v.Name, "pv", pv.Name, "handle", handle, "target", pub.Target, "readOnly", ro)
	return pub.Target, nil
}

// attach makes sure the volume's VolumeAttachment exists and returns its publish context
// once the attacher marked it attached.
func (c *CSIVolumes) attach(ctx context.Context, pv *corev1.PersistentVolume, pub *publishedVolume) (map[string]string, error) {
	vas := c.Client.StorageV1().VolumeAttachments()
	va, err := vas.Get(ctx, pub.Attachment, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		name := pv.Name
		va = &storagev1.VolumeAttachment{
			ObjectMeta: metav1.ObjectMeta{Name: pub.Attachment},
			Spec: storagev1.VolumeAttachmentSpec{
				Attacher: c.Driver, NodeName: c.NodeName,
				Source: storagev1.VolumeAttachmentSource{PersistentVolumeName: &name},
			},
		}
		if _, err := vas.Create(ctx, va, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return nil, fmt.Errorf("volume %s: create VolumeAttachment %s: %w", pub.Name, pub.Attachment, err)
		}
		klog.InfoS("Attaching volume", "pv", pv.Name, "node", c.NodeName, "attachment", pub.Attachment)
		return nil, pending("", "volume %s: waiting for the attachment of %s", pub.Name, pv.Name)
	}
	if err != nil {
		return nil, fmt.Errorf("volume %s: get VolumeAttachment %s: %w", pub.Name, pub.Attachment, err)
	}
	switch {
	case va.DeletionTimestamp != nil:
		return nil, pending("", "volume %s: an earlier attachment of %s is being detached", pub.Name, pv.Name)
	case va.Status.Attached:
		return va.Status.AttachmentMetadata, nil
	case va.Status.AttachError != nil:
		return nil, &VolumeError{Reason: ReasonAttach, Pending: true,
			Err: fmt.Errorf("AttachVolume.Attach failed for volume %q : %s", pv.Name, va.Status.AttachError.Message)}
	}
	return nil, pending("", "volume %s: waiting for the attachment of %s", pub.Name, pv.Name)
}

// capability is the volume's CSI capability as a kubelet derives it from the PV.
func (c *CSIVolumes) capability(pv *corev1.PersistentVolume) *csi.VolumeCapability {
	mode := csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER
	modes := pv.Spec.AccessModes
	switch {
	case slices.Contains(modes, corev1.ReadWriteOncePod):
		mode = csi.VolumeCapability_AccessMode_SINGLE_NODE_SINGLE_WRITER
	case slices.Contains(modes, corev1.ReadWriteMany):
		mode = csi.VolumeCapability_AccessMode_MULTI_NODE_MULTI_WRITER
	case slices.Contains(modes, corev1.ReadOnlyMany) && !slices.Contains(modes, corev1.ReadWriteOnce):
		mode = csi.VolumeCapability_AccessMode_MULTI_NODE_READER_ONLY
	case c.caps[csi.NodeServiceCapability_RPC_SINGLE_NODE_MULTI_WRITER]:
		mode = csi.VolumeCapability_AccessMode_SINGLE_NODE_MULTI_WRITER
	}
	return &csi.VolumeCapability{
		AccessType: &csi.VolumeCapability_Mount{Mount: &csi.VolumeCapability_MountVolume{FsType: pv.Spec.CSI.FSType, MountFlags: pv.Spec.MountOptions}},
		AccessMode: &csi.VolumeCapability_AccessMode{Mode: mode},
	}
}

// Release unpublishes the pod's volumes and, for each that no other pod of the node
// uses, unstages it and detaches it. A detach the attacher has not finished yet is a
// pending error: the caller tries again.
func (c *CSIVolumes) Release(ctx context.Context, uid string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	rec, err := c.load(uid)
	if err != nil || rec == nil {
		return err
	}
	var errs []error
	for i := range rec.Volumes {
		if err := c.release(ctx, rec, &rec.Volumes[i]); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	if err := os.Remove(c.recordPath(uid)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	// The pod's directory tree is the podlet's; what is left of it is empty directories.
	_ = removeEmptyTree(c.podDir(uid))
	return nil
}

func (c *CSIVolumes) release(ctx context.Context, rec *volumeRecord, pub *publishedVolume) error {
	var n csi.NodeClient
	connect := func() error {
		if n != nil {
			return nil
		}
		var err error
		n, err = c.node(ctx)
		return err
	}
	if pub.Published {
		if err := connect(); err != nil {
			return err
		}
		if _, err := n.NodeUnpublishVolume(ctx, &csi.NodeUnpublishVolumeRequest{VolumeId: pub.Handle, TargetPath: pub.Target}); err != nil {
			return fmt.Errorf("volume %s: NodeUnpublishVolume %s: %w", pub.Name, pub.Target, err)
		}
		pub.Published = false
		if err := c.save(rec); err != nil {
			return err
		}
	}
	if c.usedByOthers(rec.UID, pub.Handle) {
		return nil
	}
	if pub.Staged {
		if err := connect(); err != nil {
			return err
		}
		if _, err := n.NodeUnstageVolume(ctx, &csi.NodeUnstageVolumeRequest{VolumeId: pub.Handle, StagingTargetPath: pub.Staging}); err != nil {
			return fmt.Errorf("volume %s: NodeUnstageVolume %s: %w", pub.Name, pub.Staging, err)
		}
		pub.Staged = false
		if err := c.save(rec); err != nil {
			return err
		}
		_ = removeEmptyTree(filepath.Dir(pub.Staging))
	}
	vas := c.Client.StorageV1().VolumeAttachments()
	va, err := vas.Get(ctx, pub.Attachment, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("volume %s: get VolumeAttachment %s: %w", pub.Name, pub.Attachment, err)
	}
	if va.DeletionTimestamp == nil {
		if err := vas.Delete(ctx, pub.Attachment, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("volume %s: delete VolumeAttachment %s: %w", pub.Name, pub.Attachment, err)
		}
		klog.InfoS("Detaching volume", "pv", pub.PV, "node", c.NodeName, "attachment", pub.Attachment)
	}
	return pending("", "volume %s: waiting for the detach of %s", pub.Name, pub.PV)
}

// usedByOthers reports whether another pod of the node has handle staged or published.
func (c *CSIVolumes) usedByOthers(uid, handle string) bool {
	for _, other := range c.UIDs() {
		if other == uid {
			continue
		}
		r, err := c.load(other)
		if err != nil || r == nil {
			continue
		}
		for _, v := range r.Volumes {
			if v.Handle == handle && (v.Staged || v.Published) {
				return true
			}
		}
	}
	return false
}

// removeEmptyTree removes dir and every empty directory below it; it stops at anything
// else (a file, a mount point that still holds data).
func removeEmptyTree(dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if e.IsDir() {
			_ = removeEmptyTree(filepath.Join(dir, e.Name()))
		}
	}
	return os.Remove(dir)
}

// isPending reports whether err only waits for someone else.
func isPending(err error) bool {
	var ve *VolumeError
	return errors.As(err, &ve) && ve.Pending
}

// reasonOf is the event reason of a volume error.
func reasonOf(err error) string {
	var ve *VolumeError
	if errors.As(err, &ve) {
		return ve.Reason
	}
	return ReasonVolumes
}
