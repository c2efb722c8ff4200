package framework

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestBinCache(t *testing.T) {
	const env = "STRATUS_TEST_BINCACHE_DIR"
	ready := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(ready, "tool"), []byte("#!/bin/sh\n"), 0o755))

	t.Run("TheVariableWinsAndNoScriptRuns", func(t *testing.T) {
		t.Setenv(env, ready)
		c := &binCache{what: "test cache", env: env, script: "no-such-script.sh", cold: "no time"}
		assert.Equal(t, filepath.Join(ready, "tool"), c.binary(t, "tool"))
	})
	t.Run("WithoutTheVariableTheScriptRuns", func(t *testing.T) {
		t.Setenv(env, "")
		c := &binCache{what: "test cache", env: env, script: "no-such-script.sh", cold: "no time"}
		_, err := c.resolve(t)
		require.Error(t, err)
		assert.Contains(t, err.Error(), "test cache: ")
		assert.Contains(t, err.Error(), filepath.Join("hack", "no-such-script.sh"))
	})
}
