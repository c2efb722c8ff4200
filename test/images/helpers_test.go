//go:build images

package images

import (
	"bufio"
	"bytes"
	"context"
	"crypto/x509"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/stratus-cloud/stratus/internal/testcap"
)

// Env names the tests read; the Makefile's image-test target passes VERSION and REGISTRY.
const (
	imagesDirEnv = "STRATUS_IMAGES_DIR" // default <repo>/_output/images
	runTimeout   = 2 * time.Minute      // one command in an image, generous for a loaded CI machine
)

// registry is the image name prefix `make images` used: $REGISTRY, else "stratus".
func registry() string {
	if r := os.Getenv("REGISTRY"); r != "" {
		return r
	}
	return "stratus"
}

func imagesDir(root string) string {
	if d := os.Getenv(imagesDirEnv); d != "" {
		return d
	}
	return filepath.Join(root, "_output", "images")
}

// unpacked is an image archive opened and its root filesystem laid out on disk.
type unpacked struct {
	*Image
	name   string
	rootfs string
}

var (
	unpackMu    sync.Mutex
	unpackCache = map[string]*unpacked{}
)

// unpackImage opens <images dir>/<name>.oci.tar and unpacks it into a directory that
// lives until the whole test binary ends (several tests read the same image). A missing
// archive is a missing capability: a skip outside CI, a failure under CI=true.
func unpackImage(t *testing.T, root, name string) *unpacked {
	t.Helper()
	unpackMu.Lock()
	defer unpackMu.Unlock()
	if u, ok := unpackCache[name]; ok {
		return u
	}
	archive := filepath.Join(imagesDir(root), name+".oci.tar")
	if _, err := os.Stat(archive); err != nil {
		testcap.Missing(t, "image archive %s: %v (run `make images` first; it needs root, buildah and mmdebstrap)", archive, err)
	}
	work, err := os.MkdirTemp("", "stratus-image-"+name+"-")
	require.NoError(t, err)
	workDirs = append(workDirs, work)
	im, err := OpenArchive(archive, work)
	require.NoError(t, err, "open %s", archive)
	u := &unpacked{Image: im, name: name, rootfs: filepath.Join(work, "rootfs")}
	require.NoError(t, im.Unpack(u.rootfs), "unpack %s", archive)
	unpackCache[name] = u
	return u
}

// workDirs are removed by TestMain once every test is done with them (after every
// mount inside them is gone).
var workDirs []string

func TestMain(m *testing.M) {
	code := m.Run()
	for _, d := range workDirs {
		if err := os.RemoveAll(d); err != nil {
			fmt.Fprintf(os.Stderr, "remove %s: %v\n", d, err)
		}
	}
	os.Exit(code)
}

// ids parses an image's User ("65532:65532", "0", "" = root).
func ids(t testing.TB, user string) (uint32, uint32) {
	t.Helper()
	if user == "" {
		return 0, 0
	}
	u, g, hasGroup := strings.Cut(user, ":")
	uid, err := strconv.ParseUint(u, 10, 32)
	require.NoError(t, err, "image User %q must be numeric (no passwd lookups in an empty image)", user)
	gid := uid
	if hasGroup {
		gid, err = strconv.ParseUint(g, 10, 32)
		require.NoError(t, err, "image User %q", user)
	}
	return uint32(uid), uint32(gid)
}

// mountProc mounts a fresh proc at <rootfs>/proc, as every container runtime does, and
// unmounts it when the test ends. Go programs need it (os.Executable reads /proc/self/exe).
func (u *unpacked) mountProc(t *testing.T) {
	t.Helper()
	p := filepath.Join(u.rootfs, "proc")
	require.NoError(t, os.MkdirAll(p, 0o555))
	var st unix.Statfs_t
	if err := unix.Statfs(p, &st); err == nil && st.Type == unix.PROC_SUPER_MAGIC {
		return
	}
	require.NoError(t, unix.Mount("proc", p, "proc", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""), "mount proc in %s", u.rootfs)
	t.Cleanup(func() { unmount(t, p) })
}

func unmount(t testing.TB, p string) {
	if err := unix.Unmount(p, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		t.Errorf("unmount %s: %v", p, err)
	}
}

// command builds a process that runs inside the image's root the way a runtime would
// start the container: chroot, the image's user, environment and working directory
// (override with the returned Cmd's fields).
func (u *unpacked) command(t *testing.T, ctx context.Context, args ...string) *exec.Cmd {
	t.Helper()
	require.NotEmpty(t, args)
	uid, gid := ids(t, u.Config.Config.User)
	dir := u.Config.Config.WorkingDir
	if dir == "" {
		dir = "/"
	}
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	// exec.Command looks relative names up on the host's PATH; inside the image the name
	// must be an absolute path, as a runtime would resolve it against the image's PATH.
	cmd.Path = args[0]
	cmd.Err = nil
	cmd.Env = append([]string{}, u.Config.Config.Env...)
	cmd.Dir = dir
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Chroot:     u.rootfs,
		Credential: &syscall.Credential{Uid: uid, Gid: gid, NoSetGroups: true},
		Setpgid:    true,
	}
	cmd.WaitDelay = 10 * time.Second
	return cmd
}

// run runs args inside the image and returns stdout and stderr; it fails the test when
// the command does not exit 0, showing both.
func (u *unpacked) run(t *testing.T, env []string, args ...string) (string, string) {
	t.Helper()
	stdout, stderr, err := u.tryRun(t, env, args...)
	require.NoError(t, err, "%s in %s\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), u.name, stdout, stderr)
	return stdout, stderr
}

func (u *unpacked) tryRun(t *testing.T, env []string, args ...string) (string, string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), runTimeout)
	defer cancel()
	cmd := u.command(t, ctx, args...)
	cmd.Env = append(cmd.Env, env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	return stdout.String(), stderr.String(), err
}

// asRoot returns a copy of u that runs commands as root (the CSI node tests drive
// mkfs/mount the way the privileged node plugin does).
func (u *unpacked) asRoot() *unpacked {
	c := *u
	cfg := u.Config
	cfg.Config.User = "0:0"
	c.Image = &Image{Ref: u.Ref, Manifest: u.Manifest, Config: cfg}
	return &c
}

// path is where an absolute path of the image lives on the host.
func (u *unpacked) path(p string) string {
	return filepath.Join(u.rootfs, filepath.FromSlash(strings.TrimPrefix(p, "/")))
}

// assertStaticExecutable checks that p (inside the image) is an executable ELF for this
// platform with no program interpreter and no dynamic libraries: CGO_ENABLED=0 did its job
// and the binary runs on an empty base.
func (u *unpacked) assertStaticExecutable(t *testing.T, p string) {
	t.Helper()
	host := u.path(p)
	st, err := os.Lstat(host)
	require.NoError(t, err, "%s in %s", p, u.name)
	require.True(t, st.Mode().IsRegular(), "%s is a regular file", p)
	assert.NotZero(t, st.Mode().Perm()&0o111, "%s is executable (mode %s)", p, st.Mode())
	f, err := elf.Open(host)
	require.NoError(t, err, "%s is an ELF binary", p)
	defer f.Close()
	wantMachine := map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64}[runtime.GOARCH]
	assert.Equal(t, wantMachine, f.Machine, "%s architecture", p)
	for _, prog := range f.Progs {
		assert.NotEqual(t, elf.PT_INTERP, prog.Type, "%s has a program interpreter: not static", p)
	}
	libs, err := f.ImportedLibraries()
	require.NoError(t, err)
	assert.Empty(t, libs, "%s links shared libraries", p)
}

// assertCABundle checks the CA certificates for HTTPS to the cloud: Go reads this path.
func (u *unpacked) assertCABundle(t *testing.T) {
	t.Helper()
	pem, err := os.ReadFile(u.path("/etc/ssl/certs/ca-certificates.crt"))
	require.NoError(t, err, "CA bundle in %s", u.name)
	pool := x509.NewCertPool()
	require.True(t, pool.AppendCertsFromPEM(pem), "CA bundle of %s holds no certificate", u.name)
	assert.Greater(t, bytes.Count(pem, []byte("BEGIN CERTIFICATE")), 50, "a Debian CA bundle has over a hundred roots")
}

// lineReader collects a process's stderr and lets a test wait for a line.
type lineReader struct {
	mu    sync.Mutex
	lines []string
	added chan struct{}
}

func newLineReader(r io.Reader) *lineReader {
	lr := &lineReader{added: make(chan struct{}, 1)}
	go func() {
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 64*1024), 1024*1024)
		for sc.Scan() {
			lr.mu.Lock()
			lr.lines = append(lr.lines, sc.Text())
			lr.mu.Unlock()
			select {
			case lr.added <- struct{}{}:
			default:
			}
		}
	}()
	return lr
}

func (lr *lineReader) String() string {
	lr.mu.Lock()
	defer lr.mu.Unlock()
	return strings.Join(lr.lines, "\n")
}

// waitFor returns the first line for which match returns a value, or an error at the
// deadline.
func (lr *lineReader) waitFor(ctx context.Context, match func(string) (string, bool)) (string, error) {
	seen := 0
	for {
		lr.mu.Lock()
		lines := lr.lines[seen:]
		seen = len(lr.lines)
		lr.mu.Unlock()
		for _, l := range lines {
			if v, ok := match(l); ok {
				return v, nil
			}
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-lr.added:
		case <-time.After(200 * time.Millisecond):
		}
	}
}
