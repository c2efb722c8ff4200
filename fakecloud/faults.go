package fakecloud

import (
	"context"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/stratus-cloud/stratus/cloudapi"
	"github.com/stratus-cloud/stratus/fakecloud/api"
)

// FaultRule makes calls slow or failing. Action "" matches every action.
type FaultRule struct {
	Action string `json:"action,omitempty"`
	// Latency is added before the call is handled.
	LatencyMs int `json:"latencyMs,omitempty"`
	// ErrorRate (0..1) fails that share of matching calls at random.
	ErrorRate float64 `json:"errorRate,omitempty"`
	// FailNext fails exactly the next N matching calls, then the rule is spent.
	FailNext int `json:"failNext,omitempty"`
	// Code and Message of the injected error (default InternalError).
	Code    string `json:"code,omitempty"`
	Message string `json:"message,omitempty"`
}

type faults struct {
	mu    sync.Mutex
	rules []*FaultRule
}

func (f *faults) add(r FaultRule) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rules = append(f.rules, &r)
}

func (f *faults) clear() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rules = nil
}

func (f *faults) list() []FaultRule {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]FaultRule, 0, len(f.rules))
	for _, r := range f.rules {
		out = append(out, *r)
	}
	return out
}

// apply sleeps for the matching latency and returns the injected error, if any. Spent
// FailNext rules are dropped so that a test's "fail the next 3" means exactly 3.
func (f *faults) apply(ctx context.Context, action string) error {
	var latency time.Duration
	var fail *FaultRule
	f.mu.Lock()
	kept := f.rules[:0]
	for _, r := range f.rules {
		if r.Action != "" && r.Action != action {
			kept = append(kept, r)
			continue
		}
		latency += time.Duration(r.LatencyMs) * time.Millisecond
		if fail == nil {
			switch {
			case r.FailNext > 0:
				r.FailNext--
				fail = r
				if r.FailNext == 0 && r.LatencyMs == 0 && r.ErrorRate == 0 {
					continue // spent
				}
			case r.ErrorRate > 0 && rand.Float64() < r.ErrorRate:
				fail = r
			}
		}
		kept = append(kept, r)
	}
	f.rules = kept
	f.mu.Unlock()
	if latency > 0 {
		if err := sleepCtx(ctx, latency); err != nil {
			return api.Errorf(cloudapi.CodeInternalError, "request cancelled while delayed: %v", err)
		}
	}
	if fail == nil {
		return nil
	}
	code, msg := fail.Code, fail.Message
	if code == "" {
		code = cloudapi.CodeInternalError
	}
	if msg == "" {
		msg = "fault injected by fakecloud for " + action
	}
	return &api.Error{Code: code, Message: msg}
}
