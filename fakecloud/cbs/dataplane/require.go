package dataplane

import (
	"os"
	"testing"
)

// RequireLoopDevices skips t, loudly, when this machine cannot create loop devices (not
// root, or no /dev/loop-control); everywhere else the data plane tests run for real.
func RequireLoopDevices(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skipf("SKIPPING data-plane test: needs root to create loop devices (euid %d)", os.Geteuid())
	}
	if err := Available(); err != nil {
		t.Skipf("SKIPPING data-plane test: loop devices unavailable: %v", err)
	}
}
