package tc3

import (
	"crypto/sha256"
	"encoding/hex"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// docExample is the worked example of the public "Signature v3" documentation: a cvm
// DescribeInstances call signed at 2019-02-25 (1551113065). Its intermediate and final
// values are printed in that document, which makes them independent known vectors.
func docExample() (Request, string) {
	return Request{
		Method:      "POST",
		ContentType: "application/json; charset=utf-8",
		Host:        "cvm.tencentcloudapi.com",
		Payload:     []byte(`{"Limit": 1, "Filters": [{"Values": ["\u672a\u547d\u540d"], "Name": "instance-name"}]}`),
		Service:     "cvm",
		Timestamp:   time.Unix(1551113065, 0),
	}, "Gu5t9xGARNpq86cd98joQYCN3*******"
}

func TestKnownVector(t *testing.T) {
	r, key := docExample()
	sum := sha256.Sum256([]byte(CanonicalRequest(r)))
	assert.Equal(t, "5ffe6a04c0664d6b969fab9a13bdab201d63ee709638e2749d62a09ca18d7031", hex.EncodeToString(sum[:]))
	assert.Equal(t, "TC3-HMAC-SHA256\n1551113065\n2019-02-25/cvm/tc3_request\n"+
		"5ffe6a04c0664d6b969fab9a13bdab201d63ee709638e2749d62a09ca18d7031", StringToSign(r))
	assert.Equal(t, "2230eefd229f582d8b1b891af7107b91597240707d778ab3738f756258d7652c", Signature(key, r))
	assert.Equal(t, "TC3-HMAC-SHA256 Credential=AKIDz8krbsJ5yKBZQpn74WFkmLPx3*******/2019-02-25/cvm/tc3_request, "+
		"SignedHeaders=content-type;host, Signature=2230eefd229f582d8b1b891af7107b91597240707d778ab3738f756258d7652c",
		Authorization("AKIDz8krbsJ5yKBZQpn74WFkmLPx3*******", key, r))
}

func TestScopeUsesUTCDate(t *testing.T) {
	// 23:30 on the 1st in UTC-8 is the 2nd in UTC: the scope must say the 2nd.
	ts := time.Date(2026, 3, 1, 23, 30, 0, 0, time.FixedZone("PST", -8*3600))
	assert.Equal(t, "2026-03-02/clb/tc3_request", Scope(ts, "clb"))
}

func TestParseAndVerifyRoundTrip(t *testing.T) {
	r, key := docExample()
	c, err := Parse(Authorization("AKIDtest", key, r))
	require.NoError(t, err)
	assert.Equal(t, Credential{SecretID: "AKIDtest", Date: "2019-02-25", Service: "cvm", SignedHeaders: SignedHeaders,
		Signature: "2230eefd229f582d8b1b891af7107b91597240707d778ab3738f756258d7652c"}, c)
	assert.True(t, Verify(key, r, c.Signature))
	assert.False(t, Verify(key+"x", r, c.Signature), "another key must not verify")
	r.Payload = append([]byte(nil), r.Payload...)
	r.Payload[2] = 'M'
	assert.False(t, Verify(key, r, c.Signature), "a changed body must not verify")
}

func TestParseRejectsMalformed(t *testing.T) {
	for _, h := range []string{
		"",
		"HMAC-SHA1 Credential=a/b/c/tc3_request, SignedHeaders=host, Signature=x",
		"TC3-HMAC-SHA256",
		"TC3-HMAC-SHA256 Credential=a/b/c/tc3_request",
		"TC3-HMAC-SHA256 Credential=a/b/tc3_request, SignedHeaders=content-type;host, Signature=ab",
		"TC3-HMAC-SHA256 Credential=a/b/c/other, SignedHeaders=content-type;host, Signature=ab",
		"TC3-HMAC-SHA256 Credential=/b/c/tc3_request, SignedHeaders=content-type;host, Signature=ab",
		"TC3-HMAC-SHA256 Credential=a/b/c/tc3_request, garbage, Signature=ab",
	} {
		_, err := Parse(h)
		assert.ErrorIs(t, err, ErrMalformed, "header %q", h)
	}
}

func TestUnsignedPayloadIgnoresTheBody(t *testing.T) {
	r, key := docExample()
	r.UnsignedPayload = true
	sig := Signature(key, r)
	r.Payload = []byte(`{"something":"else"}`)
	assert.True(t, Verify(key, r, sig), "the body is not covered")
	r.UnsignedPayload = false
	assert.False(t, Verify(key, r, sig))
}
