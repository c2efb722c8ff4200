package cbsdisks_test

import (
	"context"
	"errors"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stratus-cloud/stratus/cloudapi"
	"github.com/stratus-cloud/stratus/cloudapi/cbs"
	"github.com/stratus-cloud/stratus/cloudprovider/cbsdisks"
	"github.com/stratus-cloud/stratus/csi"
	"github.com/stratus-cloud/stratus/fakecloud"
	fccvm "github.com/stratus-cloud/stratus/fakecloud/cvm"
	fcvpc "github.com/stratus-cloud/stratus/fakecloud/vpc"
)

const zone = "ap-guangzhou-1"

type env struct {
	disks *cbsdisks.Disks
	user  *cbs.Client // the cloud's user, outside the cluster
	calls *cloudapi.CallCounter
}

func newEnv(t *testing.T, limits map[string]int) *env {
	t.Helper()
	seed := fakecloud.DefaultSeed()
	fcvpc.SetSeed(seed, []fcvpc.SeedVPC{{VpcID: "vpc-test0001", CidrBlock: "10.0.0.0/16",
		Subnets: []fcvpc.SeedSubnet{{SubnetID: "subnet-test0001", CidrBlock: "10.0.1.0/24", Zone: zone}}}})
	fccvm.SetSeed(seed, []fccvm.SeedInstance{
		{InstanceID: "ins-test0001", Zone: zone, SubnetID: "subnet-test0001", InstanceType: "S5.MEDIUM2", PrivateIP: "10.0.1.5"},
		{InstanceID: "ins-test0002", Zone: zone, SubnetID: "subnet-test0001", InstanceType: "S5.MEDIUM2"},
	})
	seed.Limits = limits
	c, err := fakecloud.New(fakecloud.Config{Seed: seed, Delays: &fakecloud.Delays{}, RateLimit: -1})
	require.NoError(t, err)
	srv := httptest.NewServer(c)
	t.Cleanup(func() { srv.Close(); _ = c.Close() })
	id, key := c.Credentials()
	calls := &cloudapi.CallCounter{}
	cl, err := cloudapi.New(cloudapi.Config{Endpoint: srv.URL, Region: c.Region(), Credentials: cloudapi.Credentials{SecretID: id, SecretKey: key},
		RateLimit: -1, MaxAttempts: 1, Hooks: []cloudapi.CallHook{calls.Hook}})
	require.NoError(t, err)
	d, err := cbsdisks.New(cl, cbsdisks.Config{ClusterID: "test", AppearTimeout: 300 * time.Millisecond, Wait: cloudapi.WaitOptions{MinDelay: 5 * time.Millisecond, MaxDelay: 20 * time.Millisecond, Timeout: 5 * time.Second}})
	require.NoError(t, err)
	return &env{disks: d, user: cbs.New(cl), calls: calls}
}

func spec(name string) csi.DiskSpec {
	return csi.DiskSpec{Name: name, Type: cbs.DiskTypePremium, SizeGiB: 10, Zone: zone, Tags: map[string]string{"team": "storage"}}
}

func TestCreateDiskIsIdempotentByName(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, nil)
	a, err := e.disks.CreateDisk(ctx, spec("pvc-1"))
	require.NoError(t, err)
	b, err := e.disks.CreateDisk(ctx, spec("pvc-1"))
	require.NoError(t, err)
	assert.Equal(t, a.ID, b.ID, "a retry with the same name gets the same disk")
	assert.True(t, a.Owned)
	assert.Equal(t, "pvc-1", a.Name)

	raw, err := e.user.GetDisk(ctx, a.ID)
	require.NoError(t, err)
	assert.Contains(t, raw.Tags, cloudapi.Tag{Key: cbsdisks.TagCluster, Value: "test"})
	assert.Contains(t, raw.Tags, cloudapi.Tag{Key: "team", Value: "storage"})

	found, err := e.disks.FindDisk(ctx, "pvc-1")
	require.NoError(t, err)
	assert.Equal(t, a.ID, found.ID)

	// Deleted, then created again under the same name: the token of the first create
	// replays a gone disk; the adapter moves on to a new disk.
	require.NoError(t, e.disks.DeleteDisk(ctx, a.ID))
	c, err := e.disks.CreateDisk(ctx, spec("pvc-1"))
	require.NoError(t, err)
	assert.NotEqual(t, a.ID, c.ID)
	d, err := e.disks.CreateDisk(ctx, spec("pvc-1"))
	require.NoError(t, err)
	assert.Equal(t, c.ID, d.ID, "and a retry of that lands on the same new disk")
}

func TestOwnership(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, nil)
	out, err := e.user.CreateDisks(ctx, &cbs.CreateDisksRequest{DiskType: cbs.DiskTypePremium, Placement: &cbs.Placement{Zone: zone},
		DiskSize: cloudapi.Int64(10), Tags: []cloudapi.Tag{{Key: cbsdisks.TagCluster, Value: "another-cluster"}}})
	require.NoError(t, err)
	foreign, err := e.disks.GetDisk(ctx, out.DiskIdSet[0])
	require.NoError(t, err)
	assert.False(t, foreign.Owned, "a disk tagged for another cluster is not owned")

	mine, err := e.disks.CreateDisk(ctx, spec("pvc-mine"))
	require.NoError(t, err)
	list, total, err := e.disks.ListDisks(ctx, 0, 100)
	require.NoError(t, err)
	assert.Equal(t, 1, total)
	require.Len(t, list, 1)
	assert.Equal(t, mine.ID, list[0].ID, "listing shows this cluster's disks only")

	userSnap, err := e.user.CreateSnapshot(ctx, &cbs.CreateSnapshotRequest{DiskId: out.DiskIdSet[0], SnapshotName: "backup"})
	require.NoError(t, err)
	s, err := e.disks.GetSnapshot(ctx, userSnap.SnapshotId)
	require.NoError(t, err)
	assert.False(t, s.Owned)
	own, err := e.disks.CreateSnapshot(ctx, mine.ID, "snapshot-1")
	require.NoError(t, err)
	assert.True(t, own.Owned)
	snaps, total, err := e.disks.ListSnapshots(ctx, "", 0, 100)
	require.NoError(t, err)
	assert.Equal(t, 1, total)
	assert.Equal(t, own.ID, snaps[0].ID)
}

func TestMalformedIDsNeverReachTheCloud(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, nil)
	e.calls.Reset()
	_, err := e.disks.GetDisk(ctx, "fake-vol-id-1")
	assert.True(t, errors.Is(err, csi.ErrNotFound))
	_, err = e.disks.GetInstance(ctx, "node-1")
	assert.True(t, errors.Is(err, csi.ErrNotFound))
	_, err = e.disks.GetSnapshot(ctx, "snap/../x")
	assert.True(t, errors.Is(err, csi.ErrNotFound))
	assert.NoError(t, e.disks.DeleteDisk(ctx, "nope"))
	assert.Empty(t, e.calls.Snapshot())
}

func TestAttachErrors(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, map[string]int{"cbs-disks-per-instance": 1})
	a, err := e.disks.CreateDisk(ctx, spec("pvc-a"))
	require.NoError(t, err)
	b, err := e.disks.CreateDisk(ctx, spec("pvc-b"))
	require.NoError(t, err)
	d, err := e.disks.AttachDisk(ctx, a.ID, "ins-test0001")
	require.NoError(t, err)
	assert.Equal(t, []string{"ins-test0001"}, d.Instances)
	n, err := e.disks.AttachedDisks(ctx, "ins-test0001")
	require.NoError(t, err)
	assert.Equal(t, 1, n)

	_, err = e.disks.AttachDisk(ctx, a.ID, "ins-test0002")
	assert.True(t, errors.Is(err, csi.ErrConflict), "a disk that is not shareable attached elsewhere: %v", err)
	_, err = e.disks.AttachDisk(ctx, b.ID, "ins-test0001")
	assert.True(t, errors.Is(err, csi.ErrLimit), "the instance is full: %v", err)

	require.NoError(t, e.disks.DetachDisk(ctx, a.ID, "ins-test0001"))
	require.NoError(t, e.disks.DetachDisk(ctx, a.ID, "ins-test0001"), "detach is idempotent")
	got, err := e.disks.GetDisk(ctx, a.ID)
	require.NoError(t, err)
	assert.Empty(t, got.Instances)

	self, err := e.disks.FindInstanceByIPs(ctx, "vpc-test0001", []string{"192.0.2.1", "10.0.1.5"})
	require.NoError(t, err)
	assert.Equal(t, "ins-test0001", self.ID)
	assert.Equal(t, zone, self.Zone)
}
