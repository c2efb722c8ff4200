//go:build images

package images

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/stratus-cloud/stratus/internal/testcap"
)

// bindMount makes src visible at dst (inside an unpacked root) until the test ends, as a
// runtime mounts a hostPath volume.
func bindMount(t *testing.T, src, dst string) {
	t.Helper()
	require.NoError(t, unix.Mount(src, dst, "", unix.MS_BIND, ""), "bind %s at %s", src, dst)
	t.Cleanup(func() { unmount(t, dst) })
}

// loopDevice attaches a sparse file of size bytes to a free loop device (host util-linux)
// and makes the same block device node inside the image root, as the CSI node plugin sees
// an attached disk through the host's /dev. It returns the device path (same inside and
// outside) and the backing file.
func loopDevice(t *testing.T, u *unpacked, size int64) (dev, backing string) {
	t.Helper()
	testcap.Tool(t, "losetup", "util-linux")
	if _, err := os.Stat("/dev/loop-control"); err != nil {
		testcap.Missing(t, "no loop device support (/dev/loop-control: %v)", err)
	}
	backing = filepath.Join(t.TempDir(), "disk.img")
	f, err := os.Create(backing)
	require.NoError(t, err)
	require.NoError(t, f.Truncate(size))
	require.NoError(t, f.Close())
	out, err := exec.Command("losetup", "--find", "--show", backing).CombinedOutput()
	if err != nil {
		testcap.Missing(t, "losetup --find %s: %v: %s", backing, err, out)
	}
	dev = strings.TrimSpace(string(out))
	t.Cleanup(func() {
		if out, err := exec.Command("losetup", "--detach", dev).CombinedOutput(); err != nil {
			t.Errorf("losetup --detach %s: %v: %s", dev, err, out)
		}
	})
	var st unix.Stat_t
	require.NoError(t, unix.Stat(dev, &st))
	node := u.path(dev)
	require.NoError(t, os.MkdirAll(filepath.Dir(node), 0o755))
	_ = os.Remove(node)
	require.NoError(t, unix.Mknod(node, unix.S_IFBLK|0o660, int(st.Rdev)), "mknod %s", node)
	t.Cleanup(func() { _ = os.Remove(node) })
	return dev, backing
}

// checkNodeFilesystemTools does to a real block device, from the image's root, what the
// CSI node plugin does through k8s.io/mount-utils: probe it with blkid, format it, mount
// it, check it, grow it with the disk and mount it again with the data intact; and formats
// XFS, whose tools the image also carries.
func checkNodeFilesystemTools(t *testing.T, base *unpacked) {
	u := base.asRoot()
	u.mountProc(t)
	for _, tool := range []string{"mkfs.ext4", "mkfs.xfs", "e2fsck", "resize2fs", "xfs_growfs", "xfs_repair", "blkid", "blockdev", "mount", "umount", "findmnt"} {
		_, _, err := u.tryRun(t, nil, "/usr/bin/env", "sh", "-c", "command -v "+tool)
		assert.NoError(t, err, "%s is on the image's PATH", tool)
	}

	dev, backing := loopDevice(t, u, 64<<20)
	// An unformatted disk: blkid finds nothing (exit 2), which is how mount-utils decides
	// to format.
	_, _, err := u.tryRun(t, nil, "/usr/sbin/blkid", "-p", dev)
	var exitErr *exec.ExitError
	require.ErrorAs(t, err, &exitErr, "blkid on a blank disk")
	assert.Equal(t, 2, exitErr.ExitCode(), "blkid reports no filesystem on a blank disk")

	u.run(t, nil, "/usr/sbin/mkfs.ext4", "-F", "-q", "-m0", "-L", "stratus-test", dev)
	typ, _ := u.run(t, nil, "/usr/sbin/blkid", "-p", "-o", "value", "-s", "TYPE", dev)
	assert.Equal(t, "ext4", strings.TrimSpace(typ))

	target := "/var/lib/kubelet/plugins/cbs.csi.stratus.io/staging/vol-test"
	require.NoError(t, os.MkdirAll(u.path(target), 0o750))
	t.Cleanup(func() { unmount(t, u.path(target)) }) // whatever state a failure left
	u.run(t, nil, "/usr/bin/mount", "-t", "ext4", "-o", "defaults", dev, target)
	found, _ := u.run(t, nil, "/usr/bin/findmnt", "-n", "-o", "SOURCE", "--target", target)
	assert.Equal(t, dev, strings.TrimSpace(found), "findmnt inside the image sees the mount")
	require.NoError(t, os.WriteFile(filepath.Join(u.path(target), "data"), []byte("kept"), 0o644))
	var before unix.Statfs_t
	require.NoError(t, unix.Statfs(u.path(target), &before))
	u.run(t, nil, "/usr/bin/umount", target)

	u.run(t, nil, "/usr/sbin/e2fsck", "-f", "-n", dev)

	// The disk grows (ResizeDisk), the kernel learns the new size, resize2fs grows the
	// filesystem (NodeExpandVolume), and the data is still there.
	require.NoError(t, os.Truncate(backing, 128<<20))
	out, err := exec.Command("losetup", "--set-capacity", dev).CombinedOutput()
	require.NoError(t, err, "%s", out)
	size, _ := u.run(t, nil, "/usr/sbin/blockdev", "--getsize64", dev)
	assert.Equal(t, "134217728", strings.TrimSpace(size))
	u.run(t, nil, "/usr/sbin/resize2fs", dev)
	u.run(t, nil, "/usr/bin/mount", dev, target)
	var after unix.Statfs_t
	require.NoError(t, unix.Statfs(u.path(target), &after))
	assert.Greater(t, after.Blocks*uint64(after.Bsize), 3*before.Blocks*uint64(before.Bsize)/2, "the filesystem grew with the disk")
	data, err := os.ReadFile(filepath.Join(u.path(target), "data"))
	require.NoError(t, err)
	assert.Equal(t, "kept", string(data))
	u.run(t, nil, "/usr/bin/umount", target)

	// XFS needs 300 MiB at least; a sparse file costs nothing.
	xfsImg := "/tmp/xfs.img"
	f, err := os.Create(u.path(xfsImg))
	require.NoError(t, err)
	require.NoError(t, f.Truncate(320<<20))
	require.NoError(t, f.Close())
	t.Cleanup(func() { _ = os.Remove(u.path(xfsImg)) })
	u.run(t, nil, "/usr/sbin/mkfs.xfs", "-q", "-f", xfsImg)
	typ, _ = u.run(t, nil, "/usr/sbin/blkid", "-p", "-o", "value", "-s", "TYPE", xfsImg)
	assert.Equal(t, "xfs", strings.TrimSpace(typ))
	u.run(t, nil, "/usr/sbin/xfs_repair", "-n", xfsImg)
}
