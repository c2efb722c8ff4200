package qcloud

import (
	"context"
	"sync"
)

// lifecycle owns the context the provider's background work runs under: the instance
// lookup's listing walks and batches, and the event broadcaster. The provider cancels it
// when the cloud-controller-manager's stop channel closes (Initialize) or Stop is
// called, and no goroutine of the provider outlives Stop.
type lifecycle struct {
	ctx    context.Context
	cancel context.CancelFunc

	mu      sync.Mutex
	stopped bool
	wg      sync.WaitGroup
}

func newLifecycle() *lifecycle {
	ctx, cancel := context.WithCancel(context.Background())
	return &lifecycle{ctx: ctx, cancel: cancel}
}

// Stop ends the provider's background work and returns once all of it has returned.
// Lookups after Stop fail. It is safe to call more than once.
func (c *Cloud) Stop() {
	c.life.cancel()
	c.lookup.Wait()
	c.life.mu.Lock()
	c.life.stopped = true
	c.life.mu.Unlock()
	c.life.wg.Wait()
}

// onStop runs f, if any, when stop closes or the provider is stopped, whichever comes
// first; stop closing stops the provider too.
func (c *Cloud) onStop(stop <-chan struct{}, f func()) {
	c.life.mu.Lock()
	defer c.life.mu.Unlock()
	if c.life.stopped {
		if f != nil {
			f()
		}
		return
	}
	c.life.wg.Add(1)
	go func() {
		defer c.life.wg.Done()
		select {
		case <-stop:
			c.life.cancel()
			c.lookup.Wait()
		case <-c.life.ctx.Done():
		}
		if f != nil {
			f()
		}
	}()
}
