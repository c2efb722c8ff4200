// Package fakecloudtest holds helpers shared by the tests of fakecloud's service modules.
// It is imported only from tests.
package fakecloudtest

import (
	"sync"
	"time"
)

// Clock is a settable clock for fakecloud.Config.Clock and the client's signer, so a test
// can walk a state machine forward without sleeping.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// NewClock starts at a fixed instant so that failures reproduce.
func NewClock() *Clock { return &Clock{now: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)} }

// Now reads the clock.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}
