package clb_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stratus-cloud/stratus/cloudapi"
	clbapi "github.com/stratus-cloud/stratus/cloudapi/clb"
)

func TestListenersLifecycle(t *testing.T) {
	e := newEnv(t, envOpts{clock: newClock()})
	lb := e.openLB(t, "web")
	out, err := e.clb.CreateListener(e.ctx, &clbapi.CreateListenerRequest{
		LoadBalancerId: lb, Protocol: clbapi.ProtocolTCP, Ports: []int64{80, 443}, ListenerNames: []string{"http", "https"},
		HealthCheck:       &clbapi.HealthCheck{IntervalTime: ptr(int64(10)), HealthNum: ptr(int64(2)), CheckType: ptr(clbapi.CheckHTTP), HttpCheckPath: ptr("/healthz"), HttpCode: ptr(int64(2))},
		Scheduler:         clbapi.SchedulerLeastConn,
		SessionExpireTime: ptr(int64(60)),
	})
	require.NoError(t, err)
	require.Len(t, out.ListenerIds, 2)
	udp := e.listener(t, lb, clbapi.ProtocolUDP, 80, nil) // same port, other protocol: fine

	desc, err := e.clb.DescribeListeners(e.ctx, &clbapi.DescribeListenersRequest{LoadBalancerId: lb})
	require.NoError(t, err)
	require.Len(t, desc.Listeners, 3)
	assert.Equal(t, uint64(3), desc.TotalCount)
	http := desc.Listeners[0]
	assert.Equal(t, out.ListenerIds[0], http.ListenerId)
	assert.Equal(t, "http", http.ListenerName)
	assert.Equal(t, int64(80), http.Port)
	assert.Equal(t, clbapi.SchedulerLeastConn, http.Scheduler)
	assert.Equal(t, int64(60), http.SessionExpireTime)
	assert.Equal(t, api2(e.clock.Now()), http.CreateTime)
	hc := http.HealthCheck
	require.NotNil(t, hc)
	assert.Equal(t, int64(1), *hc.HealthSwitch, "checks are on unless switched off")
	assert.Equal(t, int64(10), *hc.IntervalTime)
	assert.Equal(t, int64(2), *hc.TimeOut, "defaults fill what was not given")
	assert.Equal(t, int64(2), *hc.HealthNum)
	assert.Equal(t, int64(3), *hc.UnHealthNum)
	assert.Equal(t, "HTTP", *hc.CheckType)
	assert.Equal(t, "/healthz", *hc.HttpCheckPath)
	u := desc.Listeners[2]
	assert.Equal(t, clbapi.SchedulerWRR, u.Scheduler)
	assert.Equal(t, "PING", *u.HealthCheck.CheckType, "UDP listeners ping by default")

	f, err := e.clb.DescribeListeners(e.ctx, &clbapi.DescribeListenersRequest{LoadBalancerId: lb, Protocol: clbapi.ProtocolTCP, Port: ptr(int64(443))})
	require.NoError(t, err)
	require.Len(t, f.Listeners, 1)
	assert.Equal(t, out.ListenerIds[1], f.Listeners[0].ListenerId)
	f, err = e.clb.DescribeListeners(e.ctx, &clbapi.DescribeListenersRequest{LoadBalancerId: lb, ListenerIds: []string{udp, "lbl-nothere"}})
	require.NoError(t, err)
	require.Len(t, f.Listeners, 1)

	// Modify merges: only the fields given change.
	_, err = e.clb.ModifyListener(e.ctx, &clbapi.ModifyListenerRequest{LoadBalancerId: lb, ListenerId: http.ListenerId,
		ListenerName: ptr("web"), Scheduler: ptr(clbapi.SchedulerWRR), HealthCheck: &clbapi.HealthCheck{UnHealthNum: ptr(int64(5))},
		SessionExpireTime: ptr(int64(0)), DeregisterTargetRst: ptr(true)})
	require.NoError(t, err)
	f, err = e.clb.DescribeListeners(e.ctx, &clbapi.DescribeListenersRequest{LoadBalancerId: lb, ListenerIds: []string{http.ListenerId}})
	require.NoError(t, err)
	m := f.Listeners[0]
	assert.Equal(t, "web", m.ListenerName)
	assert.Equal(t, clbapi.SchedulerWRR, m.Scheduler)
	assert.Equal(t, int64(0), m.SessionExpireTime)
	assert.True(t, m.DeregisterTargetRst)
	assert.Equal(t, int64(5), *m.HealthCheck.UnHealthNum)
	assert.Equal(t, int64(10), *m.HealthCheck.IntervalTime, "unchanged")
	assert.Equal(t, "/healthz", *m.HealthCheck.HttpCheckPath, "unchanged")

	_, err = e.clb.DeleteListener(e.ctx, &clbapi.DeleteListenerRequest{LoadBalancerId: lb, ListenerId: udp})
	require.NoError(t, err)
	f, err = e.clb.DescribeListeners(e.ctx, &clbapi.DescribeListenersRequest{LoadBalancerId: lb})
	require.NoError(t, err)
	assert.Len(t, f.Listeners, 2)
	_, err = e.clb.DeleteListener(e.ctx, &clbapi.DeleteListenerRequest{LoadBalancerId: lb, ListenerId: udp})
	requireCode(t, err, clbapi.CodeListenerNotFound)
}

func TestListenerErrors(t *testing.T) {
	e := newEnv(t, envOpts{limits: map[string]int{"clb-listeners-per-lb": 3}})
	lb := e.openLB(t, "web")
	other := e.openLB(t, "other")
	e.listener(t, lb, clbapi.ProtocolTCP, 80, nil)
	otherL := e.listener(t, other, clbapi.ProtocolTCP, 80, nil)
	before := e.stateDump(t)

	hc := func(h clbapi.HealthCheck) func(*clbapi.CreateListenerRequest) {
		return func(r *clbapi.CreateListenerRequest) { r.HealthCheck = &h }
	}
	cases := []struct {
		name string
		mut  func(*clbapi.CreateListenerRequest)
		code string
	}{
		{"duplicate port", func(r *clbapi.CreateListenerRequest) { r.Ports = []int64{80} }, clbapi.CodeDuplicate},
		{"duplicate in request", func(r *clbapi.CreateListenerRequest) { r.Ports = []int64{81, 81} }, clbapi.CodeDuplicate},
		{"over the limit", func(r *clbapi.CreateListenerRequest) { r.Ports = []int64{81, 82, 83} }, cloudapi.CodeLimitExceeded},
		{"no ports", func(r *clbapi.CreateListenerRequest) { r.Ports = nil }, cloudapi.CodeMissingParameter},
		{"port 0", func(r *clbapi.CreateListenerRequest) { r.Ports = []int64{0} }, cloudapi.CodeInvalidParameterValue},
		{"port 70000", func(r *clbapi.CreateListenerRequest) { r.Ports = []int64{70000} }, cloudapi.CodeInvalidParameterValue},
		{"no protocol", func(r *clbapi.CreateListenerRequest) { r.Protocol = "" }, cloudapi.CodeMissingParameter},
		{"http", func(r *clbapi.CreateListenerRequest) { r.Protocol = "HTTP" }, cloudapi.CodeUnsupportedOperation},
		{"bogus protocol", func(r *clbapi.CreateListenerRequest) { r.Protocol = "SCTP" }, cloudapi.CodeInvalidParameterValue},
		{"names mismatch", func(r *clbapi.CreateListenerRequest) { r.ListenerNames = []string{"a", "b"} }, cloudapi.CodeInvalidParameterValue},
		{"bad scheduler", func(r *clbapi.CreateListenerRequest) { r.Scheduler = "RANDOM" }, cloudapi.CodeInvalidParameterValue},
		{"short session", func(r *clbapi.CreateListenerRequest) { r.SessionExpireTime = ptr(int64(10)) }, cloudapi.CodeInvalidParameterValue},
		{"port range", func(r *clbapi.CreateListenerRequest) { r.EndPort = ptr(uint64(90)) }, cloudapi.CodeUnsupportedOperation},
		{"target group", func(r *clbapi.CreateListenerRequest) { r.TargetType = "TARGETGROUP" }, cloudapi.CodeUnsupportedOperation},
		{"rst on udp", func(r *clbapi.CreateListenerRequest) {
			r.Protocol = clbapi.ProtocolUDP
			r.DeregisterTargetRst = ptr(true)
		}, cloudapi.CodeInvalidParameterValue},
		{"timeout over interval", hc(clbapi.HealthCheck{TimeOut: ptr(int64(5)), IntervalTime: ptr(int64(5))}), cloudapi.CodeInvalidParameterValue},
		{"interval too short", hc(clbapi.HealthCheck{IntervalTime: ptr(int64(1))}), cloudapi.CodeInvalidParameterValue},
		{"threshold 11", hc(clbapi.HealthCheck{HealthNum: ptr(int64(11))}), cloudapi.CodeInvalidParameterValue},
		{"switch 2", hc(clbapi.HealthCheck{HealthSwitch: ptr(int64(2))}), cloudapi.CodeInvalidParameterValue},
		{"ping on tcp", hc(clbapi.HealthCheck{CheckType: ptr("PING")}), cloudapi.CodeInvalidParameterValue},
		{"http path", hc(clbapi.HealthCheck{CheckType: ptr("HTTP"), HttpCheckPath: ptr("healthz")}), cloudapi.CodeInvalidParameterValue},
		{"http method", hc(clbapi.HealthCheck{CheckType: ptr("HTTP"), HttpCheckMethod: ptr("POST")}), cloudapi.CodeInvalidParameterValue},
		{"custom without context", hc(clbapi.HealthCheck{CheckType: ptr("CUSTOM")}), cloudapi.CodeInvalidParameterValue},
		{"custom bad hex", hc(clbapi.HealthCheck{CheckType: ptr("CUSTOM"), ContextType: ptr("HEX"), SendContext: ptr("zz"), RecvContext: ptr("00")}), cloudapi.CodeInvalidParameterValue},
		{"custom no recv", hc(clbapi.HealthCheck{CheckType: ptr("CUSTOM"), ContextType: ptr("TEXT"), SendContext: ptr("ping")}), cloudapi.CodeMissingParameter},
		{"custom lower-case hex", hc(clbapi.HealthCheck{CheckType: ptr("CUSTOM"), ContextType: ptr("HEX"), SendContext: ptr("0a"), RecvContext: ptr("00")}), cloudapi.CodeInvalidParameterValue},
		{"custom odd hex", hc(clbapi.HealthCheck{CheckType: ptr("CUSTOM"), ContextType: ptr("HEX"), SendContext: ptr("0A0"), RecvContext: ptr("00")}), cloudapi.CodeInvalidParameterValue},
		{"custom text not visible ASCII", hc(clbapi.HealthCheck{CheckType: ptr("CUSTOM"), ContextType: ptr("TEXT"), SendContext: ptr("ping\n"), RecvContext: ptr("pong")}), cloudapi.CodeInvalidParameterValue},
		{"custom text 501", hc(clbapi.HealthCheck{CheckType: ptr("CUSTOM"), ContextType: ptr("TEXT"), SendContext: ptr(strings.Repeat("p", 501)), RecvContext: ptr("pong")}), cloudapi.CodeInvalidParameterValue},
		{"tcp http check two classes", hc(clbapi.HealthCheck{CheckType: ptr("HTTP"), HttpCode: ptr(int64(6))}), cloudapi.CodeInvalidParameterValue},
		{"bogus target type", func(r *clbapi.CreateListenerRequest) { r.TargetType = "POD" }, cloudapi.CodeInvalidParameterValue},
		{"quic session on tcp", func(r *clbapi.CreateListenerRequest) { r.SessionType = "QUIC_CID" }, cloudapi.CodeInvalidParameterValue},
		{"unknown lb", func(r *clbapi.CreateListenerRequest) { r.LoadBalancerId = "lb-nothere" }, clbapi.CodeLBNotFound},
		{"no lb", func(r *clbapi.CreateListenerRequest) { r.LoadBalancerId = "" }, cloudapi.CodeMissingParameter},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			in := &clbapi.CreateListenerRequest{LoadBalancerId: lb, Protocol: clbapi.ProtocolTCP, Ports: []int64{8080}}
			c.mut(in)
			_, err := e.clb.CreateListener(e.ctx, in)
			requireCode(t, err, c.code)
			assert.Equal(t, before, e.stateDump(t))
		})
	}

	// Describe, modify and delete refuse unknown or foreign ids.
	_, err := e.clb.DescribeListeners(e.ctx, &clbapi.DescribeListenersRequest{LoadBalancerId: "lb-nothere"})
	requireCode(t, err, clbapi.CodeLBNotFound)
	_, err = e.clb.DescribeListeners(e.ctx, &clbapi.DescribeListenersRequest{LoadBalancerId: lb, Protocol: "FTP"})
	requireCode(t, err, cloudapi.CodeInvalidParameterValue)
	_, err = e.clb.ModifyListener(e.ctx, &clbapi.ModifyListenerRequest{LoadBalancerId: lb, ListenerId: otherL, ListenerName: ptr("x")})
	requireCode(t, err, clbapi.CodeListenerNotFound)
	_, err = e.clb.ModifyListener(e.ctx, &clbapi.ModifyListenerRequest{LoadBalancerId: other, ListenerId: otherL})
	requireCode(t, err, cloudapi.CodeMissingParameter)
	_, err = e.clb.ModifyListener(e.ctx, &clbapi.ModifyListenerRequest{LoadBalancerId: other, ListenerId: otherL, HealthCheck: &clbapi.HealthCheck{TimeOut: ptr(int64(100))}})
	requireCode(t, err, cloudapi.CodeInvalidParameterValue)
	_, err = e.clb.ModifyListener(e.ctx, &clbapi.ModifyListenerRequest{LoadBalancerId: other, ListenerId: otherL, Scheduler: ptr("IP_HASH")})
	requireCode(t, err, cloudapi.CodeInvalidParameterValue)
	_, err = e.clb.DeleteListener(e.ctx, &clbapi.DeleteListenerRequest{LoadBalancerId: lb, ListenerId: otherL})
	requireCode(t, err, clbapi.CodeListenerNotFound)
	_, err = e.clb.DeleteListener(e.ctx, &clbapi.DeleteListenerRequest{LoadBalancerId: lb})
	requireCode(t, err, cloudapi.CodeMissingParameter)
	assert.Equal(t, before, e.stateDump(t))

	// Unknown request fields are refused, as the real API does.
	err = e.cloudInvoke("CreateListener", map[string]any{"LoadBalancerId": lb, "Protocol": "TCP", "Ports": []int{9000}, "Color": "red"})
	requireCode(t, err, cloudapi.CodeUnknownParameter)
}
