package fakecloud

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stratus-cloud/stratus/cloudapi"
	"github.com/stratus-cloud/stratus/cloudapi/tc3"
	"github.com/stratus-cloud/stratus/fakecloud/api"
	"github.com/stratus-cloud/stratus/fakecloud/store"
)

// counterModule is a minimal service: one table of counters, an action that increments
// one, and an action that lists them with pagination. It exercises the server's protocol
// handling without depending on a real service package.
type counter struct {
	Name  string
	Value int
}

type counterModule struct {
	w     *api.World
	table *store.Table[counter]
}

type incrRequest struct {
	Name *string `json:"Name"`
	By   int     `json:"By"`
}
type incrResponse struct {
	Value     int    `json:"Value"`
	RequestId string `json:"RequestId"`
}
type listRequest struct {
	Offset *int64 `json:"Offset"`
	Limit  *int64 `json:"Limit"`
}
type listResponse struct {
	TotalCount int       `json:"TotalCount"`
	Counters   []counter `json:"Counters"`
	RequestId  string    `json:"RequestId"`
}

func newCounterModule(w *api.World) (api.Module, error) {
	return &counterModule{w: w, table: store.Register[counter](w.Store, "counters")}, nil
}

func (m *counterModule) Seed(tx *store.Tx, _ *api.Seed) error {
	return m.table.Put(tx, "seeded", &counter{Name: "seeded", Value: 1})
}

func (m *counterModule) API() api.Service {
	return api.Service{Name: "test", Version: "2020-01-01", Actions: map[string]api.Handler{
		"Incr": func(r *api.Request) (any, error) {
			in, err := api.Decode[incrRequest](r)
			if err != nil {
				return nil, err
			}
			if in.Name == nil {
				return nil, api.MissingParameter("Name")
			}
			if in.By <= 0 {
				return nil, api.InvalidValue("By", "must be positive, got %d", in.By)
			}
			var out incrResponse
			err = m.w.Store.Update(func(tx *store.Tx) error {
				c := counter{Name: *in.Name}
				if old, ok := m.table.Get(tx, *in.Name); ok {
					c = *old
				}
				c.Value += in.By
				out.Value = c.Value
				return m.table.Put(tx, c.Name, &c)
			})
			return &out, err
		},
		"List": func(r *api.Request) (any, error) {
			in, err := api.Decode[listRequest](r)
			if err != nil {
				return nil, err
			}
			var out listResponse
			err = m.w.Store.View(func(tx *store.Tx) error {
				all := m.table.List(tx)
				page, err := api.Page(all, in.Offset, in.Limit, 20)
				if err != nil {
					return err
				}
				out.TotalCount = len(all)
				for _, c := range page {
					out.Counters = append(out.Counters, *c)
				}
				return nil
			})
			return &out, err
		},
	}}
}

var (
	opIncr = cloudapi.Operation{Service: "test", Version: "2020-01-01", Action: "Incr"}
	opList = cloudapi.Operation{Service: "test", Version: "2020-01-01", Action: "List"}
)

func newTestCloud(t *testing.T, cfg Config) (*Cloud, *httptest.Server) {
	t.Helper()
	cfg.Modules = []api.NewModule{newCounterModule}
	c, err := New(cfg)
	require.NoError(t, err)
	srv := httptest.NewServer(c)
	t.Cleanup(func() { srv.Close(); _ = c.Close() })
	return c, srv
}

func newClient(t *testing.T, c *Cloud, srv *httptest.Server, mut func(*cloudapi.Config)) *cloudapi.Client {
	t.Helper()
	id, key := c.Credentials()
	cfg := cloudapi.Config{
		Endpoint:    srv.URL,
		Region:      c.Region(),
		Credentials: cloudapi.Credentials{SecretID: id, SecretKey: key},
		BackoffBase: time.Millisecond,
		BackoffMax:  5 * time.Millisecond,
		RateLimit:   -1,
	}
	if mut != nil {
		mut(&cfg)
	}
	cl, err := cloudapi.New(cfg)
	require.NoError(t, err)
	return cl
}

func ptr[T any](v T) *T { return &v }

func TestProtocolErrors(t *testing.T) {
	c, srv := newTestCloud(t, Config{})
	ctx := context.Background()
	good := newClient(t, c, srv, nil)

	var out incrResponse
	require.NoError(t, good.Invoke(ctx, opIncr, &incrRequest{Name: ptr("a"), By: 2}, &out))
	assert.Equal(t, 2, out.Value)
	assert.NotEmpty(t, out.RequestId)

	cases := []struct {
		name string
		cl   *cloudapi.Client
		op   cloudapi.Operation
		in   any
		code string
	}{
		{"wrong key", newClient(t, c, srv, func(cfg *cloudapi.Config) { cfg.Credentials.SecretKey = "nope" }), opIncr, &incrRequest{Name: ptr("a"), By: 1}, cloudapi.CodeSignatureFailure},
		{"unknown id", newClient(t, c, srv, func(cfg *cloudapi.Config) { cfg.Credentials.SecretID = "AKIDunknown" }), opIncr, &incrRequest{Name: ptr("a"), By: 1}, cloudapi.CodeSecretIDNotFound},
		{"clock skew", newClient(t, c, srv, func(cfg *cloudapi.Config) {
			cfg.Now = func() time.Time { return time.Now().Add(-6 * time.Minute) }
		}), opIncr, &incrRequest{Name: ptr("a"), By: 1}, cloudapi.CodeSignatureExpire},
		{"wrong version", good, cloudapi.Operation{Service: "test", Version: "2019-01-01", Action: "Incr"}, &incrRequest{Name: ptr("a"), By: 1}, cloudapi.CodeNoSuchVersion},
		{"unknown action", good, cloudapi.Operation{Service: "test", Version: "2020-01-01", Action: "Nope"}, struct{}{}, cloudapi.CodeInvalidAction},
		{"wrong region", newClient(t, c, srv, func(cfg *cloudapi.Config) { cfg.Region = "ap-mars" }), opIncr, &incrRequest{Name: ptr("a"), By: 1}, cloudapi.CodeUnsupportedRegion},
		{"missing field", good, opIncr, &incrRequest{By: 1}, cloudapi.CodeMissingParameter},
		{"invalid value", good, opIncr, &incrRequest{Name: ptr("a"), By: -1}, cloudapi.CodeInvalidParameterValue},
		{"wrong type", good, opIncr, map[string]any{"Name": 5}, cloudapi.CodeInvalidParameter},
		{"unknown field", good, opIncr, map[string]any{"Name": "a", "Bogus": 1}, cloudapi.CodeUnknownParameter},
		{"limit over 100", good, opList, &listRequest{Limit: ptr[int64](101)}, cloudapi.CodeInvalidParameterValue},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cl.Invoke(ctx, tc.op, tc.in, &out)
			require.Error(t, err)
			assert.Equal(t, tc.code, cloudapi.ErrorCode(err), "error: %v", err)
		})
	}
	// None of the failures changed the counter.
	var list listResponse
	require.NoError(t, good.Invoke(ctx, opList, &listRequest{}, &list))
	for _, ctr := range list.Counters {
		if ctr.Name == "a" {
			assert.Equal(t, 2, ctr.Value)
		}
	}
}

func TestUnsignedRequestsAreRefused(t *testing.T) {
	c, srv := newTestCloud(t, Config{})
	for _, body := range []string{`{`, `{"Name":"x","By":1}`} {
		req, err := http.NewRequest(http.MethodPost, srv.URL+"/", strings.NewReader(body))
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-TC-Action", "Incr")
		req.Header.Set("X-TC-Version", "2020-01-01")
		req.Header.Set("X-TC-Region", c.Region())
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		var env struct {
			Response struct {
				Error     struct{ Code string }
				RequestId string
			}
		}
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&env))
		resp.Body.Close()
		assert.Equal(t, http.StatusOK, resp.StatusCode, "errors are HTTP 200 envelopes")
		assert.Equal(t, cloudapi.CodeSignatureFailure, env.Response.Error.Code)
		assert.NotEmpty(t, env.Response.RequestId)
	}
	_, found := c.World().Store.Dump()["counters"]["x"]
	assert.False(t, found, "a refused request must not change state")
	// The admin endpoint answers only under its own prefix.
	resp, err := http.Get(srv.URL + "/_fakecloud/calls")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)
}

func TestPaginationAndRestart(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	c, srv := newTestCloud(t, Config{DataDir: dir, RateLimit: -1})
	cl := newClient(t, c, srv, nil)
	for i := range 25 {
		var out incrResponse
		require.NoError(t, cl.Invoke(ctx, opIncr, &incrRequest{Name: ptr(string(rune('a' + i))), By: i + 1}, &out))
	}
	var page listResponse
	require.NoError(t, cl.Invoke(ctx, opList, &listRequest{Offset: ptr[int64](20), Limit: ptr[int64](10)}, &page))
	assert.Equal(t, 26, page.TotalCount) // 25 + the seeded one
	assert.Len(t, page.Counters, 6)
	srv.Close()
	require.NoError(t, c.Close())

	// Restart on the same data dir: everything is still there and the seed is not re-imported.
	c2, srv2 := newTestCloud(t, Config{DataDir: dir})
	cl2 := newClient(t, c2, srv2, nil)
	var all listResponse
	require.NoError(t, cl2.Invoke(ctx, opList, &listRequest{Limit: ptr[int64](100)}, &all))
	require.Equal(t, 26, all.TotalCount)
	assert.Equal(t, counter{Name: "seeded", Value: 1}, all.Counters[0])
	assert.Equal(t, counter{Name: "y", Value: 25}, all.Counters[25])
}

func TestRetryThroughThrottlingAndFaults(t *testing.T) {
	c, srv := newTestCloud(t, Config{RateLimit: 5})
	ctx := context.Background()
	var calls cloudapi.CallCounter
	cl := newClient(t, c, srv, func(cfg *cloudapi.Config) {
		cfg.MaxAttempts = 20
		cfg.BackoffBase = 50 * time.Millisecond
		cfg.BackoffMax = 400 * time.Millisecond
		cfg.Hooks = []cloudapi.CallHook{calls.Hook}
	})
	// 15 calls against a 5 req/s server bucket: some attempts are throttled, all succeed.
	for i := range 15 {
		var out incrResponse
		require.NoError(t, cl.Invoke(ctx, opIncr, &incrRequest{Name: ptr("t"), By: 1}, &out), "call %d", i)
		assert.Equal(t, i+1, out.Value)
	}
	assert.Greater(t, calls.Count("Incr"), 15, "some attempts must have been throttled and retried")
	assert.Equal(t, calls.Count("Incr"), c.Calls()["Incr"], "client and server agree on attempts")

	// Fail the next 2 calls: a retrying client gets through on the third attempt.
	c.SetRateLimit("", -1)
	calls.Reset()
	c.AddFault(FaultRule{Action: "Incr", FailNext: 2})
	var out incrResponse
	require.NoError(t, cl.Invoke(ctx, opIncr, &incrRequest{Name: ptr("t"), By: 1}, &out))
	assert.Equal(t, 3, calls.Count("Incr"))

	// A persistent fault gives a typed error after MaxAttempts.
	c.AddFault(FaultRule{Action: "Incr", ErrorRate: 1, Code: "InternalError.Backend"})
	few := newClient(t, c, srv, func(cfg *cloudapi.Config) { cfg.MaxAttempts = 3 })
	err := few.Invoke(ctx, opIncr, &incrRequest{Name: ptr("t"), By: 1}, &out)
	require.Error(t, err)
	assert.True(t, cloudapi.HasCode(err, cloudapi.CodeInternalError), "%v", err)
	var apiErr *cloudapi.APIError
	require.ErrorAs(t, err, &apiErr)
	assert.NotEmpty(t, apiErr.RequestID)

	// Non-retryable errors are not retried.
	c.ClearFaults()
	calls.Reset()
	err = cl.Invoke(ctx, opIncr, &incrRequest{By: 1}, &out)
	assert.True(t, cloudapi.HasCode(err, cloudapi.CodeMissingParameter))
	assert.Equal(t, 1, calls.Count("Incr"))
}

func TestTransportErrorsAreRetriedAndTyped(t *testing.T) {
	c, srv := newTestCloud(t, Config{})
	cl := newClient(t, c, srv, func(cfg *cloudapi.Config) { cfg.MaxAttempts = 2 })
	srv.Close()
	err := cl.Invoke(context.Background(), opIncr, &incrRequest{Name: ptr("a"), By: 1}, nil)
	var te *cloudapi.TransportError
	require.ErrorAs(t, err, &te)
}

// signedPost sends body as a correctly signed call of action with Content-Type ct (the
// signature covers ct), and returns the envelope's error code ("" on success).
func signedPost(t *testing.T, c *Cloud, srv *httptest.Server, action, ct string, body []byte) string {
	t.Helper()
	id, key := c.Credentials()
	now := time.Now()
	req, err := http.NewRequest(http.MethodPost, srv.URL+"/", bytes.NewReader(body))
	require.NoError(t, err)
	if ct != "" {
		req.Header.Set("Content-Type", ct)
	}
	req.Header.Set("X-TC-Action", action)
	req.Header.Set("X-TC-Version", "2020-01-01")
	req.Header.Set("X-TC-Region", c.Region())
	req.Header.Set("X-TC-Timestamp", strconv.FormatInt(now.Unix(), 10))
	req.Header.Set("Authorization", tc3.Authorization(id, key, tc3.Request{
		Method: "POST", ContentType: ct, Host: req.Host, Payload: body, Service: "test", Timestamp: now,
	}))
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	var env struct {
		Response struct {
			Error     *struct{ Code, Message string }
			RequestId string
		}
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&env))
	require.NotEmpty(t, env.Response.RequestId)
	if env.Response.Error == nil {
		return ""
	}
	return env.Response.Error.Code
}

func TestContentTypeIsJSONOnly(t *testing.T) {
	c, srv := newTestCloud(t, Config{RateLimit: -1})
	body := []byte(`{"Name":"ct","By":1}`)
	cases := []struct {
		ct, code string
	}{
		{"application/json", ""},
		{"application/json; charset=utf-8", ""},
		{"application/json; charset=UTF-8", ""},
		{"", cloudapi.CodeInvalidParameter},
		{"text/plain", cloudapi.CodeInvalidParameter},
		{"application/x-www-form-urlencoded", cloudapi.CodeInvalidParameter},
		{"multipart/form-data; boundary=x", cloudapi.CodeInvalidParameter},
		{"application/json; charset=latin1", cloudapi.CodeInvalidParameter},
		{"application/jsonx", cloudapi.CodeInvalidParameter},
	}
	for _, tc := range cases {
		t.Run(fmt.Sprintf("%q", tc.ct), func(t *testing.T) {
			assert.Equal(t, tc.code, signedPost(t, c, srv, "Incr", tc.ct, body))
		})
	}
	var list listResponse
	require.NoError(t, newClient(t, c, srv, nil).Invoke(context.Background(), opList, &listRequest{}, &list))
	for _, ctr := range list.Counters {
		if ctr.Name == "ct" {
			assert.Equal(t, 3, ctr.Value, "only the three accepted calls counted")
		}
	}
}

func TestStrictBodiesChangeNothing(t *testing.T) {
	c, srv := newTestCloud(t, Config{RateLimit: -1})
	cases := []struct {
		name, body, code string
	}{
		{"wrong case", `{"name":"s","By":1}`, cloudapi.CodeUnknownParameter},
		{"duplicate key", `{"Name":"s","By":1,"By":2}`, cloudapi.CodeInvalidParameter},
		{"trailing data", `{"Name":"s","By":1} {}`, cloudapi.CodeInvalidParameter},
		{"invalid UTF-8", "{\"Name\":\"s\xff\",\"By\":1}", cloudapi.CodeInvalidParameter},
		{"over 10 MiB", `{"Name":"s","By":1,"Pad":"` + strings.Repeat("a", MaxBody) + `"}`, cloudapi.CodeInvalidParameter},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.code, signedPost(t, c, srv, "Incr", "application/json", []byte(tc.body)))
		})
	}
	_, found := c.World().Store.Dump()["counters"]["s"]
	assert.False(t, found, "a refused request must not change state")
}
