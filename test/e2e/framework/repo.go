package framework

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
)

// mainModule is the module whose root RepoRoot looks for; test/kube is a separate module
// under it and must not be mistaken for the root.
const mainModule = "github.com/stratus-cloud/stratus"

var (
	repoRootOnce sync.Once
	repoRootDir  string
	repoRootErr  error
)

// RepoRoot returns the checkout's root directory, found by walking up from the working
// directory (a test binary runs in its package directory) to the go.mod of the main module.
func RepoRoot() (string, error) {
	repoRootOnce.Do(func() {
		dir, err := os.Getwd()
		if err != nil {
			repoRootErr = fmt.Errorf("find repo root: %w", err)
			return
		}
		for {
			mod, err := moduleName(filepath.Join(dir, "go.mod"))
			if err == nil && mod == mainModule {
				repoRootDir = dir
				return
			}
			parent := filepath.Dir(dir)
			if parent == dir {
				repoRootErr = fmt.Errorf("find repo root: no go.mod for module %s above the working directory", mainModule)
				return
			}
			dir = parent
		}
	})
	return repoRootDir, repoRootErr
}

func moduleName(goMod string) (string, error) {
	f, err := os.Open(goMod)
	if err != nil {
		return "", err
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(s.Text()), "module "); ok {
			return strings.Trim(strings.TrimSpace(rest), `"`), nil
		}
	}
	if err := s.Err(); err != nil {
		return "", err
	}
	return "", errors.New("no module directive")
}
