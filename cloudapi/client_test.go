package cloudapi

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stratus-cloud/stratus/cloudapi/tc3"
)

type createReq struct {
	Name        string `json:"Name"`
	ClientToken string `json:"ClientToken,omitempty"`
}

func (r *createReq) ClientTokenField() *string { return &r.ClientToken }

type seen struct {
	body      []byte
	timestamp string
	authz     string
	headers   http.Header
	host      string
}

// recorded is what a scripted server saw, safe to read while a cancelled attempt is
// still being served.
type recorded struct {
	mu  sync.Mutex
	got []seen
}

func (r *recorded) all() []seen {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.got)
}

// scripted answers each attempt with the next canned envelope and records what it got.
func scripted(t *testing.T, answers ...string) (*httptest.Server, *recorded) {
	t.Helper()
	rec := &recorded{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		rec.mu.Lock()
		rec.got = append(rec.got, seen{body: b, timestamp: r.Header.Get("X-TC-Timestamp"), authz: r.Header.Get("Authorization"), headers: r.Header.Clone(), host: r.Host})
		n := len(rec.got)
		rec.mu.Unlock()
		a := answers[min(n, len(answers))-1]
		if a == "hangup" {
			hj, _ := w.(http.Hijacker)
			conn, _, _ := hj.Hijack()
			conn.Close()
			return
		}
		_, _ = io.WriteString(w, a)
	}))
	t.Cleanup(srv.Close)
	return srv, rec
}

func testClient(t *testing.T, endpoint string, mut func(*Config)) *Client {
	cfg := Config{
		Endpoint:    endpoint,
		Region:      "ap-guangzhou",
		Credentials: Credentials{SecretID: "AKIDtest", SecretKey: "secret"},
		BackoffBase: time.Millisecond, BackoffMax: 2 * time.Millisecond,
	}
	if mut != nil {
		mut(&cfg)
	}
	c, err := New(cfg)
	require.NoError(t, err)
	return c
}

var opCreate = Operation{Service: "cvm", Version: "2017-03-12", Action: "Create"}

func TestRetriesKeepClientTokenAndResign(t *testing.T) {
	throttled := `{"Response":{"Error":{"Code":"RequestLimitExceeded","Message":"slow down"},"RequestId":"r1"}}`
	ok := `{"Response":{"Id":"x-1","RequestId":"r3"}}`
	srv, got := scripted(t, throttled, "hangup", ok)
	clock := time.Unix(1_800_000_000, 0)
	var mu sync.Mutex
	c := testClient(t, srv.URL, func(cfg *Config) {
		cfg.Now = func() time.Time { mu.Lock(); defer mu.Unlock(); clock = clock.Add(time.Second); return clock }
	})
	in := &createReq{Name: "a"}
	var out struct{ Id, RequestId string }
	require.NoError(t, c.Invoke(context.Background(), opCreate, in, &out))
	assert.Equal(t, "x-1", out.Id)
	assert.Equal(t, "r3", out.RequestId)
	require.Len(t, got.all(), 3)
	assert.Empty(t, in.ClientToken, "the caller's request is not written to")
	stamps := map[string]bool{}
	var token string
	for i, s := range got.all() {
		var body createReq
		require.NoError(t, json.Unmarshal(s.body, &body))
		if i == 0 {
			token = body.ClientToken
			require.NotEmpty(t, token, "an empty ClientToken is filled")
		}
		assert.Equal(t, token, body.ClientToken, "attempt %d carries the same token", i+1)
		stamps[s.timestamp] = true
		// Each attempt is correctly signed for its own timestamp.
		ts, _ := strconv.ParseInt(s.timestamp, 10, 64)
		cred, err := tc3.Parse(s.authz)
		require.NoError(t, err)
		assert.True(t, tc3.Verify("secret", tc3.Request{Method: "POST", ContentType: s.headers.Get("Content-Type"), Host: s.host, Payload: s.body, Service: "cvm", Timestamp: time.Unix(ts, 0)}, cred.Signature))
		assert.Equal(t, "Create", s.headers.Get("X-TC-Action"))
		assert.Equal(t, "2017-03-12", s.headers.Get("X-TC-Version"))
		assert.Equal(t, "ap-guangzhou", s.headers.Get("X-TC-Region"))
	}
	assert.Len(t, stamps, 3, "every attempt is signed with a fresh timestamp")
}

// TestClientTokenIsPerCall pins the ClientToken contract: one token per call, set on a
// copy, so that a request value reused for a second create makes a second resource, and
// a token the caller chose is sent unchanged.
func TestClientTokenIsPerCall(t *testing.T) {
	ok := `{"Response":{"RequestId":"r"}}`
	tokens := func(got []seen) []string {
		var out []string
		for _, s := range got {
			var body createReq
			require.NoError(t, json.Unmarshal(s.body, &body))
			out = append(out, body.ClientToken)
		}
		return out
	}
	t.Run("reused request gets a new token per call", func(t *testing.T) {
		srv, got := scripted(t, ok)
		c := testClient(t, srv.URL, nil)
		in := &createReq{Name: "a"}
		require.NoError(t, c.Invoke(context.Background(), opCreate, in, nil))
		require.NoError(t, c.Invoke(context.Background(), opCreate, in, nil))
		assert.Equal(t, &createReq{Name: "a"}, in, "the request value is untouched")
		tok := tokens(got.all())
		require.Len(t, tok, 2)
		assert.NotEmpty(t, tok[0])
		assert.NotEmpty(t, tok[1])
		assert.NotEqual(t, tok[0], tok[1], "a second, intended create is a new resource")
	})
	t.Run("caller's token is sent unchanged", func(t *testing.T) {
		srv, got := scripted(t, ok)
		c := testClient(t, srv.URL, nil)
		in := &createReq{Name: "a", ClientToken: "deploy-42"}
		require.NoError(t, c.Invoke(context.Background(), opCreate, in, nil))
		require.NoError(t, c.Invoke(context.Background(), opCreate, in, nil))
		assert.Equal(t, []string{"deploy-42", "deploy-42"}, tokens(got.all()))
		assert.Equal(t, "deploy-42", in.ClientToken)
	})
	t.Run("concurrent calls share one request value", func(t *testing.T) {
		// Run with -race: a middleware writing into the caller's value is a data race here.
		srv, got := scripted(t, ok)
		c := testClient(t, srv.URL, func(cfg *Config) { cfg.RateLimit = -1 })
		in := &createReq{Name: "a"}
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() { assert.NoError(t, c.Invoke(context.Background(), opCreate, in, nil)) })
		}
		wg.Wait()
		tok := tokens(got.all())
		require.Len(t, tok, 8)
		distinct := map[string]bool{}
		for _, s := range tok {
			distinct[s] = true
		}
		assert.Len(t, distinct, 8, "every call has its own token")
		assert.Empty(t, in.ClientToken)
	})
	t.Run("request without a token field gets none", func(t *testing.T) {
		srv, got := scripted(t, ok)
		c := testClient(t, srv.URL, nil)
		require.NoError(t, c.Invoke(context.Background(), opCreate, &struct{ Name string }{Name: "a"}, nil))
		require.Len(t, got.all(), 1)
		assert.JSONEq(t, `{"Name":"a"}`, string(got.all()[0].body))
	})
}

func TestNonRetryableAndExhaustedErrors(t *testing.T) {
	srv, got := scripted(t, `{"Response":{"Error":{"Code":"InvalidParameterValue.Duplicate","Message":"dup"},"RequestId":"r"}}`)
	c := testClient(t, srv.URL, nil)
	err := c.Invoke(context.Background(), opCreate, &createReq{Name: "a"}, nil)
	require.Error(t, err)
	assert.True(t, HasCode(err, CodeInvalidParameterValue))
	assert.True(t, IsInvalidInput(err))
	assert.False(t, IsThrottled(err))
	assert.Len(t, got.all(), 1)

	srv2, got2 := scripted(t, `{"Response":{"Error":{"Code":"InternalError","Message":"boom"},"RequestId":"r"}}`)
	c2 := testClient(t, srv2.URL, func(cfg *Config) { cfg.MaxAttempts = 3 })
	err = c2.Invoke(context.Background(), opCreate, &createReq{Name: "a"}, nil)
	var ae *APIError
	require.ErrorAs(t, err, &ae)
	assert.Equal(t, "InternalError", ae.Code)
	assert.Len(t, got2.all(), 3)
}

func TestNotAnEnvelopeIsATransportError(t *testing.T) {
	srv, got := scripted(t, `<html>502 Bad Gateway</html>`)
	c := testClient(t, srv.URL, func(cfg *Config) { cfg.MaxAttempts = 2 })
	err := c.Invoke(context.Background(), opCreate, &createReq{}, nil)
	var te *TransportError
	require.ErrorAs(t, err, &te)
	assert.Len(t, got.all(), 2, "transport errors are retried")
}

func TestDeadlineStopsRetries(t *testing.T) {
	srv, got := scripted(t, `{"Response":{"Error":{"Code":"RequestLimitExceeded","Message":"x"},"RequestId":"r"}}`)
	c := testClient(t, srv.URL, func(cfg *Config) {
		cfg.MaxAttempts = 1000
		cfg.BackoffBase, cfg.BackoffMax = 20*time.Millisecond, 50*time.Millisecond
	})
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	err := c.Invoke(ctx, opCreate, &createReq{}, nil)
	require.Error(t, err)
	assert.True(t, IsThrottled(err), "the last API error is kept: %v", err)
	// 300ms of 20-50ms backoffs allows a handful of attempts, never the 1000 configured.
	assert.Less(t, len(got.all()), 30)
}

func TestHooksSeeEveryAttempt(t *testing.T) {
	srv, _ := scripted(t, `{"Response":{"Error":{"Code":"InternalError","Message":"x"},"RequestId":"r"}}`, `{"Response":{"RequestId":"r"}}`)
	var calls []Call
	var mu sync.Mutex
	c := testClient(t, srv.URL, func(cfg *Config) {
		cfg.Hooks = []CallHook{func(c Call) { mu.Lock(); calls = append(calls, c); mu.Unlock() }}
	})
	require.NoError(t, c.Invoke(context.Background(), opCreate, &createReq{}, nil))
	require.Len(t, calls, 2)
	assert.Equal(t, 1, calls[0].Attempt)
	assert.Equal(t, "InternalError", calls[0].Code)
	assert.Equal(t, 2, calls[1].Attempt)
	assert.Empty(t, calls[1].Code)
	assert.Equal(t, "Create", calls[1].Action)
}

func TestConfigValidation(t *testing.T) {
	_, err := New(Config{Region: "r"})
	assert.ErrorContains(t, err, "secretId")
	_, err = New(Config{Credentials: Credentials{SecretID: "a", SecretKey: "b"}})
	assert.ErrorContains(t, err, "region")
	_, err = New(Config{Region: "r", Credentials: Credentials{SecretID: "a", SecretKey: "b"}, Endpoint: "ftp://x"})
	assert.ErrorContains(t, err, "endpoint")
}

func TestCredentialsNeverPrintTheKey(t *testing.T) {
	c := Credentials{SecretID: "AKIDabcdefgh", SecretKey: "topsecretvalue"}
	for _, s := range []string{c.String(), fmt.Sprintf("%v", c), fmt.Sprintf("%+v", c), fmt.Sprintf("%#v", c)} {
		assert.NotContains(t, s, "topsecretvalue")
	}
}

func TestErrorHelpers(t *testing.T) {
	nf := &APIError{Code: "InvalidInstanceId.NotFound"}
	assert.True(t, IsNotFound(nf))
	assert.True(t, IsNotFound(fmt.Errorf("wrapped: %w", &APIError{Code: "ResourceNotFound"})))
	assert.False(t, IsNotFound(&APIError{Code: "InvalidParameter"}))
	assert.False(t, IsNotFound(fmt.Errorf("plain")))
	assert.True(t, IsInUse(&APIError{Code: "ResourceInUse.Disk"}))
	assert.True(t, IsLimitExceeded(&APIError{Code: "LimitExceeded.InstanceAttachedDisk"}))
	assert.False(t, HasCode(&APIError{Code: "InternalErrorX"}, "InternalError"))
}
