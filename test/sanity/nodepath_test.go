package sanity_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	csipb "github.com/container-storage-interface/spec/lib/go/csi"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/stratus-cloud/stratus/csi"
	"github.com/stratus-cloud/stratus/internal/testcap"
)

func mountCap(mode csipb.VolumeCapability_AccessMode_Mode) *csipb.VolumeCapability {
	return &csipb.VolumeCapability{
		AccessType: &csipb.VolumeCapability_Mount{Mount: &csipb.VolumeCapability_MountVolume{FsType: "ext4"}},
		AccessMode: &csipb.VolumeCapability_AccessMode{Mode: mode},
	}
}

var (
	rwo = mountCap(csipb.VolumeCapability_AccessMode_SINGLE_NODE_MULTI_WRITER)
	rox = mountCap(csipb.VolumeCapability_AccessMode_MULTI_NODE_READER_ONLY)
)

// cluster is a controller and one node driver per local instance, as the controller
// Deployment and the node DaemonSet run them.
type cluster struct {
	t          *testing.T
	e          *env
	ctx        context.Context
	controller *driver
	nodes      map[string]*driver
}

func newCluster(t *testing.T, instances ...string) *cluster {
	e := newEnv(t, envOptions{instances: instances})
	c := &cluster{t: t, e: e, ctx: context.Background(), controller: e.startDriver(instances[0], csi.ModeController, 0), nodes: map[string]*driver{}}
	for _, in := range instances {
		c.nodes[in] = e.startDriver(in, csi.ModeNode, 0)
	}
	return c
}

func (c *cluster) createVolume(name string, params map[string]string, src *csipb.VolumeContentSource, caps ...*csipb.VolumeCapability) *csipb.Volume {
	c.t.Helper()
	out, err := c.controller.CreateVolume(c.ctx, &csipb.CreateVolumeRequest{
		Name: name, CapacityRange: &csipb.CapacityRange{RequiredBytes: 10 * csi.GiB},
		VolumeCapabilities: caps, Parameters: params, VolumeContentSource: src,
	})
	require.NoError(c.t, err, "create volume %s", name)
	return out.GetVolume()
}

// mounted is a volume staged and published on one node.
type mounted struct {
	node, volume, staging, target string
	cap                           *csipb.VolumeCapability
	readOnly                      bool
}

// attach publishes, stages and publishes vol on node the way kubelet and the attacher do,
// and returns where the pod would see it.
func (c *cluster) attach(vol, node string, vc *csipb.VolumeCapability, readOnly bool) *mounted {
	c.t.Helper()
	pub, err := c.controller.ControllerPublishVolume(c.ctx, &csipb.ControllerPublishVolumeRequest{
		VolumeId: vol, NodeId: node, VolumeCapability: vc, Readonly: readOnly,
	})
	require.NoError(c.t, err, "controller publish %s to %s", vol, node)
	m := &mounted{node: node, volume: vol, cap: vc, readOnly: readOnly,
		staging: filepath.Join(c.e.dir, "kubelet", node, vol, "globalmount"),
		target:  filepath.Join(c.e.dir, "kubelet", node, "pods", vol, "mount")}
	n := c.nodes[node]
	_, err = n.NodeStageVolume(c.ctx, &csipb.NodeStageVolumeRequest{VolumeId: vol, StagingTargetPath: m.staging,
		VolumeCapability: vc, PublishContext: pub.GetPublishContext()})
	require.NoError(c.t, err, "stage %s on %s", vol, node)
	_, err = n.NodePublishVolume(c.ctx, &csipb.NodePublishVolumeRequest{VolumeId: vol, StagingTargetPath: m.staging,
		TargetPath: m.target, VolumeCapability: vc, Readonly: readOnly, PublishContext: pub.GetPublishContext()})
	require.NoError(c.t, err, "publish %s on %s", vol, node)
	return m
}

// detach is attach undone: unpublish, unstage, controller unpublish.
func (c *cluster) detach(m *mounted) {
	c.t.Helper()
	n := c.nodes[m.node]
	_, err := n.NodeUnpublishVolume(c.ctx, &csipb.NodeUnpublishVolumeRequest{VolumeId: m.volume, TargetPath: m.target})
	require.NoError(c.t, err)
	_, err = n.NodeUnstageVolume(c.ctx, &csipb.NodeUnstageVolumeRequest{VolumeId: m.volume, StagingTargetPath: m.staging})
	require.NoError(c.t, err)
	_, err = c.controller.ControllerUnpublishVolume(c.ctx, &csipb.ControllerUnpublishVolumeRequest{VolumeId: m.volume, NodeId: m.node})
	require.NoError(c.t, err)
	_, err = os.Stat(m.target)
	assert.True(c.t, errors.Is(err, os.ErrNotExist), "the target is removed: %v", err)
}

func writeFile(t *testing.T, dir, name string, data []byte) {
	t.Helper()
	f, err := os.Create(filepath.Join(dir, name))
	require.NoError(t, err)
	_, err = f.Write(data)
	require.NoError(t, err)
	require.NoError(t, f.Sync(), "fsync reaches the disk")
	require.NoError(t, f.Close())
}

func readFile(t *testing.T, dir, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, name))
	require.NoError(t, err)
	return b
}

func fsBytes(t *testing.T, path string) int64 {
	t.Helper()
	var st unix.Statfs_t
	require.NoError(t, unix.Statfs(path, &st))
	return int64(st.Blocks) * int64(st.Bsize)
}

func grpcCode(t *testing.T, err error, want codes.Code, msgHas string) {
	t.Helper()
	require.Error(t, err)
	assert.Equal(t, want, status.Code(err), "%v", err)
	if msgHas != "" {
		assert.Contains(t, status.Convert(err).Message(), msgHas)
	}
}

var payload = bytes.Repeat([]byte("stratus data survives the move\n"), 1000)

// TestNodePathDataFollowsTheVolume walks a volume through two nodes: the file written on
// the first is there on the second; a read-only publish refuses writes; expansion grows
// the filesystem the pod sees; a snapshot's new disk holds the data.
func TestNodePathDataFollowsTheVolume(t *testing.T) {
	c := newCluster(t, "ins-node0001", "ins-node0002")
	vol := c.createVolume("pvc-move", nil, nil, rwo).GetVolumeId()

	m1 := c.attach(vol, "ins-node0001", rwo, false)
	writeFile(t, m1.target, "data.txt", payload)
	c.detach(m1)

	m2 := c.attach(vol, "ins-node0002", rwo, false)
	assert.Equal(t, payload, readFile(t, m2.target, "data.txt"), "the file written on node 1 is on node 2")

	t.Run("volume stats are the filesystem's", func(t *testing.T) {
		st, err := c.nodes["ins-node0002"].NodeGetVolumeStats(c.ctx, &csipb.NodeGetVolumeStatsRequest{VolumeId: vol, VolumePath: m2.target})
		require.NoError(t, err)
		var bytes, inodes *csipb.VolumeUsage
		for _, u := range st.GetUsage() {
			switch u.GetUnit() {
			case csipb.VolumeUsage_BYTES:
				bytes = u
			case csipb.VolumeUsage_INODES:
				inodes = u
			}
		}
		require.NotNil(t, bytes)
		require.NotNil(t, inodes)
		assert.Equal(t, fsBytes(t, m2.target), bytes.GetTotal())
		assert.GreaterOrEqual(t, bytes.GetUsed(), int64(len(payload)), "the file counts")
		assert.Greater(t, inodes.GetUsed(), int64(10))
	})

	t.Run("read-only publish refuses writes", func(t *testing.T) {
		ro := filepath.Join(c.e.dir, "kubelet", "ins-node0002", "pods", "reader", "mount")
		_, err := c.nodes["ins-node0002"].NodePublishVolume(c.ctx, &csipb.NodePublishVolumeRequest{VolumeId: vol,
			StagingTargetPath: m2.staging, TargetPath: ro, VolumeCapability: rwo, Readonly: true,
			PublishContext: map[string]string{csi.PublishDiskID: vol, csi.PublishReadOnly: "false"}})
		require.NoError(t, err)
		assert.Equal(t, payload, readFile(t, ro, "data.txt"), "the reader sees the writer's file")
		err = os.WriteFile(filepath.Join(ro, "nope.txt"), []byte("x"), 0o600)
		assert.True(t, errors.Is(err, syscall.EROFS), "write through a read-only publish: %v", err)
		writeFile(t, m2.target, "writer.txt", []byte("the writer still writes"))
		_, err = c.nodes["ins-node0002"].NodeUnpublishVolume(c.ctx, &csipb.NodeUnpublishVolumeRequest{VolumeId: vol, TargetPath: ro})
		require.NoError(t, err)
	})

	t.Run("online expansion grows the filesystem the pod sees", func(t *testing.T) {
		// xfs: growing a mounted ext4 needs CAP_SYS_RESOURCE, which this sandbox's root
		// lacks (resize2fs: Permission denied); a mounted xfs grows with CAP_SYS_ADMIN.
		testcap.Tool(t, "xfs_growfs", "xfsprogs")
		xfs := mountCap(csipb.VolumeCapability_AccessMode_SINGLE_NODE_MULTI_WRITER)
		xfs.GetMount().FsType = "xfs"
		v := c.createVolume("pvc-xfs", nil, nil, xfs).GetVolumeId()
		m := c.attach(v, "ins-node0001", xfs, false)
		writeFile(t, m.target, "data.txt", payload)
		before := fsBytes(t, m.target)
		exp, err := c.controller.ControllerExpandVolume(c.ctx, &csipb.ControllerExpandVolumeRequest{VolumeId: v,
			CapacityRange: &csipb.CapacityRange{RequiredBytes: 15 * csi.GiB}, VolumeCapability: xfs})
		require.NoError(t, err)
		assert.Equal(t, 20*csi.GiB, exp.GetCapacityBytes(), "rounded up to the disk type's 10 GiB step")
		assert.True(t, exp.GetNodeExpansionRequired())
		_, err = c.nodes["ins-node0001"].NodeExpandVolume(c.ctx, &csipb.NodeExpandVolumeRequest{VolumeId: v, VolumePath: m.target,
			CapacityRange: &csipb.CapacityRange{RequiredBytes: exp.GetCapacityBytes()}, VolumeCapability: xfs})
		require.NoError(t, err)
		after := fsBytes(t, m.target)
		assert.Greater(t, after, before*3/2, "filesystem grew online from %d to %d bytes", before, after)
		assert.Equal(t, payload, readFile(t, m.target, "data.txt"))
		c.detach(m)
	})

	t.Run("expansion while detached grows ext4 at the next stage", func(t *testing.T) {
		v := c.createVolume("pvc-grow", nil, nil, rwo).GetVolumeId()
		m := c.attach(v, "ins-node0001", rwo, false)
		writeFile(t, m.target, "data.txt", payload)
		before := fsBytes(t, m.target)
		c.detach(m)
		exp, err := c.controller.ControllerExpandVolume(c.ctx, &csipb.ControllerExpandVolumeRequest{VolumeId: v,
			CapacityRange: &csipb.CapacityRange{RequiredBytes: 30 * csi.GiB}})
		require.NoError(t, err)
		assert.Equal(t, 30*csi.GiB, exp.GetCapacityBytes())
		m = c.attach(v, "ins-node0002", rwo, false)
		after := fsBytes(t, m.target)
		assert.Greater(t, after, before*5/2, "filesystem grew from %d to %d bytes", before, after)
		assert.Equal(t, payload, readFile(t, m.target, "data.txt"))
		c.detach(m)
	})

	t.Run("a snapshot's new disk holds the data", func(t *testing.T) {
		snap, err := c.controller.CreateSnapshot(c.ctx, &csipb.CreateSnapshotRequest{Name: "snap-move", SourceVolumeId: vol})
		require.NoError(t, err)
		require.True(t, snap.GetSnapshot().GetReadyToUse())
		restored := c.createVolume("pvc-restored", nil, &csipb.VolumeContentSource{Type: &csipb.VolumeContentSource_Snapshot{
			Snapshot: &csipb.VolumeContentSource_SnapshotSource{SnapshotId: snap.GetSnapshot().GetSnapshotId()}}}, rwo)
		assert.Equal(t, 10*csi.GiB, restored.GetCapacityBytes(), "the snapshot's size")
		m := c.attach(restored.GetVolumeId(), "ins-node0001", rwo, false)
		assert.Equal(t, payload, readFile(t, m.target, "data.txt"))
		assert.Equal(t, []byte("the writer still writes"), readFile(t, m.target, "writer.txt"))
		c.detach(m)
	})

	t.Run("a clone holds the data", func(t *testing.T) {
		clone := c.createVolume("pvc-clone", nil, &csipb.VolumeContentSource{Type: &csipb.VolumeContentSource_Volume{
			Volume: &csipb.VolumeContentSource_VolumeSource{VolumeId: vol}}}, rwo)
		m := c.attach(clone.GetVolumeId(), "ins-node0001", rwo, false)
		assert.Equal(t, payload, readFile(t, m.target, "data.txt"))
		c.detach(m)
		snaps, err := c.controller.ListSnapshots(c.ctx, &csipb.ListSnapshotsRequest{SourceVolumeId: vol})
		require.NoError(t, err)
		assert.Len(t, snaps.GetEntries(), 1, "the clone's temporary snapshot is gone; only snap-move is left")
	})
	c.detach(m2)
	_, err := c.nodes["ins-node0002"].NodeGetVolumeStats(c.ctx, &csipb.NodeGetVolumeStatsRequest{VolumeId: vol, VolumePath: m2.staging})
	grpcCode(t, err, codes.NotFound, "")
}

// TestNodePathRawBlock: a block volume is the device itself at the pod's path; attached
// read-only, it refuses writes.
func TestNodePathRawBlock(t *testing.T) {
	c := newCluster(t, "ins-node0001")
	block := &csipb.VolumeCapability{AccessType: &csipb.VolumeCapability_Block{Block: &csipb.VolumeCapability_BlockVolume{}},
		AccessMode: &csipb.VolumeCapability_AccessMode{Mode: csipb.VolumeCapability_AccessMode_SINGLE_NODE_MULTI_WRITER}}
	vol := c.createVolume("pvc-block", nil, nil, block).GetVolumeId()
	m := c.attach(vol, "ins-node0001", block, false)
	f, err := os.OpenFile(m.target, os.O_RDWR, 0)
	require.NoError(t, err)
	_, err = f.WriteAt([]byte("raw bytes"), 1<<20)
	require.NoError(t, err)
	require.NoError(t, f.Sync())
	require.NoError(t, f.Close())

	st, err := c.nodes["ins-node0001"].NodeGetVolumeStats(c.ctx, &csipb.NodeGetVolumeStatsRequest{VolumeId: vol, VolumePath: m.target})
	require.NoError(t, err)
	assert.Equal(t, 10*csi.GiB, st.GetUsage()[0].GetTotal(), "a block volume's size")
	c.detach(m)

	// Attached read-only: the node makes the device itself read-only (a mount flag does
	// not stop writes to a device node).
	r := c.attach(vol, "ins-node0001", block, true)
	got := make([]byte, 9)
	rf, err := os.Open(r.target)
	require.NoError(t, err)
	_, err = rf.ReadAt(got, 1<<20)
	require.NoError(t, err)
	rf.Close()
	assert.Equal(t, []byte("raw bytes"), got, "the reader sees the writer's bytes")
	wf, err := os.OpenFile(r.target, os.O_WRONLY, 0)
	if err == nil {
		_, err = wf.WriteAt([]byte("x"), 0)
		wf.Close()
	}
	assert.Error(t, err, "a write to a read-only block volume fails")
	c.detach(r)
}

// TestNodePathOneWriterManyReaders: a shareable volume written once is read by two nodes
// at once, read-only down to the block device; a writer is refused while readers hold
// it, and readers are refused while a writer does.
func TestNodePathOneWriterManyReaders(t *testing.T) {
	c := newCluster(t, "ins-node0001", "ins-node0002", "ins-node0003")
	vol := c.createVolume("pvc-shared", map[string]string{csi.ParamShareable: "true"}, nil, rwo).GetVolumeId()

	w := c.attach(vol, "ins-node0001", rwo, false)
	writeFile(t, w.target, "data.txt", payload)

	_, err := c.controller.ControllerPublishVolume(c.ctx, &csipb.ControllerPublishVolumeRequest{VolumeId: vol, NodeId: "ins-node0002", VolumeCapability: rox, Readonly: true})
	grpcCode(t, err, codes.FailedPrecondition, "ins-node0001")
	_, err = c.controller.ControllerPublishVolume(c.ctx, &csipb.ControllerPublishVolumeRequest{VolumeId: vol, NodeId: "ins-node0002", VolumeCapability: rwo})
	grpcCode(t, err, codes.FailedPrecondition, "ins-node0001")
	c.detach(w)

	r1 := c.attach(vol, "ins-node0001", rox, true)
	r2 := c.attach(vol, "ins-node0002", rox, true)
	assert.Equal(t, payload, readFile(t, r1.target, "data.txt"))
	assert.Equal(t, payload, readFile(t, r2.target, "data.txt"), "both readers read the same bytes")
	for _, r := range []*mounted{r1, r2} {
		dev, err := filepath.EvalSymlinks(filepath.Join(c.e.nodeDevRoot(r.node), "disk", "by-id", "virtio-"+vol))
		require.NoError(t, err)
		ro, err := os.ReadFile(filepath.Join("/sys/class/block", filepath.Base(dev), "ro"))
		require.NoError(t, err)
		assert.Equal(t, "1", strings.TrimSpace(string(ro)), "node %s: the block device %s is read-only", r.node, dev)
		err = os.WriteFile(filepath.Join(r.target, "x"), []byte("x"), 0o600)
		assert.True(t, errors.Is(err, syscall.EROFS), "node %s: %v", r.node, err)
	}
	_, err = c.controller.ControllerPublishVolume(c.ctx, &csipb.ControllerPublishVolumeRequest{VolumeId: vol, NodeId: "ins-node0003", VolumeCapability: rwo})
	grpcCode(t, err, codes.FailedPrecondition, "ins-node000")
	_, err = c.controller.ControllerPublishVolume(c.ctx, &csipb.ControllerPublishVolumeRequest{VolumeId: vol, NodeId: "ins-node0001", VolumeCapability: rwo})
	grpcCode(t, err, codes.FailedPrecondition, "ins-node0002")

	// A read-write stage of a read-only attachment is refused by the node too.
	pc := map[string]string{csi.PublishDiskID: vol, csi.PublishReadOnly: "false"}
	_, err = c.nodes["ins-node0002"].NodeStageVolume(c.ctx, &csipb.NodeStageVolumeRequest{VolumeId: vol,
		StagingTargetPath: filepath.Join(c.e.dir, "rw-stage"), VolumeCapability: rwo, PublishContext: pc})
	grpcCode(t, err, codes.FailedPrecondition, "read-only")
	c.detach(r1)
	c.detach(r2)
}

// TestNodePathStaleLinkIsRefused: a by-id link that points at another disk's device is
// refused before anything touches the device; the other disk stays blank.
func TestNodePathStaleLinkIsRefused(t *testing.T) {
	c := newCluster(t, "ins-node0001")
	a := c.createVolume("pvc-a", nil, nil, rwo).GetVolumeId()
	b := c.createVolume("pvc-b", nil, nil, rwo).GetVolumeId()
	var pcs []map[string]string
	for _, v := range []string{a, b} {
		pub, err := c.controller.ControllerPublishVolume(c.ctx, &csipb.ControllerPublishVolumeRequest{VolumeId: v, NodeId: "ins-node0001", VolumeCapability: rwo})
		require.NoError(t, err)
		pcs = append(pcs, pub.GetPublishContext())
	}
	byID := filepath.Join(c.e.nodeDevRoot("ins-node0001"), "disk", "by-id")
	devB, err := filepath.EvalSymlinks(filepath.Join(byID, "virtio-"+b))
	require.NoError(t, err)
	linkA := filepath.Join(byID, "virtio-"+a)
	devA, err := os.Readlink(linkA)
	require.NoError(t, err)
	require.NoError(t, os.Remove(linkA))
	require.NoError(t, os.Symlink(devB, linkA))

	_, err = c.nodes["ins-node0001"].NodeStageVolume(c.ctx, &csipb.NodeStageVolumeRequest{VolumeId: a,
		StagingTargetPath: filepath.Join(c.e.dir, "stage-a"), VolumeCapability: rwo, PublishContext: pcs[0]})
	grpcCode(t, err, codes.FailedPrecondition, "not to the image of "+a)
	out, _ := exec.Command("blkid", "-p", "-o", "value", "-s", "TYPE", devB).Output()
	assert.Empty(t, strings.TrimSpace(string(out)), "disk %s (%s) was not formatted", b, devB)

	require.NoError(t, os.Remove(linkA))
	require.NoError(t, os.Symlink(devA, linkA))
	for _, v := range []string{a, b} {
		_, err := c.controller.ControllerUnpublishVolume(c.ctx, &csipb.ControllerUnpublishVolumeRequest{VolumeId: v, NodeId: "ins-node0001"})
		require.NoError(t, err)
	}
}
