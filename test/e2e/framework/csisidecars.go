package framework

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// CSISidecarsDirEnv names a directory that already holds csi-provisioner and
// csi-attacher. Without it the harness runs hack/csi-sidecars.sh, which builds them from
// test/sidecars once per version pair into a cache outside the checkout.
const CSISidecarsDirEnv = "STRATUS_CSI_SIDECARS_DIR"

var sidecars = &binCache{what: "csi sidecars", env: CSISidecarsDirEnv, script: "csi-sidecars.sh", cold: "several minutes"}

// CSISidecar returns the path of a cached CSI sidecar ("csi-provisioner", "csi-attacher").
func CSISidecar(t testing.TB, name string) string {
	t.Helper()
	return sidecars.binary(t, name)
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
