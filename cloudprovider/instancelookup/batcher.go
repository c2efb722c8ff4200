package instancelookup

import (
	"context"
	"sync"
	"time"
)

// batcher coalesces the lookups of one kind that arrive within window into one fetch of
// at most size distinct keys; size is the API's limit for that kind of query (ids per
// call, values per filter, ...), so each kind batches up to its own limit. Every caller of
// a batch gets the same answer, fetched after it asked. The batch runs in a goroutine of
// the group, under the owner's context, never under one caller's: the callers share the
// answer, and one of them giving up must not fail the others.
type batcher[K comparable, V any] struct {
	size    int
	window  time.Duration
	timeout time.Duration
	group   *group
	fetch   func(ctx context.Context, keys []K) (map[K]V, error)

	mu      sync.Mutex
	pending *batch[K, V]
}

type batch[K comparable, V any] struct {
	keys  []K
	seen  map[K]bool
	full  chan struct{} // closed when size keys joined: send now
	done  chan struct{} // closed when found and err are set
	found map[K]V
	err   error
}

// get waits for the batch that carries key and returns key's value, ErrNotFound when the
// batch's answer has none, or the batch's error.
func (b *batcher[K, V]) get(ctx context.Context, key K) (V, error) {
	var zero V
	b.mu.Lock()
	bt := b.pending
	if bt == nil {
		bt = &batch[K, V]{seen: map[K]bool{}, full: make(chan struct{}), done: make(chan struct{})}
		if !b.group.goFunc(func(ctx context.Context) { b.run(ctx, bt) }) {
			b.mu.Unlock()
			return zero, b.group.stopped()
		}
		b.pending = bt
	}
	if !bt.seen[key] {
		bt.seen[key] = true
		bt.keys = append(bt.keys, key)
		if len(bt.keys) >= b.size {
			b.pending = nil
			close(bt.full)
		}
	}
	b.mu.Unlock()

	select {
	case <-bt.done:
	case <-ctx.Done():
		return zero, ctx.Err()
	}
	if bt.err != nil {
		return zero, bt.err
	}
	v, ok := bt.found[key]
	if !ok {
		return zero, ErrNotFound
	}
	return v, nil
}

// run waits for the window to pass (or the batch to fill, or the owner to stop), closes
// the batch to newcomers and fetches it.
func (b *batcher[K, V]) run(ctx context.Context, bt *batch[K, V]) {
	t := time.NewTimer(b.window)
	defer t.Stop()
	select {
	case <-t.C:
	case <-bt.full:
	case <-ctx.Done():
	}
	b.mu.Lock()
	if b.pending == bt {
		b.pending = nil
	}
	b.mu.Unlock()
	defer close(bt.done)
	if ctx.Err() != nil {
		bt.err = b.group.stopped()
		return
	}
	fctx, cancel := context.WithTimeout(ctx, b.timeout)
	defer cancel()
	bt.found, bt.err = b.fetch(fctx, bt.keys)
}
