// Package version holds the version stamp of every Stratus binary and formats the line
// their --version flags print. The Makefile sets the stamp at link time:
//
//	-ldflags "-X github.com/stratus-cloud/stratus/internal/version.version=v0.1.0
//	          -X github.com/stratus-cloud/stratus/internal/version.commit=0123abcd"
//
// Without it (go run, go test, go install) the module version and VCS revision the Go
// toolchain recorded are reported instead. It reads nothing but the binary's own build
// information and never touches the network or the file system.
package version

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

// Set by -ldflags -X; empty in an unstamped build.
var (
	version = ""
	commit  = ""
)

// Unknown stands for a field neither the stamp nor the build information provides.
const Unknown = "unknown"

// Version is the stamped project version (the VERSION file, or what make was given), else
// the main module's version as the toolchain recorded it ("(devel)" for a checkout).
func Version() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "(devel)"
}

// Commit is the stamped source revision, else the VCS revision the toolchain recorded
// (with "-dirty" for a modified tree), else Unknown.
func Commit() string {
	if commit != "" {
		return commit
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return Unknown
	}
	rev, dirty := "", false
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if rev == "" {
		return Unknown
	}
	if dirty {
		rev += "-dirty"
	}
	return rev
}

// String is the one-line answer to --version: "<program> <version> (commit <commit>,
// <go version> <os>/<arch>)".
func String(program string) string {
	return fmt.Sprintf("%s %s (commit %s, %s %s/%s)", program, Version(), Commit(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
}

// Requested reports whether args ask for the version: a plain --version (or -version,
// --version=true) before any "--". Binaries whose own flag parser has other uses for
// --version=<value> (the CCM's upstream --version=raw) keep them.
func Requested(args []string) bool {
	for _, a := range args {
		switch a {
		case "--version", "-version", "--version=true":
			return true
		case "--":
			return false
		}
	}
	return false
}
