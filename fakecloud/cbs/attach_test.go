package cbs_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stratus-cloud/stratus/cloudapi"
	cbsapi "github.com/stratus-cloud/stratus/cloudapi/cbs"
	cvmapi "github.com/stratus-cloud/stratus/cloudapi/cvm"
	"github.com/stratus-cloud/stratus/fakecloud/cbs"
)

func TestAttachDetachStateMachine(t *testing.T) {
	clk := newClock()
	e := newEnv(t, envOpts{clock: clk, delays: &cbs.Delays{Attach: 10 * time.Second, Detach: 20 * time.Second}})
	id := e.disk(zone1, 10, false)
	assert.Equal(t, cbsapi.DiskStateUnattached, e.get(id).DiskState)

	require.NoError(t, e.attach(ins1, id))
	d := e.get(id)
	assert.Equal(t, cbsapi.DiskStateAttaching, d.DiskState)
	assert.False(t, d.Attached, "not attached before ATTACHING is over")
	assert.Equal(t, ins1, d.InstanceId)
	assert.Empty(t, d.InstanceIdList, "the API lists instances there for shareable disks only")
	assert.Equal(t, []string{ins1}, d.AttachedInstances())
	requireCode(t, e.detach("", id), cbsapi.CodeDiskBusy)
	clk.Advance(9 * time.Second)
	assert.Equal(t, cbsapi.DiskStateAttaching, e.get(id).DiskState)
	clk.Advance(time.Second)
	d = e.get(id)
	assert.Equal(t, cbsapi.DiskStateAttached, d.DiskState)
	assert.True(t, d.Attached)
	assert.Equal(t, ins1, d.InstanceId)

	require.NoError(t, e.detach(ins1, id))
	d = e.get(id)
	assert.Equal(t, cbsapi.DiskStateDetaching, d.DiskState)
	assert.Equal(t, ins1, d.InstanceId, "still on the instance while detaching")
	requireCode(t, e.attach(ins2, id), cbsapi.CodeDiskBusy)
	clk.Advance(20 * time.Second)
	d = e.get(id)
	assert.Equal(t, cbsapi.DiskStateUnattached, d.DiskState)
	assert.False(t, d.Attached)
	assert.Empty(t, d.InstanceId)
	assert.Empty(t, d.InstanceIdList)

	// It can move to the other instance of the zone now.
	require.NoError(t, e.attach(ins2, id))
	clk.Advance(10 * time.Second)
	assert.Equal(t, ins2, e.get(id).InstanceId)
}

func TestAttachErrors(t *testing.T) {
	e := newEnv(t, envOpts{limits: map[string]int{"cbs-disks-per-instance": 3}})
	inZone2 := e.disk(zone2, 10, false)
	taken := e.disk(zone1, 10, false)
	require.NoError(t, e.attach(ins2, taken))
	free := e.disk(zone1, 10, false)

	requireCode(t, e.attach(ins1, inZone2), cbsapi.CodeZoneNotMatch)
	requireCode(t, e.attach(ins1, taken), cbsapi.CodeDiskAttachedElsewhere)
	requireCode(t, e.attach(ins2, taken), cbsapi.CodeDiskAttached)
	requireCode(t, e.attach("ins-nothere", free), cbsapi.CodeInstanceNotFound)
	requireCode(t, e.attach(ins1, "disk-nothere"), cbsapi.CodeDiskNotFound)
	requireCode(t, e.attach(ins1), "MissingParameter")
	requireCode(t, e.attach("", free), "MissingParameter")
	requireCode(t, e.attach(ins1, free, free), "InvalidParameterValue")
	requireCode(t, e.attach(ins1, "disk-1", "disk-2", "disk-3", "disk-4", "disk-5", "disk-6", "disk-7", "disk-8", "disk-9", "disk-10", "disk-11"), cbsapi.CodeTooManyValues)
	// One bad disk fails the whole batch: the good one stays unattached.
	requireCode(t, e.attach(ins1, free, taken), cbsapi.CodeDiskAttachedElsewhere)
	assert.Equal(t, cbsapi.DiskStateUnattached, e.get(free).DiskState)
	assert.Equal(t, []string{ins2}, e.get(taken).AttachedInstances())

	// The per-instance limit (3 here): ins1 takes three, the fourth is refused, in one
	// call or one at a time.
	more := e.createDisks(&cbsapi.CreateDisksRequest{DiskType: cbsapi.DiskTypePremium, Placement: &cbsapi.Placement{Zone: zone1}, DiskSize: cloudapi.Int64(10), DiskCount: cloudapi.Int64(3)})
	requireCode(t, e.attach(ins1, free, more[0], more[1], more[2]), cbsapi.CodeInstanceAttachedDiskLimit)
	require.NoError(t, e.attach(ins1, free, more[0]))
	require.NoError(t, e.attach(ins1, more[1]))
	requireCode(t, e.attach(ins1, more[2]), cbsapi.CodeInstanceAttachedDiskLimit)
	assert.Equal(t, cbsapi.DiskStateUnattached, e.get(more[2]).DiskState)

	// Stopped instances take disks; terminated ones are gone.
	_, err := e.cvm.StopInstances(e.ctx, &cvmapi.StopInstancesRequest{InstanceIds: []string{ins3}})
	require.NoError(t, err)
	require.NoError(t, e.attach(ins3, inZone2))
	_, err = e.cvm.TerminateInstances(e.ctx, &cvmapi.TerminateInstancesRequest{InstanceIds: []string{"ins-node0004"}})
	require.NoError(t, err)
	requireCode(t, e.attach("ins-node0004", e.disk("ap-guangzhou-3", 10, false)), cbsapi.CodeInstanceNotFound)
}

func TestAttachDefaultLimitIs20(t *testing.T) {
	e := newEnv(t, envOpts{})
	ids := e.createDisks(&cbsapi.CreateDisksRequest{DiskType: cbsapi.DiskTypePremium, Placement: &cbsapi.Placement{Zone: zone1}, DiskSize: cloudapi.Int64(10), DiskCount: cloudapi.Int64(21)})
	for i := 0; i < 20; i += 10 {
		require.NoError(t, e.attach(ins1, ids[i:i+10]...))
	}
	requireCode(t, e.attach(ins1, ids[20]), cbsapi.CodeInstanceAttachedDiskLimit)
	require.NoError(t, e.attach(ins2, ids[20]), "the limit is per instance")
}

func TestDetachErrors(t *testing.T) {
	e := newEnv(t, envOpts{})
	loose := e.disk(zone1, 10, false)
	on1 := e.disk(zone1, 10, false)
	require.NoError(t, e.attach(ins1, on1))

	requireCode(t, e.detach("", loose), cbsapi.CodeDiskNotSupported)
	requireCode(t, e.detach("", "disk-nothere"), cbsapi.CodeDiskNotFound)
	requireCode(t, e.detach(""), "MissingParameter")
	requireCode(t, e.detach("ins-nothere", on1), cbsapi.CodeInstanceNotFound)
	requireCode(t, e.detach("", on1, loose), cbsapi.CodeDiskNotSupported)
	assert.Equal(t, cbsapi.DiskStateAttached, e.get(on1).DiskState, "a failed batch detaches nothing")

	// As documented for the real API, InstanceId is ignored for a non-shareable disk.
	require.NoError(t, e.detach(ins2, on1))
	assert.Equal(t, cbsapi.DiskStateUnattached, e.get(on1).DiskState)
}

func TestShareableDisk(t *testing.T) {
	clk := newClock()
	e := newEnv(t, envOpts{clock: clk, limits: map[string]int{"cbs-instances-per-shareable-disk": 2}, delays: &cbs.Delays{Detach: 5 * time.Second}})
	id := e.disk(zone1, 10, true)
	require.NoError(t, e.attach(ins1, id))
	require.NoError(t, e.attach(ins2, id))
	d := e.get(id)
	assert.Equal(t, cbsapi.DiskStateAttached, d.DiskState)
	assert.Equal(t, []string{ins1, ins2}, d.InstanceIdList)
	assert.Equal(t, ins1, d.InstanceId)

	// A third instance exceeds this seed's limit of 2 (the default is 16).
	seed := exampleSeed(t)
	_, err := e.cvm.RunInstances(e.ctx, &cvmapi.RunInstancesRequest{
		Placement:           &cvmapi.Placement{Zone: zone1},
		InstanceType:        "S5.MEDIUM2",
		ImageId:             "img-stratus0",
		VirtualPrivateCloud: &cvmapi.VirtualPrivateCloud{VpcId: seedVPCs(t, seed)[0].VpcID, SubnetId: "subnet-gz1"},
	})
	require.NoError(t, err)
	ins, err := e.cvm.DescribeInstances(e.ctx, &cvmapi.DescribeInstancesRequest{Filters: []cloudapi.Filter{{Name: "zone", Values: []string{zone1}}}, Limit: cloudapi.Int64(100)})
	require.NoError(t, err)
	var third string
	for _, in := range ins.InstanceSet {
		if in.InstanceId != ins1 && in.InstanceId != ins2 {
			third = in.InstanceId
		}
	}
	require.NotEmpty(t, third)
	requireCode(t, e.attach(third, id), cbsapi.CodeDiskAttachedElsewhere)

	requireCode(t, e.detach(third, id), cbsapi.CodeDiskNotSupported)
	require.NoError(t, e.detach(ins1, id))
	d = e.get(id)
	assert.Equal(t, cbsapi.DiskStateDetaching, d.DiskState)
	clk.Advance(5 * time.Second)
	d = e.get(id)
	assert.Equal(t, cbsapi.DiskStateAttached, d.DiskState)
	assert.Equal(t, []string{ins2}, d.InstanceIdList)
	require.NoError(t, e.attach(third, id))

	// Without InstanceId a shareable disk leaves every instance.
	require.NoError(t, e.detach("", id))
	clk.Advance(5 * time.Second)
	assert.Empty(t, e.get(id).InstanceIdList)
	assert.Equal(t, cbsapi.DiskStateUnattached, e.get(id).DiskState)
}

func TestTerminatedInstanceReleasesDisks(t *testing.T) {
	e := newEnv(t, envOpts{})
	keep := e.disk(zone1, 10, false)
	doomed := e.disk(zone1, 10, false)
	require.NoError(t, e.attach(ins1, keep))
	_, err := e.cbs.AttachDisks(e.ctx, &cbsapi.AttachDisksRequest{DiskIds: []string{doomed}, InstanceId: ins1, DeleteWithInstance: cloudapi.Bool(true)})
	require.NoError(t, err)
	assert.True(t, e.get(doomed).DeleteWithInstance)

	_, err = e.cvm.TerminateInstances(e.ctx, &cvmapi.TerminateInstancesRequest{InstanceIds: []string{ins1}})
	require.NoError(t, err)
	d := e.get(keep)
	assert.Equal(t, cbsapi.DiskStateUnattached, d.DiskState, "a disk outlives its instance, detached")
	assert.Empty(t, d.InstanceIdList)
	_, err = e.cbs.GetDisk(e.ctx, doomed)
	assert.True(t, cloudapi.IsNotFound(err), "DeleteWithInstance disks go with the instance: %v", err)
	require.NoError(t, e.attach(ins2, keep))
}

func TestConcurrentAttachHasOneWinner(t *testing.T) {
	e := newEnv(t, envOpts{})
	for range 10 {
		id := e.disk(zone1, 10, false)
		errs := make(chan error, 2)
		for _, ins := range []string{ins1, ins2} {
			go func() { errs <- e.attach(ins, id) }()
		}
		var ok, refused int
		for range 2 {
			switch err := <-errs; {
			case err == nil:
				ok++
			case cloudapi.ErrorCode(err) == cbsapi.CodeDiskAttachedElsewhere:
				refused++
			default:
				t.Fatalf("unexpected error: %v", err)
			}
		}
		assert.Equal(t, 1, ok, "exactly one attach wins")
		assert.Equal(t, 1, refused)
		assert.Len(t, e.get(id).AttachedInstances(), 1)
	}
}
