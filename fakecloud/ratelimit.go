package fakecloud

import (
	"sync"

	"golang.org/x/time/rate"
)

// DefaultRateLimit is the per-action budget of the real API (requests per second).
const DefaultRateLimit = 20

// rateLimits is a token bucket per action, like the real API's per-action limits.
type rateLimits struct {
	mu        sync.Mutex
	def       float64
	perAction map[string]float64
	buckets   map[string]*rate.Limiter
}

func newRateLimits(def float64, perAction map[string]float64) *rateLimits {
	if def == 0 {
		def = DefaultRateLimit
	}
	return &rateLimits{def: def, perAction: perAction, buckets: map[string]*rate.Limiter{}}
}

// allow reports whether action may run now. A negative limit means unlimited.
func (rl *rateLimits) allow(action string) bool {
	rl.mu.Lock()
	b, ok := rl.buckets[action]
	if !ok {
		limit := rl.def
		if v, ok := rl.perAction[action]; ok {
			limit = v
		}
		if limit < 0 {
			b = rate.NewLimiter(rate.Inf, 1)
		} else {
			b = rate.NewLimiter(rate.Limit(limit), max(1, int(limit)))
		}
		rl.buckets[action] = b
	}
	rl.mu.Unlock()
	return b.Allow()
}

// set changes action's limit ("" = the default for every action without its own).
func (rl *rateLimits) set(action string, limit float64) {
	rl.mu.Lock()
	defer rl.mu.Unlock()
	if action == "" {
		rl.def = limit
	} else {
		if rl.perAction == nil {
			rl.perAction = map[string]float64{}
		}
		rl.perAction[action] = limit
	}
	rl.buckets = map[string]*rate.Limiter{}
}
