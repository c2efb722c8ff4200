package cni

import (
	"os"
	"syscall"
	"time"
)

// Fault injection for the namespace tests: they drive the real binary through
// libcni, so the only way to stop it at a chosen point is its environment. Nothing
// here does anything unless the variables are set.

// CrashPointEnv names a fault-injection point at which the plugin kills itself with
// SIGKILL, so tests can leave exactly the state a real crash would. Unset in
// production.
const CrashPointEnv = "STRATUS_CNI_CRASH_AT"

// Crash points.
const (
	CrashAfterAllocate = "after-allocate"
	CrashAfterVeth     = "after-veth"
)

// HoldPointEnv and HoldFileEnv make the plugin stop at a point until a file
// exists: tests use it to run GC while an ADD is in flight. Unset in production.
const (
	HoldPointEnv = "STRATUS_CNI_HOLD_AT"
	HoldFileEnv  = "STRATUS_CNI_HOLD_UNTIL"
)

func holdPoint(name string) {
	if os.Getenv(HoldPointEnv) != name || os.Getenv(HoldFileEnv) == "" {
		return
	}
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		if _, err := os.Stat(os.Getenv(HoldFileEnv)); err == nil {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func crashPoint(name string) {
	if os.Getenv(CrashPointEnv) == name {
		_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {} // SIGKILL is not delivered synchronously everywhere
	}
}
