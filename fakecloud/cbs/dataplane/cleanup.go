package dataplane

import (
	"path/filepath"
	"strings"
)

// DetachUnder detaches every loop device whose backing file lies under dir, whether or
// not a Plane knows about it: the cleanup for tests (see dataplanetest) and for a data
// directory that is being thrown away.
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
