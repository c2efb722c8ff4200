package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"sigs.k8s.io/yaml"
)

const manifestDir = "../../examples/manifests/cni"

func readDocs(t *testing.T, file string) [][]byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(manifestDir, file))
	require.NoError(t, err)
	var docs [][]byte
	for _, d := range bytes.Split(b, []byte("\n---\n")) {
		if len(bytes.TrimSpace(d)) > 0 {
			docs = append(docs, d)
		}
	}
	return docs
}

// The manifests must agree with each other and with the binary: RBAC grants what
// the agent does, the DaemonSet runs subcommands and flags the binary accepts.
func TestManifestsMatchTheBinary(t *testing.T) {
	t.Parallel()
	rbac := readDocs(t, "rbac.yaml")
	require.Len(t, rbac, 3)
	var sa corev1.ServiceAccount
	var role rbacv1.ClusterRole
	var binding rbacv1.ClusterRoleBinding
	require.NoError(t, yaml.UnmarshalStrict(rbac[0], &sa))
	require.NoError(t, yaml.UnmarshalStrict(rbac[1], &role))
	require.NoError(t, yaml.UnmarshalStrict(rbac[2], &binding))
	require.Len(t, role.Rules, 1)
	assert.Equal(t, []string{"nodes"}, role.Rules[0].Resources)
	assert.ElementsMatch(t, []string{"get", "list", "watch"}, role.Rules[0].Verbs)
	assert.Equal(t, role.Name, binding.RoleRef.Name)
	require.Len(t, binding.Subjects, 1)
	assert.Equal(t, sa.Name, binding.Subjects[0].Name)
	assert.Equal(t, sa.Namespace, binding.Subjects[0].Namespace)

	docs := readDocs(t, "daemonset.yaml")
	require.Len(t, docs, 1)
	var ds appsv1.DaemonSet
	require.NoError(t, yaml.UnmarshalStrict(docs[0], &ds))
	spec := ds.Spec.Template.Spec
	assert.Equal(t, sa.Name, spec.ServiceAccountName)
	assert.Equal(t, sa.Namespace, ds.Namespace)
	assert.True(t, spec.HostNetwork)
	require.Len(t, spec.InitContainers, 1)
	require.Len(t, spec.Containers, 1)
	install, agent := spec.InitContainers[0], spec.Containers[0]
	for _, c := range []corev1.Container{install, agent} {
		require.NotNil(t, c.SecurityContext)
		assert.True(t, *c.SecurityContext.Privileged, c.Name)
	}
	mounts := func(c corev1.Container) map[string]string {
		m := map[string]string{}
		for _, vm := range c.VolumeMounts {
			for _, v := range spec.Volumes {
				if v.Name == vm.Name {
					m[vm.MountPath] = v.HostPath.Path
				}
			}
		}
		return m
	}
	// install writes to the mount of the host's /opt/cni/bin.
	require.Contains(t, install.Command, "install")
	dst := install.Command[slices.Index(install.Command, "--dst")+1]
	assert.Equal(t, "/opt/cni/bin", mounts(install)[dst])
	// The agent writes into the mount of the host's /etc/cni/net.d.
	require.Contains(t, agent.Command, "agent")
	var confDir string
	for _, a := range agent.Args {
		if v, ok := strings.CutPrefix(a, "--cni-conf-dir="); ok {
			confDir = v
		}
	}
	assert.Equal(t, "/etc/cni/net.d", mounts(agent)[confDir])

	// Every agent flag is one the binary knows: run it with them against a
	// kubeconfig that does not exist; it must get past flag parsing.
	args := append([]string{"agent"}, agent.Args...)
	for i, a := range args {
		args[i] = strings.ReplaceAll(a, "$(NODE_NAME)", "node-1")
	}
	args = append(args, "--kubeconfig="+filepath.Join(t.TempDir(), "missing"))
	out, err := exec.Command(filepath.Join(binDir, "stratus-bridge"), args...).CombinedOutput()
	require.Error(t, err)
	assert.Contains(t, string(out), "missing", "must fail on the kubeconfig, not on a flag: %s", out)
	assert.NotContains(t, string(out), "flag provided but not defined")
}
