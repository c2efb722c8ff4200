package framework

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// ArtifactsEnv overrides where per-test artifacts (process logs, kubeconfigs) go; CI can
// point it at a directory it uploads. The default is test/e2e/_artifacts in the checkout,
// which .gitignore already excludes.
const ArtifactsEnv = "STRATUS_E2E_ARTIFACTS"

var (
	artifactsMu   sync.Mutex
	artifactDirs  = map[testing.TB]string{}
	artifactsRuns = map[string]int{} // test name -> runs so far in this process (go test -count)
)

// ArtifactsDir returns the directory for t's artifacts, created on first use. Unlike
// t.TempDir it survives the test, so logs can be read after a failure; whatever an earlier
// `go test` invocation left there is removed first. Repeated runs of one test within a
// process (-count=N) get <name>-run2, <name>-run3, ... so a failed run's logs stay.
func ArtifactsDir(t testing.TB) string {
	t.Helper()
	artifactsMu.Lock()
	defer artifactsMu.Unlock()
	if dir, ok := artifactDirs[t]; ok {
		return dir
	}
	artifactsRuns[t.Name()]++
	name := sanitizeName(t.Name())
	if n := artifactsRuns[t.Name()]; n > 1 {
		name += "-run" + strconv.Itoa(n)
	}
	dir := filepath.Join(artifactsRoot(), name)
	if err := os.RemoveAll(dir); err != nil {
		t.Fatalf("clean artifacts dir %s: %v", dir, err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatalf("create artifacts dir %s: %v", dir, err)
	}
	artifactDirs[t] = dir
	return dir
}

func artifactsRoot() string {
	if dir := os.Getenv(ArtifactsEnv); dir != "" {
		return dir
	}
	if root, err := RepoRoot(); err == nil {
		return filepath.Join(root, "test", "e2e", "_artifacts")
	}
	return filepath.Join(os.TempDir(), "stratus-e2e-artifacts")
}

// sanitizeName turns a (sub)test name into one path element.
func sanitizeName(name string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_', r == '.':
			return r
		default:
			return '_'
		}
	}, name)
}
