package cbs_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/stratus-cloud/stratus/cloudapi"
	cbsapi "github.com/stratus-cloud/stratus/cloudapi/cbs"
	"github.com/stratus-cloud/stratus/fakecloud/cbs/dataplane/dataplanetest"
	"github.com/stratus-cloud/stratus/internal/testcap"
)

// mount mounts dev on a fresh directory and unmounts it when the test ends.
func mount(t *testing.T, dev string) string {
	t.Helper()
	dir := t.TempDir()
	require.NoError(t, unix.Mount(dev, dir, "ext4", 0, ""), "mount %s", dev)
	t.Cleanup(func() { _ = unix.Unmount(dir, unix.MNT_DETACH) })
	return dir
}

// TestFilesystemOnDisk is what a node does with a disk: make a filesystem on the by-id
// device, mount it, write a file; the file survives detach + re-attach, and a disk made
// from a snapshot taken while mounted has it too.
func TestFilesystemOnDisk(t *testing.T) {
	dataplanetest.RequireLoopDevices(t)
	mkfs, err := exec.LookPath("mkfs.ext4")
	if err != nil {
		testcap.Missing(t, "filesystem test: mkfs.ext4 not installed (apt-get install -y e2fsprogs): %v", err)
	}
	dataDir, devBase := t.TempDir(), t.TempDir()
	dataplanetest.CleanupLoops(t, dataDir)
	e := newPlaneEnv(t, dataDir, devBase, newClock())

	id := e.disk(zone1, 10, false)
	require.NoError(t, e.attachNow(ins1, id))
	dev := e.link(ins1, id)
	out, err := exec.Command(mkfs, "-q", "-F", "-E", "lazy_itable_init=1,lazy_journal_init=1", dev).CombinedOutput()
	require.NoError(t, err, "mkfs: %s", out)
	mnt := mount(t, dev)
	require.NoError(t, os.WriteFile(filepath.Join(mnt, "hello.txt"), []byte("hello from a cloud disk"), 0o644))
	f, err := os.Open(mnt)
	require.NoError(t, err)
	require.NoError(t, unix.Syncfs(int(f.Fd())))
	f.Close()

	// Snapshot while mounted (crash-consistent, after syncfs), then unmount and detach.
	snap, err := e.cbs.CreateSnapshot(e.ctx, &cbsapi.CreateSnapshotRequest{DiskId: id})
	require.NoError(t, err)
	require.NoError(t, unix.Unmount(mnt, 0))
	require.NoError(t, e.detach("", id))

	require.NoError(t, e.attachNow(ins2, id))
	got, err := os.ReadFile(filepath.Join(mount(t, e.link(ins2, id)), "hello.txt"))
	require.NoError(t, err)
	assert.Equal(t, "hello from a cloud disk", string(got))

	copyID := e.createDisks(&cbsapi.CreateDisksRequest{DiskType: cbsapi.DiskTypePremium, Placement: &cbsapi.Placement{Zone: zone1},
		SnapshotId: snap.SnapshotId, DiskSize: cloudapi.Int64(10)})[0]
	require.NoError(t, e.attachNow(ins1, copyID))
	got, err = os.ReadFile(filepath.Join(mount(t, e.link(ins1, copyID)), "hello.txt"))
	require.NoError(t, err)
	assert.Equal(t, "hello from a cloud disk", string(got))
}
