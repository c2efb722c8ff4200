package framework

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// KubeBinDirEnv names a directory that already holds kube-apiserver, kube-proxy and kubectl. Without
// it the harness runs hack/kube-binaries.sh, which builds them from test/kube once per
// version into a cache outside the checkout (about 9 minutes on 2 cores the first time).
const KubeBinDirEnv = "STRATUS_KUBE_BIN_DIR"

var (
	kubeBinOnce sync.Once
	kubeBinDir  string
	kubeBinErr  error
)

// KubeBinary returns the path of a Kubernetes binary the harness builds ("kube-apiserver",
// "kube-proxy").
func KubeBinary(t testing.TB, name string) string {
	t.Helper()
	kubeBinOnce.Do(func() { kubeBinDir, kubeBinErr = resolveKubeBinDir(t) })
	if kubeBinErr != nil {
		t.Fatal(kubeBinErr)
	}
	bin := filepath.Join(kubeBinDir, name)
	if st, err := os.Stat(bin); err != nil || st.Mode()&0o111 == 0 {
		t.Fatalf("%s: not an executable in %s (from %s or hack/kube-binaries.sh)", name, kubeBinDir, KubeBinDirEnv)
	}
	return bin
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

func resolveKubeBinDir(t testing.TB) (string, error) {
	if dir := os.Getenv(KubeBinDirEnv); dir != "" {
		return dir, nil
	}
	root, err := RepoRoot()
	if err != nil {
		return "", fmt.Errorf("kube binaries: %w", err)
	}
	script := filepath.Join(root, "hack", "kube-binaries.sh")
	t.Logf("running %s (a cold build takes about 9 minutes; set %s to skip)", script, KubeBinDirEnv)
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(script)
	cmd.Dir = root
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("kube binaries: %s: %w\n%s", script, err, stderr.String())
	}
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	dir := strings.TrimSpace(lines[len(lines)-1])
	if dir == "" {
		return "", fmt.Errorf("kube binaries: %s printed no directory\n%s", script, stderr.String())
	}
	return dir, nil
}
