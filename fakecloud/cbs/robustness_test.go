package cbs_test

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stratus-cloud/stratus/cloudapi"
)

var actions = []string{
	"CreateDisks", "DescribeDisks", "AttachDisks", "DetachDisks", "ResizeDisk", "TerminateDisks",
	"CreateSnapshot", "DescribeSnapshots", "DeleteSnapshots",
}

// hostileBodies are requests a careless or malicious client may send; none may change
// state, and every one must get a proper API error (never InternalError, never a dropped
// connection from a panic).
var hostileBodies = []string{
	`{}`,
	`{"DiskIds":null,"SnapshotIds":null}`,
	`{"DiskIds":[null]}`,
	`{"DiskIds":[""]}`,
	`{"DiskIds":["disk-nothere"],"InstanceId":"ins-node0001"}`,
	`{"DiskIds":"disk-1"}`,
	`{"DiskIds":[1,2]}`,
	`{"SnapshotIds":[null,""]}`,
	`{"DiskId":"","DiskSize":-1}`,
	`{"DiskId":"disk-nothere","DiskSize":9223372036854775807}`,
	`{"DiskSize":1e40}`,
	`{"Placement":null,"DiskType":"CLOUD_PREMIUM","DiskSize":10}`,
	`{"Placement":{"Zone":"ap-guangzhou-1"},"DiskType":"CLOUD_PREMIUM","DiskSize":9223372036854775807}`,
	`{"Placement":{"Zone":"ap-guangzhou-1"},"DiskType":"CLOUD_PREMIUM","DiskSize":10,"DiskCount":-9223372036854775808}`,
	`{"Placement":{"Zone":"ap-guangzhou-1"},"DiskType":"CLOUD_PREMIUM","DiskSize":10,"Tags":[{"Key":"","Value":"x"}]}`,
	`{"Placement":{"Zone":"ap-guangzhou-1"},"DiskType":"CLOUD_PREMIUM","DiskSize":10,"DiskChargeType":"PREPAID","DiskChargePrepaid":{}}`,
	`{"Placement":{"Zone":"ap-guangzhou-1","ProjectId":-1},"DiskType":"CLOUD_PREMIUM","DiskSize":10}`,
	`{"Filters":[{"Name":null,"Values":null}]}`,
	`{"Filters":[{"Name":"tag:","Values":["x"]}]}`,
	`{"Offset":-5,"Limit":-5}`,
	`{"Limit":1000000}`,
	`{"DiskId":"disk-nothere","Deadline":"0000-00-00"}`,
	`[]`,
	`"string"`,
	`{"Unknown":true}`,
}

func TestHostileInputChangesNothing(t *testing.T) {
	e := newEnv(t, envOpts{})
	// Some state for the requests to find.
	id := e.disk(zone1, 10, false)
	require.NoError(t, e.attach(ins1, id))
	before := dump(t, e)
	for _, action := range actions {
		for _, body := range hostileBodies {
			err := e.invoke(action, json.RawMessage(body))
			if err == nil {
				// Describe* legitimately answers some of these (an empty filter list).
				assert.Contains(t, []string{"DescribeDisks", "DescribeSnapshots"}, action, "%s accepted %s", action, body)
				continue
			}
			var apiErr *cloudapi.APIError
			if !assert.True(t, errors.As(err, &apiErr), "%s %s: not an API answer: %v", action, body, err) {
				continue
			}
			assert.False(t, cloudapi.HasCode(err, cloudapi.CodeInternalError), "%s %s: %v", action, body, err)
		}
	}
	assert.JSONEq(t, before, dump(t, e), "no hostile request changed the state")
}

func dump(t *testing.T, e *env) string {
	t.Helper()
	all := e.cloud.World().Store.Dump()
	b, err := json.Marshal(map[string]any{"disks": all["cbs.disks"], "snapshots": all["cbs.snapshots"], "tokens": all["cbs.client-tokens"]})
	require.NoError(t, err)
	return string(b)
}

// FuzzActions feeds arbitrary bodies to every CBS action: whatever the body, the answer is
// a success or an API error that is not InternalError.
func FuzzActions(f *testing.F) {
	for i, body := range hostileBodies {
		f.Add(uint8(i), []byte(body))
	}
	f.Add(uint8(0), []byte(`{"Placement":{"Zone":"ap-guangzhou-1"},"DiskType":"CLOUD_SSD","DiskSize":20,"DiskCount":2,"Shareable":true}`))
	f.Add(uint8(2), []byte(`{"DiskIds":["disk-aaaaaaaa"],"InstanceId":"ins-node0001"}`))
	// One cloud for all inputs: starting one per input would make fuzzing crawl.
	e := newEnv(f, envOpts{})
	f.Fuzz(func(t *testing.T, which uint8, body []byte) {
		if !json.Valid(body) {
			return // the protocol layer's own fuzz target covers non-JSON bodies
		}
		action := actions[int(which)%len(actions)]
		err := e.invoke(action, json.RawMessage(body))
		if err == nil {
			return
		}
		var apiErr *cloudapi.APIError
		if !errors.As(err, &apiErr) {
			t.Fatalf("%s %s: not an API answer: %v", action, body, err)
		}
		if cloudapi.HasCode(err, cloudapi.CodeInternalError) {
			t.Fatalf("%s %s: %v", action, body, err)
		}
	})
}
