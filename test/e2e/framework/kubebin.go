package framework

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// KubeBinDirEnv names a directory that already holds kube-apiserver, kube-proxy and kubectl. Without
// it the harness runs hack/kube-binaries.sh, which builds them from test/kube once per
// version into a cache outside the checkout (about 9 minutes on 2 cores the first time).
const KubeBinDirEnv = "STRATUS_KUBE_BIN_DIR"

var kubeBins = &binCache{what: "kube binaries", env: KubeBinDirEnv, script: "kube-binaries.sh", cold: "about 9 minutes"}

// KubeBinary returns the path of a Kubernetes binary the harness builds ("kube-apiserver",
// "kube-proxy").
func KubeBinary(t testing.TB, name string) string {
	t.Helper()
	return kubeBins.binary(t, name)
}

// KubeVersion is the k8s.io/kubernetes version test/kube/go.mod pins, which is the version
// hack/kube-binaries.sh stamps into the binaries it builds.
func KubeVersion() (string, error) {
	root, err := RepoRoot()
	if err != nil {
		return "", fmt.Errorf("kube version: %w", err)
	}
	goMod := filepath.Join(root, "test", "kube", "go.mod")
	data, err := os.ReadFile(goMod)
	if err != nil {
		return "", fmt.Errorf("kube version: %w", err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		fields := strings.Fields(strings.TrimPrefix(strings.TrimSpace(line), "require "))
		if len(fields) >= 2 && fields[0] == "k8s.io/kubernetes" && strings.HasPrefix(fields[1], "v") {
			return fields[1], nil
		}
	}
	return "", fmt.Errorf("kube version: no k8s.io/kubernetes requirement in %s", goMod)
}
