package instancelookup

import (
	"context"
	"sync"
	"time"
)

// batcher coalesces the lookups of one kind (ids or private IPs) that arrive within window
// into one fetch of up to MaxBatch keys. Every caller of a batch gets the same answer,
// made after it asked.
type batcher struct {
	window  time.Duration
	timeout time.Duration
	fetch   func(ctx context.Context, keys []string) (map[string]Instance, error)

	mu      sync.Mutex
	pending *batch
}

type batch struct {
	keys  []string
	seen  map[string]bool
	done  chan struct{}
	found map[string]Instance
	err   error
}

// get waits for the batch that carries key and returns key's instance, ErrNotFound, or
// the batch's error.
func (b *batcher) get(ctx context.Context, key string) (Instance, error) {
	b.mu.Lock()
	bt := b.pending
	if bt == nil {
		bt = &batch{seen: map[string]bool{}, done: make(chan struct{})}
		b.pending = bt
		time.AfterFunc(b.window, func() { b.flush(bt) })
	}
	if !bt.seen[key] {
		bt.seen[key] = true
		bt.keys = append(bt.keys, key)
	}
	if len(bt.keys) >= MaxBatch {
		// Full: send it now; the timer's flush finds it gone and does nothing.
		b.pending = nil
		go b.run(bt)
	}
	b.mu.Unlock()

	select {
	case <-bt.done:
	case <-ctx.Done():
		return Instance{}, ctx.Err()
	}
	if bt.err != nil {
		return Instance{}, bt.err
	}
	inst, ok := bt.found[key]
	if !ok {
		return Instance{}, ErrNotFound
	}
	return inst, nil
}

func (b *batcher) flush(bt *batch) {
	b.mu.Lock()
	if b.pending != bt {
		b.mu.Unlock()
		return
	}
	b.pending = nil
	b.mu.Unlock()
	b.run(bt)
}

// run fetches a batch. It does not use any one caller's context: the callers share the
// answer, and one of them giving up must not fail the others.
func (b *batcher) run(bt *batch) {
	ctx, cancel := context.WithTimeout(context.Background(), b.timeout)
	defer cancel()
	bt.found, bt.err = b.fetch(ctx, bt.keys)
	close(bt.done)
}
