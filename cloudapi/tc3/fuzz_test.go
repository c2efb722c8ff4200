package tc3

import (
	"testing"
	"time"
)

// FuzzVerify feeds arbitrary Authorization headers, bodies and hosts to the server-side
// path (Parse then Verify). It must never panic, and only the true signature verifies.
func FuzzVerify(f *testing.F) {
	r, key := docExample()
	f.Add(Authorization("AKIDz8krbsJ5yKBZQpn74WFkmLPx3*******", key, r), string(r.Payload), r.Host, int64(1551113065))
	f.Add("TC3-HMAC-SHA256 Credential=a/2019-02-25/cvm/tc3_request, SignedHeaders=content-type;host, Signature=00", "{}", "h", int64(0))
	f.Add("TC3-HMAC-SHA256 Credential==, SignedHeaders==, Signature==", "", "", int64(-1))
	f.Fuzz(func(t *testing.T, header, body, host string, ts int64) {
		c, err := Parse(header)
		if err != nil {
			return
		}
		req := Request{Method: "POST", ContentType: "application/json", Host: host, Payload: []byte(body), Service: c.Service, Timestamp: time.Unix(ts, 0)}
		ok := Verify(key, req, c.Signature)
		if ok != (Signature(key, req) == c.Signature) {
			t.Fatalf("Verify disagrees with Signature for %q", header)
		}
	})
}
