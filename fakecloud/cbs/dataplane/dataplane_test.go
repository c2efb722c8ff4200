package dataplane

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/stratus-cloud/stratus/internal/testcap"
)

const mib = int64(1) << 20

// newTestPlane returns a plane on a fresh data dir and dev root, and makes sure every loop
// device bound to an image under the data dir is gone when the test ends, pass or fail.
func newTestPlane(t *testing.T) (p *Plane, dataDir, devRoot string) {
	t.Helper()
	requireLoopDevices(t)
	dataDir, devRoot = t.TempDir(), t.TempDir()
	t.Cleanup(func() {
		if err := DetachUnder(dataDir); err != nil {
			t.Errorf("cleanup loop devices: %v", err)
		}
	})
	p, err := New(Options{DataDir: dataDir, DevRoot: devRoot})
	require.NoError(t, err)
	return p, dataDir, devRoot
}

// requireLoopDevices is dataplanetest.RequireLoopDevices, which this package's own tests
// cannot import.
func requireLoopDevices(t *testing.T) {
	t.Helper()
	testcap.Root(t, "loop devices (CBS data plane)")
	if err := Available(); err != nil {
		testcap.Missing(t, "CBS data-plane test: loop devices unavailable: %v", err)
	}
}

func writeAt(t *testing.T, path string, off int64, data []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	require.NoError(t, err)
	_, err = f.WriteAt(data, off)
	require.NoError(t, err)
	require.NoError(t, f.Sync())
	require.NoError(t, f.Close())
}

func readAt(t *testing.T, path string, off int64, n int) []byte {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	buf := make([]byte, n)
	_, err = f.ReadAt(buf, off)
	require.NoError(t, err)
	return buf
}

func isBlockDevice(t *testing.T, path string) bool {
	t.Helper()
	st, err := os.Stat(path) // follows the symlink
	require.NoError(t, err)
	return st.Mode()&os.ModeDevice != 0 && st.Mode()&os.ModeCharDevice == 0
}

func TestAttachDetachKeepsBytes(t *testing.T) {
	p, _, devRoot := newTestPlane(t)
	require.NoError(t, p.CreateDisk("disk-a1", 64*mib, ""))
	st, err := os.Stat(p.ImagePath("disk-a1"))
	require.NoError(t, err)
	assert.Equal(t, 64*mib, st.Size())

	require.NoError(t, p.Reconcile([]Attachment{{DiskID: "disk-a1", InstanceID: "ins-1"}}))
	link := filepath.Join(devRoot, "disk", "by-id", "virtio-disk-a1")
	assert.Equal(t, link, p.LinkPath("disk-a1", "ins-1"))
	require.True(t, isBlockDevice(t, link))
	size, err := DeviceSize(link)
	require.NoError(t, err)
	assert.Equal(t, 64*mib, size)

	payload := []byte("stratus was here")
	writeAt(t, link, 10*mib, payload)

	require.NoError(t, p.Reconcile(nil))
	_, err = os.Lstat(link)
	assert.ErrorIs(t, err, os.ErrNotExist, "detach removes the symlink")
	assert.Empty(t, p.Bindings())
	assertNoLoopFor(t, p.ImagePath("disk-a1"))

	require.NoError(t, p.Reconcile([]Attachment{{DiskID: "disk-a1", InstanceID: "ins-1"}}))
	assert.Equal(t, payload, readAt(t, link, 10*mib, len(payload)))
	assert.Error(t, p.DeleteDisk("disk-a1"), "a bound disk's image is not deleted")
	require.NoError(t, p.Teardown())
	require.NoError(t, p.DeleteDisk("disk-a1"))
	_, err = os.Stat(p.ImagePath("disk-a1"))
	assert.ErrorIs(t, err, os.ErrNotExist)
}

func assertNoLoopFor(t *testing.T, image string) {
	t.Helper()
	loops, err := listLoops()
	require.NoError(t, err)
	for _, d := range loops {
		assert.NotEqual(t, image, d.Backing, "loop device %s still bound", d.Path)
	}
}

func TestReadOnlyAttachment(t *testing.T) {
	p, _, _ := newTestPlane(t)
	require.NoError(t, p.CreateDisk("disk-ro", 16*mib, ""))
	require.NoError(t, p.Reconcile([]Attachment{{DiskID: "disk-ro", InstanceID: "ins-1", ReadOnly: true}}))
	link := p.LinkPath("disk-ro", "ins-1")
	assertRefusesWrites(t, link)
	assert.Len(t, readAt(t, link, 0, 512), 512)

	// Changing the mode rebinds the device.
	require.NoError(t, p.Reconcile([]Attachment{{DiskID: "disk-ro", InstanceID: "ins-1"}}))
	writeAt(t, link, 0, []byte("rw now"))
}

// assertRefusesWrites checks that nothing can be written through path: depending on the
// kernel, opening a read-only block device for writing fails, or the write does.
func assertRefusesWrites(t *testing.T, path string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		assert.ErrorIs(t, err, unix.EROFS)
		return
	}
	defer f.Close()
	_, err = f.WriteAt([]byte("x"), 0)
	if err == nil {
		err = f.Sync()
	}
	assert.Error(t, err, "a read-only device accepted a write")
}

func TestPerInstanceDevRoots(t *testing.T) {
	requireLoopDevices(t)
	dataDir, base := t.TempDir(), t.TempDir()
	t.Cleanup(func() { _ = DetachUnder(dataDir) })
	p, err := New(Options{DataDir: dataDir, DevRoot: filepath.Join(base, InstancePlaceholder, "dev")})
	require.NoError(t, err)
	require.NoError(t, p.CreateDisk("disk-sh", 16*mib, ""))
	require.NoError(t, p.Reconcile([]Attachment{
		{DiskID: "disk-sh", InstanceID: "ins-1"},
		{DiskID: "disk-sh", InstanceID: "ins-2", ReadOnly: true},
	}))
	rw := filepath.Join(base, "ins-1", "dev", "disk", "by-id", "virtio-disk-sh")
	ro := filepath.Join(base, "ins-2", "dev", "disk", "by-id", "virtio-disk-sh")
	writeAt(t, rw, 4096, []byte("shared"))
	assert.Equal(t, []byte("shared"), readAt(t, ro, 4096, 6), "both devices show the same image")
	assertRefusesWrites(t, ro)
	assert.Len(t, p.Bindings(), 2)
}

func TestSnapshotCopiesBytesAndKeepsHoles(t *testing.T) {
	p, _, _ := newTestPlane(t)
	require.NoError(t, p.CreateDisk("disk-src", 256*mib, ""))
	require.NoError(t, p.Reconcile([]Attachment{{DiskID: "disk-src", InstanceID: "ins-1"}}))
	link := p.LinkPath("disk-src", "ins-1")
	first, last := bytes.Repeat([]byte{0xab}, 4096), bytes.Repeat([]byte{0xcd}, 4096)
	writeAt(t, link, 0, first)
	writeAt(t, link, 256*mib-4096, last)

	require.NoError(t, p.Snapshot("disk-src", "snap-1"))
	// Later writes are not in the snapshot.
	writeAt(t, link, 0, bytes.Repeat([]byte{0x11}, 4096))

	var st unix.Stat_t
	require.NoError(t, unix.Stat(p.SnapshotPath("snap-1"), &st))
	assert.Equal(t, 256*mib, st.Size)
	assert.Less(t, st.Blocks*512, 16*mib, "the copy stays sparse")

	// A disk from the snapshot, larger than the source, starts with the snapshot's bytes.
	require.NoError(t, p.CreateDisk("disk-copy", 512*mib, "snap-1"))
	require.NoError(t, p.Reconcile([]Attachment{
		{DiskID: "disk-src", InstanceID: "ins-1"},
		{DiskID: "disk-copy", InstanceID: "ins-1"},
	}))
	copyLink := p.LinkPath("disk-copy", "ins-1")
	size, err := DeviceSize(copyLink)
	require.NoError(t, err)
	assert.Equal(t, 512*mib, size)
	assert.Equal(t, first, readAt(t, copyLink, 0, 4096))
	assert.Equal(t, last, readAt(t, copyLink, 256*mib-4096, 4096))
	assert.Equal(t, make([]byte, 4096), readAt(t, copyLink, 300*mib, 4096))

	require.NoError(t, p.DeleteSnapshot("snap-1"))
	_, err = os.Stat(p.SnapshotPath("snap-1"))
	assert.ErrorIs(t, err, os.ErrNotExist)
	assert.Error(t, p.CreateDisk("disk-x", mib, "snap-1"), "the snapshot is gone")
}

func TestResizeGrowsBoundDevice(t *testing.T) {
	p, _, _ := newTestPlane(t)
	require.NoError(t, p.CreateDisk("disk-grow", 32*mib, ""))
	require.NoError(t, p.Reconcile([]Attachment{{DiskID: "disk-grow", InstanceID: "ins-1"}}))
	link := p.LinkPath("disk-grow", "ins-1")
	writeAt(t, link, 0, []byte("keep"))
	require.NoError(t, p.ResizeDisk("disk-grow", 96*mib))
	size, err := DeviceSize(link)
	require.NoError(t, err)
	assert.Equal(t, 96*mib, size)
	assert.Equal(t, []byte("keep"), readAt(t, link, 0, 4))
	writeAt(t, link, 95*mib, []byte("tail"))
}

func TestRestartKeepsBindingsAndCleansUp(t *testing.T) {
	p, dataDir, devRoot := newTestPlane(t)
	require.NoError(t, p.CreateDisk("disk-keep", 16*mib, ""))
	require.NoError(t, p.CreateDisk("disk-gone", 16*mib, ""))
	require.NoError(t, p.Reconcile([]Attachment{{DiskID: "disk-keep", InstanceID: "ins-1"}}))
	before := p.Bindings()
	link := p.LinkPath("disk-keep", "ins-1")
	writeAt(t, link, 0, []byte("durable"))
	require.NoError(t, p.Close())
	assert.True(t, isBlockDevice(t, link), "Close leaves attached disks attached")

	// Debris a crash could leave: a loop device on our image that no binding knows, a
	// stale link to a loop device, and (never touched) a link that is not ours.
	orphan, err := attachLoop(p.ImagePath("disk-gone"), false)
	require.NoError(t, err)
	byID := filepath.Join(devRoot, "disk", "by-id")
	stale := filepath.Join(byID, "virtio-disk-stale")
	require.NoError(t, os.Symlink("/dev/loop4242", stale))
	foreign := filepath.Join(byID, "virtio-disk-realhw")
	require.NoError(t, os.Symlink("../../vda", foreign))
	// A link of another fakecloud sharing the dev root, to a device bound to its image.
	otherDir := t.TempDir()
	t.Cleanup(func() { _ = DetachUnder(otherDir) })
	require.NoError(t, createSparse(filepath.Join(otherDir, "disk-other.img"), mib))
	otherLoop, err := attachLoop(filepath.Join(otherDir, "disk-other.img"), false)
	require.NoError(t, err)
	others := filepath.Join(byID, "virtio-disk-other")
	require.NoError(t, os.Symlink(otherLoop, others))

	p2, err := New(Options{DataDir: dataDir, DevRoot: devRoot})
	require.NoError(t, err)
	require.NoError(t, p2.Sync([]Attachment{{DiskID: "disk-keep", InstanceID: "ins-1"}}, []string{"disk-keep"}, nil))
	assert.Equal(t, before, p2.Bindings(), "the same loop device is adopted, not rebound")
	assert.Equal(t, []byte("durable"), readAt(t, link, 0, 7))

	d, err := readLoop(filepath.Base(orphan))
	require.NoError(t, err)
	assert.True(t, d == nil || d.Backing != p.ImagePath("disk-gone"), "orphaned loop device detached")
	_, err = os.Lstat(stale)
	assert.ErrorIs(t, err, os.ErrNotExist, "stale link removed")
	_, err = os.Lstat(foreign)
	assert.NoError(t, err, "a link that is not ours stays")
	_, err = os.Lstat(others)
	assert.NoError(t, err, "another plane's link stays")
	d, err = readLoop(filepath.Base(otherLoop))
	require.NoError(t, err)
	assert.NotNil(t, d, "another plane's loop device stays bound")
	_, err = os.Stat(p.ImagePath("disk-gone"))
	assert.ErrorIs(t, err, os.ErrNotExist, "image of a deleted disk removed")

	// A binding whose loop device vanished behind our back is rebound.
	require.NoError(t, detachLoop(before[0].Loop, p.ImagePath("disk-keep")))
	require.NoError(t, p2.Reconcile([]Attachment{{DiskID: "disk-keep", InstanceID: "ins-1"}}))
	assert.Equal(t, []byte("durable"), readAt(t, link, 0, 7))
}

func TestRejectsPathTricks(t *testing.T) {
	p, _, _ := newTestPlane(t)
	assert.Error(t, p.CreateDisk("../etc/passwd", mib, ""))
	assert.Error(t, p.CreateDisk("disk-ok", mib, "../x"))
	assert.Error(t, p.Reconcile([]Attachment{{DiskID: "disk-../../x", InstanceID: "ins-1"}}))
}

func setBlockRO(t *testing.T, dev string, ro int) {
	t.Helper()
	f, err := os.OpenFile(dev, os.O_RDONLY, 0)
	require.NoError(t, err)
	defer f.Close()
	require.NoError(t, unix.IoctlSetPointerInt(int(f.Fd()), unix.BLKROSET, ro))
}

// TestGuestReadOnlyFlag: a guest (a CSI node making a reader's device read-only) setting
// BLKROSET changes neither the binding nor the next attachment of that loop device.
func TestGuestReadOnlyFlag(t *testing.T) {
	p, _, _ := newTestPlane(t)
	require.NoError(t, p.CreateDisk("disk-guest", 64*mib, ""))
	require.NoError(t, p.CreateDisk("disk-next", 64*mib, ""))
	want := []Attachment{{DiskID: "disk-guest", InstanceID: "ins-1"}}
	require.NoError(t, p.Reconcile(want))
	loop := p.Bindings()[0].Loop
	setBlockRO(t, loop, 1)
	t.Cleanup(func() { setBlockRO(t, loop, 0) })

	require.NoError(t, p.Reconcile(want))
	require.Len(t, p.Bindings(), 1)
	assert.Equal(t, loop, p.Bindings()[0].Loop, "the read-write binding is kept, not rebound")

	// Unbound, the loop device keeps the guest's flag; whoever binds it next read-write
	// must get a writable disk.
	require.NoError(t, p.Reconcile(nil))
	require.NoError(t, p.Reconcile([]Attachment{{DiskID: "disk-next", InstanceID: "ins-1"}}))
	link := p.LinkPath("disk-next", "ins-1")
	writeAt(t, link, mib, []byte("writable"))
	assert.Equal(t, []byte("writable"), readAt(t, link, mib, 8))
	require.NoError(t, p.Teardown())
}
