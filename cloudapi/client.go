package cloudapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"reflect"
	"strconv"
	"sync"
	"time"

	"github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"
	"github.com/google/uuid"
	"golang.org/x/time/rate"

	"github.com/stratus-cloud/stratus/cloudapi/tc3"
)

// Operation names one action of one service.
type Operation struct {
	Service string // "cvm", "vpc", "clb", "cbs"
	Version string // "2017-03-12", ...
	Action  string // "DescribeInstances"
}

// Config configures a Client. Zero values take the defaults documented per field.
type Config struct {
	// Endpoint is the base URL of the API, for example "http://127.0.0.1:8090" for
	// fakecloud. Empty means the real cloud: https://<service>.tencentcloudapi.com.
	Endpoint    string
	Region      string
	Credentials Credentials
	// HTTPClient sends the requests; nil means a client with sane transport timeouts.
	HTTPClient *http.Client
	// AttemptTimeout bounds one HTTP attempt (default 30s); the caller's context bounds
	// the whole call including retries.
	AttemptTimeout time.Duration
	// MaxAttempts is the number of tries for a retryable failure (default 5; 1 = no retry).
	MaxAttempts int
	// BackoffBase and BackoffMax shape the jittered exponential backoff (100ms, 5s).
	BackoffBase, BackoffMax time.Duration
	// RateLimit is the client-side budget per action in requests per second (default 20,
	// negative means unlimited); RateBurst its burst (default = RateLimit).
	RateLimit float64
	RateBurst int
	// Hooks observe every attempt.
	Hooks []CallHook
	// Language is sent as X-TC-Language when set ("en-US", "zh-CN").
	Language string
	// Now is the clock used for signing (tests move it to exercise SignatureExpire).
	Now func() time.Time
}

// Client sends signed API 3.0 requests. It is safe for concurrent use.
type Client struct {
	cfg  Config
	http *http.Client

	mu       sync.Mutex
	limiters map[string]*rate.Limiter
}

// New validates cfg and returns a Client.
func New(cfg Config) (*Client, error) {
	if err := cfg.Credentials.Validate(); err != nil {
		return nil, fmt.Errorf("cloudapi: %w", err)
	}
	if cfg.Region == "" {
		return nil, errors.New("cloudapi: region is empty")
	}
	if cfg.Endpoint != "" {
		u, err := url.Parse(cfg.Endpoint)
		if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
			return nil, fmt.Errorf("cloudapi: endpoint %q is not an http(s) URL", cfg.Endpoint)
		}
	}
	if cfg.AttemptTimeout <= 0 {
		cfg.AttemptTimeout = 30 * time.Second
	}
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = 5
	}
	if cfg.BackoffBase <= 0 {
		cfg.BackoffBase = 100 * time.Millisecond
	}
	if cfg.BackoffMax <= 0 {
		cfg.BackoffMax = 5 * time.Second
	}
	if cfg.RateLimit == 0 {
		cfg.RateLimit = 20
	}
	if cfg.RateBurst <= 0 {
		cfg.RateBurst = max(1, int(cfg.RateLimit))
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	hc := cfg.HTTPClient
	if hc == nil {
		hc = &http.Client{Transport: &http.Transport{
			Proxy:               http.ProxyFromEnvironment,
			MaxIdleConnsPerHost: 64,
			IdleConnTimeout:     90 * time.Second,
			TLSHandshakeTimeout: 10 * time.Second,
		}}
	}
	return &Client{cfg: cfg, http: hc, limiters: map[string]*rate.Limiter{}}, nil
}

// Region is the region every request is sent to.
func (c *Client) Region() string { return c.cfg.Region }

// Idempotent is implemented by create requests that carry a ClientToken (through a
// pointer receiver). Invoke gives a request with an empty token a fresh one, once per call:
// every retry of that call carries the same token, so the call creates at most one
// resource. The token is set on a copy: the caller's request value is never written to,
// so reusing it for a second, intended create gets a new token. A caller that wants two
// calls to be one create (a retry across a restart) sets ClientToken itself.
type Idempotent interface {
	ClientTokenField() *string
}

// Invoke sends in as op and decodes the answer into out (a pointer to the response type).
func (c *Client) Invoke(ctx context.Context, op Operation, in, out any) error {
	stack := middleware.NewStack(op.Action, smithyhttp.NewStackRequest)
	if err := c.buildStack(stack, op, out); err != nil {
		return fmt.Errorf("%s: build middleware stack: %w", op.Action, err)
	}
	h := middleware.DecorateHandler(smithyhttp.NewClientHandlerWithOptions(c.http), stack)
	_, _, err := h.Handle(ctx, in)
	return err
}

func (c *Client) buildStack(s *middleware.Stack, op Operation, out any) error {
	return errors.Join(
		s.Initialize.Add(middleware.InitializeMiddlewareFunc("ClientToken", clientTokenMiddleware), middleware.After),
		s.Serialize.Add(middleware.SerializeMiddlewareFunc("JSONSerialize", c.serialize(op)), middleware.After),
		// Order matters: retry wraps everything so each attempt is rate limited and signed
		// afresh (a retried request carries a new timestamp).
		s.Finalize.Add(middleware.FinalizeMiddlewareFunc("Retry", c.retry(op)), middleware.After),
		s.Finalize.Add(middleware.FinalizeMiddlewareFunc("RateLimit", c.rateLimit(op)), middleware.After),
		s.Finalize.Add(middleware.FinalizeMiddlewareFunc("TC3Sign", c.sign(op)), middleware.After),
		s.Finalize.Add(middleware.FinalizeMiddlewareFunc("Observe", c.observe(op)), middleware.After),
		s.Deserialize.Add(middleware.DeserializeMiddlewareFunc("EnvelopeDeserialize", deserialize(op, out)), middleware.After),
	)
}

func clientTokenMiddleware(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
	if idem, ok := in.Parameters.(Idempotent); ok {
		if tok := idem.ClientTokenField(); tok != nil && *tok == "" {
			cp, ok := shallowCopy(in.Parameters).(Idempotent)
			if !ok {
				return middleware.InitializeOutput{}, middleware.Metadata{}, fmt.Errorf("ClientToken: cannot copy request %T", in.Parameters)
			}
			*cp.ClientTokenField() = uuid.NewString()
			in.Parameters = cp
		}
	}
	return next.HandleInitialize(ctx, in)
}

// shallowCopy returns a pointer to a copy of the struct p points to, or nil when p is not
// a non-nil pointer to a struct. The token is a top-level string, so a shallow copy is
// enough to set it without touching the caller's value.
func shallowCopy(p any) any {
	v := reflect.ValueOf(p)
	if v.Kind() != reflect.Pointer || v.IsNil() || v.Elem().Kind() != reflect.Struct {
		return nil
	}
	cp := reflect.New(v.Elem().Type())
	cp.Elem().Set(v.Elem())
	return cp.Interface()
}

type payloadKey struct{}
type attemptKey struct{}

func (c *Client) endpoint(service string) (*url.URL, error) {
	if c.cfg.Endpoint == "" {
		return url.Parse("https://" + service + ".tencentcloudapi.com/")
	}
	u, err := url.Parse(c.cfg.Endpoint)
	if err != nil {
		return nil, err
	}
	u.Path = "/"
	return u, nil
}

func (c *Client) serialize(op Operation) func(context.Context, middleware.SerializeInput, middleware.SerializeHandler) (middleware.SerializeOutput, middleware.Metadata, error) {
	return func(ctx context.Context, in middleware.SerializeInput, next middleware.SerializeHandler) (middleware.SerializeOutput, middleware.Metadata, error) {
		req, ok := in.Request.(*smithyhttp.Request)
		if !ok {
			return middleware.SerializeOutput{}, middleware.Metadata{}, fmt.Errorf("%s: unexpected transport request %T", op.Action, in.Request)
		}
		params := in.Parameters
		if params == nil {
			params = struct{}{}
		}
		body, err := json.Marshal(params)
		if err != nil {
			return middleware.SerializeOutput{}, middleware.Metadata{}, fmt.Errorf("%s: encode request: %w", op.Action, err)
		}
		u, err := c.endpoint(op.Service)
		if err != nil {
			return middleware.SerializeOutput{}, middleware.Metadata{}, fmt.Errorf("%s: endpoint: %w", op.Action, err)
		}
		req.Method = http.MethodPost
		req.URL = u
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-TC-Action", op.Action)
		req.Header.Set("X-TC-Version", op.Version)
		req.Header.Set("X-TC-Region", c.cfg.Region)
		if c.cfg.Language != "" {
			req.Header.Set("X-TC-Language", c.cfg.Language)
		}
		if c.cfg.Credentials.Token != "" {
			req.Header.Set("X-TC-Token", c.cfg.Credentials.Token)
		}
		req.ContentLength = int64(len(body))
		// Hide bytes.Reader's WriteTo: smithy's body wrapper turns it into an io.EOF
		// write error when the body is closed as the answer arrives, and net/http then
		// drops the connection mid-read. Seek stays, so retries can rewind.
		if in.Request, err = req.SetStream(struct{ io.ReadSeeker }{bytes.NewReader(body)}); err != nil {
			return middleware.SerializeOutput{}, middleware.Metadata{}, fmt.Errorf("%s: set body: %w", op.Action, err)
		}
		ctx = middleware.WithStackValue(ctx, payloadKey{}, body)
		return next.HandleSerialize(ctx, in)
	}
}

// backoff is "full jitter": uniform in [0, min(max, base*2^attempt)).
func (c *Client) backoff(attempt int) time.Duration {
	ceil := c.cfg.BackoffBase << min(attempt, 20)
	if ceil > c.cfg.BackoffMax || ceil <= 0 {
		ceil = c.cfg.BackoffMax
	}
	return time.Duration(rand.Int64N(int64(ceil)) + 1)
}

func (c *Client) retry(op Operation) func(context.Context, middleware.FinalizeInput, middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
	return func(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
		base, ok := in.Request.(*smithyhttp.Request)
		if !ok {
			return middleware.FinalizeOutput{}, middleware.Metadata{}, fmt.Errorf("%s: unexpected transport request %T", op.Action, in.Request)
		}
		var prev error // the previous attempt's failure
		for attempt := 1; ; attempt++ {
			req := base.Clone()
			if err := req.RewindStream(); err != nil {
				return middleware.FinalizeOutput{}, middleware.Metadata{}, fmt.Errorf("%s: rewind body: %w", op.Action, err)
			}
			actx, cancel := context.WithTimeout(ctx, c.cfg.AttemptTimeout)
			actx = middleware.WithStackValue(actx, attemptKey{}, attempt)
			out, md, err := next.HandleFinalize(actx, middleware.FinalizeInput{Request: req})
			cancel()
			if err != nil && prev != nil && (errors.Is(err, errLocalRateLimit) || ctx.Err() != nil) {
				// The caller's deadline ended the retries, in the client's own rate limit
				// or during the attempt: the cloud's last answer is the error worth
				// reporting, with why there was no other try.
				return out, md, fmt.Errorf("%w (gave up at attempt %d: %w)", prev, attempt, err)
			}
			prev = err
			// An attempt that hit its own timeout (not the caller's) is worth another try.
			again := retryable(err) || (errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil)
			if err == nil || !again || attempt >= c.cfg.MaxAttempts || ctx.Err() != nil {
				return out, md, err
			}
			delay := c.backoff(attempt)
			if dl, ok := ctx.Deadline(); ok && time.Until(dl) < delay {
				return out, md, err
			}
			t := time.NewTimer(delay)
			select {
			case <-ctx.Done():
				t.Stop()
				return out, md, fmt.Errorf("%w (gave up after attempt %d: %w)", err, attempt, ctx.Err())
			case <-t.C:
			}
		}
	}
}

func (c *Client) limiter(action string) *rate.Limiter {
	c.mu.Lock()
	defer c.mu.Unlock()
	l, ok := c.limiters[action]
	if !ok {
		l = rate.NewLimiter(rate.Limit(c.cfg.RateLimit), c.cfg.RateBurst)
		c.limiters[action] = l
	}
	return l
}

// errLocalRateLimit marks a call the client's own per-action budget did not let through.
var errLocalRateLimit = errors.New("client-side rate limit")

func (c *Client) rateLimit(op Operation) func(context.Context, middleware.FinalizeInput, middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
	return func(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
		if c.cfg.RateLimit > 0 {
			if err := c.limiter(op.Action).Wait(ctx); err != nil {
				return middleware.FinalizeOutput{}, middleware.Metadata{}, fmt.Errorf("%s: %w: %w", op.Action, errLocalRateLimit, err)
			}
		}
		return next.HandleFinalize(ctx, in)
	}
}

func (c *Client) sign(op Operation) func(context.Context, middleware.FinalizeInput, middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
	return func(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
		req := in.Request.(*smithyhttp.Request)
		body, _ := middleware.GetStackValue(ctx, payloadKey{}).([]byte)
		now := c.cfg.Now()
		req.Header.Set("X-TC-Timestamp", strconv.FormatInt(now.Unix(), 10))
		req.Header.Set("Authorization", tc3.Authorization(c.cfg.Credentials.SecretID, c.cfg.Credentials.SecretKey, tc3.Request{
			Method:      http.MethodPost,
			ContentType: req.Header.Get("Content-Type"),
			Host:        req.URL.Host,
			Payload:     body,
			Service:     op.Service,
			Timestamp:   now,
		}))
		return next.HandleFinalize(ctx, in)
	}
}

func (c *Client) observe(op Operation) func(context.Context, middleware.FinalizeInput, middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
	return func(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
		if len(c.cfg.Hooks) == 0 {
			return next.HandleFinalize(ctx, in)
		}
		start := time.Now()
		out, md, err := next.HandleFinalize(ctx, in)
		attempt, _ := middleware.GetStackValue(ctx, attemptKey{}).(int)
		call := Call{Service: op.Service, Action: op.Action, Attempt: attempt, Duration: time.Since(start), Err: err}
		if err != nil {
			call.Code = ErrorCode(err)
			if call.Code == "" {
				call.Code = "TransportError"
			}
		}
		for _, h := range c.cfg.Hooks {
			h(call)
		}
		return out, md, err
	}
}

// maxResponse bounds what we read from one answer; the largest real page is far smaller.
const maxResponse = 64 << 20

type envelope struct {
	Response json.RawMessage `json:"Response"`
}

type envelopeMeta struct {
	Error *struct {
		Code    string `json:"Code"`
		Message string `json:"Message"`
	} `json:"Error"`
	RequestID string `json:"RequestId"`
}

func deserialize(op Operation, out any) func(context.Context, middleware.DeserializeInput, middleware.DeserializeHandler) (middleware.DeserializeOutput, middleware.Metadata, error) {
	return func(ctx context.Context, in middleware.DeserializeInput, next middleware.DeserializeHandler) (middleware.DeserializeOutput, middleware.Metadata, error) {
		dout, md, err := next.HandleDeserialize(ctx, in)
		if err != nil {
			if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
				return dout, md, fmt.Errorf("%s: %w", op.Action, err)
			}
			return dout, md, &TransportError{Action: op.Action, Err: err}
		}
		resp, ok := dout.RawResponse.(*smithyhttp.Response)
		if !ok {
			return dout, md, &TransportError{Action: op.Action, Err: fmt.Errorf("unexpected response type %T", dout.RawResponse)}
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
		if err != nil {
			return dout, md, &TransportError{Action: op.Action, Err: fmt.Errorf("read response: %w", err)}
		}
		var env envelope
		var meta envelopeMeta
		if err := json.Unmarshal(body, &env); err != nil || len(env.Response) == 0 {
			return dout, md, &TransportError{Action: op.Action, Err: fmt.Errorf("HTTP %d: answer is not an API envelope: %.200q", resp.StatusCode, body)}
		}
		if err := json.Unmarshal(env.Response, &meta); err != nil {
			return dout, md, &TransportError{Action: op.Action, Err: fmt.Errorf("decode envelope: %w", err)}
		}
		if meta.Error != nil {
			return dout, md, &APIError{Service: op.Service, Action: op.Action, Code: meta.Error.Code, Message: meta.Error.Message, RequestID: meta.RequestID}
		}
		if out != nil {
			if err := json.Unmarshal(env.Response, out); err != nil {
				return dout, md, fmt.Errorf("%s: decode response (RequestId %s): %w", op.Action, meta.RequestID, err)
			}
		}
		dout.Result = out
		return dout, md, nil
	}
}
