// Package api is the framework every fakecloud service is written against: the request a
// handler receives, the errors it answers with, strict decoding, pagination, IDs, and the
// World that holds the shared state and settings.
//
// It owns no resource types; those belong to the service packages (cvm, vpc, clb, cbs).
package api

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/stratus-cloud/stratus/cloudapi"
	"github.com/stratus-cloud/stratus/fakecloud/store"
)

// Request is one authenticated API call, after the server checked signature, version and
// action.
type Request struct {
	Context   context.Context
	Service   string
	Version   string
	Action    string
	Region    string
	RequestID string
	SecretID  string
	Body      []byte
	Now       time.Time
}

// Handler answers one action. It returns the response struct (a cloudapi wire type; the
// server adds RequestId) or an error; an error that is not an *Error becomes InternalError.
type Handler func(r *Request) (any, error)

// Service is what a service package registers with the server.
type Service struct {
	Name    string // "cvm"
	Version string // "2017-03-12"
	Actions map[string]Handler
}

// Error is an answer in the protocol's error envelope.
type Error struct {
	Code    string
	Message string
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// Errorf builds an *Error.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// MissingParameter names the absent field.
func MissingParameter(field string) *Error {
	return Errorf(cloudapi.CodeMissingParameter, "the request is missing a required parameter `%s`", field)
}

// InvalidValue says field has a value the action does not accept, and why.
func InvalidValue(field string, format string, args ...any) *Error {
	return Errorf(cloudapi.CodeInvalidParameterValue, "parameter `%s`: %s", field, fmt.Sprintf(format, args...))
}

// NotFound says a referenced resource does not exist. code lets services use their
// specific codes ("InvalidInstanceId.NotFound"); empty means ResourceNotFound.
func NotFound(code, kind, id string) *Error {
	if code == "" {
		code = cloudapi.CodeResourceNotFound
	}
	return Errorf(code, "%s `%s` does not exist", kind, id)
}

// AsError converts any handler error into the *Error the server will answer with.
func AsError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return &Error{Code: cloudapi.CodeInternalError, Message: "internal error: " + err.Error()}
}

// Decode strictly decodes the request body into T: malformed JSON or a wrongly typed field
// is InvalidParameter, an unknown field is UnknownParameter, as on the real API.
func Decode[T any](r *Request) (*T, error) {
	v := new(T)
	body := bytes.TrimSpace(r.Body)
	if len(body) == 0 {
		return v, nil
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var te *json.UnmarshalTypeError
		switch {
		case errors.As(err, &te):
			return nil, Errorf(cloudapi.CodeInvalidParameter, "parameter `%s` must be of type %s", te.Field, te.Type)
		case strings.HasPrefix(err.Error(), "json: unknown field "):
			return nil, Errorf(cloudapi.CodeUnknownParameter, "the parameter %s is not recognized", strings.TrimPrefix(err.Error(), "json: unknown field "))
		default:
			return nil, Errorf(cloudapi.CodeInvalidParameter, "request body is not valid JSON: %v", err)
		}
	}
	if dec.More() {
		return nil, Errorf(cloudapi.CodeInvalidParameter, "request body has trailing data after the JSON object")
	}
	return v, nil
}

// MaxLimit is the protocol's largest page.
const MaxLimit = 100

// Page returns the slice of items selected by Offset and Limit (nil = default), checking
// both; total is len(items), for TotalCount.
func Page[T any](items []T, offset, limit *int64, defaultLimit int64) ([]T, error) {
	off, lim := int64(0), defaultLimit
	if offset != nil {
		off = *offset
	}
	if limit != nil {
		lim = *limit
	}
	if off < 0 {
		return nil, InvalidValue("Offset", "must not be negative, got %d", off)
	}
	if lim < 0 || lim > MaxLimit {
		return nil, InvalidValue("Limit", "must be between 0 and %d, got %d", MaxLimit, lim)
	}
	if off >= int64(len(items)) {
		return []T{}, nil
	}
	end := min(off+lim, int64(len(items)))
	return items[off:end], nil
}

const idAlphabet = "0123456789abcdefghijklmnopqrstuvwxyz"

// NewID returns "<prefix>-" and 8 random lowercase alphanumerics, the shape of real IDs.
func NewID(prefix string) string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	for i := range b {
		b[i] = idAlphabet[int(b[i])%len(idAlphabet)]
	}
	return prefix + "-" + string(b[:])
}

// Zone is one availability zone of the region.
type Zone struct {
	Name  string `json:"name"`  // "ap-guangzhou-1"
	ID    string `json:"id"`    // "100001"
	State string `json:"state"` // "AVAILABLE"
}

// Delays says how long the cloud's state transitions take. Zero (unit tests) makes every
// transition immediate; benchmarks and the sandbox use realistic values.
type Delays struct {
	InstanceBoot time.Duration `json:"instanceBoot"` // PENDING -> RUNNING, STARTING -> RUNNING
	InstanceStop time.Duration `json:"instanceStop"` // STOPPING -> STOPPED
	Terminate    time.Duration `json:"terminate"`    // SHUTDOWN/TERMINATING -> gone
	DiskAttach   time.Duration `json:"diskAttach"`
	DiskDetach   time.Duration `json:"diskDetach"`
	DiskResize   time.Duration `json:"diskResize"`
	Snapshot     time.Duration `json:"snapshot"`
	LBTask       time.Duration `json:"lbTask"` // CLB async task running -> done
}

// World is the state and settings every service shares.
type World struct {
	Store   *store.Store
	Region  string
	Zones   []Zone
	Delays  Delays
	DataDir string
	// Clock is the simulated time; tests replace it.
	Clock func() time.Time
	// Limits is the per-resource quota table ("routes-per-table": 200, ...); services read
	// their own keys with Limit.
	Limits map[string]int
}

// Now reads the world's clock.
func (w *World) Now() time.Time {
	if w.Clock == nil {
		return time.Now()
	}
	return w.Clock()
}

// Limit returns the quota named key, or def when it is not configured.
func (w *World) Limit(key string, def int) int {
	if v, ok := w.Limits[key]; ok && v > 0 {
		return v
	}
	return def
}

// Zone returns the zone named name.
func (w *World) Zone(name string) (Zone, bool) {
	for _, z := range w.Zones {
		if z.Name == name {
			return z, true
		}
	}
	return Zone{}, false
}

// Timestamp formats t as the API does ("2006-01-02T15:04:05Z").
func Timestamp(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05Z") }
