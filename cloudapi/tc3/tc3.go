// Package tc3 implements the TC3-HMAC-SHA256 request signature of the Tencent Cloud API
// 3.0 protocol, for both sides: the client signs, the server parses and verifies.
//
// It knows nothing about HTTP clients, retries or services; it is pure string and HMAC work.
package tc3

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Algorithm is the only signature algorithm this package speaks.
const Algorithm = "TC3-HMAC-SHA256"

// SignedHeaders is the header list both sides sign. The protocol allows more, but every
// client (ours and the official SDK) signs exactly these two.
const SignedHeaders = "content-type;host"

// Request holds what the signature covers.
type Request struct {
	Method      string // POST for every Stratus call
	ContentType string
	Host        string
	Payload     []byte
	Service     string
	Timestamp   time.Time
	// UnsignedPayload signs the literal "UNSIGNED-PAYLOAD" instead of the body's hash
	// (the X-TC-Content-SHA256 option of the protocol, for large uploads).
	UnsignedPayload bool
}

// UnsignedPayloadValue is the X-TC-Content-SHA256 header value that selects UnsignedPayload.
const UnsignedPayloadValue = "UNSIGNED-PAYLOAD"

// Date is the UTC date that appears in the credential scope.
func Date(ts time.Time) string { return ts.UTC().Format("2006-01-02") }

// Scope is "<date>/<service>/tc3_request".
func Scope(ts time.Time, service string) string {
	return Date(ts) + "/" + service + "/tc3_request"
}

// CanonicalRequest builds the canonical request string of step 1.
func CanonicalRequest(r Request) string {
	sum := sha256.Sum256(r.Payload)
	if r.UnsignedPayload {
		sum = sha256.Sum256([]byte(UnsignedPayloadValue))
	}
	method := r.Method
	if method == "" {
		method = "POST"
	}
	return method + "\n/\n\n" +
		"content-type:" + strings.ToLower(strings.TrimSpace(r.ContentType)) + "\n" +
		"host:" + strings.ToLower(strings.TrimSpace(r.Host)) + "\n\n" +
		SignedHeaders + "\n" + hex.EncodeToString(sum[:])
}

// StringToSign builds the string of step 3.
func StringToSign(r Request) string {
	sum := sha256.Sum256([]byte(CanonicalRequest(r)))
	return Algorithm + "\n" + fmt.Sprint(r.Timestamp.Unix()) + "\n" + Scope(r.Timestamp, r.Service) + "\n" +
		hex.EncodeToString(sum[:])
}

// Signature returns the hex signature of r under secretKey.
func Signature(secretKey string, r Request) string {
	kDate := hmacSHA256([]byte("TC3"+secretKey), Date(r.Timestamp))
	kService := hmacSHA256(kDate, r.Service)
	kSigning := hmacSHA256(kService, "tc3_request")
	return hex.EncodeToString(hmacSHA256(kSigning, StringToSign(r)))
}

// Authorization returns the value of the Authorization header.
func Authorization(secretID, secretKey string, r Request) string {
	return Algorithm + " Credential=" + secretID + "/" + Scope(r.Timestamp, r.Service) +
		", SignedHeaders=" + SignedHeaders + ", Signature=" + Signature(secretKey, r)
}

func hmacSHA256(key []byte, msg string) []byte {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(msg))
	return h.Sum(nil)
}

// Credential is a parsed Authorization header.
type Credential struct {
	SecretID      string
	Date          string
	Service       string
	SignedHeaders string
	Signature     string
}

// ErrMalformed is returned (wrapped) by Parse for any header it cannot read.
var ErrMalformed = errors.New("malformed TC3 authorization header")

// Parse reads an Authorization header of the form
// "TC3-HMAC-SHA256 Credential=ID/DATE/SERVICE/tc3_request, SignedHeaders=..., Signature=...".
func Parse(header string) (Credential, error) {
	var c Credential
	alg, rest, ok := strings.Cut(strings.TrimSpace(header), " ")
	if !ok || alg != Algorithm {
		return c, fmt.Errorf("%w: algorithm must be %s", ErrMalformed, Algorithm)
	}
	for part := range strings.SplitSeq(rest, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return c, fmt.Errorf("%w: %q is not key=value", ErrMalformed, part)
		}
		switch k {
		case "Credential":
			f := strings.Split(v, "/")
			if len(f) != 4 || f[3] != "tc3_request" || f[0] == "" || f[2] == "" {
				return c, fmt.Errorf("%w: credential %q is not ID/DATE/SERVICE/tc3_request", ErrMalformed, v)
			}
			c.SecretID, c.Date, c.Service = f[0], f[1], f[2]
		case "SignedHeaders":
			c.SignedHeaders = v
		case "Signature":
			c.Signature = v
		}
	}
	if c.SecretID == "" || c.Signature == "" || c.SignedHeaders == "" {
		return c, fmt.Errorf("%w: Credential, SignedHeaders and Signature are required", ErrMalformed)
	}
	return c, nil
}

// Verify reports whether sig is the signature of r under secretKey, in constant time.
func Verify(secretKey string, r Request, sig string) bool {
	want := Signature(secretKey, r)
	return hmac.Equal([]byte(want), []byte(sig))
}
