package qcloud

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	v1 "k8s.io/api/core/v1"
	cloudprovider "k8s.io/cloud-provider"

	"github.com/stratus-cloud/stratus/cloudapi/cvm"
)

// TestEveryStateInBothModes is the provider's answer for every instance state, for a
// node found by providerID and for one without providerID (found by its InternalIP),
// with batching on and off. The node's instance is ins-node0001 (10.0.1.11, ap-guangzhou-1).
func TestEveryStateInBothModes(t *testing.T) {
	const gone = "gone"
	type want struct {
		exists, shutdown bool
		metadataNotFound bool // InstanceMetadata fails with InstanceNotFound
	}
	states := []struct {
		state string
		byID  want // node with providerID
		byIP  want // node without providerID, matched by private IP
	}{
		{state: cvm.StatePending, byID: want{exists: true}, byIP: want{exists: true}},
		{state: cvm.StateLaunchFailed, byID: want{exists: false}, byIP: want{exists: false}},
		{state: cvm.StateRunning, byID: want{exists: true}, byIP: want{exists: true}},
		{state: cvm.StateStopping, byID: want{exists: true}, byIP: want{exists: true}},
		{state: cvm.StateStopped, byID: want{exists: true, shutdown: true}, byIP: want{exists: true, shutdown: true}},
		{state: cvm.StateStarting, byID: want{exists: true}, byIP: want{exists: true}},
		{state: cvm.StateRebooting, byID: want{exists: true}, byIP: want{exists: true}},
		{state: cvm.StateShutdown, byID: want{exists: true, shutdown: true}, byIP: want{exists: true, shutdown: true}},
		{state: cvm.StateTerminating, byID: want{exists: false}, byIP: want{exists: false}},
		// Gone: a node tied to the instance by providerID is gone with it; a node that was
		// never tied to one is not (nothing known is gone, and deleting it would hide why
		// it is not initialized).
		{state: gone, byID: want{exists: false, metadataNotFound: true}, byIP: want{exists: true, metadataNotFound: true}},
	}
	for _, batching := range []bool{true, false} {
		for _, st := range states {
			for _, key := range []string{"providerID", "no providerID"} {
				t.Run(fmt.Sprintf("batching=%v/%s/%s", batching, st.state, key), func(t *testing.T) {
					c, api, _ := newTestCloud(t, batching)
					v2, _ := c.InstancesV2()
					ctx := context.Background()
					if st.state == gone {
						api.remove("ins-node0001")
					} else {
						api.setState("ins-node0001", st.state)
					}
					n, w := node("10.0.1.11"), st.byIP
					if key == "providerID" {
						n, w = node("n1", withProviderID("qcloud:///ap-guangzhou-1/ins-node0001")), st.byID
					}

					exists, err := v2.InstanceExists(ctx, n)
					require.NoError(t, err)
					assert.Equal(t, w.exists, exists, "InstanceExists")

					shutdown, err := v2.InstanceShutdown(ctx, n)
					require.NoError(t, err)
					assert.Equal(t, w.shutdown, shutdown, "InstanceShutdown")

					md, err := v2.InstanceMetadata(ctx, n)
					if w.metadataNotFound {
						require.ErrorIs(t, err, cloudprovider.InstanceNotFound)
						return
					}
					require.NoError(t, err)
					assert.Equal(t, "qcloud:///ap-guangzhou-1/ins-node0001", md.ProviderID)
					assert.Equal(t, "ap-guangzhou-1", md.Zone)
					assert.Equal(t, "S5.MEDIUM2", md.InstanceType)
				})
			}
		}
	}

	for _, batching := range []bool{true, false} {
		for _, tc := range []struct {
			name string
			node *v1.Node
			want string
		}{
			{name: "foreign providerID", node: node("n1", withProviderID("aws:///us-east-1a/i-0123456789")), want: "not a qcloud providerID"},
			{name: "no providerID and no address", node: node("worker-a"), want: "no providerID and no IP address"},
		} {
			t.Run(fmt.Sprintf("batching=%v/%s", batching, tc.name), func(t *testing.T) {
				c, api, _ := newTestCloud(t, batching)
				v2, _ := c.InstancesV2()
				ctx := context.Background()
				exists, err := v2.InstanceExists(ctx, tc.node)
				require.ErrorContains(t, err, tc.want)
				assert.False(t, errors.Is(err, cloudprovider.InstanceNotFound), "never read as gone")
				assert.False(t, exists)
				_, err = v2.InstanceShutdown(ctx, tc.node)
				require.ErrorContains(t, err, tc.want)
				_, err = v2.InstanceMetadata(ctx, tc.node)
				require.ErrorContains(t, err, tc.want)
				assert.Equal(t, 0, api.calls(), "nothing to ask the cloud")
			})
		}
	}
}
