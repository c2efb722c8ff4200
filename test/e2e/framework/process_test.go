package framework

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestStartProcessCapturesOutputAndStops(t *testing.T) {
	p := StartProcess(t, "talker", "/bin/sh", "-c", "echo out-$((1+1)); echo err-$((1+2)) >&2; exec sleep 300")
	assert.Equal(t, filepath.Join(ArtifactsDir(t), "talker.log"), p.LogPath)
	// The log starts with the command line, so look for what only the shell's output has.
	Eventually(t, 10*time.Second, "both streams in the log", func(context.Context) error {
		if tail := p.LogTail(10); !strings.Contains(tail, "out-2") || !strings.Contains(tail, "err-3") {
			return fmt.Errorf("log so far: %q", tail)
		}
		return nil
	})

	start := time.Now()
	require.NoError(t, p.Stop(), "an exit caused by Stop is not an error")
	assert.Less(t, time.Since(start), StopGrace, "SIGTERM alone should end sleep")
	exited, err := p.Exited()
	assert.True(t, exited)
	assert.Error(t, err, "killed by SIGTERM, so not a clean exit status")
	require.NoError(t, p.Stop(), "Stop is idempotent")
}

func TestStopKillsTheWholeProcessGroup(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "child.pid")
	// The shell's background child is what `ip netns exec` or a wrapper script would leave
	// behind if only the direct child were signalled.
	p := StartProcess(t, "parent", "/bin/sh", "-c", "sleep 300 & echo $! > "+pidFile+"; wait")
	child := readPid(t, pidFile)
	require.NoError(t, p.Stop())
	Eventually(t, 10*time.Second, fmt.Sprintf("grandchild sleep (pid %d) to be gone", child), processGone(child))
}

func TestStopEscalatesToSIGKILL(t *testing.T) {
	// Ignoring SIGTERM is inherited by the sleep the shell runs, so only SIGKILL ends them.
	p := StartProcess(t, "stubborn", "/bin/sh", "-c", `trap "" TERM; echo armed-$((6*7)); while :; do sleep 1; done`)
	p.StopGrace = 300 * time.Millisecond
	Eventually(t, 10*time.Second, "the TERM trap to be installed", func(context.Context) error {
		if !strings.Contains(p.LogTail(5), "armed-42") {
			return errors.New("no armed-42 line yet")
		}
		return nil
	})
	start := time.Now()
	require.NoError(t, p.Stop())
	assert.GreaterOrEqual(t, time.Since(start), p.StopGrace, "must have waited for the grace period")
	_, err := p.Exited()
	var exitErr interface{ Sys() any }
	require.ErrorAs(t, err, &exitErr)
	ws, ok := exitErr.Sys().(syscall.WaitStatus)
	require.True(t, ok)
	assert.Equal(t, syscall.SIGKILL, ws.Signal())
}

func TestStopReportsAnUnexpectedExit(t *testing.T) {
	p := StartProcess(t, "crasher", "/bin/sh", "-c", "echo boom; exit 3")
	<-p.Done()
	err := p.Stop()
	require.Error(t, err)
	assert.Contains(t, err.Error(), "crasher exited before it was stopped")
	assert.Contains(t, err.Error(), "exit status 3")
	assert.Contains(t, err.Error(), p.LogPath)
	// The test has seen the error, so cleanup must not fail the test again; if it did, this
	// test would fail.
}

func TestCleanupStopsProcessWhenTestEnds(t *testing.T) {
	var pid int
	t.Run("owner", func(t *testing.T) {
		pid = StartProcess(t, "sleeper", "sleep", "300").Pid()
	})
	require.NotZero(t, pid)
	// Cleanup has reaped it, so the pid is gone rather than a zombie.
	assert.NoError(t, processGone(pid)(context.Background()))
}

func TestRestartKeepsBothLogs(t *testing.T) {
	first := StartProcess(t, "svc", "/bin/sh", "-c", "echo run-$((0+1))")
	second := StartProcess(t, "svc", "/bin/sh", "-c", "echo run-$((0+2))")
	<-first.Done()
	<-second.Done()
	assert.Equal(t, filepath.Join(ArtifactsDir(t), "svc.log"), first.LogPath)
	assert.Equal(t, filepath.Join(ArtifactsDir(t), "svc-2.log"), second.LogPath)
	assert.Equal(t, "run-1", first.LogTail(1))
	assert.Equal(t, "run-2", second.LogTail(1))
}

func readPid(t *testing.T, path string) int {
	t.Helper()
	var pid int
	Eventually(t, 10*time.Second, "pid file "+path, func(context.Context) error {
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		pid, err = strconv.Atoi(strings.TrimSpace(string(data)))
		return err
	})
	return pid
}

// processGone reports nil once pid no longer exists or is a zombie, which the kernel
// keeps only until its (re)parent reaps it.
func processGone(pid int) Condition {
	return func(context.Context) error {
		data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		fields := strings.Fields(string(data[strings.LastIndexByte(string(data), ')')+1:]))
		if len(fields) > 0 && fields[0] == "Z" {
			return nil
		}
		return fmt.Errorf("pid %d still running: %s", pid, data)
	}
}
