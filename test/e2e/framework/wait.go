package framework

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"
)

// PollInterval is how often Eventually and WaitFor re-check their condition.
const PollInterval = 200 * time.Millisecond

// Condition reports nil once what the caller waits for holds, or an error saying what it
// saw instead ("node n1 has taints [...]"). That error is the failure message on timeout,
// so make it describe the current state.
type Condition func(ctx context.Context) error

// Permanent wraps an error to tell WaitFor and Eventually to give up at once: waiting
// longer cannot help (the process being waited for has exited).
func Permanent(err error) error { return &permanentError{err} }

type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// WaitFor polls cond every interval until it returns nil or a Permanent error, ctx is
// done, or timeout passes.
// On timeout the error names what was awaited and wraps the last error cond returned.
// Each call of cond gets a context bounded by the overall deadline.
func WaitFor(ctx context.Context, timeout, interval time.Duration, what string, cond Condition) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	start := time.Now()
	var last error
	for {
		err := cond(ctx)
		if err == nil {
			return nil
		}
		if pe := (*permanentError)(nil); errors.As(err, &pe) {
			return fmt.Errorf("gave up waiting for %s after %s: %w", what, time.Since(start).Round(time.Millisecond), pe.err)
		}
		// A call cut short by the deadline says less than the one before it.
		if last == nil || ctx.Err() == nil || !errors.Is(err, ctx.Err()) {
			last = err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waited %s for %s: %w", time.Since(start).Round(time.Millisecond), what, last)
		case <-ticker.C:
		}
	}
}

// Eventually fails t unless cond holds within timeout, with a message naming what was
// awaited and the last state cond reported. Call it from the test goroutine only.
func Eventually(t testing.TB, timeout time.Duration, what string, cond Condition) {
	t.Helper()
	if err := WaitFor(context.Background(), timeout, PollInterval, what, cond); err != nil {
		t.Fatal(err)
	}
}

// Consistently fails t if cond stops holding at any poll during d, for asserting that
// something does not happen (a Node is not deleted, an LB is not recreated).
func Consistently(t testing.TB, d time.Duration, what string, cond Condition) {
	t.Helper()
	// Each poll gets its own deadline rather than the window's: near the end of the window
	// client-go's rate limiter refuses to wait ("would exceed context deadline") before the
	// window's context is done, which would read as the condition failing.
	deadline := time.Now().Add(d)
	ticker := time.NewTicker(PollInterval)
	defer ticker.Stop()
	start := time.Now()
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := cond(ctx)
		cancel()
		if err != nil {
			t.Fatalf("%s stopped holding after %s: %v", what, time.Since(start).Round(time.Millisecond), err)
		}
		if time.Now().After(deadline) {
			return
		}
		<-ticker.C
	}
}
