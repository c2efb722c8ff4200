package framework

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestWaitForSucceedsOnceConditionHolds(t *testing.T) {
	calls := 0
	err := WaitFor(context.Background(), 5*time.Second, time.Millisecond, "third call", func(context.Context) error {
		calls++
		if calls < 3 {
			return fmt.Errorf("call %d", calls)
		}
		return nil
	})
	require.NoError(t, err)
	assert.Equal(t, 3, calls)
}

func TestWaitForTimeoutNamesWhatAndLastState(t *testing.T) {
	state := errors.New("node n1 still has taint uninitialized")
	err := WaitFor(context.Background(), 50*time.Millisecond, 5*time.Millisecond, "node n1 to be initialized",
		func(context.Context) error { return state })
	require.Error(t, err)
	assert.ErrorIs(t, err, state)
	assert.Contains(t, err.Error(), "node n1 to be initialized")
	assert.Contains(t, err.Error(), "still has taint uninitialized")
}

func TestWaitForKeepsLastStateOverDeadlineError(t *testing.T) {
	state := errors.New("service web has no ingress")
	calls := 0
	err := WaitFor(context.Background(), 50*time.Millisecond, 5*time.Millisecond, "ingress", func(ctx context.Context) error {
		calls++
		if calls == 1 {
			return state
		}
		<-ctx.Done() // a call that hangs until the overall deadline
		return ctx.Err()
	})
	require.Error(t, err)
	assert.ErrorIs(t, err, state, "the informative error, not context.DeadlineExceeded")
}

func TestWaitForGivesUpOnPermanent(t *testing.T) {
	cause := errors.New("etcd exited")
	start := time.Now()
	err := WaitFor(context.Background(), time.Minute, time.Millisecond, "etcd", func(context.Context) error {
		return Permanent(cause)
	})
	require.Error(t, err)
	assert.ErrorIs(t, err, cause)
	assert.Contains(t, err.Error(), "gave up waiting for etcd")
	assert.Less(t, time.Since(start), 10*time.Second)
}

func TestWaitForHonoursParentContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := WaitFor(ctx, time.Minute, time.Millisecond, "anything", func(context.Context) error { return errors.New("no") })
	require.Error(t, err)
}
