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

// CSISidecarsDirEnv names a directory that already holds csi-provisioner and
// csi-attacher. Without it the harness runs hack/csi-sidecars.sh, which builds them from
// test/sidecars once per version pair into a cache outside the checkout.
const CSISidecarsDirEnv = "STRATUS_CSI_SIDECARS_DIR"

var (
	sidecarsOnce sync.Once
	sidecarsDir  string
	sidecarsErr  error
)

// CSISidecar returns the path of a cached CSI sidecar ("csi-provisioner", "csi-attacher").
func CSISidecar(t testing.TB, name string) string {
	t.Helper()
	sidecarsOnce.Do(func() { sidecarsDir, sidecarsErr = resolveSidecarsDir(t) })
	if sidecarsErr != nil {
		t.Fatal(sidecarsErr)
	}
	bin := filepath.Join(sidecarsDir, name)
	if st, err := os.Stat(bin); err != nil || st.Mode()&0o111 == 0 {
		t.Fatalf("%s: not an executable in %s (from %s or hack/csi-sidecars.sh)", name, sidecarsDir, CSISidecarsDirEnv)
	}
	return bin
}

func resolveSidecarsDir(t testing.TB) (string, error) {
	if dir := os.Getenv(CSISidecarsDirEnv); dir != "" {
		return dir, nil
	}
	root, err := RepoRoot()
	if err != nil {
		return "", fmt.Errorf("csi sidecars: %w", err)
	}
	script := filepath.Join(root, "hack", "csi-sidecars.sh")
	t.Logf("running %s (a cold build takes several minutes; set %s to skip)", script, CSISidecarsDirEnv)
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(script)
	cmd.Dir = root
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("csi sidecars: %s: %w\n%s", script, err, stderr.String())
	}
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	return strings.TrimSpace(lines[len(lines)-1]), nil
}

// SnapshotCRDDir is the directory of the VolumeSnapshot CRDs in the module cache: the
// external-snapshotter client module the sidecars build against ships them.
func SnapshotCRDDir() (string, error) {
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	cmd := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/kubernetes-csi/external-snapshotter/client/v8")
	cmd.Dir = filepath.Join(root, "test", "sidecars")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("locate the snapshot CRDs (go list in test/sidecars): %w: %s", err, stderr.String())
	}
	dir := filepath.Join(strings.TrimSpace(string(out)), "config", "crd")
	if _, err := os.Stat(dir); err != nil {
		return "", fmt.Errorf("snapshot CRDs: %w (run go mod download in test/sidecars)", err)
	}
	return dir, nil
}
