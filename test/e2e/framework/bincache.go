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

// binCache is a directory of binaries the harness does not build per run: the one an
// environment variable names, else the one a hack/ script prints after building it once
// into a cache outside the checkout. It is resolved once per test binary.
type binCache struct {
	what   string // "kube binaries", for errors
	env    string // the variable that names a ready directory
	script string // under hack/: builds on first use, prints the directory last
	cold   string // how long a cold build takes, for the log

	once sync.Once
	dir  string
	err  error
}

// binary returns the path of the executable name in the cache, failing the test when
// the cache cannot be resolved or does not hold it.
func (c *binCache) binary(t testing.TB, name string) string {
	t.Helper()
	c.once.Do(func() { c.dir, c.err = c.resolve(t) })
	if c.err != nil {
		t.Fatal(c.err)
	}
	bin := filepath.Join(c.dir, name)
	if st, err := os.Stat(bin); err != nil || st.Mode()&0o111 == 0 {
		t.Fatalf("%s: not an executable in %s (from %s or hack/%s)", name, c.dir, c.env, c.script)
	}
	return bin
}

func (c *binCache) resolve(t testing.TB) (string, error) {
	if dir := os.Getenv(c.env); dir != "" {
		return dir, nil
	}
	root, err := RepoRoot()
	if err != nil {
		return "", fmt.Errorf("%s: %w", c.what, err)
	}
	script := filepath.Join(root, "hack", c.script)
	t.Logf("running %s (a cold build takes %s; set %s to skip)", script, c.cold, c.env)
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(script)
	cmd.Dir = root
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("%s: %s: %w\n%s", c.what, script, err, stderr.String())
	}
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	dir := strings.TrimSpace(lines[len(lines)-1])
	if dir == "" {
		return "", fmt.Errorf("%s: %s printed no directory\n%s", c.what, script, stderr.String())
	}
	return dir, nil
}
