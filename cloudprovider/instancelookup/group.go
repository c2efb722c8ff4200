package instancelookup

import (
	"context"
	"fmt"
	"sync"
)

// group runs the Lookup's goroutines (listing walks, batches) under the context its owner
// gave New, and lets the owner wait for all of them after it cancelled that context. No
// goroutine starts once the context is done or wait has begun.
type group struct {
	ctx context.Context

	mu      sync.Mutex
	waiting bool
	wg      sync.WaitGroup
}

// goFunc starts f(ctx) and reports whether it did.
func (g *group) goFunc(f func(ctx context.Context)) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.waiting || g.ctx.Err() != nil {
		return false
	}
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		f(g.ctx)
	}()
	return true
}

// wait blocks until every goroutine started has returned.
func (g *group) wait() {
	g.mu.Lock()
	g.waiting = true
	g.mu.Unlock()
	g.wg.Wait()
}

// stopped is the error of a lookup that cannot start its work.
func (g *group) stopped() error {
	if err := g.ctx.Err(); err != nil {
		return fmt.Errorf("%w: %w", ErrStopped, err)
	}
	return ErrStopped
}
