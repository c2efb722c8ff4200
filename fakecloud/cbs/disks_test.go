package cbs_test

import (
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stratus-cloud/stratus/cloudapi"
	cbsapi "github.com/stratus-cloud/stratus/cloudapi/cbs"
	"github.com/stratus-cloud/stratus/fakecloud/api"
	"github.com/stratus-cloud/stratus/fakecloud/cbs"
)

func TestCreateAndDescribeDisks(t *testing.T) {
	e := newEnv(t, envOpts{})
	ids := e.createDisks(&cbsapi.CreateDisksRequest{
		DiskType:  cbsapi.DiskTypeSSD,
		Placement: &cbsapi.Placement{Zone: zone1},
		DiskName:  "data",
		DiskSize:  cloudapi.Int64(50),
		DiskCount: cloudapi.Int64(3),
		Tags:      []cloudapi.Tag{{Key: "stratus.io/cluster", Value: "c1"}},
	})
	require.Len(t, ids, 3)
	assert.Len(t, slices.Compact(slices.Sorted(slices.Values(ids))), 3, "ids are distinct")
	other := e.disk(zone2, 10, false)

	d := e.get(ids[0])
	assert.Equal(t, cbsapi.Disk{
		DiskId: ids[0], DiskName: "data", DiskUsage: "DATA_DISK", DiskChargeType: cbsapi.ChargePostpaidByHour,
		DiskType: cbsapi.DiskTypeSSD, DiskSize: 50, DiskState: cbsapi.DiskStateUnattached, Portable: true,
		SnapshotAbility: true, Placement: cbsapi.Placement{Zone: zone1, ProjectId: cloudapi.Int64(0)},
		InstanceIdList: []string{}, CreateTime: api.Timestamp(e.clock.Now()),
		Tags: []cloudapi.Tag{{Key: "stratus.io/cluster", Value: "c1"}},
	}, *d)

	all := e.describe(&cbsapi.DescribeDisksRequest{})
	assert.EqualValues(t, 4, all.TotalCount)
	byIDs := e.describe(&cbsapi.DescribeDisksRequest{DiskIds: []string{ids[1], other, "disk-nothere"}})
	assert.EqualValues(t, 2, byIDs.TotalCount, "unknown ids are simply not listed")

	filtered := func(f ...cloudapi.Filter) []string {
		var out []string
		for _, d := range e.describe(&cbsapi.DescribeDisksRequest{Filters: f}).DiskSet {
			out = append(out, d.DiskId)
		}
		return out
	}
	assert.Equal(t, ids, filtered(cloudapi.Filter{Name: "zone", Values: []string{zone1}}))
	assert.Equal(t, []string{other}, filtered(cloudapi.Filter{Name: "disk-type", Values: []string{cbsapi.DiskTypePremium}}))
	assert.Equal(t, ids, filtered(cloudapi.Filter{Name: "tag:stratus.io/cluster", Values: []string{"c1"}}))
	assert.Equal(t, ids, filtered(cloudapi.Filter{Name: "tag-key", Values: []string{"stratus.io/cluster"}}))
	assert.Empty(t, filtered(cloudapi.Filter{Name: "tag:stratus.io/cluster", Values: []string{"c2"}}))
	assert.Equal(t, []string{ids[2]}, filtered(
		cloudapi.Filter{Name: "disk-id", Values: []string{ids[2], other}},
		cloudapi.Filter{Name: "zone", Values: []string{zone1}},
	), "filters AND, values OR")

	require.NoError(t, e.attach(ins1, ids[1]))
	assert.Equal(t, []string{ids[1]}, filtered(cloudapi.Filter{Name: "instance-id", Values: []string{ins1}}))
	assert.Equal(t, []string{ids[1]}, filtered(cloudapi.Filter{Name: "disk-state", Values: []string{"ATTACHED"}}))
	assert.Equal(t, []string{ids[1]}, filtered(cloudapi.Filter{Name: "instance-ip-address", Values: []string{"10.0.1.11"}}))
	assert.Equal(t, []string{ids[1]}, filtered(cloudapi.Filter{Name: "instance-name", Values: []string{"node-1"}}))

	// Pagination and order.
	page := e.describe(&cbsapi.DescribeDisksRequest{Offset: cloudapi.Int64(1), Limit: cloudapi.Int64(2)})
	assert.EqualValues(t, 4, page.TotalCount)
	require.Len(t, page.DiskSet, 2)
	assert.Equal(t, []string{ids[1], ids[2]}, []string{page.DiskSet[0].DiskId, page.DiskSet[1].DiskId})
	desc := e.describe(&cbsapi.DescribeDisksRequest{Order: "DESC", OrderField: "CREATE_TIME", Limit: cloudapi.Int64(1)})
	assert.Equal(t, other, desc.DiskSet[0].DiskId)
	assert.Empty(t, e.describe(&cbsapi.DescribeDisksRequest{Offset: cloudapi.Int64(10)}).DiskSet)
}

func TestDescribeDisksErrors(t *testing.T) {
	e := newEnv(t, envOpts{})
	e.disk(zone1, 10, false)
	cases := []struct {
		name string
		in   *cbsapi.DescribeDisksRequest
		code string
	}{
		{"ids and filters", &cbsapi.DescribeDisksRequest{DiskIds: []string{"disk-1"}, Filters: []cloudapi.Filter{{Name: "zone", Values: []string{zone1}}}}, "InvalidParameter"},
		{"unknown filter", &cbsapi.DescribeDisksRequest{Filters: []cloudapi.Filter{{Name: "colour", Values: []string{"red"}}}}, "InvalidFilter"},
		{"filter without values", &cbsapi.DescribeDisksRequest{Filters: []cloudapi.Filter{{Name: "zone"}}}, "InvalidParameterValue"},
		{"limit over 100", &cbsapi.DescribeDisksRequest{Limit: cloudapi.Int64(101)}, "InvalidParameterValue"},
		{"negative offset", &cbsapi.DescribeDisksRequest{Offset: cloudapi.Int64(-1)}, "InvalidParameterValue"},
		{"bad order", &cbsapi.DescribeDisksRequest{Order: "UP"}, "InvalidParameterValue"},
		{"bad order field", &cbsapi.DescribeDisksRequest{OrderField: "SIZE"}, "InvalidParameterValue"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.cbs.DescribeDisks(e.ctx, tc.in)
			requireCode(t, err, tc.code)
		})
	}
}

func TestCreateDisksValidation(t *testing.T) {
	e := newEnv(t, envOpts{})
	premium := func(size int64) *cbsapi.CreateDisksRequest {
		return &cbsapi.CreateDisksRequest{DiskType: cbsapi.DiskTypePremium, Placement: &cbsapi.Placement{Zone: zone1}, DiskSize: cloudapi.Int64(size)}
	}
	with := func(f func(r *cbsapi.CreateDisksRequest)) *cbsapi.CreateDisksRequest {
		r := premium(20)
		f(r)
		return r
	}
	cases := []struct {
		name string
		in   *cbsapi.CreateDisksRequest
		code string
	}{
		{"no placement", with(func(r *cbsapi.CreateDisksRequest) { r.Placement = nil }), "MissingParameter"},
		{"no zone", with(func(r *cbsapi.CreateDisksRequest) { r.Placement.Zone = "" }), "MissingParameter"},
		{"unknown zone", with(func(r *cbsapi.CreateDisksRequest) { r.Placement.Zone = "ap-mars-1" }), "InvalidParameterValue"},
		{"unknown project", with(func(r *cbsapi.CreateDisksRequest) { r.Placement.ProjectId = cloudapi.Int64(7) }), "InvalidParameter.ProjectIdNotExist"},
		{"no type", with(func(r *cbsapi.CreateDisksRequest) { r.DiskType = "" }), "MissingParameter"},
		{"bad type", with(func(r *cbsapi.CreateDisksRequest) { r.DiskType = "FLOPPY" }), "InvalidParameterValue"},
		{"type not sold", with(func(r *cbsapi.CreateDisksRequest) { r.DiskType = "CLOUD_BASIC" }), "InvalidParameter.DiskConfigNotSupported"},
		{"no size", with(func(r *cbsapi.CreateDisksRequest) { r.DiskSize = nil }), "MissingParameter"},
		{"premium too small", premium(9), "InvalidParameterValue"},
		{"premium too large", premium(32001), "InvalidParameterValue"},
		{"ssd too small", with(func(r *cbsapi.CreateDisksRequest) { r.DiskType, r.DiskSize = cbsapi.DiskTypeSSD, cloudapi.Int64(19) }), "InvalidParameterValue"},
		{"hssd too small", with(func(r *cbsapi.CreateDisksRequest) { r.DiskType, r.DiskSize = cbsapi.DiskTypeHSSD, cloudapi.Int64(19) }), "InvalidParameterValue"},
		{"negative size", premium(-5), "InvalidParameterValue"},
		{"zero count", with(func(r *cbsapi.CreateDisksRequest) { r.DiskCount = cloudapi.Int64(0) }), "InvalidParameterValue"},
		{"too many", with(func(r *cbsapi.CreateDisksRequest) { r.DiskCount = cloudapi.Int64(51) }), "InvalidParameterValue"},
		{"unknown snapshot", with(func(r *cbsapi.CreateDisksRequest) { r.SnapshotId = "snap-nothere" }), "InvalidSnapshotId.NotFound"},
		{"prepaid without period", with(func(r *cbsapi.CreateDisksRequest) { r.DiskChargeType = cbsapi.ChargePrepaid }), "MissingParameter"},
		{"prepaid bad period", with(func(r *cbsapi.CreateDisksRequest) {
			r.DiskChargeType, r.DiskChargePrepaid = cbsapi.ChargePrepaid, &cbsapi.DiskChargePrepaid{Period: cloudapi.Int64(13)}
		}), "InvalidParameterValue"},
		{"bad charge type", with(func(r *cbsapi.CreateDisksRequest) { r.DiskChargeType = "FREE" }), "InvalidParameterValue"},
		{"bad encrypt", with(func(r *cbsapi.CreateDisksRequest) { r.Encrypt = "YES" }), "InvalidParameterValue"},
		{"duplicate tag", with(func(r *cbsapi.CreateDisksRequest) { r.Tags = []cloudapi.Tag{{Key: "a"}, {Key: "a"}} }), "InvalidParameterValue"},
		{"empty tag key", with(func(r *cbsapi.CreateDisksRequest) { r.Tags = []cloudapi.Tag{{Value: "v"}} }), "InvalidParameterValue"},
		{"long name", with(func(r *cbsapi.CreateDisksRequest) { r.DiskName = string(make([]byte, 61)) }), "InvalidParameterValue"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.cbs.CreateDisks(e.ctx, tc.in)
			requireCode(t, err, tc.code)
		})
	}
	// Strict decoding: a field the API does not have, or the wrong type.
	err := e.invoke("CreateDisks", map[string]any{"DiskType": "CLOUD_PREMIUM", "Placement": map[string]any{"Zone": zone1}, "DiskSize": 10, "Colour": "red"})
	requireCode(t, err, "UnknownParameter")
	err = e.invoke("CreateDisks", map[string]any{"DiskType": "CLOUD_PREMIUM", "Placement": map[string]any{"Zone": zone1}, "DiskSize": "ten"})
	requireCode(t, err, "InvalidParameter")

	assert.Empty(t, e.allDisks(), "no failed request created a disk")

	// The bounds themselves are accepted.
	for _, tc := range []struct {
		typ  string
		size int64
	}{{cbsapi.DiskTypePremium, 10}, {cbsapi.DiskTypeSSD, 20}, {cbsapi.DiskTypeHSSD, 20}, {cbsapi.DiskTypeHSSD, 32000}} {
		ids := e.createDisks(&cbsapi.CreateDisksRequest{DiskType: tc.typ, Placement: &cbsapi.Placement{Zone: zone1}, DiskSize: cloudapi.Int64(tc.size)})
		assert.EqualValues(t, tc.size, e.get(ids[0]).DiskSize)
	}
}

func TestCreateDisksPrepaidEncryptedShareable(t *testing.T) {
	e := newEnv(t, envOpts{})
	ids := e.createDisks(&cbsapi.CreateDisksRequest{
		DiskType: cbsapi.DiskTypeHSSD, Placement: &cbsapi.Placement{Zone: zone2}, DiskSize: cloudapi.Int64(100),
		DiskChargeType: cbsapi.ChargePrepaid, DiskChargePrepaid: &cbsapi.DiskChargePrepaid{Period: cloudapi.Int64(3)},
		Encrypt: "ENCRYPT", Shareable: cloudapi.Bool(true),
	})
	d := e.get(ids[0])
	assert.Equal(t, cbsapi.ChargePrepaid, d.DiskChargeType)
	assert.Equal(t, api.Timestamp(e.clock.Now().AddDate(0, 3, 0)), d.DeadlineTime)
	assert.True(t, d.Encrypt)
	assert.True(t, d.Shareable)
	assert.Equal(t, "未命名", d.DiskName, "the API's default name")
}

func TestCreateDisksClientToken(t *testing.T) {
	e := newEnv(t, envOpts{})
	in := &cbsapi.CreateDisksRequest{
		DiskType: cbsapi.DiskTypePremium, Placement: &cbsapi.Placement{Zone: zone1}, DiskSize: cloudapi.Int64(10),
		DiskCount: cloudapi.Int64(2), ClientToken: "tok-1",
	}
	first := e.createDisks(in)
	again := e.createDisks(in)
	assert.Equal(t, first, again, "a retried create returns the same disks")
	assert.Len(t, e.allDisks(), 2)

	// The client gives an empty token a fresh one per call (on its own copy of the
	// request), so a plain call creates fresh disks.
	in.ClientToken = ""
	assert.NotEqual(t, first, e.createDisks(in))
	assert.Empty(t, in.ClientToken)
	assert.Len(t, e.allDisks(), 4)
}

func TestResizeDisk(t *testing.T) {
	clk := newClock()
	e := newEnv(t, envOpts{clock: clk, delays: &cbs.Delays{Resize: 30 * time.Second}})
	id := e.disk(zone1, 50, false)
	resize := func(size int64) error {
		_, err := e.cbs.ResizeDisk(e.ctx, &cbsapi.ResizeDiskRequest{DiskId: id, DiskSize: cloudapi.Int64(size)})
		return err
	}
	requireCode(t, resize(50), "InvalidParameterValue")
	requireCode(t, resize(40), "InvalidParameterValue")
	requireCode(t, resize(32001), "InvalidParameterValue")
	_, err := e.cbs.ResizeDisk(e.ctx, &cbsapi.ResizeDiskRequest{DiskId: id})
	requireCode(t, err, "MissingParameter")
	_, err = e.cbs.ResizeDisk(e.ctx, &cbsapi.ResizeDiskRequest{DiskSize: cloudapi.Int64(60)})
	requireCode(t, err, "MissingParameter")
	_, err = e.cbs.ResizeDisk(e.ctx, &cbsapi.ResizeDiskRequest{DiskId: "disk-nothere", DiskSize: cloudapi.Int64(60)})
	requireCode(t, err, cbsapi.CodeDiskNotFound)
	assert.EqualValues(t, 50, e.get(id).DiskSize, "failed resizes changed nothing")

	require.NoError(t, resize(80))
	d := e.get(id)
	assert.Equal(t, cbsapi.DiskStateExpanding, d.DiskState)
	assert.EqualValues(t, 50, d.DiskSize, "the new size shows once the expansion is done")
	requireCode(t, resize(90), cbsapi.CodeDiskBusy)
	requireCode(t, e.attach(ins1, id), cbsapi.CodeDiskBusy)
	clk.Advance(30 * time.Second)
	d = e.get(id)
	assert.Equal(t, cbsapi.DiskStateUnattached, d.DiskState)
	assert.EqualValues(t, 80, d.DiskSize)

	// An attached disk grows online and stays attached.
	require.NoError(t, e.attach(ins1, id))
	require.NoError(t, resize(100))
	clk.Advance(time.Minute)
	d = e.get(id)
	assert.Equal(t, cbsapi.DiskStateAttached, d.DiskState)
	assert.EqualValues(t, 100, d.DiskSize)
}

func TestTerminateDisks(t *testing.T) {
	e := newEnv(t, envOpts{})
	a, b := e.disk(zone1, 10, false), e.disk(zone1, 10, false)
	require.NoError(t, e.attach(ins1, b))
	terminate := func(ids ...string) error {
		_, err := e.cbs.TerminateDisks(e.ctx, &cbsapi.TerminateDisksRequest{DiskIds: ids})
		return err
	}
	requireCode(t, terminate(), "MissingParameter")
	requireCode(t, terminate(a, "disk-nothere"), cbsapi.CodeDiskNotFound)
	requireCode(t, terminate(a, b), cbsapi.CodeDiskAttached)
	requireCode(t, terminate(a, a), "InvalidParameterValue")
	assert.Len(t, e.allDisks(), 2, "a failed batch deletes nothing")

	require.NoError(t, terminate(a))
	_, err := e.cbs.GetDisk(e.ctx, a)
	assert.True(t, cloudapi.IsNotFound(err), "%v", err)
	requireCode(t, terminate(a), cbsapi.CodeDiskNotFound)

	require.NoError(t, e.detach("", b))
	require.NoError(t, terminate(b))
	assert.Empty(t, e.allDisks())
}

func TestStateSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	clk := newClock()
	e := newEnv(t, envOpts{dataDir: dir, clock: clk, delays: &cbs.Delays{Attach: time.Minute}})
	id := e.disk(zone1, 10, false)
	snap, err := e.cbs.CreateSnapshot(e.ctx, &cbsapi.CreateSnapshotRequest{DiskId: id})
	require.NoError(t, err)
	require.NoError(t, e.attach(ins1, id))
	e.close()

	e2 := newEnv(t, envOpts{dataDir: dir, clock: clk, delays: &cbs.Delays{Attach: time.Minute}})
	d := e2.get(id)
	assert.Equal(t, cbsapi.DiskStateAttaching, d.DiskState, "an operation in flight continues after a restart")
	clk.Advance(time.Minute)
	d = e2.get(id)
	assert.Equal(t, cbsapi.DiskStateAttached, d.DiskState)
	assert.Equal(t, ins1, d.InstanceId)
	_, err = e2.cbs.GetSnapshot(e2.ctx, snap.SnapshotId)
	require.NoError(t, err)
}
