package fakecloud

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/stratus-cloud/stratus/cloudapi/tc3"
	"github.com/stratus-cloud/stratus/fakecloud/api"
)

// FuzzRequestDecoder sends correctly signed requests with arbitrary bodies and actions
// through the whole server path (auth, dispatch, strict decoding, handler). Whatever the
// body, the server must answer a well-formed envelope, never panic, and a failed call
// must not change state.
func FuzzRequestDecoder(f *testing.F) {
	f.Add("Incr", []byte(`{"Name":"a","By":1}`))
	f.Add("Incr", []byte(`{"Name":5}`))
	f.Add("Incr", []byte(`{"Name":"a","By":1,"X":[]}`))
	f.Add("List", []byte(`{"Offset":-1,"Limit":1000}`))
	f.Add("List", []byte(`{"Limit":1e400}`))
	f.Add("Nope", []byte(`[]`))
	f.Add("Incr", []byte(`{"Name":"a","By":1}{"Name":"b","By":1}`))
	f.Add("Incr", []byte("\xff\xfe"))

	cloud, err := New(Config{RateLimit: -1, Modules: []api.NewModule{newCounterModule}})
	if err != nil {
		f.Fatal(err)
	}
	defer cloud.Close()
	id, key := cloud.Credentials()

	f.Fuzz(func(t *testing.T, action string, body []byte) {
		before := len(cloud.World().Store.Dump()["counters"])
		now := time.Now()
		req := httptest.NewRequest(http.MethodPost, "http://fake.local/", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-TC-Action", action)
		req.Header.Set("X-TC-Version", "2020-01-01")
		req.Header.Set("X-TC-Region", cloud.Region())
		req.Header.Set("X-TC-Timestamp", strconv.FormatInt(now.Unix(), 10))
		req.Header.Set("Authorization", tc3.Authorization(id, key, tc3.Request{
			Method: "POST", ContentType: "application/json", Host: req.Host, Payload: body, Service: "test", Timestamp: now,
		}))
		rec := httptest.NewRecorder()
		cloud.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			t.Fatalf("HTTP %d", rec.Code)
		}
		var env struct {
			Response struct {
				Error *struct {
					Code    string
					Message string
				}
				RequestId string
			}
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &env); err != nil {
			t.Fatalf("answer is not an envelope: %v: %s", err, rec.Body.Bytes())
		}
		if env.Response.RequestId == "" {
			t.Fatalf("answer has no RequestId: %s", rec.Body.Bytes())
		}
		if env.Response.Error != nil && env.Response.Error.Code == "" {
			t.Fatalf("error without code: %s", rec.Body.Bytes())
		}
		if env.Response.Error != nil && len(cloud.World().Store.Dump()["counters"]) != before {
			t.Fatalf("failed call %s changed state", env.Response.Error.Code)
		}
	})
}
