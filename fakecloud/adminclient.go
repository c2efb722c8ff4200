package fakecloud

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// AdminClient talks to a fakecloud's admin endpoint from another process (e2e tests,
// benchmarks, the sandbox).
type AdminClient struct {
	BaseURL string // "http://127.0.0.1:8090"
	HTTP    *http.Client
}

func (a *AdminClient) do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimSuffix(a.BaseURL, "/")+adminPrefix+path, body)
	if err != nil {
		return err
	}
	hc := a.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("fakecloud admin %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("fakecloud admin %s %s: HTTP %d: %s", method, path, resp.StatusCode, b)
	}
	if out != nil {
		return json.Unmarshal(b, out)
	}
	return nil
}

// AddFault installs a fault rule.
func (a *AdminClient) AddFault(ctx context.Context, r FaultRule) error {
	return a.do(ctx, http.MethodPost, "faults", r, nil)
}

// ClearFaults removes every fault rule.
func (a *AdminClient) ClearFaults(ctx context.Context) error {
	return a.do(ctx, http.MethodDelete, "faults", nil, nil)
}

// Calls returns per-action call counts.
func (a *AdminClient) Calls(ctx context.Context) (map[string]int, error) {
	var m map[string]int
	return m, a.do(ctx, http.MethodGet, "calls", nil, &m)
}

// ResetCalls zeroes the call counts.
func (a *AdminClient) ResetCalls(ctx context.Context) error {
	return a.do(ctx, http.MethodDelete, "calls", nil, nil)
}

// Reset restores the seeded world.
func (a *AdminClient) Reset(ctx context.Context) error {
	return a.do(ctx, http.MethodPost, "reset", nil, nil)
}

// State dumps every table.
func (a *AdminClient) State(ctx context.Context) (map[string]map[string]json.RawMessage, error) {
	var m map[string]map[string]json.RawMessage
	return m, a.do(ctx, http.MethodGet, "state", nil, &m)
}

// SetRateLimit changes an action's limit ("" = the default).
func (a *AdminClient) SetRateLimit(ctx context.Context, action string, perSecond float64) error {
	return a.do(ctx, http.MethodPost, "ratelimit", map[string]any{"action": action, "perSecond": perSecond}, nil)
}
