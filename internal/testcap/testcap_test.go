package testcap

import (
	"fmt"
	"strings"
	"testing"
)

// recorder is a testing.TB that records how a test ended instead of ending it.
type recorder struct {
	testing.TB
	skipped, failed string
}

func (r *recorder) Helper()                           {}
func (r *recorder) Skipf(format string, args ...any)  { r.skipped = fmt.Sprintf(format, args...) }
func (r *recorder) Fatalf(format string, args ...any) { r.failed = fmt.Sprintf(format, args...) }

func TestMissing(t *testing.T) {
	cases := []struct {
		name       string
		ci         string
		wantFailed bool
	}{
		{"no CI variable skips", "", false},
		{"CI=false skips", "false", false},
		{"CI=true fails", "true", true},
		{"CI=1 fails", "1", true},
		{"CI=TRUE fails", "TRUE", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("CI", tc.ci)
			r := &recorder{TB: t}
			Missing(r, "needs %s", "loop devices")
			if tc.wantFailed {
				if r.failed == "" || r.skipped != "" {
					t.Fatalf("want a failure, got failed=%q skipped=%q", r.failed, r.skipped)
				}
				if want := "needs loop devices"; !contains(r.failed, want) {
					t.Fatalf("failure %q does not name what is missing (%q)", r.failed, want)
				}
				return
			}
			if r.skipped == "" || r.failed != "" {
				t.Fatalf("want a skip, got failed=%q skipped=%q", r.failed, r.skipped)
			}
			if want := "needs loop devices"; !contains(r.skipped, want) {
				t.Fatalf("skip %q does not name what is missing (%q)", r.skipped, want)
			}
		})
	}
}

func TestToolNamesPackage(t *testing.T) {
	t.Setenv("CI", "true")
	r := &recorder{TB: t}
	Tool(r, "stratus-no-such-tool-7f3a", "stratus-pkg")
	if !contains(r.failed, "stratus-no-such-tool-7f3a") || !contains(r.failed, "apt-get install -y stratus-pkg") {
		t.Fatalf("failure %q should name the tool and its package", r.failed)
	}
	r = &recorder{TB: t}
	Tool(r, "sh", "dash")
	if r.failed != "" || r.skipped != "" {
		t.Fatalf("sh exists, yet failed=%q skipped=%q", r.failed, r.skipped)
	}
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }
