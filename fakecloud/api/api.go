// Package api is the framework every fakecloud service is written against: the request a
// handler receives, the errors it answers with, strict decoding (JSON v2 semantics, as the
// cloud parses a body), the one filter / pagination / ID-list / text-field helper every
// Describe and write action uses (request.go), and the World that holds the shared state.
//
// It owns no resource types, no seed sections and no state-machine delays; those belong to
// the service packages (cvm, vpc, clb, cbs), which decode their own sections of the Seed
// and take their delays as options. It never reads the HTTP request itself: the server
// hands it a verified body.
package api

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"time"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

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

// Decode strictly decodes the request body into T as the cloud parses it (JSON v2
// semantics): parameter names are case-exact and an unknown one is UnknownParameter; a
// duplicate name, data after the JSON object, invalid UTF-8, malformed JSON or a wrongly
// typed value is InvalidParameter naming the problem. An empty body is an empty object.
func Decode[T any](r *Request) (*T, error) {
	v := new(T)
	if err := DecodeBytes(r.Body, v); err != nil {
		return nil, err
	}
	return v, nil
}

// DecodeBytes is Decode into v, a pointer, for bodies that are not a Request's (seed
// sections).
func DecodeBytes(body []byte, v any) error {
	if len(bytes.TrimSpace(body)) == 0 {
		return nil
	}
	// The v2 defaults are already the strict ones (no duplicate names, valid UTF-8, exactly
	// one value, case-sensitive names); only unknown members must be asked for.
	err := json.Unmarshal(body, v, json.RejectUnknownMembers(true))
	if err == nil {
		return nil
	}
	var se *json.SemanticError
	var syn *jsontext.SyntacticError
	switch {
	case errors.As(err, &se) && errors.Is(se.Err, json.ErrUnknownName):
		return Errorf(cloudapi.CodeUnknownParameter, "the parameter `%s` is not recognized (parameter names are case-sensitive)", paramPath(se.JSONPointer))
	case errors.As(err, &syn) && errors.Is(syn.Err, jsontext.ErrDuplicateName):
		return Errorf(cloudapi.CodeInvalidParameter, "parameter `%s` is given more than once", paramPath(syn.JSONPointer))
	case errors.As(err, &syn):
		return Errorf(cloudapi.CodeInvalidParameter, "request body is not valid JSON at byte %d: %v", syn.ByteOffset, syn.Err)
	case errors.As(err, &se) && se.JSONPointer == "":
		return Errorf(cloudapi.CodeInvalidParameter, "request body must be a JSON object, got %s", kindName(se.JSONKind))
	case errors.As(err, &se):
		return Errorf(cloudapi.CodeInvalidParameter, "parameter `%s` must be of type %s, got %s", paramPath(se.JSONPointer), typeName(se.GoType), kindName(se.JSONKind))
	default:
		return Errorf(cloudapi.CodeInvalidParameter, "request body is not valid JSON: %v", err)
	}
}

// paramPath spells a JSON pointer the way the API names parameters: /Filters/0/Name is
// Filters.0.Name.
func paramPath(p jsontext.Pointer) string {
	var parts []string
	for tok := range p.Tokens() {
		parts = append(parts, tok)
	}
	if len(parts) == 0 {
		return "(body)"
	}
	return strings.Join(parts, ".")
}

// typeName names a Go type as the API documentation names parameter types.
func typeName(t reflect.Type) string {
	if t == nil {
		return "the declared type"
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.String:
		return "String"
	case reflect.Bool:
		return "Boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "Integer"
	case reflect.Float32, reflect.Float64:
		return "Float"
	case reflect.Slice, reflect.Array:
		return "Array"
	case reflect.Struct, reflect.Map:
		return "Object"
	}
	return t.String()
}

func kindName(k jsontext.Kind) string {
	switch k {
	case '"':
		return "a string"
	case '0':
		return "a number"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	case '{':
		return "an object"
	case '[':
		return "an array"
	}
	return "a value of another type"
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

// World is the state and settings every service shares.
type World struct {
	Store   *store.Store
	Region  string
	Zones   []Zone
	DataDir string
	// Clock is the simulated time; tests replace it.
	Clock func() time.Time
	// Limits is the account quota table ("routes-per-table": 200, ...); services read their
	// own keys with Limit. Quotas only: per-request API limits are fixed (request.go) and
	// no seed can raise them.
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
