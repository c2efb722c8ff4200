//go:build e2e

package e2e

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stratus-cloud/stratus/sandbox/demo"
)

// TestDemo runs `stratus demo` on its own 3-node sandbox: every step passes and prints
// what it checked and how long it took; a second run (what the first left is removed
// first) passes too.
func TestDemo(t *testing.T) {
	s := newSandbox(t, 3)
	s.up()
	steps := demo.Steps()
	for run := 1; run <= 2; run++ {
		start := time.Now()
		out, code := s.stratus(append([]string{"demo", "--step-timeout", "3m"}, s.flags()...)...)
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
}
