// Package fakecloud simulates the cloud's HTTP API (Tencent Cloud API 3.0: signed JSON
// POSTs) for tests and for the local sandbox. It verifies signatures like the real cloud,
// dispatches to the service modules (cvm, vpc, clb, cbs), keeps their state in a store that
// survives restarts, and offers an admin endpoint under /_fakecloud/ for faults and
// inspection, which the signed API can never reach.
package fakecloud

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"k8s.io/klog/v2"

	"github.com/stratus-cloud/stratus/cloudapi"
	"github.com/stratus-cloud/stratus/cloudapi/tc3"
	"github.com/stratus-cloud/stratus/fakecloud/api"
)

// MaxBody bounds a request body: the API refuses a TC3-signed POST over 10 MB. fakecloud
// refuses it before buffering it whole, whatever Content-Length says (or when it is
// absent), so a huge or endless body costs at most MaxBody of memory.
const MaxBody = 10 << 20

// maxSkew is how far a request's X-TC-Timestamp may be from the server clock.
const maxSkew = 5 * time.Minute

// ServeHTTP serves the signed API at POST / and the admin endpoint under /_fakecloud/.
func (c *Cloud) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, adminPrefix) {
		c.admin.ServeHTTP(w, r)
		return
	}
	if r.URL.Path != "/" {
		http.NotFound(w, r)
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "the API takes POST requests", http.StatusMethodNotAllowed)
		return
	}
	reqID := uuid.NewString()
	out, action, err := c.handle(w, r, reqID)
	writeEnvelope(w, reqID, out, err)
	if err != nil {
		e := api.AsError(err)
		klog.V(2).InfoS("API call failed", "action", action, "code", e.Code, "message", e.Message, "requestId", reqID)
	} else {
		klog.V(4).InfoS("API call", "action", action, "requestId", reqID)
	}
}

func (c *Cloud) handle(w http.ResponseWriter, r *http.Request, reqID string) (any, string, error) {
	action := r.Header.Get("X-TC-Action")
	if err := checkContentType(r.Header.Get("Content-Type")); err != nil {
		return nil, action, err
	}
	body, err := readBody(w, r)
	if err != nil {
		return nil, action, err
	}
	if action == "" {
		return nil, "", api.MissingParameter("X-TC-Action")
	}
	secretID, service, err := c.authenticate(r, body)
	if err != nil {
		return nil, action, err
	}
	svc, ok := c.services[service]
	if !ok {
		return nil, action, api.Errorf(cloudapi.CodeInvalidAction, "service `%s` is not offered here", service)
	}
	version := r.Header.Get("X-TC-Version")
	if version == "" {
		return nil, action, api.MissingParameter("X-TC-Version")
	}
	if version != svc.Version {
		return nil, action, api.Errorf(cloudapi.CodeNoSuchVersion, "version `%s` of service %s does not exist (this endpoint serves %s)", version, service, svc.Version)
	}
	h, ok := svc.Actions[action]
	if !ok {
		return nil, action, api.Errorf(cloudapi.CodeInvalidAction, "action `%s` of service %s does not exist", action, service)
	}
	region := r.Header.Get("X-TC-Region")
	if region == "" {
		return nil, action, api.MissingParameter("X-TC-Region")
	}
	if region != c.world.Region {
		return nil, action, api.Errorf(cloudapi.CodeUnsupportedRegion, "region `%s` is not served here (this endpoint serves %s)", region, c.world.Region)
	}
	c.calls.add(action)
	if !c.limits.allow(action) {
		return nil, action, api.Errorf(cloudapi.CodeRequestLimitExceeded, "your request rate for %s is over the limit; slow down", action)
	}
	if err := c.faults.apply(r.Context(), action); err != nil {
		return nil, action, err
	}
	out, err := h(&api.Request{
		Context:   r.Context(),
		Service:   service,
		Version:   version,
		Action:    action,
		Region:    region,
		RequestID: reqID,
		SecretID:  secretID,
		Body:      body,
		Now:       c.world.Now(),
	})
	return out, action, err
}

// checkContentType accepts what the API's JSON style takes: application/json, optionally
// with charset=utf-8. The form-encoded and multipart styles of the real API are not
// served here, and anything else is not the protocol.
func checkContentType(ct string) error {
	if ct == "" {
		return api.Errorf(cloudapi.CodeInvalidParameter, "the request has no Content-Type; the API takes application/json")
	}
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil || mt != "application/json" {
		return api.Errorf(cloudapi.CodeInvalidParameter, "Content-Type %q is not supported; the API takes application/json", ct)
	}
	for k, v := range params {
		if k != "charset" || !strings.EqualFold(v, "utf-8") {
			return api.Errorf(cloudapi.CodeInvalidParameter, "Content-Type %q: only charset=utf-8 is supported", ct)
		}
	}
	return nil
}

// readBody reads at most MaxBody bytes: a declared length over it is refused before
// reading anything, and a body that is longer than declared, or has no declared length,
// is cut off at the limit (http.MaxBytesReader also closes the connection after the
// answer, so the rest is never read).
func readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	tooLarge := api.Errorf(cloudapi.CodeInvalidParameter, "request body is larger than %d bytes (10 MiB), the API's limit", MaxBody)
	if r.ContentLength > MaxBody {
		w.Header().Set("Connection", "close")
		return nil, tooLarge
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBody))
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		return nil, tooLarge
	case err != nil:
		return nil, api.Errorf(cloudapi.CodeInvalidParameter, "read request body: %v", err)
	}
	return body, nil
}

// authenticate checks the TC3 signature and returns the caller's secret id and the service
// named in the credential scope (fakecloud serves every service on one endpoint).
func (c *Cloud) authenticate(r *http.Request, body []byte) (string, string, error) {
	authz := r.Header.Get("Authorization")
	if authz == "" {
		return "", "", api.Errorf(cloudapi.CodeAuthFailure+".SignatureFailure", "the request has no Authorization header")
	}
	cred, err := tc3.Parse(authz)
	if err != nil {
		return "", "", api.Errorf(cloudapi.CodeSignatureFailure, "%v", err)
	}
	tsHeader := r.Header.Get("X-TC-Timestamp")
	ts, err := strconv.ParseInt(tsHeader, 10, 64)
	if err != nil {
		return "", "", api.Errorf(cloudapi.CodeMissingParameter, "X-TC-Timestamp %q is not a unix timestamp", tsHeader)
	}
	when := time.Unix(ts, 0)
	if skew := c.world.Now().Sub(when); skew > maxSkew || skew < -maxSkew {
		return "", "", api.Errorf(cloudapi.CodeSignatureExpire, "the request's timestamp %d is more than %s from the server clock", ts, maxSkew)
	}
	key, ok := c.secretKey(cred.SecretID)
	if !ok {
		return "", "", api.Errorf(cloudapi.CodeSecretIDNotFound, "the SecretId is not found")
	}
	if cred.Date != tc3.Date(when) {
		return "", "", api.Errorf(cloudapi.CodeSignatureFailure, "credential date %s does not match X-TC-Timestamp", cred.Date)
	}
	if cred.SignedHeaders != tc3.SignedHeaders {
		return "", "", api.Errorf(cloudapi.CodeSignatureFailure, "SignedHeaders must be %q", tc3.SignedHeaders)
	}
	req := tc3.Request{
		Method:      r.Method,
		ContentType: r.Header.Get("Content-Type"),
		Host:        r.Host,
		Payload:     body,
		Service:     cred.Service,
		Timestamp:   when,

		UnsignedPayload: r.Header.Get("X-TC-Content-SHA256") == tc3.UnsignedPayloadValue,
	}
	if !tc3.Verify(key, req, cred.Signature) {
		return "", "", api.Errorf(cloudapi.CodeSignatureFailure, "the request signature does not match")
	}
	return cred.SecretID, cred.Service, nil
}

func (c *Cloud) secretKey(id string) (string, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	k, ok := c.creds[id]
	return k, ok
}

// writeEnvelope answers HTTP 200 with {"Response": {..., "RequestId": ...}}, errors
// included, as the protocol does.
func writeEnvelope(w http.ResponseWriter, reqID string, out any, err error) {
	var inner []byte
	if err != nil {
		e := api.AsError(err)
		inner, _ = json.Marshal(struct {
			Error     api.Error `json:"Error"`
			RequestID string    `json:"RequestId"`
		}{api.Error{Code: e.Code, Message: e.Message}, reqID})
	} else {
		var merr error
		inner, merr = withRequestID(out, reqID)
		if merr != nil {
			writeEnvelope(w, reqID, nil, api.Errorf(cloudapi.CodeInternalError, "encode response: %v", merr))
			return
		}
	}
	var buf bytes.Buffer
	buf.Grow(len(inner) + 16)
	buf.WriteString(`{"Response":`)
	buf.Write(inner)
	buf.WriteString("}")
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(buf.Len()))
	_, _ = w.Write(buf.Bytes())
}

// withRequestID encodes out (a JSON object) with its RequestId field set to reqID. Wire
// response types carry a `RequestId string` field, which is set in place so the answer is
// encoded once; anything else is re-encoded with the field added.
func withRequestID(out any, reqID string) ([]byte, error) {
	if out == nil {
		out = struct{}{}
	}
	if v := reflect.ValueOf(out); v.Kind() == reflect.Pointer && !v.IsNil() && v.Elem().Kind() == reflect.Struct {
		if f := v.Elem().FieldByName("RequestId"); f.IsValid() && f.Kind() == reflect.String && f.CanSet() {
			f.SetString(reqID)
			return json.Marshal(out)
		}
	}
	b, err := json.Marshal(out)
	if err != nil {
		return nil, err
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(b, &fields); err != nil || fields == nil {
		return nil, errors.New("response is not a JSON object")
	}
	id, _ := json.Marshal(reqID)
	fields["RequestId"] = id
	return json.Marshal(fields)
}

// callCounts counts API calls per action for the admin endpoint.
type callCounts struct {
	mu sync.Mutex
	m  map[string]int
}

func (cc *callCounts) add(action string) {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	if cc.m == nil {
		cc.m = map[string]int{}
	}
	cc.m[action]++
}

func (cc *callCounts) snapshot() map[string]int {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	out := make(map[string]int, len(cc.m))
	for k, v := range cc.m {
		out[k] = v
	}
	return out
}

func (cc *callCounts) reset() {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	cc.m = nil
}

// sleepCtx waits d or until ctx ends.
func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
