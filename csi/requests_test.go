package csi

import (
	"testing"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"github.com/stretchr/testify/assert"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func TestCheckVolumeRequest(t *testing.T) {
	good := capOf(csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER, false)
	multiNodeMount := capOf(csi.VolumeCapability_AccessMode_MULTI_NODE_SINGLE_WRITER, false)
	for _, tc := range []struct {
		name   string
		id     string
		c      *csi.VolumeCapability
		fields []field
		want   string // the InvalidArgument message; "" for none
	}{
		{name: "AllThere", id: "disk-1", c: good, fields: []field{need("the target path", false)}},
		{name: "NoID", id: "", c: good, fields: []field{need("the target path", true)},
			want: "NodePublishVolume: the volume id is missing"},
		{name: "FirstMissingFieldNamed", id: "disk-1", fields: []field{need("the target path", false), need("the volume capability", true), need("the staging target path", true)},
			want: "NodePublishVolume: volume disk-1: the volume capability is missing"},
		{name: "WhyTold", id: "disk-1", fields: []field{{what: "the staging target path", empty: true, why: "the volume must be staged first"}},
			want: "NodePublishVolume: volume disk-1: the staging target path is missing (the volume must be staged first)"},
		{name: "FieldsBeforeTheCapability", id: "disk-1", c: multiNodeMount, fields: []field{need("the target path", true)},
			want: "NodePublishVolume: volume disk-1: the target path is missing"},
		{name: "CapabilityTheDriverDoesNotServe", id: "disk-1", c: multiNodeMount,
			want: "volume disk-1: access mode MULTI_NODE_SINGLE_WRITER is for block volumes only: a filesystem cannot have readers on other nodes while it is written"},
		{name: "NoCapabilityNothingToCheck", id: "disk-1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := checkVolumeRequest("NodePublishVolume", tc.id, tc.c, tc.fields...)
			if tc.want == "" {
				assert.NoError(t, err)
				return
			}
			assert.Equal(t, codes.InvalidArgument, status.Code(err), "%v", err)
			assert.Equal(t, tc.want, status.Convert(err).Message())
		})
	}
}

func TestCheckCapacityRange(t *testing.T) {
	for _, tc := range []struct {
		name            string
		required, limit int64
		ok              bool
	}{
		{name: "NoneAsked", ok: true},
		{name: "NoLimit", required: 10 * GiB, ok: true},
		{name: "RequiredUpToTheLimit", required: 10 * GiB, limit: 10 * GiB, ok: true},
		{name: "RequiredOverTheLimit", required: 11 * GiB, limit: 10 * GiB},
		{name: "NegativeRequired", required: -1},
		{name: "NegativeLimit", limit: -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := checkCapacityRange("pv-1", tc.required, tc.limit)
			if tc.ok {
				assert.NoError(t, err)
				return
			}
			assert.Equal(t, codes.InvalidArgument, status.Code(err), "%v", err)
			assert.Contains(t, status.Convert(err).Message(), "volume pv-1: capacity range")
		})
	}
}
