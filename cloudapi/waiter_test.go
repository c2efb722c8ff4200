package cloudapi

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func fastWait(what string) WaitOptions {
	return WaitOptions{What: what, MinDelay: time.Millisecond, MaxDelay: 4 * time.Millisecond}
}

func TestWaitForDoneAtOnce(t *testing.T) {
	calls := 0
	err := WaitFor(context.Background(), fastWait("x"), func(context.Context) (bool, error) {
		calls++
		return true, nil
	})
	require.NoError(t, err)
	assert.Equal(t, 1, calls, "a condition that already holds needs exactly one check")
}

func TestWaitForPollsUntilDone(t *testing.T) {
	calls := 0
	err := WaitFor(context.Background(), fastWait("x"), func(context.Context) (bool, error) {
		calls++
		return calls == 5, nil
	})
	require.NoError(t, err)
	assert.Equal(t, 5, calls)
}

func TestWaitForCheckErrorEndsWait(t *testing.T) {
	boom := errors.New("disk is in state ERROR")
	calls := 0
	err := WaitFor(context.Background(), fastWait("disk disk-1 ATTACHED"), func(context.Context) (bool, error) {
		calls++
		if calls == 3 {
			return false, boom
		}
		return false, nil
	})
	require.ErrorIs(t, err, boom)
	assert.NotErrorIs(t, err, ErrWaitTimeout)
	assert.Contains(t, err.Error(), "disk disk-1 ATTACHED")
	assert.Equal(t, 3, calls, "no check after a terminal error")
}

func TestWaitForTimeout(t *testing.T) {
	calls := 0
	opts := fastWait("lb task")
	opts.Timeout = 50 * time.Millisecond
	err := WaitFor(context.Background(), opts, func(context.Context) (bool, error) {
		calls++
		return false, nil
	})
	require.ErrorIs(t, err, ErrWaitTimeout)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Contains(t, err.Error(), "lb task")
	assert.Greater(t, calls, 1, "the wait keeps checking until the deadline")
}

func TestWaitForCallerCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	calls := 0
	err := WaitFor(ctx, fastWait("x"), func(context.Context) (bool, error) {
		calls++
		if calls == 2 {
			cancel()
		}
		return false, nil
	})
	require.ErrorIs(t, err, context.Canceled)
	require.ErrorIs(t, err, ErrWaitTimeout)
	assert.Equal(t, 2, calls)
}

// A check whose API call was cut short by the wait's own deadline reports a timeout, not
// the transport error, so callers can tell "too slow" from "failed".
func TestWaitForCheckCutByDeadline(t *testing.T) {
	opts := fastWait("x")
	opts.Timeout = 20 * time.Millisecond
	err := WaitFor(context.Background(), opts, func(ctx context.Context) (bool, error) {
		<-ctx.Done()
		return false, ctx.Err()
	})
	require.ErrorIs(t, err, ErrWaitTimeout)
}

// The delays grow: with a 1ms minimum and a 64ms cap, 300ms hold far fewer checks than
// the 300 a fixed 1ms delay would make.
func TestWaitForBacksOff(t *testing.T) {
	opts := WaitOptions{MinDelay: time.Millisecond, MaxDelay: 64 * time.Millisecond, Timeout: 300 * time.Millisecond}
	calls := 0
	err := WaitFor(context.Background(), opts, func(context.Context) (bool, error) {
		calls++
		return false, nil
	})
	require.ErrorIs(t, err, ErrWaitTimeout)
	assert.Less(t, calls, 60)
}
