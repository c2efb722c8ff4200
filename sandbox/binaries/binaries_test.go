package binaries_test

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stratus-cloud/stratus/internal/testcap"
	"github.com/stratus-cloud/stratus/sandbox/binaries"
)

// fakeCheckout is a tiny module with the main module's path and one trivial main per
// command the sandbox builds: it builds in a second, yet goes through the real path.
func fakeCheckout(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	write(t, filepath.Join(root, "go.mod"), "module github.com/stratus-cloud/stratus\n\ngo 1.26\n")
	for _, c := range binaries.StratusCommands {
		write(t, filepath.Join(root, "cmd", c, "main.go"), "package main\n\nfunc main() {}\n")
	}
	return root
}

func write(t *testing.T, path, content string) {
	t.Helper()
	require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
	require.NoError(t, os.WriteFile(path, []byte(content), 0o644))
}

func TestSourceKey(t *testing.T) {
	root := fakeCheckout(t)
	key := func() string {
		k, err := binaries.SourceKey(root)
		require.NoError(t, err)
		return k
	}
	k0 := key()
	assert.Equal(t, k0, key(), "stable")

	write(t, filepath.Join(root, "cmd", "fakecloud", "main_test.go"), "package main\n")
	write(t, filepath.Join(root, "test", "e2e", "x.go"), "package e2e\n")
	write(t, filepath.Join(root, "README.md"), "docs\n")
	write(t, filepath.Join(root, "test", "kube", "go.mod"), "module other\n")
	write(t, filepath.Join(root, "sandbox", "plan", "plan.go"), "package plan\n")
	write(t, filepath.Join(root, "cmd", "stratus", "main.go"), "package main\n")
	assert.Equal(t, k0, key(), "tests, test/, docs and the sandbox itself are not what the binaries are built from")

	write(t, filepath.Join(root, "cmd", "fakecloud", "main.go"), "package main\n\nfunc main() { println() }\n")
	assert.NotEqual(t, k0, key(), "a source change is a new key")
}

func TestStratusBuildsOnceThenHitsTheCache(t *testing.T) {
	testcap.Tool(t, "go", "golang")
	root := fakeCheckout(t)
	var progress bytes.Buffer
	r := &binaries.Resolver{Source: root, CacheDir: t.TempDir(), Progress: &progress}

	paths, built, err := r.Stratus()
	require.NoError(t, err)
	assert.True(t, built)
	for _, c := range binaries.StratusCommands {
		require.FileExists(t, paths[c])
		require.NoError(t, exec.Command(paths[c]).Run(), "%s runs", c)
	}
	assert.Contains(t, progress.String(), "building fakecloud, stratus-cloud-controller-manager, stratus-cni")

	again, built, err := r.Stratus()
	require.NoError(t, err)
	assert.False(t, built, "a warm start builds nothing")
	assert.Equal(t, paths, again)

	write(t, filepath.Join(root, "cmd", "stratus-cni", "main.go"), "package main\n\nfunc main() { println() }\n")
	third, built, err := r.Stratus()
	require.NoError(t, err)
	assert.True(t, built, "changed sources are rebuilt")
	assert.NotEqual(t, paths["stratus-cni"], third["stratus-cni"])
}

func TestBuildFailureShowsTheCompiler(t *testing.T) {
	testcap.Tool(t, "go", "golang")
	root := fakeCheckout(t)
	write(t, filepath.Join(root, "cmd", "fakecloud", "main.go"), "package main\n\nfunc main() { undefinedThing() }\n")
	r := &binaries.Resolver{Source: root, CacheDir: t.TempDir(), Progress: &bytes.Buffer{}}
	_, _, err := r.Stratus()
	require.Error(t, err)
	assert.Contains(t, err.Error(), "undefinedThing")
}

func TestMissingToolsSayWhichPackage(t *testing.T) {
	missing := func(name string) func(string) (string, error) {
		return func(n string) (string, error) {
			if n == name {
				return "", errors.New("not found")
			}
			return "/usr/bin/" + n, nil
		}
	}
	cases := []struct{ tool, want string }{
		{"ip", "ip is missing (needed for network namespaces): install Debian's iproute2: apt-get install -y iproute2"},
		{"iptables", "apt-get install -y iptables"},
		{"iptables-restore", "iptables-restore is missing"},
	}
	for _, c := range cases {
		t.Run(c.tool, func(t *testing.T) {
			err := binaries.CheckTools(missing(c.tool))
			require.Error(t, err)
			assert.Contains(t, err.Error(), c.want)
		})
	}
	assert.NoError(t, binaries.CheckTools(missing("nothing")))

	t.Setenv(binaries.EtcdEnv, "")
	if _, err := os.Stat("/usr/bin/etcd"); err != nil {
		_, err := binaries.Etcd(missing("etcd"))
		require.Error(t, err)
		assert.Contains(t, err.Error(), "apt-get install -y etcd-server")
	}
	t.Setenv(binaries.EtcdEnv, "/opt/etcd")
	p, err := binaries.Etcd(missing("etcd"))
	require.NoError(t, err)
	assert.Equal(t, "/opt/etcd", p)
}

func TestFindSource(t *testing.T) {
	root := fakeCheckout(t)
	t.Setenv(binaries.SourceEnv, root)
	got, err := binaries.FindSource()
	require.NoError(t, err)
	assert.Equal(t, root, got)
	t.Setenv(binaries.SourceEnv, t.TempDir())
	_, err = binaries.FindSource()
	require.Error(t, err)
	assert.Contains(t, err.Error(), "not a Stratus checkout")
}
