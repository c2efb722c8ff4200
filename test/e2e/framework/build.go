package framework

import (
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"sync"
	"testing"
)

type buildResult struct {
	seq  int
	once sync.Once
	path string
	err  error
}

var (
	buildsMu  sync.Mutex
	builds    = map[string]*buildResult{}
	buildDir  string
	buildDirE error
	buildOnce sync.Once
)

// BuildBinary builds a main package of the main module (such as "./cmd/fakecloud") once
// per test binary run and returns the binary's path. Concurrent callers for the same
// package wait for one build. The binaries live in a temporary directory that Run removes.
func BuildBinary(t testing.TB, pkg string) string {
	t.Helper()
	buildsMu.Lock()
	b, ok := builds[pkg]
	if !ok {
		b = &buildResult{seq: len(builds)}
		builds[pkg] = b
	}
	buildsMu.Unlock()
	b.once.Do(func() { b.path, b.err = build(pkg, b.seq) })
	if b.err != nil {
		t.Fatal(b.err)
	}
	return b.path
}

func build(pkg string, seq int) (string, error) {
	root, err := RepoRoot()
	if err != nil {
		return "", fmt.Errorf("build %s: %w", pkg, err)
	}
	buildOnce.Do(func() { buildDir, buildDirE = os.MkdirTemp("", "stratus-e2e-bin-") })
	if buildDirE != nil {
		return "", fmt.Errorf("build %s: %w", pkg, buildDirE)
	}
	// One subdirectory per package: the binary keeps its own name (as argv[0] in its logs)
	// and two packages with the same base name do not collide.
	out := filepath.Join(buildDir, fmt.Sprint(seq), path.Base(pkg))
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return "", fmt.Errorf("build %s: %w", pkg, err)
	}
	cmd := exec.Command("go", "build", "-o", out, pkg)
	cmd.Dir = root
	if output, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build %s: %w\n%s", pkg, err, output)
	}
	return out, nil
}

// Run runs the tests and then removes what BuildBinary built. Use it from TestMain:
//
//	func TestMain(m *testing.M) { os.Exit(framework.Run(m)) }
func Run(m *testing.M) int {
	code := m.Run()
	if buildDir != "" {
		_ = os.RemoveAll(buildDir)
	}
	return code
}
