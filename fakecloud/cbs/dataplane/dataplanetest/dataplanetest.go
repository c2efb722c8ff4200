// Package dataplanetest holds test helpers for code that exercises the CBS data plane
// (loop devices): a capability check that skips loudly, and a cleanup that detaches every
// loop device a test's images are bound to. It is imported by tests only.
package dataplanetest

import (
	"testing"

	"github.com/stratus-cloud/stratus/fakecloud/cbs/dataplane"
	"github.com/stratus-cloud/stratus/internal/testcap"
)

// RequireLoopDevices skips t, loudly, when this machine cannot create loop devices (not
// root, or no /dev/loop-control), and fails it under CI=true; everywhere else the
// data-plane tests run for real.
func RequireLoopDevices(t testing.TB) {
	t.Helper()
	testcap.Root(t, "loop devices (CBS data plane)")
	if err := dataplane.Available(); err != nil {
		testcap.Missing(t, "CBS data-plane test: loop devices unavailable: %v", err)
	}
}

// CleanupLoops registers a cleanup that detaches every loop device bound to a file under
// dir, whatever the code under test did, pass or fail. Register it after creating dir
// (t.TempDir), so that it runs before dir is removed.
func CleanupLoops(t testing.TB, dir string) {
	t.Helper()
	t.Cleanup(func() {
		if err := dataplane.DetachUnder(dir); err != nil {
			t.Errorf("detach loop devices under %s: %v", dir, err)
		}
	})
}
