package compat

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	cbs "github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/cbs/v20170312"
	"github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/common"
)

func newCBS(t *testing.T, e *sdkEnv) *cbs.Client {
	t.Helper()
	c, err := cbs.NewClient(e.cred, e.region, e.profile)
	require.NoError(t, err)
	return c
}

func cbsCreate(t *testing.T, c *cbs.Client, zone string, size uint64, shareable bool) string {
	t.Helper()
	req := cbs.NewCreateDisksRequest()
	req.DiskType = common.StringPtr("CLOUD_PREMIUM")
	req.Placement = &cbs.Placement{Zone: common.StringPtr(zone)}
	req.DiskSize = common.Uint64Ptr(size)
	req.Shareable = common.BoolPtr(shareable)
	resp, err := c.CreateDisks(req)
	require.NoError(t, err)
	require.Len(t, resp.Response.DiskIdSet, 1)
	return *resp.Response.DiskIdSet[0]
}

func cbsDisk(t *testing.T, c *cbs.Client, id string) *cbs.Disk {
	t.Helper()
	req := cbs.NewDescribeDisksRequest()
	req.DiskIds = ptrs(id)
	resp, err := c.DescribeDisks(req)
	require.NoError(t, err)
	require.Len(t, resp.Response.DiskSet, 1)
	return resp.Response.DiskSet[0]
}

func TestSDKCreateAndDescribeDisks(t *testing.T) {
	c := newCBS(t, newSDKEnv(t))
	req := cbs.NewCreateDisksRequest()
	req.DiskType = common.StringPtr("CLOUD_SSD")
	req.DiskChargeType = common.StringPtr("PREPAID")
	req.DiskChargePrepaid = &cbs.DiskChargePrepaid{Period: common.Uint64Ptr(1), RenewFlag: common.StringPtr("NOTIFY_AND_AUTO_RENEW")}
	req.Placement = &cbs.Placement{Zone: common.StringPtr("ap-guangzhou-1"), ProjectId: common.Uint64Ptr(0)}
	req.DiskName = common.StringPtr("sdk-disk")
	req.DiskCount = common.Uint64Ptr(2)
	req.DiskSize = common.Uint64Ptr(100)
	req.ClientToken = common.StringPtr("sdk-cbs-token")
	req.Encrypt = common.StringPtr("ENCRYPT")
	req.Tags = []*cbs.Tag{{Key: common.StringPtr("stratus.io/cluster"), Value: common.StringPtr("sdk")}}
	req.Shareable = common.BoolPtr(false)
	resp, err := c.CreateDisks(req)
	require.NoError(t, err)
	require.Len(t, resp.Response.DiskIdSet, 2)
	again, err := c.CreateDisks(req)
	require.NoError(t, err)
	assert.Equal(t, resp.Response.DiskIdSet, again.Response.DiskIdSet, "same ClientToken, same disks")

	dreq := cbs.NewDescribeDisksRequest()
	dreq.Filters = []*cbs.Filter{{Name: common.StringPtr("tag:stratus.io/cluster"), Values: ptrs("sdk")}}
	dreq.Offset = common.Uint64Ptr(0)
	dreq.Limit = common.Uint64Ptr(10)
	dreq.Order = common.StringPtr("ASC")
	dreq.OrderField = common.StringPtr("CREATE_TIME")
	dreq.ReturnBindAutoSnapshotPolicy = common.BoolPtr(false)
	dresp, err := c.DescribeDisks(dreq)
	require.NoError(t, err)
	assert.EqualValues(t, 2, *dresp.Response.TotalCount)
	d := dresp.Response.DiskSet[0]
	assert.Equal(t, *resp.Response.DiskIdSet[0], *d.DiskId)
	assert.Equal(t, "sdk-disk", *d.DiskName)
	assert.Equal(t, "CLOUD_SSD", *d.DiskType)
	assert.EqualValues(t, 100, *d.DiskSize)
	assert.Equal(t, "UNATTACHED", *d.DiskState)
	assert.Equal(t, "PREPAID", *d.DiskChargeType)
	assert.Equal(t, "ap-guangzhou-1", *d.Placement.Zone)
	assert.True(t, *d.Encrypt)
	assert.False(t, *d.Attached)
	assert.NotEmpty(t, *d.DeadlineTime)
	require.Len(t, d.Tags, 1)
	assert.Equal(t, "sdk", *d.Tags[0].Value)

	bad := cbs.NewCreateDisksRequest()
	bad.DiskType = common.StringPtr("CLOUD_PREMIUM")
	bad.Placement = &cbs.Placement{Zone: common.StringPtr("ap-guangzhou-1")}
	bad.DiskSize = common.Uint64Ptr(5)
	_, err = c.CreateDisks(bad)
	assert.Equal(t, "InvalidParameterValue", sdkCode(t, err))

	bad = cbs.NewCreateDisksRequest()
	bad.DiskType = common.StringPtr("CLOUD_PREMIUM")
	bad.Placement = &cbs.Placement{Zone: common.StringPtr("ap-guangzhou-1")}
	bad.SnapshotId = common.StringPtr("snap-nothere")
	_, err = c.CreateDisks(bad)
	assert.Equal(t, "InvalidSnapshotId.NotFound", sdkCode(t, err))

	dbad := cbs.NewDescribeDisksRequest()
	dbad.Filters = []*cbs.Filter{{Name: common.StringPtr("colour"), Values: ptrs("red")}}
	_, err = c.DescribeDisks(dbad)
	assert.Equal(t, "InvalidFilter", sdkCode(t, err))
}

func TestSDKAttachDetachResizeTerminate(t *testing.T) {
	c := newCBS(t, newSDKEnv(t))
	id := cbsCreate(t, c, "ap-guangzhou-1", 10, false)
	far := cbsCreate(t, c, "ap-guangzhou-2", 10, false)

	att := cbs.NewAttachDisksRequest()
	att.DiskIds = ptrs(id)
	att.InstanceId = common.StringPtr("ins-node0001")
	att.DeleteWithInstance = common.BoolPtr(false)
	_, err := c.AttachDisks(att)
	require.NoError(t, err)
	d := cbsDisk(t, c, id)
	assert.Equal(t, "ATTACHED", *d.DiskState)
	assert.Equal(t, "ins-node0001", *d.InstanceId)
	assert.Empty(t, d.InstanceIdList, "a non-shareable disk's instance is InstanceId")

	att.DiskIds = ptrs(far)
	_, err = c.AttachDisks(att)
	assert.Equal(t, "ZoneNotMatch", sdkCode(t, err))
	att.DiskIds = ptrs(id)
	att.InstanceId = common.StringPtr("ins-node0002")
	_, err = c.AttachDisks(att)
	assert.Equal(t, "ResourceUnavailable.Attached", sdkCode(t, err))

	rs := cbs.NewResizeDiskRequest()
	rs.DiskId = common.StringPtr(id)
	rs.DiskSize = common.Uint64Ptr(20)
	_, err = c.ResizeDisk(rs)
	require.NoError(t, err)
	assert.EqualValues(t, 20, *cbsDisk(t, c, id).DiskSize)
	rs.DiskSize = common.Uint64Ptr(15)
	_, err = c.ResizeDisk(rs)
	assert.Equal(t, "InvalidParameterValue", sdkCode(t, err))

	term := cbs.NewTerminateDisksRequest()
	term.DiskIds = ptrs(id)
	_, err = c.TerminateDisks(term)
	assert.Equal(t, "InvalidDisk.Attached", sdkCode(t, err))

	det := cbs.NewDetachDisksRequest()
	det.DiskIds = ptrs(id)
	det.InstanceId = common.StringPtr("ins-node0001")
	_, err = c.DetachDisks(det)
	require.NoError(t, err)
	assert.Equal(t, "UNATTACHED", *cbsDisk(t, c, id).DiskState)
	_, err = c.DetachDisks(det)
	assert.Equal(t, "InvalidDisk.NotSupported", sdkCode(t, err))

	_, err = c.TerminateDisks(term)
	require.NoError(t, err)
	_, err = c.TerminateDisks(term)
	assert.Equal(t, "InvalidDiskId.NotFound", sdkCode(t, err))
}

func TestSDKSnapshots(t *testing.T) {
	c := newCBS(t, newSDKEnv(t))
	id := cbsCreate(t, c, "ap-guangzhou-1", 30, false)

	cs := cbs.NewCreateSnapshotRequest()
	cs.DiskId = common.StringPtr(id)
	cs.SnapshotName = common.StringPtr("sdk-snap")
	cs.Deadline = common.StringPtr("2099-01-01T00:00:00Z")
	created, err := c.CreateSnapshot(cs)
	require.NoError(t, err)
	snapID := *created.Response.SnapshotId
	cs.DiskId = common.StringPtr("disk-nothere")
	_, err = c.CreateSnapshot(cs)
	assert.Equal(t, "InvalidDiskId.NotFound", sdkCode(t, err))

	ds := cbs.NewDescribeSnapshotsRequest()
	ds.Filters = []*cbs.Filter{{Name: common.StringPtr("disk-id"), Values: ptrs(id)}}
	ds.Offset = common.Uint64Ptr(0)
	ds.Limit = common.Uint64Ptr(20)
	ds.Order = common.StringPtr("DESC")
	ds.OrderField = common.StringPtr("CREATE_TIME")
	resp, err := c.DescribeSnapshots(ds)
	require.NoError(t, err)
	assert.EqualValues(t, 1, *resp.Response.TotalCount)
	s := resp.Response.SnapshotSet[0]
	assert.Equal(t, snapID, *s.SnapshotId)
	assert.Equal(t, "NORMAL", *s.SnapshotState)
	assert.EqualValues(t, 100, *s.Percent)
	assert.EqualValues(t, 30, *s.DiskSize)
	assert.Equal(t, "sdk-snap", *s.SnapshotName)
	assert.Equal(t, "2099-01-01T00:00:00Z", *s.DeadlineTime)
	assert.False(t, *s.IsPermanent)

	ds.SnapshotIds = ptrs(snapID)
	_, err = c.DescribeSnapshots(ds)
	assert.Equal(t, "InvalidParameter", sdkCode(t, err), "SnapshotIds and Filters together")

	// A disk from the snapshot takes its size.
	fromSnap := cbs.NewCreateDisksRequest()
	fromSnap.DiskType = common.StringPtr("CLOUD_PREMIUM")
	fromSnap.Placement = &cbs.Placement{Zone: common.StringPtr("ap-guangzhou-1")}
	fromSnap.SnapshotId = common.StringPtr(snapID)
	nd, err := c.CreateDisks(fromSnap)
	require.NoError(t, err)
	assert.EqualValues(t, 30, *cbsDisk(t, c, *nd.Response.DiskIdSet[0]).DiskSize)

	del := cbs.NewDeleteSnapshotsRequest()
	del.SnapshotIds = ptrs(snapID)
	_, err = c.DeleteSnapshots(del)
	require.NoError(t, err)
	_, err = c.DeleteSnapshots(del)
	assert.Equal(t, "InvalidSnapshotId.NotFound", sdkCode(t, err))
}
