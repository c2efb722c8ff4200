package cloudapi

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/aws/smithy-go/waiter"
)

// ErrWaitTimeout is wrapped by WaitFor's error when the wait ran out of time (its Timeout
// or the context's deadline) before the condition held.
var ErrWaitTimeout = errors.New("condition not reached in time")

// WaitOptions shapes a WaitFor loop. Zero values take the documented defaults.
type WaitOptions struct {
	// What names the awaited condition in errors ("disk disk-123 ATTACHED").
	What string
	// MinDelay and MaxDelay bound the jittered exponential delay between checks
	// (defaults 500ms and 10s). The first check runs at once.
	MinDelay, MaxDelay time.Duration
	// Timeout bounds the whole wait; 0 leaves only the context's deadline.
	Timeout time.Duration
}

const (
	defaultWaitMinDelay = 500 * time.Millisecond
	defaultWaitMaxDelay = 10 * time.Second
)

// WaitFor calls check until it reports done, returns an error, or time runs out. The delay
// between checks grows exponentially with jitter (smithy-go's waiter.ComputeDelay), so
// many waiters polling the same API spread out instead of hammering it in step.
//
// An error from check ends the wait and is returned wrapped with opts.What: check decides
// which failures are terminal (a disk in an error state) and which mean "not yet" (a
// throttled call, which the client already retries, can also be swallowed by check).
// Running out of time returns an error wrapping ErrWaitTimeout and the context's error.
func WaitFor(ctx context.Context, opts WaitOptions, check func(ctx context.Context) (done bool, err error)) error {
	if opts.MinDelay <= 0 {
		opts.MinDelay = defaultWaitMinDelay
	}
	if opts.MaxDelay <= 0 {
		opts.MaxDelay = defaultWaitMaxDelay
	}
	opts.MaxDelay = max(opts.MaxDelay, opts.MinDelay)
	what := opts.What
	if what == "" {
		what = "condition"
	}
	if opts.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, opts.Timeout)
		defer cancel()
	}
	for attempt := int64(0); ; attempt++ {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("wait for %s: %w after %d checks: %w", what, ErrWaitTimeout, attempt, err)
		}
		done, err := check(ctx)
		if err != nil {
			// A check that failed only because our own deadline cut its call short is a
			// timeout, not a verdict on the condition.
			if ctx.Err() != nil && (errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled)) {
				return fmt.Errorf("wait for %s: %w after %d checks: %w", what, ErrWaitTimeout, attempt+1, ctx.Err())
			}
			return fmt.Errorf("wait for %s: %w", what, err)
		}
		if done {
			return nil
		}
		remaining := time.Duration(math.MaxInt64)
		if dl, ok := ctx.Deadline(); ok {
			remaining = time.Until(dl)
		}
		delay, err := waiter.ComputeDelay(attempt+1, opts.MinDelay, opts.MaxDelay, remaining)
		if err != nil {
			return fmt.Errorf("wait for %s: compute delay: %w", what, err)
		}
		// ComputeDelay shortens the last delay to fit the deadline and goes to zero or
		// below when less than MinDelay is left: there is no room for another check, so
		// wait out the deadline (a timer could fire a hair before the context notices,
		// and the loop would spin).
		if delay <= 0 {
			<-ctx.Done()
			return fmt.Errorf("wait for %s: %w after %d checks: %w", what, ErrWaitTimeout, attempt+1, ctx.Err())
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("wait for %s: %w after %d checks: %w", what, ErrWaitTimeout, attempt+1, ctx.Err())
		case <-t.C:
		}
	}
}
