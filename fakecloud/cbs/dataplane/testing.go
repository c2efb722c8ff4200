package dataplane

import (
	"path/filepath"
	"strings"
)

// DetachUnder detaches every loop device whose backing file lies under dir. Tests register
// it with t.Cleanup so that no loop device outlives them, whatever the code under test did.
func DetachUnder(dir string) error {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	loops, err := listLoops()
	if err != nil {
		return err
	}
	var firstErr error
	for _, d := range loops {
		if strings.HasPrefix(d.Backing, abs+string(filepath.Separator)) {
			if err := detachLoop(d.Path, d.Backing); err != nil && firstErr == nil {
				firstErr = err
			}
		}
	}
	return firstErr
}
