package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestInstallCopiesThePluginAtomically(t *testing.T) {
	t.Parallel()
	self := filepath.Join(binDir, "stratus-bridge")
	dst := t.TempDir()
	// An older plugin is in place; install replaces it.
	require.NoError(t, os.WriteFile(filepath.Join(dst, "stratus-bridge"), []byte("old"), 0o755))

	out, err := exec.Command(self, "install", "--src", self, "--dst", dst).CombinedOutput()
	require.NoError(t, err, string(out))

	installed := filepath.Join(dst, "stratus-bridge")
	want, err := os.ReadFile(self)
	require.NoError(t, err)
	got, err := os.ReadFile(installed)
	require.NoError(t, err)
	assert.True(t, bytes.Equal(want, got), "installed binary differs from the source")
	fi, err := os.Stat(installed)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o755), fi.Mode().Perm())
	entries, err := os.ReadDir(dst)
	require.NoError(t, err)
	assert.Len(t, entries, 1, "no temp file may be left behind")

	// The installed file is the plugin: it answers VERSION.
	cmd := exec.Command(installed)
	cmd.Env = []string{"CNI_COMMAND=VERSION"}
	v, err := cmd.Output()
	require.NoError(t, err)
	assert.Contains(t, string(v), `"1.1.0"`)
	assert.Contains(t, string(v), `"0.3.1"`)

	// Without --src it installs itself.
	dst2 := t.TempDir()
	out, err = exec.Command(self, "install", "--dst", dst2).CombinedOutput()
	require.NoError(t, err, string(out))
	got, err = os.ReadFile(filepath.Join(dst2, "stratus-bridge"))
	require.NoError(t, err)
	assert.True(t, bytes.Equal(want, got))
}

func TestInstallFailsCleanlyOnAMissingSource(t *testing.T) {
	t.Parallel()
	dst := t.TempDir()
	out, err := exec.Command(filepath.Join(binDir, "stratus-bridge"), "install", "--src", filepath.Join(dst, "nope"), "--dst", dst).CombinedOutput()
	require.Error(t, err)
	assert.Contains(t, string(out), "nope")
	entries, _ := os.ReadDir(dst)
	assert.Empty(t, entries)
}

func TestSubcommandsThisBinaryDoesNotHaveFail(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, arg, want string }{
		{"unknown", "frobnicate", "unknown subcommand"},
		// The agent moved to its own binary; an old manifest gets told where.
		{"agent moved out", "agent", "stratus-cni-agent"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			out, err := exec.Command(filepath.Join(binDir, "stratus-bridge"), tc.arg, "--node-name=n").CombinedOutput()
			var exit *exec.ExitError
			require.ErrorAs(t, err, &exit, string(out))
			assert.Equal(t, 2, exit.ExitCode())
			assert.True(t, strings.Contains(string(out), tc.want), string(out))
		})
	}
}
