package cbs_test

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
	"github.com/stratus-cloud/stratus/fakecloud"
	fccbs "github.com/stratus-cloud/stratus/fakecloud/cbs"
	"github.com/stratus-cloud/stratus/fakecloud/cvm"
	"github.com/stratus-cloud/stratus/fakecloud/vpc"
)

// newCloud is an in-process fakecloud with one subnet and two instances in zone 1, and a
// CBS client on it that counts its calls.
func newCloud(t *testing.T, delays fccbs.Delays) (*fakecloud.Cloud, *cbs.Client, *cloudapi.CallCounter) {
	t.Helper()
	seed := fakecloud.DefaultSeed()
	vpc.SetSeed(seed, []vpc.SeedVPC{{VpcID: "vpc-test0001", CidrBlock: "10.0.0.0/16",
		Subnets: []vpc.SeedSubnet{{SubnetID: "subnet-test0001", CidrBlock: "10.0.1.0/24", Zone: "ap-guangzhou-1"}}}})
	cvm.SetSeed(seed, []cvm.SeedInstance{
		{InstanceID: "ins-test0001", Zone: "ap-guangzhou-1", SubnetID: "subnet-test0001", InstanceType: "S5.MEDIUM2"},
		{InstanceID: "ins-test0002", Zone: "ap-guangzhou-1", SubnetID: "subnet-test0001", InstanceType: "S5.MEDIUM2"},
	})
	c, err := fakecloud.New(fakecloud.Config{Seed: seed, Delays: &fakecloud.Delays{CBS: delays}, RateLimit: -1})
	require.NoError(t, err)
	srv := httptest.NewServer(c)
	t.Cleanup(func() { srv.Close(); _ = c.Close() })
	id, key := c.Credentials()
	var calls cloudapi.CallCounter
	cl, err := cloudapi.New(cloudapi.Config{
		Endpoint: srv.URL, Region: c.Region(), Credentials: cloudapi.Credentials{SecretID: id, SecretKey: key},
		RateLimit: -1, MaxAttempts: 1, Hooks: []cloudapi.CallHook{calls.Hook},
	})
	require.NoError(t, err)
	return c, cbs.New(cl), &calls
}

var fast = cloudapi.WaitOptions{MinDelay: 20 * time.Millisecond, MaxDelay: 50 * time.Millisecond, Timeout: 10 * time.Second}

func newDisk(t *testing.T, c *cbs.Client, shareable bool) string {
	t.Helper()
	out, err := c.CreateDisks(context.Background(), &cbs.CreateDisksRequest{
		DiskType: cbs.DiskTypePremium, Placement: &cbs.Placement{Zone: "ap-guangzhou-1"},
		DiskSize: cloudapi.Int64(10), Shareable: cloudapi.Bool(shareable),
	})
	require.NoError(t, err)
	require.Len(t, out.DiskIdSet, 1)
	return out.DiskIdSet[0]
}

func TestWaitersFollowTheStateMachine(t *testing.T) {
	ctx := context.Background()
	cloud, c, calls := newCloud(t, fccbs.Delays{Attach: 200 * time.Millisecond, Detach: 200 * time.Millisecond, Snapshot: 200 * time.Millisecond})
	id := newDisk(t, c, true)

	_, err := c.AttachDisks(ctx, &cbs.AttachDisksRequest{DiskIds: []string{id}, InstanceId: "ins-test0001"})
	require.NoError(t, err)
	// A transient server error while polling does not end the wait.
	cloud.AddFault(fakecloud.FaultRule{Action: "DescribeDisks", FailNext: 1})
	d, err := c.WaitDiskState(ctx, id, cbs.DiskStateAttached, fast)
	require.NoError(t, err)
	assert.Equal(t, cbs.DiskStateAttached, d.DiskState)
	assert.Equal(t, "ins-test0001", d.InstanceId)
	assert.Greater(t, calls.Count("DescribeDisks"), 2, "the waiter polled until the delay passed")

	_, err = c.AttachDisks(ctx, &cbs.AttachDisksRequest{DiskIds: []string{id}, InstanceId: "ins-test0002"})
	require.NoError(t, err)
	d, err = c.WaitDiskAttached(ctx, id, "ins-test0002", fast)
	require.NoError(t, err)
	assert.Equal(t, []string{"ins-test0001", "ins-test0002"}, d.InstanceIdList)

	_, err = c.DetachDisks(ctx, &cbs.DetachDisksRequest{DiskIds: []string{id}, InstanceId: "ins-test0001"})
	require.NoError(t, err)
	d, err = c.WaitDiskDetached(ctx, id, "ins-test0001", fast)
	require.NoError(t, err)
	assert.Equal(t, []string{"ins-test0002"}, d.InstanceIdList)

	snap, err := c.CreateSnapshot(ctx, &cbs.CreateSnapshotRequest{DiskId: id})
	require.NoError(t, err)
	s, err := c.WaitSnapshotState(ctx, snap.SnapshotId, cbs.SnapshotStateNormal, fast)
	require.NoError(t, err)
	assert.EqualValues(t, 100, s.Percent)

	_, err = c.DetachDisks(ctx, &cbs.DetachDisksRequest{DiskIds: []string{id}})
	require.NoError(t, err)
	_, err = c.WaitDiskState(ctx, id, cbs.DiskStateUnattached, fast)
	require.NoError(t, err)
	_, err = c.TerminateDisks(ctx, &cbs.TerminateDisksRequest{DiskIds: []string{id}})
	require.NoError(t, err)
	require.NoError(t, c.WaitDiskDeleted(ctx, id, fast))
}

func TestWaitersFail(t *testing.T) {
	ctx := context.Background()
	_, c, _ := newCloud(t, fccbs.Delays{})
	_, err := c.WaitDiskState(ctx, "disk-nothere", cbs.DiskStateAttached, fast)
	require.Error(t, err)
	assert.True(t, cloudapi.IsNotFound(err), "a missing disk ends the wait: %v", err)
	assert.Equal(t, cbs.CodeDiskNotFound, cloudapi.ErrorCode(err))

	_, err = c.WaitSnapshotState(ctx, "snap-nothere", cbs.SnapshotStateNormal, fast)
	assert.True(t, cloudapi.IsNotFound(err), "%v", err)

	id := newDisk(t, c, false)
	short := fast
	short.Timeout = 150 * time.Millisecond
	d, err := c.WaitDiskState(ctx, id, cbs.DiskStateAttached, short)
	require.Error(t, err)
	assert.True(t, errors.Is(err, cloudapi.ErrWaitTimeout), "%v", err)
	require.NotNil(t, d, "the last state seen is returned")
	assert.Equal(t, cbs.DiskStateUnattached, d.DiskState)
}
