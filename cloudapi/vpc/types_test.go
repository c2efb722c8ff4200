package vpc

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The VPC service sends Offset and Limit as strings, and RouteId only when set: the
// request JSON must look exactly like the official SDK's.
func TestWireShape(t *testing.T) {
	b, err := json.Marshal(&DescribeRouteTablesRequest{RouteTableIds: []string{"rtb-1"}, Offset: Count(0), Limit: Count(100)})
	require.NoError(t, err)
	assert.JSONEq(t, `{"RouteTableIds":["rtb-1"],"Offset":"0","Limit":"100"}`, string(b))

	id := uint64(42)
	b, err = json.Marshal(&DeleteRoutesRequest{RouteTableId: "rtb-1", Routes: []Route{{RouteId: &id}, {DestinationCidrBlock: "10.244.0.0/24"}}})
	require.NoError(t, err)
	assert.JSONEq(t, `{"RouteTableId":"rtb-1","Routes":[{"RouteId":42},{"DestinationCidrBlock":"10.244.0.0/24"}]}`, string(b))

	var r Route
	assert.Zero(t, r.ID())
	r.RouteId = &id
	assert.EqualValues(t, 42, r.ID())
}
