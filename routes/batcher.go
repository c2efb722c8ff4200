package routes

import (
	"context"
	"sync"
	"time"
)

// batcher coalesces the items submitted within window into one run of up to max items;
// each submitter gets its own item's result. max is a parameter so that each kind of call
// batches up to its own API limit; max 1 sends every item on its own, at once.
type batcher[T any] struct {
	max     int
	window  time.Duration
	timeout time.Duration
	// run handles one batch and returns one error per item, in order.
	run func(ctx context.Context, items []T) []error

	mu      sync.Mutex
	pending *batch[T]
}

type batch[T any] struct {
	items   []T
	results []error
	done    chan struct{}
}

// do submits item and waits for its result. A caller that gives up (ctx) gets ctx's
// error; the batch still runs for the others, under its own timeout, since one caller
// leaving must not fail the rest.
func (b *batcher[T]) do(ctx context.Context, item T) error {
	b.mu.Lock()
	bt := b.pending
	if bt == nil {
		bt = &batch[T]{done: make(chan struct{})}
		b.pending = bt
		if b.max > 1 {
			time.AfterFunc(b.window, func() { b.flush(bt) })
		}
	}
	idx := len(bt.items)
	bt.items = append(bt.items, item)
	if len(bt.items) >= b.max {
		b.pending = nil
		go b.exec(bt)
	}
	b.mu.Unlock()

	select {
	case <-bt.done:
		return bt.results[idx]
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (b *batcher[T]) flush(bt *batch[T]) {
	b.mu.Lock()
	if b.pending != bt {
		b.mu.Unlock()
		return
	}
	b.pending = nil
	b.mu.Unlock()
	b.exec(bt)
}

func (b *batcher[T]) exec(bt *batch[T]) {
	ctx, cancel := context.WithTimeout(context.Background(), b.timeout)
	defer cancel()
	bt.results = b.run(ctx, bt.items)
	close(bt.done)
}
