package main

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The plugin is exec'd on every pod ADD and DEL: what it links, it initialises
// every time. client-go and its machinery (and the HTTP/TLS stack under them), and
// klog, belong to the agent, cmd/stratus-cni-agent; none of it may creep back in
// through an import of cni/agent or of an API helper.
func TestPluginDoesNotLinkTheKubernetesClient(t *testing.T) {
	t.Parallel()
	out, err := exec.Command("go", "list", "-deps", ".").CombinedOutput()
	require.NoError(t, err, string(out))
	deps := strings.Fields(string(out))
	require.Contains(t, deps, "github.com/containernetworking/cni/pkg/skel", "go list must list the plugin's dependencies")
	forbidden := []string{
		"k8s.io/client-go",
		"k8s.io/apimachinery",
		"k8s.io/api",
		"github.com/stratus-cloud/stratus/cni/agent",
		"net/http",
		"crypto/tls",
		"k8s.io/klog",
	}
	for _, dep := range deps {
		for _, f := range forbidden {
			assert.False(t, dep == f || strings.HasPrefix(dep, f+"/"), "cmd/stratus-cni links %s (forbidden: %s)", dep, f)
		}
	}
}
