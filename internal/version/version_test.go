package version

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRequested(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want bool
	}{
		{"none", nil, false},
		{"long", []string{"--version"}, true},
		{"single dash", []string{"-version"}, true},
		{"explicit true", []string{"--v=2", "--version=true"}, true},
		{"raw keeps upstream meaning", []string{"--version=raw"}, false},
		{"after double dash is an argument", []string{"--", "--version"}, false},
		{"other flags", []string{"serve", "--listen=:0"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, Requested(tc.args))
		})
	}
}

func TestStringNamesProgramVersionAndPlatform(t *testing.T) {
	s := String("prog")
	assert.True(t, strings.HasPrefix(s, "prog "+Version()+" (commit "+Commit()+", "), s)
	assert.Contains(t, s, runtime.Version())
	assert.Contains(t, s, runtime.GOOS+"/"+runtime.GOARCH)
}

// The link-time stamp is what make puts in every binary: build a tiny program with it and
// check the binary reports exactly the stamped values.
func TestLinkTimeStampWins(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a binary")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "stamped")
	pkg := "github.com/stratus-cloud/stratus/internal/version"
	build := exec.Command("go", "build", "-o", bin,
		"-ldflags", "-X "+pkg+".version=v9.8.7-test -X "+pkg+".commit=abc123", "./testdata/stamped")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	out, err := build.CombinedOutput()
	require.NoError(t, err, "%s", out)
	got, err := exec.Command(bin).Output()
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(string(got), "stamped v9.8.7-test (commit abc123, go"), "%s", got)
}
