package main

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/client-go/kubernetes/fake"
	"sigs.k8s.io/yaml"

	"github.com/stratus-cloud/stratus/cni/agent"
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

// The manifests agree with each other and with this binary: RBAC grants what the
// agent does (list and watch of nodes, nothing else), the DaemonSet's agent
// container runs this binary with flags it accepts and options it takes. The init
// container is checked against the plugin binary in cmd/stratus-cni; a real
// apiserver's dry run of both files is in test/e2e/cni_agent_test.go.
func TestManifestsMatchTheAgent(t *testing.T) {
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
	assert.Equal(t, []string{""}, role.Rules[0].APIGroups)
	assert.Equal(t, []string{"nodes"}, role.Rules[0].Resources)
	assert.ElementsMatch(t, []string{"list", "watch"}, role.Rules[0].Verbs, "an informer lists and watches; the agent never writes")
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
	assert.True(t, spec.HostNetwork, "the agent must reach the API before the node has pod networking")
	require.Len(t, spec.Containers, 1)
	c := spec.Containers[0]
	assert.Equal(t, []string{"/usr/local/bin/stratus-cni-agent"}, c.Command, "the image holds the agent at /usr/local/bin/stratus-cni-agent")
	assert.Equal(t, spec.InitContainers[0].Image, c.Image, "one image holds the plugin and the agent")
	require.NotNil(t, c.SecurityContext)
	assert.True(t, *c.SecurityContext.Privileged)
	assert.True(t, slices.ContainsFunc(c.Env, func(e corev1.EnvVar) bool {
		return e.Name == "NODE_NAME" && e.ValueFrom != nil && e.ValueFrom.FieldRef != nil && e.ValueFrom.FieldRef.FieldPath == "spec.nodeName"
	}), "NODE_NAME comes from the downward API")

	// Every flag is one the binary knows, and the options are ones the agent takes.
	args := slices.Clone(c.Args)
	for i, a := range args {
		args[i] = strings.ReplaceAll(a, "$(NODE_NAME)", "node-1")
	}
	cfg, err := parseFlags(args, &bytes.Buffer{})
	require.NoError(t, err)
	assert.Equal(t, "node-1", cfg.agent.NodeName)
	assert.Empty(t, cfg.kubeconfig, "in a pod the agent uses its service account")
	_, err = agent.New(fake.NewClientset(), cfg.agent)
	require.NoError(t, err)
	_, err = agent.Render(cfg.agent, "10.244.1.0/24")
	require.NoError(t, err)

	// The agent writes into the mount of the host's /etc/cni/net.d.
	var hostPath string
	for _, vm := range c.VolumeMounts {
		if vm.MountPath != cfg.agent.ConfDir {
			continue
		}
		for _, v := range spec.Volumes {
			if v.Name == vm.Name && v.HostPath != nil {
				hostPath = v.HostPath.Path
			}
		}
	}
	assert.Equal(t, "/etc/cni/net.d", hostPath)
	assert.Equal(t, agent.DefaultConfName, cfg.agent.ConfName)
}
