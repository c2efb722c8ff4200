package csi

import (
	"context"
	"testing"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func capOf(mode csi.VolumeCapability_AccessMode_Mode, block bool) *csi.VolumeCapability {
	c := &csi.VolumeCapability{AccessMode: &csi.VolumeCapability_AccessMode{Mode: mode}}
	if block {
		c.AccessType = &csi.VolumeCapability_Block{Block: &csi.VolumeCapability_BlockVolume{}}
	} else {
		c.AccessType = &csi.VolumeCapability_Mount{Mount: &csi.VolumeCapability_MountVolume{}}
	}
	return c
}

var (
	snmw  = capOf(csi.VolumeCapability_AccessMode_SINGLE_NODE_MULTI_WRITER, false)
	roxFS = capOf(csi.VolumeCapability_AccessMode_MULTI_NODE_READER_ONLY, false)
	mnswB = capOf(csi.VolumeCapability_AccessMode_MULTI_NODE_SINGLE_WRITER, true)
)

func newController(t *testing.T, f *fakeDisks, maxVolumes int64) *controllerServer {
	t.Helper()
	d, err := New(Options{Mode: ModeController, Disks: f, DefaultZone: "zone-1", MaxVolumesPerNode: maxVolumes})
	require.NoError(t, err)
	return d.controller
}

func code(t *testing.T, err error, want codes.Code, msgHas ...string) {
	t.Helper()
	require.Error(t, err)
	assert.Equal(t, want, status.Code(err), "%v", err)
	for _, m := range msgHas {
		assert.Contains(t, status.Convert(err).Message(), m)
	}
}

func TestRoundSize(t *testing.T) {
	ssd := DiskType{Name: "SSD", MinGiB: 20, MaxGiB: 100, StepGiB: 10}
	cases := []struct {
		name            string
		required, limit int64
		want            int64
		ok              bool
	}{
		{"nothing asked is the minimum", 0, 0, 20, true},
		{"below the minimum", 5 * GiB, 0, 20, true},
		{"a partial GiB rounds up to the step", 20*GiB + 1, 0, 30, true},
		{"on a step", 40 * GiB, 0, 40, true},
		{"limit below the rounded size", 21 * GiB, 25 * GiB, 0, false},
		{"limit equal to the rounded size", 21 * GiB, 30 * GiB, 30, true},
		{"above the maximum", 101 * GiB, 0, 0, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := ssd.RoundSize(tc.required, tc.limit)
			assert.Equal(t, tc.ok, ok)
			assert.Equal(t, tc.want, got)
		})
	}
}

func TestCreateVolume(t *testing.T) {
	ctx := context.Background()
	req := func(name string, params map[string]string, size int64) *csi.CreateVolumeRequest {
		return &csi.CreateVolumeRequest{Name: name, Parameters: params, CapacityRange: &csi.CapacityRange{RequiredBytes: size},
			VolumeCapabilities: []*csi.VolumeCapability{snmw}}
	}
	t.Run("a retry returns the same disk", func(t *testing.T) {
		f := newFakeDisks()
		c := newController(t, f, 0)
		a, err := c.CreateVolume(ctx, req("pvc-1", map[string]string{"diskType": "SSD"}, 15*GiB))
		require.NoError(t, err)
		b, err := c.CreateVolume(ctx, req("pvc-1", map[string]string{"diskType": "SSD"}, 15*GiB))
		require.NoError(t, err)
		assert.Equal(t, a.GetVolume().GetVolumeId(), b.GetVolume().GetVolumeId())
		assert.Equal(t, 1, f.creates)
		assert.Equal(t, 20*GiB, a.GetVolume().GetCapacityBytes())
		assert.Equal(t, "zone-1", a.GetVolume().GetAccessibleTopology()[0].GetSegments()[TopologyKey])
	})
	t.Run("same name, other size is ALREADY_EXISTS", func(t *testing.T) {
		f := newFakeDisks()
		c := newController(t, f, 0)
		_, err := c.CreateVolume(ctx, req("pvc-1", nil, 10*GiB))
		require.NoError(t, err)
		_, err = c.CreateVolume(ctx, req("pvc-1", nil, 50*GiB))
		code(t, err, codes.AlreadyExists)
	})
	t.Run("topology picks the zone", func(t *testing.T) {
		f := newFakeDisks()
		c := newController(t, f, 0)
		r := req("pvc-z", nil, 0)
		r.AccessibilityRequirements = &csi.TopologyRequirement{
			Requisite: []*csi.Topology{{Segments: map[string]string{TopologyKey: "zone-3"}}, {Segments: map[string]string{TopologyKey: "zone-2"}}},
			Preferred: []*csi.Topology{{Segments: map[string]string{TopologyKey: "zone-2"}}},
		}
		out, err := c.CreateVolume(ctx, r)
		require.NoError(t, err)
		assert.Equal(t, "zone-2", f.disks[out.GetVolume().GetVolumeId()].Zone)
	})
	t.Run("a ReadOnlyMany capability makes a shareable disk", func(t *testing.T) {
		f := newFakeDisks()
		c := newController(t, f, 0)
		r := req("pvc-rox", nil, 0)
		r.VolumeCapabilities = []*csi.VolumeCapability{roxFS}
		out, err := c.CreateVolume(ctx, r)
		require.NoError(t, err)
		assert.True(t, f.disks[out.GetVolume().GetVolumeId()].Shareable)
	})
	bad := []struct {
		name   string
		req    *csi.CreateVolumeRequest
		code   codes.Code
		msgHas string
	}{
		{"no name", req("", nil, 0), codes.InvalidArgument, "name"},
		{"unknown disk type names the parameter", req("v", map[string]string{"diskType": "NOPE"}, 0), codes.InvalidArgument, "parameter diskType"},
		{"unknown parameter", req("v", map[string]string{"diskTyp": "SSD"}, 0), codes.InvalidArgument, "diskTyp"},
		{"bad boolean", req("v", map[string]string{"encrypted": "yes please"}, 0), codes.InvalidArgument, "encrypted"},
		{"driver's own tag prefix", req("v", map[string]string{"tags": "stratus.io/cluster=x"}, 0), codes.InvalidArgument, "stratus.io/"},
		{"too large", req("v", nil, 200*GiB), codes.OutOfRange, "PREMIUM"},
		{"multi-node writer filesystem", &csi.CreateVolumeRequest{Name: "v", VolumeCapabilities: []*csi.VolumeCapability{capOf(csi.VolumeCapability_AccessMode_MULTI_NODE_SINGLE_WRITER, false)}}, codes.InvalidArgument, "block"},
		{"multi writer", &csi.CreateVolumeRequest{Name: "v", VolumeCapabilities: []*csi.VolumeCapability{capOf(csi.VolumeCapability_AccessMode_MULTI_NODE_MULTI_WRITER, true)}}, codes.InvalidArgument, "not supported"},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeDisks()
			c := newController(t, f, 0)
			_, err := c.CreateVolume(ctx, tc.req)
			code(t, err, tc.code, tc.msgHas)
			assert.Zero(t, f.creates, "bad input leaves the cloud untouched")
		})
	}
}

func TestCheckPublish(t *testing.T) {
	cases := []struct {
		name      string
		shareable bool
		instances []string
		known     map[string]access
		node      string
		cap       *csi.VolumeCapability
		want      access
		ok        bool
		msgHas    string
	}{
		{"first attachment", false, nil, nil, "ins-a", snmw, accessWriter, true, ""},
		{"same node again", false, []string{"ins-a"}, map[string]access{"ins-a": accessWriter}, "ins-a", snmw, accessWriter, true, ""},
		{"second writer elsewhere", true, []string{"ins-a"}, map[string]access{"ins-a": accessWriter}, "ins-b", snmw, accessWriter, false, "ins-a"},
		{"reader while a filesystem writer holds it", true, []string{"ins-a"}, map[string]access{"ins-a": accessWriter}, "ins-b", roxFS, accessReader, false, "ins-a"},
		{"readers on many nodes", true, []string{"ins-a", "ins-b"}, map[string]access{"ins-a": accessReader, "ins-b": accessReader}, "ins-c", roxFS, accessReader, true, ""},
		{"reader of a disk that is not shareable", false, []string{"ins-a"}, map[string]access{"ins-a": accessReader}, "ins-b", roxFS, accessReader, false, "not shareable"},
		{"writer while readers hold it", true, []string{"ins-a", "ins-b"}, map[string]access{"ins-a": accessReader, "ins-b": accessReader}, "ins-c", snmw, accessWriter, false, "ins-a"},
		{"a lone attachment of unknown access may be a writer", true, []string{"ins-a"}, nil, "ins-b", roxFS, accessReader, false, "not seen"},
		{"several attachments of unknown access are readers", true, []string{"ins-a", "ins-b"}, nil, "ins-c", roxFS, accessReader, true, ""},
		{"block readers beside a block writer", true, []string{"ins-a"}, map[string]access{"ins-a": accessWriter}, "ins-b", mnswB, accessReader, true, ""},
		{"a second block writer", true, []string{"ins-a"}, map[string]access{"ins-a": accessWriter}, "ins-b", mnswB, accessWriter, false, "writer on node ins-a"},
		{"a block writer after readers", true, []string{"ins-a"}, map[string]access{"ins-a": accessReader}, "ins-b", mnswB, accessWriter, false, "first attachment"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var a attachments
			for n, acc := range tc.known {
				a.set("disk-1", n, acc)
			}
			err := a.checkPublish(&Disk{ID: "disk-1", Shareable: tc.shareable, Instances: tc.instances}, tc.node, tc.cap, tc.want)
			if tc.ok {
				assert.NoError(t, err)
				return
			}
			code(t, err, codes.FailedPrecondition, tc.msgHas)
		})
	}
}

func TestControllerPublish(t *testing.T) {
	ctx := context.Background()
	newVol := func(f *fakeDisks, d *Disk) string {
		f.add(d)
		return d.ID
	}
	t.Run("publish context and idempotency", func(t *testing.T) {
		f := newFakeDisks()
		c := newController(t, f, 0)
		id := newVol(f, &Disk{ID: "disk-1", Zone: "zone-1", Owned: true})
		for range 2 {
			out, err := c.ControllerPublishVolume(ctx, &csi.ControllerPublishVolumeRequest{VolumeId: id, NodeId: "ins-a", VolumeCapability: snmw})
			require.NoError(t, err)
			assert.Equal(t, map[string]string{PublishDiskID: id, PublishReadOnly: "false"}, out.GetPublishContext())
		}
		assert.Equal(t, 1, f.attaches)
		_, err := c.ControllerPublishVolume(ctx, &csi.ControllerPublishVolumeRequest{VolumeId: id, NodeId: "ins-a", VolumeCapability: snmw, Readonly: true})
		code(t, err, codes.AlreadyExists)
		_, err = c.ControllerPublishVolume(ctx, &csi.ControllerPublishVolumeRequest{VolumeId: id, NodeId: "ins-b", VolumeCapability: snmw})
		code(t, err, codes.FailedPrecondition, "ins-a")
		_, err = c.ControllerUnpublishVolume(ctx, &csi.ControllerUnpublishVolumeRequest{VolumeId: id, NodeId: "ins-a"})
		require.NoError(t, err)
		_, err = c.ControllerUnpublishVolume(ctx, &csi.ControllerUnpublishVolumeRequest{VolumeId: id, NodeId: "ins-a"})
		require.NoError(t, err, "unpublish is idempotent")
		assert.Equal(t, 1, f.detaches)
	})
	t.Run("an attach still running is waited for", func(t *testing.T) {
		f := newFakeDisks()
		c := newController(t, f, 1)
		id := newVol(f, &Disk{ID: "disk-1", Zone: "zone-1", Owned: true, Instances: []string{"ins-a"}, Busy: true})
		_, err := c.ControllerPublishVolume(ctx, &csi.ControllerPublishVolumeRequest{VolumeId: id, NodeId: "ins-a", VolumeCapability: snmw})
		require.NoError(t, err, "its own attachment does not count against the node's limit")
		assert.Equal(t, 1, f.attaches, "AttachDisk waited for the running attach")
		assert.False(t, f.disks[id].Busy)
	})
	cases := []struct {
		name   string
		disk   *Disk
		node   string
		max    int64
		code   codes.Code
		msgHas string
	}{
		{"unknown volume", nil, "ins-a", 0, codes.NotFound, ""},
		{"unknown node", &Disk{ID: "disk-1", Zone: "zone-1", Owned: true}, "ins-nope", 0, codes.NotFound, "ins-nope"},
		{"another cluster's disk is never attached", &Disk{ID: "disk-1", Zone: "zone-1"}, "ins-a", 0, codes.FailedPrecondition, "not tagged"},
		{"another zone", &Disk{ID: "disk-1", Zone: "zone-1", Owned: true}, "ins-far", 0, codes.FailedPrecondition, "zone-2"},
		{"node full", &Disk{ID: "disk-1", Zone: "zone-1", Owned: true}, "ins-a", 1, codes.ResourceExhausted, "ins-a"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeDisks()
			f.add(&Disk{ID: "disk-other", Zone: "zone-1", Owned: true, Instances: []string{"ins-a"}})
			c := newController(t, f, tc.max)
			id := "disk-missing"
			if tc.disk != nil {
				id = newVol(f, tc.disk)
			}
			_, err := c.ControllerPublishVolume(ctx, &csi.ControllerPublishVolumeRequest{VolumeId: id, NodeId: tc.node, VolumeCapability: snmw})
			code(t, err, tc.code, tc.msgHas)
			assert.Zero(t, f.attaches)
		})
	}
}

func TestDeleteVolume(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		name    string
		disk    *Disk
		code    codes.Code
		deletes int
	}{
		{"gone already", nil, codes.OK, 0},
		{"owned and unattached", &Disk{ID: "disk-1", Owned: true}, codes.OK, 1},
		{"attached", &Disk{ID: "disk-1", Owned: true, Instances: []string{"ins-a"}}, codes.FailedPrecondition, 0},
		{"not this cluster's", &Disk{ID: "disk-1"}, codes.FailedPrecondition, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeDisks()
			if tc.disk != nil {
				f.add(tc.disk)
			}
			c := newController(t, f, 0)
			_, err := c.DeleteVolume(ctx, &csi.DeleteVolumeRequest{VolumeId: "disk-1"})
			assert.Equal(t, tc.code, status.Code(err), "%v", err)
			assert.Equal(t, tc.deletes, f.deletes)
		})
	}
}

func TestListVolumesPages(t *testing.T) {
	ctx := context.Background()
	f := newFakeDisks()
	for _, id := range []string{"disk-1", "disk-2", "disk-3"} {
		f.add(&Disk{ID: id, Owned: true, Instances: []string{"ins-a"}})
	}
	f.add(&Disk{ID: "disk-foreign"})
	c := newController(t, f, 0)
	var seen []string
	token := ""
	for {
		out, err := c.ListVolumes(ctx, &csi.ListVolumesRequest{MaxEntries: 2, StartingToken: token})
		require.NoError(t, err)
		for _, e := range out.GetEntries() {
			seen = append(seen, e.GetVolume().GetVolumeId())
			assert.Equal(t, []string{"ins-a"}, e.GetStatus().GetPublishedNodeIds())
		}
		if token = out.GetNextToken(); token == "" {
			break
		}
	}
	assert.Equal(t, []string{"disk-1", "disk-2", "disk-3"}, seen, "every owned disk once, no foreign one")
	_, err := c.ListVolumes(ctx, &csi.ListVolumesRequest{StartingToken: "bogus"})
	code(t, err, codes.Aborted)
	_, err = c.ListVolumes(ctx, &csi.ListVolumesRequest{MaxEntries: -1})
	code(t, err, codes.InvalidArgument)
}

func TestConcurrentOperationIsAborted(t *testing.T) {
	var f inflight
	release, err := f.acquire("disk-1")
	require.NoError(t, err)
	_, err = f.acquire("disk-1")
	code(t, err, codes.Aborted, "disk-1")
	other, err := f.acquire("disk-2")
	require.NoError(t, err, "other volumes are not blocked")
	other()
	release()
	again, err := f.acquire("disk-1")
	require.NoError(t, err)
	again()
}
