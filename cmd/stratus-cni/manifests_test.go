package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

// The DaemonSet's init container installs this binary; the agent container and
// RBAC are checked against the agent binary in cmd/stratus-cni-agent.
func TestManifestInstallsThisBinary(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile("../../examples/manifests/cni/daemonset.yaml")
	require.NoError(t, err)
	var ds appsv1.DaemonSet
	require.NoError(t, yaml.UnmarshalStrict(b, &ds))
	spec := ds.Spec.Template.Spec
	require.Len(t, spec.InitContainers, 1)
	install := spec.InitContainers[0]
	require.NotNil(t, install.SecurityContext)
	assert.True(t, *install.SecurityContext.Privileged)
	require.GreaterOrEqual(t, len(install.Command), 2)
	assert.Equal(t, "/usr/local/bin/stratus-cni", install.Command[0], "the image holds the plugin at /usr/local/bin/stratus-cni")
	assert.Equal(t, "install", install.Command[1])

	// --dst is the mount of the host's /opt/cni/bin.
	i := slices.Index(install.Command, "--dst")
	require.GreaterOrEqual(t, i, 0)
	require.Less(t, i+1, len(install.Command))
	dst := install.Command[i+1]
	var hostPath string
	for _, vm := range install.VolumeMounts {
		if vm.MountPath != dst {
			continue
		}
		for _, v := range spec.Volumes {
			if v.Name == vm.Name && v.HostPath != nil {
				hostPath = v.HostPath.Path
			}
		}
	}
	assert.Equal(t, "/opt/cni/bin", hostPath)
	assert.True(t, slices.ContainsFunc(spec.Volumes, func(v corev1.Volume) bool {
		return v.HostPath != nil && v.HostPath.Path == "/opt/cni/bin" && v.HostPath.Type != nil && *v.HostPath.Type == corev1.HostPathDirectoryOrCreate
	}), "a fresh node has no /opt/cni/bin yet")

	// The container's own command line works with this binary: run it with the
	// host mount replaced by a temp dir.
	args := slices.Clone(install.Command[1:])
	mnt := t.TempDir()
	args[i] = mnt
	self := filepath.Join(binDir, "stratus-bridge")
	out, err := exec.Command(self, args...).CombinedOutput()
	require.NoError(t, err, string(out))
	want, err := os.ReadFile(self)
	require.NoError(t, err)
	got, err := os.ReadFile(filepath.Join(mnt, "stratus-bridge"))
	require.NoError(t, err)
	assert.True(t, bytes.Equal(want, got), "installed as stratus-bridge, byte for byte")
}
