// Package testcap decides what a test does when the machine lacks a capability it needs
// (root, network namespaces, loop devices, a Debian tool): outside CI it skips, loudly,
// naming what is missing; under CI=true it fails instead, so CI can never go green on
// tests that did not run.
//
// It only reports; it never probes the machine itself (callers know how to check what they
// need) and it never changes the machine.
package testcap

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// InCI reports whether the tests run under CI (the CI environment variable is "true" or
// "1", as every CI system and our .ci/run set it).
func InCI() bool {
	switch strings.ToLower(strings.TrimSpace(os.Getenv("CI"))) {
	case "true", "1", "yes":
		return true
	}
	return false
}

// Missing is the one way a test gives up on an absent capability: t.Skipf outside CI,
// t.Fatalf under CI=true. The message says what is missing and how to get it.
func Missing(t testing.TB, format string, args ...any) {
	t.Helper()
	why := fmt.Sprintf(format, args...)
	if InCI() {
		t.Fatalf("CI=true and this test cannot run: %s (CI must provide it; a skip here would hide an untested path)", why)
		return
	}
	t.Skipf("SKIPPING (not under CI): %s", why)
}

// Root requires euid 0; what names the operations that need it.
func Root(t testing.TB, what string) {
	t.Helper()
	if uid := os.Geteuid(); uid != 0 {
		Missing(t, "needs root for %s (running as uid %d)", what, uid)
	}
}

// Tool requires an executable on PATH; pkg names the Debian package that ships it.
func Tool(t testing.TB, name, pkg string) {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		Missing(t, "%s is not installed (apt-get install -y %s): %v", name, pkg, err)
	}
}
