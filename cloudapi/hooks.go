package cloudapi

import (
	"maps"
	"sync"
	"time"
)

// Call describes one HTTP attempt of one action, as seen by a CallHook.
type Call struct {
	Service  string
	Action   string
	Attempt  int           // 1 for the first try
	Duration time.Duration // send to decoded answer
	Code     string        // "" on success, the API error code, or "TransportError"
	Err      error
}

// CallHook observes every attempt. Prometheus metrics, benchmarks and tests count
// calls through it; it must be cheap and safe for concurrent use.
type CallHook func(Call)

// CallCounter counts attempts per action. Its Hook is a CallHook.
type CallCounter struct {
	mu     sync.Mutex
	counts map[string]int
}

// Hook records c.
func (cc *CallCounter) Hook(c Call) {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	if cc.counts == nil {
		cc.counts = map[string]int{}
	}
	cc.counts[c.Action]++
}

// Count returns the attempts recorded for action.
func (cc *CallCounter) Count(action string) int {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	return cc.counts[action]
}

// Snapshot returns a copy of all counts.
func (cc *CallCounter) Snapshot() map[string]int {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	return maps.Clone(cc.counts)
}

// Reset forgets all counts.
func (cc *CallCounter) Reset() {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	cc.counts = nil
}
