package images

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// listEntry is one line of build/images/images.list.
type listEntry struct {
	name     string
	binaries []string
}

func repoRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	require.NoError(t, err)
	for {
		if b, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil && bytes.HasPrefix(b, []byte("module github.com/stratus-cloud/stratus\n")) {
			return dir
		}
		parent := filepath.Dir(dir)
		require.NotEqual(t, parent, dir, "no Stratus go.mod above the test's directory")
		dir = parent
	}
}

func readList(t testing.TB, root string) []listEntry {
	t.Helper()
	f, err := os.Open(filepath.Join(root, "build", "images", "images.list"))
	require.NoError(t, err)
	defer f.Close()
	var out []listEntry
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line, _, _ := strings.Cut(sc.Text(), "#")
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		e := listEntry{name: fields[0]}
		for _, b := range fields[1:] {
			if b != "-" {
				e.binaries = append(e.binaries, b)
			}
		}
		out = append(out, e)
	}
	require.NoError(t, sc.Err())
	require.NotEmpty(t, out, "images.list lists no image")
	return out
}

// projectVersion is the tag `make images` used: $VERSION, else the VERSION file.
func projectVersion(t testing.TB, root string) string {
	t.Helper()
	if v := os.Getenv("VERSION"); v != "" {
		return v
	}
	b, err := os.ReadFile(filepath.Join(root, "VERSION"))
	require.NoError(t, err)
	return strings.TrimSpace(string(b))
}
