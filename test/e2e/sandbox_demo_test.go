//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stratus-cloud/stratus/sandbox/demo"
	"github.com/stratus-cloud/stratus/test/e2e/framework"
)

// TestDemo runs `stratus demo` on its own 3-node sandbox: every step passes and prints
// what it checked and how long it took; a second run (what the first left is removed
// first) passes too and keeps what it made; then the supervisor is killed outright and
// `down` leaves nothing behind, the volume's loop device and mounts included.
func TestDemo(t *testing.T) {
	s := newSandbox(t, 3)
	p := s.plan
	before := takeSnapshot(t, p.StateDir)
	s.up()
	steps := demo.Steps()
	for run := 1; run <= 2; run++ {
		start := time.Now()
		args := []string{"demo", "--step-timeout", "3m"}
		if run == 2 {
			args = append(args, "--keep") // its pods, load balancers and volume stay
		}
		out, code := s.stratus(append(args, s.flags()...)...)
		t.Logf("stratus demo (run %d) took %s:\n%s", run, time.Since(start).Round(time.Millisecond), out)
		require.Equal(t, 0, code, "stratus demo failed:\n%s", out)
		for i, st := range steps {
			re := regexp.MustCompile(`(?m)^  ok     ` + regexp.QuoteMeta(fmt.Sprintf("%d/%d", i+1, len(steps))+" "+st.Name) + ` \([0-9.]+(ms|s|m[0-9.]*s)\): \S`)
			assert.Regexp(t, re, out, "step %d %q printed with its duration and what it checked", i+1, st.Name)
		}
		assert.Contains(t, out, "demo passed: ")
		assert.NotContains(t, out, "FAIL")
	}
	out, _ := s.stratus(append([]string{"status"}, s.flags()...)...)
	assert.True(t, strings.HasSuffix(strings.TrimSpace(out), "\nready"), "the sandbox is still ready after the demo:\n%s", out)

	// The kept demo holds a disk: a loop device and its mounts (staged and published).
	// The supervisor crashes (kill -9), its children go with it, and `down` still
	// removes everything, the volume's loop device and mounts included.
	during := takeSnapshot(t, p.StateDir)
	mine := ours(during, s.marks())
	assert.GreaterOrEqual(t, mine["loops"], 1, "the kept volume's disk is a loop device")
	assert.GreaterOrEqual(t, mine["mounts"], 2, "the kept volume is staged and published")
	st := s.status()
	require.NoError(t, syscall.Kill(st.Supervisor.Pid, syscall.SIGKILL))
	framework.Eventually(t, 30*time.Second, "the supervisor and its children gone", func(context.Context) error {
		for _, c := range st.Components {
			if c.Proc.Alive() {
				return fmt.Errorf("%s (pid %d) still runs", c.Name, c.Proc.Pid)
			}
		}
		return nil
	})
	start := time.Now()
	downOut, code := s.stratus(append([]string{"down"}, s.flags()...)...)
	require.Equal(t, 0, code, downOut)
	t.Logf("stratus down after the crash took %s: %s", time.Since(start).Round(time.Millisecond), downOut)
	s.requireNothingLeft(before, during)
}
