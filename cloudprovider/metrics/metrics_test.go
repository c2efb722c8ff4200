package metrics

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"k8s.io/component-base/metrics/legacyregistry"
	"k8s.io/component-base/metrics/testutil"

	"github.com/stratus-cloud/stratus/cloudapi"
)

func TestHookExportsCountAndLatencyByActionAndResult(t *testing.T) {
	Hook(cloudapi.Call{Service: "cvm", Action: "DescribeInstances", Attempt: 1, Duration: 20 * time.Millisecond})
	Hook(cloudapi.Call{Service: "cvm", Action: "DescribeInstances", Attempt: 1, Duration: 30 * time.Millisecond})
	Hook(cloudapi.Call{Service: "cvm", Action: "DescribeInstances", Attempt: 2, Duration: time.Millisecond,
		Code: "RequestLimitExceeded", Err: errors.New("throttled")})

	want := `
# HELP stratus_cloudapi_requests_total [ALPHA] Cloud API attempts by service, action and result (success or the error code).
# TYPE stratus_cloudapi_requests_total counter
stratus_cloudapi_requests_total{action="DescribeInstances",result="RequestLimitExceeded",service="cvm"} 1
stratus_cloudapi_requests_total{action="DescribeInstances",result="success",service="cvm"} 2
`
	require.NoError(t, testutil.GatherAndCompare(legacyregistry.DefaultGatherer, strings.NewReader(want), "stratus_cloudapi_requests_total"))

	mfs, err := legacyregistry.DefaultGatherer.Gather()
	require.NoError(t, err)
	var found bool
	for _, mf := range mfs {
		if mf.GetName() != "stratus_cloudapi_request_duration_seconds" {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["result"] == "success" && labels["action"] == "DescribeInstances" {
				found = true
				require.Equal(t, uint64(2), m.GetHistogram().GetSampleCount())
				require.InDelta(t, 0.05, m.GetHistogram().GetSampleSum(), 1e-9)
			}
		}
	}
	require.True(t, found, "latency histogram for successful DescribeInstances")
}

func TestResult(t *testing.T) {
	require.Equal(t, "success", Result(cloudapi.Call{}))
	require.Equal(t, "InternalError", Result(cloudapi.Call{Code: "InternalError", Err: errors.New("x")}))
	require.Equal(t, "TransportError", Result(cloudapi.Call{Err: errors.New("reset")}))
}
