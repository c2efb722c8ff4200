package framework

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestBuildBinaryBuildsOnce(t *testing.T) {
	const pkg = "./test/e2e/framework/testdata/hello"
	bin := BuildBinary(t, pkg)
	assert.Equal(t, "hello", filepath.Base(bin), "the binary keeps its package's name")
	out, err := exec.Command(bin).CombinedOutput()
	require.NoError(t, err, "%s", out)
	assert.Equal(t, "hello from "+bin, strings.TrimSpace(string(out)))

	assert.Equal(t, bin, BuildBinary(t, pkg), "second call returns the same build")
}

func TestRepoRootIsMainModule(t *testing.T) {
	root, err := RepoRoot()
	require.NoError(t, err)
	mod, err := moduleName(filepath.Join(root, "go.mod"))
	require.NoError(t, err)
	assert.Equal(t, mainModule, mod)
	assert.FileExists(t, filepath.Join(root, "hack", "kube-binaries.sh"))
}

func TestSanitizeName(t *testing.T) {
	assert.Equal(t, "TestLB_mode_L3_VIP", sanitizeName("TestLB/mode L3:VIP"))
}

func TestKubeVersionMatchesTestKubeModule(t *testing.T) {
	v, err := KubeVersion()
	require.NoError(t, err)
	assert.Regexp(t, `^v1\.\d+\.\d+$`, v)
	assert.Equal(t, kubeletVersion, v, "NewNode's kubelet version should follow the pinned control plane")
}
