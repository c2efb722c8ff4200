package cbs_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stratus-cloud/stratus/cloudapi"
	cbsapi "github.com/stratus-cloud/stratus/cloudapi/cbs"
	"github.com/stratus-cloud/stratus/fakecloud/api"
	"github.com/stratus-cloud/stratus/fakecloud/cbs"
)

func TestSnapshotLifecycle(t *testing.T) {
	clk := newClock()
	e := newEnv(t, envOpts{clock: clk, delays: &cbs.Delays{Snapshot: 100 * time.Second}})
	src := e.disk(zone1, 40, false)
	require.NoError(t, e.attach(ins1, src))
	created := clk.Now()
	out, err := e.cbs.CreateSnapshot(e.ctx, &cbsapi.CreateSnapshotRequest{DiskId: src, SnapshotName: "nightly"})
	require.NoError(t, err)
	id := out.SnapshotId

	s, err := e.cbs.GetSnapshot(e.ctx, id)
	require.NoError(t, err)
	assert.Equal(t, cbsapi.Snapshot{
		SnapshotId: id, SnapshotName: "nightly", SnapshotState: cbsapi.SnapshotStateCreating, SnapshotType: "PRIVATE_SNAPSHOT",
		Placement: cbsapi.Placement{Zone: zone1, ProjectId: cloudapi.Int64(0)}, DiskId: src, DiskUsage: "DATA_DISK",
		DiskSize: 40, Percent: 0, CreateTime: api.Timestamp(created), IsPermanent: true,
	}, *s)

	_, err = e.cbs.CreateSnapshot(e.ctx, &cbsapi.CreateSnapshotRequest{DiskId: src})
	requireCode(t, err, cbsapi.CodeDiskSnapshotCreating)
	_, err = e.cbs.DeleteSnapshots(e.ctx, &cbsapi.DeleteSnapshotsRequest{SnapshotIds: []string{id}})
	requireCode(t, err, cbsapi.CodeSnapshotNotSupported)
	_, err = e.cbs.CreateDisks(e.ctx, &cbsapi.CreateDisksRequest{DiskType: cbsapi.DiskTypePremium, Placement: &cbsapi.Placement{Zone: zone1}, SnapshotId: id})
	requireCode(t, err, cbsapi.CodeSnapshotCreating)

	clk.Advance(50 * time.Second)
	s, _ = e.cbs.GetSnapshot(e.ctx, id)
	assert.Equal(t, cbsapi.SnapshotStateCreating, s.SnapshotState)
	assert.EqualValues(t, 50, s.Percent)
	clk.Advance(50 * time.Second)
	s, _ = e.cbs.GetSnapshot(e.ctx, id)
	assert.Equal(t, cbsapi.SnapshotStateNormal, s.SnapshotState)
	assert.EqualValues(t, 100, s.Percent)

	d := e.get(src)
	assert.EqualValues(t, 1, d.SnapshotCount)
	assert.EqualValues(t, 40*1024, d.SnapshotSize)

	// Disks from the snapshot: its size is the default and the minimum, any zone works.
	fromSnap := e.createDisks(&cbsapi.CreateDisksRequest{DiskType: cbsapi.DiskTypeSSD, Placement: &cbsapi.Placement{Zone: zone2}, SnapshotId: id})
	nd := e.get(fromSnap[0])
	assert.EqualValues(t, 40, nd.DiskSize)
	assert.Equal(t, zone2, nd.Placement.Zone)
	bigger := e.createDisks(&cbsapi.CreateDisksRequest{DiskType: cbsapi.DiskTypeSSD, Placement: &cbsapi.Placement{Zone: zone1}, SnapshotId: id, DiskSize: cloudapi.Int64(60)})
	assert.EqualValues(t, 60, e.get(bigger[0]).DiskSize)
	_, err = e.cbs.CreateDisks(e.ctx, &cbsapi.CreateDisksRequest{DiskType: cbsapi.DiskTypeSSD, Placement: &cbsapi.Placement{Zone: zone1}, SnapshotId: id, DiskSize: cloudapi.Int64(30)})
	requireCode(t, err, cbsapi.CodeDiskSizeNotMatch)

	// The snapshot outlives its disk.
	require.NoError(t, e.detach("", src))
	_, err = e.cbs.TerminateDisks(e.ctx, &cbsapi.TerminateDisksRequest{DiskIds: []string{src}})
	require.NoError(t, err)
	_, err = e.cbs.GetSnapshot(e.ctx, id)
	require.NoError(t, err)

	_, err = e.cbs.DeleteSnapshots(e.ctx, &cbsapi.DeleteSnapshotsRequest{SnapshotIds: []string{id}})
	require.NoError(t, err)
	_, err = e.cbs.GetSnapshot(e.ctx, id)
	assert.True(t, cloudapi.IsNotFound(err), "%v", err)
	_, err = e.cbs.DeleteSnapshots(e.ctx, &cbsapi.DeleteSnapshotsRequest{SnapshotIds: []string{id}})
	requireCode(t, err, cbsapi.CodeSnapshotNotFound)
}

func TestSnapshotErrorsAndDeadline(t *testing.T) {
	clk := newClock()
	e := newEnv(t, envOpts{clock: clk, delays: &cbs.Delays{Resize: time.Minute}})
	src := e.disk(zone1, 10, false)
	create := func(in *cbsapi.CreateSnapshotRequest) error {
		_, err := e.cbs.CreateSnapshot(e.ctx, in)
		return err
	}
	requireCode(t, create(&cbsapi.CreateSnapshotRequest{}), "MissingParameter")
	requireCode(t, create(&cbsapi.CreateSnapshotRequest{DiskId: "disk-nothere"}), cbsapi.CodeDiskNotFound)
	requireCode(t, create(&cbsapi.CreateSnapshotRequest{DiskId: src, Deadline: "tomorrow"}), "InvalidParameterValue")
	requireCode(t, create(&cbsapi.CreateSnapshotRequest{DiskId: src, Deadline: api.Timestamp(clk.Now().Add(-time.Hour))}), "InvalidParameterValue")
	_, err := e.cbs.ResizeDisk(e.ctx, &cbsapi.ResizeDiskRequest{DiskId: src, DiskSize: cloudapi.Int64(20)})
	require.NoError(t, err)
	requireCode(t, create(&cbsapi.CreateSnapshotRequest{DiskId: src}), cbsapi.CodeDiskBusy)
	clk.Advance(time.Minute)

	out, err := e.cbs.CreateSnapshot(e.ctx, &cbsapi.CreateSnapshotRequest{DiskId: src, Deadline: api.Timestamp(clk.Now().Add(time.Hour))})
	require.NoError(t, err)
	s, err := e.cbs.GetSnapshot(e.ctx, out.SnapshotId)
	require.NoError(t, err)
	assert.False(t, s.IsPermanent)
	assert.EqualValues(t, 20, s.DiskSize)
	assert.Equal(t, api.Timestamp(clk.Now().Add(time.Hour)), s.DeadlineTime)
	clk.Advance(time.Hour)
	_, err = e.cbs.GetSnapshot(e.ctx, out.SnapshotId)
	assert.True(t, cloudapi.IsNotFound(err), "an expired snapshot is gone: %v", err)

	_, err = e.cbs.DeleteSnapshots(e.ctx, &cbsapi.DeleteSnapshotsRequest{})
	requireCode(t, err, "MissingParameter")
}

func TestDescribeSnapshots(t *testing.T) {
	e := newEnv(t, envOpts{})
	a, b := e.disk(zone1, 10, false), e.disk(zone2, 10, false)
	var ids []string
	for _, d := range []string{a, a, b} {
		out, err := e.cbs.CreateSnapshot(e.ctx, &cbsapi.CreateSnapshotRequest{DiskId: d})
		require.NoError(t, err)
		ids = append(ids, out.SnapshotId)
	}
	list := func(in *cbsapi.DescribeSnapshotsRequest) ([]string, int64) {
		out, err := e.cbs.DescribeSnapshots(e.ctx, in)
		require.NoError(t, err)
		var got []string
		for _, s := range out.SnapshotSet {
			got = append(got, s.SnapshotId)
		}
		return got, out.TotalCount
	}
	got, total := list(&cbsapi.DescribeSnapshotsRequest{})
	assert.Equal(t, ids, got)
	assert.EqualValues(t, 3, total)
	got, _ = list(&cbsapi.DescribeSnapshotsRequest{Filters: []cloudapi.Filter{{Name: "disk-id", Values: []string{a}}}})
	assert.Equal(t, ids[:2], got)
	got, _ = list(&cbsapi.DescribeSnapshotsRequest{Filters: []cloudapi.Filter{{Name: "zone", Values: []string{zone2}}, {Name: "snapshot-state", Values: []string{"NORMAL"}}}})
	assert.Equal(t, ids[2:], got)
	got, _ = list(&cbsapi.DescribeSnapshotsRequest{SnapshotIds: []string{ids[1]}})
	assert.Equal(t, ids[1:2], got)
	got, total = list(&cbsapi.DescribeSnapshotsRequest{Offset: cloudapi.Int64(1), Limit: cloudapi.Int64(1), Order: "DESC"})
	assert.Equal(t, ids[1:2], got)
	assert.EqualValues(t, 3, total)

	for _, tc := range []struct {
		in   *cbsapi.DescribeSnapshotsRequest
		code string
	}{
		{&cbsapi.DescribeSnapshotsRequest{Filters: []cloudapi.Filter{{Name: "tag:x", Values: []string{"y"}}}}, "InvalidFilter"},
		{&cbsapi.DescribeSnapshotsRequest{SnapshotIds: ids, Filters: []cloudapi.Filter{{Name: "zone", Values: []string{zone1}}}}, "InvalidParameter"},
		{&cbsapi.DescribeSnapshotsRequest{Limit: cloudapi.Int64(101)}, "InvalidParameterValue"},
	} {
		_, err := e.cbs.DescribeSnapshots(e.ctx, tc.in)
		requireCode(t, err, tc.code)
	}
}
