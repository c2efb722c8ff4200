package cbs_test

import (
	"bytes"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stratus-cloud/stratus/cloudapi"
	cbsapi "github.com/stratus-cloud/stratus/cloudapi/cbs"
	"github.com/stratus-cloud/stratus/fakecloud"
	"github.com/stratus-cloud/stratus/fakecloud/api"
	"github.com/stratus-cloud/stratus/fakecloud/cbs"
	"github.com/stratus-cloud/stratus/fakecloud/cbs/dataplane"
	"github.com/stratus-cloud/stratus/fakecloud/cbs/dataplane/dataplanetest"
	"github.com/stratus-cloud/stratus/fakecloud/cvm"
	"github.com/stratus-cloud/stratus/fakecloud/vpc"
)

const gib = int64(1) << 30

// planeEnv is a cloud with the data plane on, where ins1 is this machine by its seed flag
// and ins2 by its address; every instance gets its own device tree under devBase.
type planeEnv struct {
	*env
	dataDir, devBase string
}

func newPlaneEnv(t *testing.T, dataDir, devBase string, clk *clock) *planeEnv {
	t.Helper()
	dataplanetest.RequireLoopDevices(t)
	seed := exampleSeed(t)
	seedInstances(t, seed)[0].Local = true
	e := newEnvWith(t, envOpts{seed: seed, dataDir: dataDir, clock: clk, delays: &cbs.Delays{Attach: time.Second},
		dataPlane: &dataplane.Options{DevRoot: filepath.Join(devBase, dataplane.InstancePlaceholder)}},
		cbs.Options{LocalAddrs: func() ([]netip.Addr, error) { return []netip.Addr{netip.MustParseAddr("10.0.1.12")}, nil }})
	return &planeEnv{env: e, dataDir: dataDir, devBase: devBase}
}

// attachNow attaches and lets the attach delay pass.
func (p *planeEnv) attachNow(instanceID string, diskIDs ...string) error {
	err := p.attach(instanceID, diskIDs...)
	p.clock.Advance(time.Second)
	return err
}

func (p *planeEnv) link(instanceID, diskID string) string {
	return filepath.Join(p.devBase, instanceID, "disk", "by-id", "virtio-"+diskID)
}

func TestDataPlaneThroughTheAPI(t *testing.T) {
	dataplanetest.RequireLoopDevices(t)
	dataDir, devBase := t.TempDir(), t.TempDir()
	dataplanetest.CleanupLoops(t, dataDir)
	clk := newClock()
	e := newPlaneEnv(t, dataDir, devBase, clk)

	id := e.disk(zone1, 10, false)
	img := filepath.Join(dataDir, "cbs", id+".img")
	st, err := os.Stat(img)
	require.NoError(t, err)
	assert.Equal(t, 10*gib, st.Size(), "every disk is an image of its size")

	// Attach to the instance marked local: the device appears at once, as a block device
	// of the disk's size, while the API still says ATTACHING.
	require.NoError(t, e.attach(ins1, id))
	link := e.link(ins1, id)
	assertBlockDevice(t, link, 10*gib)
	assert.Equal(t, cbsapi.DiskStateAttaching, e.get(id).DiskState)
	clk.Advance(time.Second)
	_, err = e.cbs.WaitDiskState(e.ctx, id, cbsapi.DiskStateAttached, cloudapi.WaitOptions{Timeout: 5 * time.Second})
	require.NoError(t, err)

	payload := []byte("bytes that must survive")
	writeDev(t, link, 5*gib, payload)

	// Detach: the device goes away; attach to the other local instance (local by its
	// address): the bytes are there.
	require.NoError(t, e.detach("", id))
	_, err = os.Lstat(link)
	assert.ErrorIs(t, err, os.ErrNotExist)
	require.NoError(t, e.attachNow(ins2, id))
	link2 := e.link(ins2, id)
	assert.Equal(t, payload, readDev(t, link2, 5*gib, len(payload)))

	// A disk attached to an instance elsewhere gets no device here.
	far := e.disk(zone2, 10, false)
	require.NoError(t, e.attachNow(ins3, far))
	_, err = os.Lstat(e.link(ins3, far))
	assert.ErrorIs(t, err, os.ErrNotExist)

	// Resize while attached grows the block device.
	_, err = e.cbs.ResizeDisk(e.ctx, &cbsapi.ResizeDiskRequest{DiskId: id, DiskSize: cloudapi.Int64(12)})
	require.NoError(t, err)
	assertBlockDevice(t, link2, 12*gib)
	assert.Equal(t, payload, readDev(t, link2, 5*gib, len(payload)))

	// A snapshot's disk has the same bytes, at its own (larger) size.
	snap, err := e.cbs.CreateSnapshot(e.ctx, &cbsapi.CreateSnapshotRequest{DiskId: id})
	require.NoError(t, err)
	writeDev(t, link2, 5*gib, []byte("written after the snapshot"))
	copyID := e.createDisks(&cbsapi.CreateDisksRequest{DiskType: cbsapi.DiskTypePremium, Placement: &cbsapi.Placement{Zone: zone1}, SnapshotId: snap.SnapshotId, DiskSize: cloudapi.Int64(20)})[0]
	require.NoError(t, e.attachNow(ins1, copyID))
	copyLink := e.link(ins1, copyID)
	assertBlockDevice(t, copyLink, 20*gib)
	assert.Equal(t, payload, readDev(t, copyLink, 5*gib, len(payload)))

	// Restart on the same data dir: attached disks are still attached with their bytes,
	// and a stale link from before is cleaned up.
	stale := e.link(ins1, "disk-stale000")
	require.NoError(t, os.Symlink("/dev/loop4242", stale))
	e.close()
	assertBlockDevice(t, link2, 12*gib)
	e2 := newPlaneEnv(t, dataDir, devBase, clk)
	assertBlockDevice(t, link2, 12*gib)
	assertBlockDevice(t, copyLink, 20*gib)
	assert.Equal(t, []byte("written after the snapshot"), readDev(t, link2, 5*gib, 26))
	_, err = os.Lstat(stale)
	assert.ErrorIs(t, err, os.ErrNotExist)

	// Terminating a disk removes its image; deleting a snapshot removes its copy.
	require.NoError(t, e2.detach("", copyID))
	_, err = e2.cbs.TerminateDisks(e2.ctx, &cbsapi.TerminateDisksRequest{DiskIds: []string{copyID}})
	require.NoError(t, err)
	_, err = os.Stat(filepath.Join(dataDir, "cbs", copyID+".img"))
	assert.ErrorIs(t, err, os.ErrNotExist)
	_, err = e2.cbs.DeleteSnapshots(e2.ctx, &cbsapi.DeleteSnapshotsRequest{SnapshotIds: []string{snap.SnapshotId}})
	require.NoError(t, err)
	_, err = os.Stat(filepath.Join(dataDir, "cbs", "snapshots", snap.SnapshotId+".img"))
	assert.ErrorIs(t, err, os.ErrNotExist)

	// Failed API calls leave the devices alone.
	requireCode(t, e2.detach("", copyID), cbsapi.CodeDiskNotFound)
	assertBlockDevice(t, link2, 12*gib)
}

func TestDataPlaneComesBackAfterHostReboot(t *testing.T) {
	dataplanetest.RequireLoopDevices(t)
	dataDir, devBase := t.TempDir(), t.TempDir()
	dataplanetest.CleanupLoops(t, dataDir)
	clk := newClock()
	e := newPlaneEnv(t, dataDir, devBase, clk)
	id := e.disk(zone1, 10, false)
	require.NoError(t, e.attachNow(ins1, id))
	link := e.link(ins1, id)
	writeDev(t, link, 0, []byte("before the reboot"))
	e.close()

	// A reboot loses every loop device and the udev tree; the images stay.
	require.NoError(t, dataplane.DetachUnder(dataDir))
	require.NoError(t, os.RemoveAll(devBase))

	// fakecloud starting on the same data dir brings the devices back before any request.
	seed := exampleSeed(t)
	seedInstances(t, seed)[0].Local = true
	e2 := newEnv(t, envOpts{seed: seed, dataDir: dataDir, clock: clk,
		dataPlane: &dataplane.Options{DevRoot: filepath.Join(devBase, dataplane.InstancePlaceholder)}})
	assertBlockDevice(t, link, 10*gib)
	assert.Equal(t, cbsapi.DiskStateAttached, e2.get(id).DiskState)
	assertBlockDevice(t, link, 10*gib)
	assert.Equal(t, []byte("before the reboot"), readDev(t, link, 0, 17))
}

func TestDataPlaneShareableSecondAttachIsReadOnly(t *testing.T) {
	dataplanetest.RequireLoopDevices(t)
	dataDir, devBase := t.TempDir(), t.TempDir()
	dataplanetest.CleanupLoops(t, dataDir)
	e := newPlaneEnv(t, dataDir, devBase, newClock())
	id := e.disk(zone1, 10, true)
	require.NoError(t, e.attachNow(ins1, id))
	require.NoError(t, e.attachNow(ins2, id))
	writer, reader := e.link(ins1, id), e.link(ins2, id)
	writeDev(t, writer, 0, []byte("one writer"))
	assert.Equal(t, []byte("one writer"), readDev(t, reader, 0, 10))
	f, err := os.OpenFile(reader, os.O_WRONLY, 0)
	if err == nil {
		_, err = f.WriteAt([]byte("second writer"), 0)
		f.Close()
	}
	assert.Error(t, err, "the second attachment of a shareable disk is read-only")

	// The writer leaves; the reader stays read-only (its device never changes under it).
	require.NoError(t, e.detach(ins1, id))
	_, err = os.Lstat(writer)
	assert.ErrorIs(t, err, os.ErrNotExist)
	assertBlockDevice(t, reader, 10*gib)
	for _, b := range e.mod.DataPlane().Bindings() {
		assert.True(t, b.ReadOnly, "binding %+v", b)
	}
}

func assertBlockDevice(t *testing.T, path string, size int64) {
	t.Helper()
	st, err := os.Stat(path)
	require.NoError(t, err)
	assert.True(t, st.Mode()&os.ModeDevice != 0 && st.Mode()&os.ModeCharDevice == 0, "%s is not a block device", path)
	got, err := dataplane.DeviceSize(path)
	require.NoError(t, err)
	assert.Equal(t, size, got, "size of %s", path)
}

func writeDev(t *testing.T, path string, off int64, data []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	require.NoError(t, err)
	defer f.Close()
	_, err = f.WriteAt(data, off)
	require.NoError(t, err)
	require.NoError(t, f.Sync())
}

func readDev(t *testing.T, path string, off int64, n int) []byte {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	buf := make([]byte, n)
	_, err = f.ReadAt(buf, off)
	require.NoError(t, err)
	return bytes.Clone(buf)
}

func TestDataPlaneHugeDisk(t *testing.T) {
	dataplanetest.RequireLoopDevices(t)
	dataDir := t.TempDir()
	dataplanetest.CleanupLoops(t, dataDir)
	e := newPlaneEnv(t, dataDir, t.TempDir(), newClock())
	// The API allows 32000 GiB; whether an image that large fits depends on the data
	// dir's filesystem (ext4 stops at 16 TiB, xfs does not).
	_, err := e.cbs.CreateDisks(e.ctx, &cbsapi.CreateDisksRequest{DiskType: cbsapi.DiskTypeHSSD,
		Placement: &cbsapi.Placement{Zone: zone1}, DiskSize: cloudapi.Int64(32000)})
	if err != nil {
		requireCode(t, err, "ResourceInsufficient")
		assert.Empty(t, e.allDisks(), "a disk without an image is not created")
		return
	}
	d := e.allDisks()[0]
	st, err := os.Stat(filepath.Join(dataDir, "cbs", d.DiskId+".img"))
	require.NoError(t, err)
	assert.Equal(t, 32000*gib, st.Size())
}

func TestDataPlaneNeedsADataDir(t *testing.T) {
	// An in-memory cloud has nowhere to keep disk images: fakecloud refuses to start.
	_, err := fakecloud.New(fakecloud.Config{Seed: exampleSeed(t), RateLimit: -1,
		Modules: []api.NewModule{vpc.New, cvm.New, cbs.WithOptions(cbs.Options{DataPlane: &dataplane.Options{DevRoot: t.TempDir()}})}})
	require.ErrorContains(t, err, "data dir")
}
