package cloudapi

import (
	"errors"
	"fmt"
	"strings"
)

// Common error codes of the API 3.0 protocol. Services add dotted sub-codes
// (for example "InvalidParameterValue.Duplicate"); helpers below match on the prefix.
const (
	CodeAuthFailure             = "AuthFailure"
	CodeSignatureFailure        = "AuthFailure.SignatureFailure"
	CodeSignatureExpire         = "AuthFailure.SignatureExpire"
	CodeSecretIDNotFound        = "AuthFailure.SecretIdNotFound"
	CodeInvalidParameter        = "InvalidParameter"
	CodeInvalidParameterValue   = "InvalidParameterValue"
	CodeMissingParameter        = "MissingParameter"
	CodeUnknownParameter        = "UnknownParameter"
	CodeResourceNotFound        = "ResourceNotFound"
	CodeResourceInUse           = "ResourceInUse"
	CodeLimitExceeded           = "LimitExceeded"
	CodeRequestLimitExceeded    = "RequestLimitExceeded"
	CodeInternalError           = "InternalError"
	CodeInvalidAction           = "InvalidAction"
	CodeNoSuchVersion           = "NoSuchVersion"
	CodeUnsupportedRegion       = "UnsupportedRegion"
	CodeUnsupportedOperation    = "UnsupportedOperation"
	CodeFailedOperation         = "FailedOperation"
	CodeInvalidInstanceNotFound = "InvalidInstanceId.NotFound"
)

// APIError is an error answered by the cloud inside the response envelope.
type APIError struct {
	Service   string
	Action    string
	Code      string
	Message   string
	RequestID string
}

func (e *APIError) Error() string {
	return fmt.Sprintf("%s %s: %s: %s (RequestId %s)", e.Service, e.Action, e.Code, e.Message, e.RequestID)
}

// ErrorCode returns the API error code inside err, or "" when err is not an API error.
func ErrorCode(err error) string {
	var ae *APIError
	if errors.As(err, &ae) {
		return ae.Code
	}
	return ""
}

// HasCode reports whether err is an API error whose code is code or a sub-code of it
// ("InvalidParameterValue" matches "InvalidParameterValue.Duplicate").
func HasCode(err error, code string) bool {
	c := ErrorCode(err)
	return c != "" && (c == code || strings.HasPrefix(c, code+"."))
}

// IsNotFound reports whether err says the resource does not exist. The API spells this
// several ways: ResourceNotFound, InvalidInstanceId.NotFound, InvalidDiskId.NotFound, ...
func IsNotFound(err error) bool {
	c := ErrorCode(err)
	return c != "" && (HasCode(err, CodeResourceNotFound) || strings.HasSuffix(c, ".NotFound") ||
		strings.HasSuffix(c, "NotFound"))
}

// IsThrottled reports whether the cloud refused the call for its rate limit.
func IsThrottled(err error) bool { return HasCode(err, CodeRequestLimitExceeded) }

// IsInUse reports whether the resource is in a state that forbids the call.
func IsInUse(err error) bool { return HasCode(err, CodeResourceInUse) }

// IsAuthFailure reports whether the credentials or the signature were refused.
func IsAuthFailure(err error) bool { return HasCode(err, CodeAuthFailure) }

// IsLimitExceeded reports whether a quota was hit (not the rate limit).
func IsLimitExceeded(err error) bool { return HasCode(err, CodeLimitExceeded) }

// IsInvalidInput reports whether the cloud rejected the request's parameters.
func IsInvalidInput(err error) bool {
	return HasCode(err, CodeInvalidParameter) || HasCode(err, CodeInvalidParameterValue) ||
		HasCode(err, CodeMissingParameter) || HasCode(err, CodeUnknownParameter)
}

// retryable reports whether a failed attempt may succeed when sent again unchanged.
func retryable(err error) bool {
	if HasCode(err, CodeRequestLimitExceeded) || HasCode(err, CodeInternalError) {
		return true
	}
	var te *TransportError
	return errors.As(err, &te)
}

// TransportError is a failure to get an answer at all: connection refused, reset,
// timeout, or a response that is not the protocol's envelope (a proxy's 502 page).
type TransportError struct {
	Action string
	Err    error
}

func (e *TransportError) Error() string { return fmt.Sprintf("%s: transport: %v", e.Action, e.Err) }
func (e *TransportError) Unwrap() error { return e.Err }
