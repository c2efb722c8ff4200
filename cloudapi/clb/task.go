package clb

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/stratus-cloud/stratus/cloudapi"
)

// TaskFailedError says the cloud finished an asynchronous write unsuccessfully
// (DescribeTaskStatus answered Status 1). The write had no effect to rely on; the caller
// decides whether to send it again.
type TaskFailedError struct {
	TaskID string
}

func (e *TaskFailedError) Error() string { return fmt.Sprintf("clb task %s failed", e.TaskID) }

// IsTaskFailed reports whether err is (or wraps) a *TaskFailedError.
func IsTaskFailed(err error) bool {
	var tf *TaskFailedError
	return errors.As(err, &tf)
}

// DefaultTaskWait is how WaitTask polls unless told otherwise: CLB tasks usually finish
// within a few seconds, so start fast and cap the delay low.
var DefaultTaskWait = cloudapi.WaitOptions{MinDelay: 200 * time.Millisecond, MaxDelay: 3 * time.Second}

// WaitTask polls DescribeTaskStatus until the task started by the write whose RequestId is
// requestID finishes: nil when it succeeded, a *TaskFailedError when it failed, and an
// error wrapping cloudapi.ErrWaitTimeout when ctx ends first. An empty requestID is an
// error, not an instant success, so a caller that lost the id notices.
func (c *Client) WaitTask(ctx context.Context, requestID string) error {
	return c.WaitTaskWith(ctx, requestID, DefaultTaskWait)
}

// WaitTaskWith is WaitTask with explicit polling options.
func (c *Client) WaitTaskWith(ctx context.Context, requestID string, opts cloudapi.WaitOptions) error {
	if requestID == "" {
		return errors.New("wait for clb task: empty task id")
	}
	if opts.What == "" {
		opts.What = "clb task " + requestID
	}
	return cloudapi.WaitFor(ctx, opts, func(ctx context.Context) (bool, error) {
		out, err := c.DescribeTaskStatus(ctx, &DescribeTaskStatusRequest{TaskId: requestID})
		if err != nil {
			return false, err
		}
		switch out.Status {
		case TaskSucceeded:
			return true, nil
		case TaskFailed:
			return false, &TaskFailedError{TaskID: requestID}
		case TaskRunning:
			return false, nil
		default:
			return false, fmt.Errorf("unknown task status %d", out.Status)
		}
	})
}
