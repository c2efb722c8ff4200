package clb

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stratus-cloud/stratus/cloudapi"
)

// taskServer answers DescribeTaskStatus with the statuses in order (the last one repeats)
// and records the task ids it was asked about. It does not check signatures: what is
// under test is the client's polling, not the protocol (fakecloud's tests cover that).
func taskServer(t *testing.T, statuses ...int64) (*Client, func() []string) {
	t.Helper()
	var mu sync.Mutex
	var asked []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		assert.Equal(t, "DescribeTaskStatus", r.Header.Get("X-TC-Action"))
		assert.Equal(t, Version, r.Header.Get("X-TC-Version"))
		b, _ := io.ReadAll(r.Body)
		var in DescribeTaskStatusRequest
		assert.NoError(t, json.Unmarshal(b, &in))
		mu.Lock()
		asked = append(asked, in.TaskId)
		s := statuses[min(len(asked), len(statuses))-1]
		mu.Unlock()
		fmt.Fprintf(w, `{"Response":{"Status":%d,"RequestId":"r-%d"}}`, s, len(asked))
	}))
	t.Cleanup(srv.Close)
	c, err := cloudapi.New(cloudapi.Config{
		Endpoint: srv.URL, Region: "ap-guangzhou", RateLimit: -1,
		Credentials: cloudapi.Credentials{SecretID: "id", SecretKey: "key"},
	})
	require.NoError(t, err)
	return New(c), func() []string { mu.Lock(); defer mu.Unlock(); return append([]string(nil), asked...) }
}

var fastTask = cloudapi.WaitOptions{MinDelay: time.Millisecond, MaxDelay: 2 * time.Millisecond}

func TestWaitTaskPollsUntilDone(t *testing.T) {
	c, asked := taskServer(t, TaskRunning, TaskRunning, TaskSucceeded)
	require.NoError(t, c.WaitTaskWith(context.Background(), "req-1", fastTask))
	assert.Equal(t, []string{"req-1", "req-1", "req-1"}, asked())
}

func TestWaitTaskFailed(t *testing.T) {
	c, _ := taskServer(t, TaskRunning, TaskFailed)
	err := c.WaitTaskWith(context.Background(), "req-2", fastTask)
	require.Error(t, err)
	assert.True(t, IsTaskFailed(err), "got %v", err)
	var tf *TaskFailedError
	require.ErrorAs(t, err, &tf)
	assert.Equal(t, "req-2", tf.TaskID)
}

func TestWaitTaskTimeout(t *testing.T) {
	c, _ := taskServer(t, TaskRunning)
	opts := fastTask
	opts.Timeout = 30 * time.Millisecond
	err := c.WaitTaskWith(context.Background(), "req-3", opts)
	require.ErrorIs(t, err, cloudapi.ErrWaitTimeout)
	assert.False(t, IsTaskFailed(err))
}

func TestWaitTaskUnknownStatus(t *testing.T) {
	c, _ := taskServer(t, 7)
	err := c.WaitTaskWith(context.Background(), "req-4", fastTask)
	require.ErrorContains(t, err, "unknown task status 7")
}

func TestWaitTaskEmptyID(t *testing.T) {
	c, asked := taskServer(t, TaskSucceeded)
	require.Error(t, c.WaitTask(context.Background(), ""))
	assert.Empty(t, asked(), "no call for an empty id")
}
