// Package binaries finds or builds every program the sandbox runs: Stratus' own
// (fakecloud, the CCM, the CNI plugin and agent, the CSI driver), built with `go build`
// from the checkout into a cache keyed by a hash of the sources, so a warm start builds
// nothing; the Kubernetes binaries and the CSI sidecars, which hack/kube-binaries.sh and
// hack/csi-sidecars.sh build once per version; and the Debian tools (etcd, ip, iptables,
// mkfs.ext4), which it only looks up, saying in one line which package to install when
// one is missing.
//
// It writes only inside its cache directory (and the destination a caller names for
// InstallSelf); it never installs packages.
package binaries

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Env variables that override where things come from.
const (
	// SourceEnv names the Stratus checkout to build from (default: found by walking up
	// from the working directory, then from the stratus executable).
	SourceEnv = "STRATUS_SOURCE_DIR"
	// CacheEnv is the cache root, shared with hack/kube-binaries.sh.
	CacheEnv = "STRATUS_CACHE_DIR"
	// KubeBinDirEnv names a directory that already holds the Kubernetes binaries.
	KubeBinDirEnv = "STRATUS_KUBE_BIN_DIR"
	// SidecarsDirEnv names a directory that already holds the CSI sidecars (the e2e
	// framework's variable).
	SidecarsDirEnv = "STRATUS_CSI_SIDECARS_DIR"
	// EtcdEnv overrides the etcd binary.
	EtcdEnv = "STRATUS_ETCD_BIN"
)

const mainModule = "github.com/stratus-cloud/stratus"

// StratusCommands are the main packages the sandbox builds, by binary name.
var StratusCommands = []string{"fakecloud", "stratus-cloud-controller-manager", "stratus-cni", "stratus-cni-agent", "stratus-csi-driver"}

// KubeCommands are the Kubernetes binaries the sandbox runs.
var KubeCommands = []string{"kube-apiserver", "kube-controller-manager", "kube-scheduler", "kube-proxy"}

// ColdKubeBuild is what a first build of the Kubernetes binaries costs here.
const ColdKubeBuild = "about 19 minutes on 2 cores"

// SidecarCommands are the Kubernetes CSI sidecars the sandbox runs beside the driver.
var SidecarCommands = []string{"csi-provisioner", "csi-attacher"}

// ColdSidecarBuild is what a first build of the CSI sidecars costs here.
const ColdSidecarBuild = "several minutes on 2 cores" // hack/csi-sidecars.sh's own estimate; not measured here

// Set is where every binary is.
type Set struct {
	// Stratus maps a StratusCommands name to its path.
	Stratus map[string]string `json:"stratus"`
	// KubeDir holds the KubeCommands.
	KubeDir string `json:"kubeDir"`
	// SidecarDir holds the SidecarCommands.
	SidecarDir string `json:"sidecarDir"`
	Etcd       string `json:"etcd"`
}

// Kube is the path of a Kubernetes binary.
func (s Set) Kube(name string) string { return filepath.Join(s.KubeDir, name) }

// Sidecar is the path of a CSI sidecar.
func (s Set) Sidecar(name string) string { return filepath.Join(s.SidecarDir, name) }

// Resolver finds and builds binaries. Progress lines go to Progress.
type Resolver struct {
	Source   string
	CacheDir string
	Progress io.Writer
}

// NewResolver locates the checkout and the cache.
func NewResolver(progress io.Writer) (*Resolver, error) {
	src, err := FindSource()
	if err != nil {
		return nil, err
	}
	return &Resolver{Source: src, CacheDir: CacheRoot(), Progress: progress}, nil
}

// CacheRoot is $STRATUS_CACHE_DIR, else $XDG_CACHE_HOME/stratus, else ~/.cache/stratus:
// the same root hack/kube-binaries.sh uses.
func CacheRoot() string {
	if d := os.Getenv(CacheEnv); d != "" {
		return d
	}
	if d := os.Getenv("XDG_CACHE_HOME"); d != "" {
		return filepath.Join(d, "stratus")
	}
	home, err := os.UserHomeDir()
	if err != nil || home == "" {
		home = "/root"
	}
	return filepath.Join(home, ".cache", "stratus")
}

// FindSource returns the root of the Stratus checkout.
func FindSource() (string, error) {
	if d := os.Getenv(SourceEnv); d != "" {
		if !isModuleRoot(d) {
			return "", fmt.Errorf("%s=%s: not a Stratus checkout (no go.mod of %s)", SourceEnv, d, mainModule)
		}
		return d, nil
	}
	var starts []string
	if wd, err := os.Getwd(); err == nil {
		starts = append(starts, wd)
	}
	if exe, err := os.Executable(); err == nil {
		starts = append(starts, filepath.Dir(exe))
	}
	for _, dir := range starts {
		for d := dir; ; d = filepath.Dir(d) {
			if isModuleRoot(d) {
				return d, nil
			}
			if filepath.Dir(d) == d {
				break
			}
		}
	}
	return "", fmt.Errorf("cannot find the Stratus checkout to build from: run stratus inside it, or set %s", SourceEnv)
}

func isModuleRoot(dir string) bool {
	f, err := os.Open(filepath.Join(dir, "go.mod"))
	if err != nil {
		return false
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(s.Text()), "module "); ok {
			return strings.Trim(strings.TrimSpace(rest), `"`) == mainModule
		}
	}
	return false
}

// SourceKey hashes what the Stratus binaries are built from: every non-test Go file of
// the main module outside test/, sandbox/ and cmd/stratus (which those binaries never
// import), go.mod, go.sum, and the identity of the go toolchain.
// Reading them takes milliseconds, far less than asking `go build` whether it is up to
// date.
func SourceKey(root string) (string, error) {
	h := sha256.New()
	var files []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		if d.IsDir() {
			name := d.Name()
			if path != root && (strings.HasPrefix(name, ".") || name == "testdata" || name == "bin" || name == "node_modules" || rel == "test") {
				return filepath.SkipDir
			}
			// The sandbox itself (cmd/stratus, sandbox/) is built on top of these
			// binaries and never imported by them: changing it rebuilds nothing.
			if rel == "sandbox" || rel == filepath.Join("cmd", "stratus") || rel == "docs" {
				return filepath.SkipDir
			}
			if path != root && isModuleFile(filepath.Join(path, "go.mod")) {
				return filepath.SkipDir // another module (test/kube): not part of these builds
			}
			return nil
		}
		switch {
		case rel == "go.mod" || rel == "go.sum":
		case strings.HasSuffix(rel, ".go") && !strings.HasSuffix(rel, "_test.go"):
		default:
			return nil
		}
		files = append(files, rel)
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("hash sources in %s: %w", root, err)
	}
	sort.Strings(files)
	for _, rel := range files {
		b, err := os.ReadFile(filepath.Join(root, rel))
		if err != nil {
			return "", fmt.Errorf("hash sources: %w", err)
		}
		fmt.Fprintf(h, "%s %d\n", rel, len(b))
		h.Write(b)
	}
	if goBin, err := exec.LookPath("go"); err == nil {
		if st, err := os.Stat(goBin); err == nil {
			fmt.Fprintf(h, "go %s %d %d\n", goBin, st.Size(), st.ModTime().UnixNano())
		}
	}
	return hex.EncodeToString(h.Sum(nil))[:16], nil
}

func isModuleFile(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// Stratus returns the paths of StratusCommands, building them into the cache when the
// sources changed since the last build. built says whether it compiled.
func (r *Resolver) Stratus() (paths map[string]string, built bool, err error) {
	key, err := SourceKey(r.Source)
	if err != nil {
		return nil, false, err
	}
	base := filepath.Join(r.CacheDir, "sandbox")
	dir := filepath.Join(base, key)
	paths = map[string]string{}
	for _, c := range StratusCommands {
		paths[c] = filepath.Join(dir, c)
	}
	if complete(dir, StratusCommands) {
		return paths, false, nil
	}
	if err := os.MkdirAll(base, 0o755); err != nil {
		return nil, false, fmt.Errorf("binary cache %s: %w", base, err)
	}
	unlock, err := lock(filepath.Join(base, ".lock"))
	if err != nil {
		return nil, false, err
	}
	defer unlock()
	if complete(dir, StratusCommands) { // another stratus built them while we waited
		return paths, false, nil
	}
	if _, err := exec.LookPath("go"); err != nil {
		return nil, false, errors.New("the go command is not on PATH: it builds Stratus' binaries on first use (install Go 1.26, or run with sudo -E / a PATH that has it)")
	}
	tmp, err := os.MkdirTemp(base, ".build-")
	if err != nil {
		return nil, false, err
	}
	defer os.RemoveAll(tmp)
	fmt.Fprintf(r.Progress, "building %s from %s (once per source change)...\n", strings.Join(StratusCommands, ", "), r.Source)
	start := time.Now()
	args := []string{"build", "-o", tmp + "/"}
	for _, c := range StratusCommands {
		args = append(args, "./cmd/"+c)
	}
	cmd := exec.Command("go", args...)
	cmd.Dir = r.Source
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return nil, false, fmt.Errorf("go build in %s: %w\n%s", r.Source, err, out.String())
	}
	if err := os.Rename(tmp, dir); err != nil {
		return nil, false, fmt.Errorf("binary cache: %w", err)
	}
	fmt.Fprintf(r.Progress, "built in %.1fs into %s\n", time.Since(start).Seconds(), dir)
	prune(base, dir, 3)
	return paths, true, nil
}

// Kube returns the directory holding KubeCommands, running hack/kube-binaries.sh (which
// builds them on first use) when they are not cached yet.
func (r *Resolver) Kube() (string, error) {
	if d := os.Getenv(KubeBinDirEnv); d != "" {
		if !complete(d, KubeCommands) {
			return "", fmt.Errorf("%s=%s does not hold %s", KubeBinDirEnv, d, strings.Join(KubeCommands, ", "))
		}
		return d, nil
	}
	return r.cached("kube-binaries.sh", "Kubernetes binaries", KubeCommands, ColdKubeBuild)
}

// Sidecars returns the directory holding SidecarCommands, running hack/csi-sidecars.sh
// (which builds them on first use) when they are not cached yet.
func (r *Resolver) Sidecars() (string, error) {
	if d := os.Getenv(SidecarsDirEnv); d != "" {
		if !complete(d, SidecarCommands) {
			return "", fmt.Errorf("%s=%s does not hold %s", SidecarsDirEnv, d, strings.Join(SidecarCommands, ", "))
		}
		return d, nil
	}
	return r.cached("csi-sidecars.sh", "CSI sidecars", SidecarCommands, ColdSidecarBuild)
}

// cached asks a hack script (which prints its cache directory with --print-dir, and
// builds into it without) for names, building them with a progress line when missing.
func (r *Resolver) cached(scriptName, what string, names []string, cold string) (string, error) {
	script := filepath.Join(r.Source, "hack", scriptName)
	cmd := exec.Command(script, "--print-dir")
	cmd.Dir = r.Source
	cmd.Env = append(os.Environ(), CacheEnv+"="+r.CacheDir)
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("%s --print-dir: %w", script, err)
	}
	dir := strings.TrimSpace(string(out))
	if complete(dir, names) {
		return dir, nil
	}
	fmt.Fprintf(r.Progress, "building the %s (%s) once into %s: a cold build takes %s...\n", what, strings.Join(names, ", "), dir, cold)
	start := time.Now()
	cmd = exec.Command(script)
	cmd.Dir = r.Source
	cmd.Env = append(os.Environ(), CacheEnv+"="+r.CacheDir)
	cmd.Stderr = r.Progress
	if out, err = cmd.Output(); err != nil {
		return "", fmt.Errorf("%s: %w", script, err)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	dir = strings.TrimSpace(lines[len(lines)-1])
	if !complete(dir, names) {
		return "", fmt.Errorf("%s finished but %s does not hold %s", script, dir, strings.Join(names, ", "))
	}
	fmt.Fprintf(r.Progress, "%s built in %s\n", what, time.Since(start).Round(time.Second))
	return dir, nil
}

// Tool is a program from a Debian package the sandbox needs.
type Tool struct {
	Name, Package, Why string
}

// Tools are the Debian tools the sandbox needs besides etcd.
var Tools = []Tool{
	{"ip", "iproute2", "network namespaces"},
	{"iptables", "iptables", "kube-proxy and the CNI plugin's masquerade rules"},
	{"iptables-restore", "iptables", "kube-proxy"},
	{"mkfs.ext4", "e2fsprogs", "the CSI node plugin's filesystems"},
}

// LookTool finds a tool on PATH or in the sbin directories sudo may leave off PATH.
func LookTool(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, d := range []string{"/usr/sbin", "/sbin", "/usr/bin"} {
		p := filepath.Join(d, name)
		if st, err := os.Stat(p); err == nil && st.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s not found", name)
}

// CheckTools reports the first missing tool as one line naming its package.
func CheckTools(lookup func(string) (string, error)) error {
	for _, t := range Tools {
		if _, err := lookup(t.Name); err != nil {
			return fmt.Errorf("%s is missing (needed for %s): install Debian's %s: apt-get install -y %s", t.Name, t.Why, t.Package, t.Package)
		}
	}
	return nil
}

// Etcd finds Debian's etcd (package etcd-server), or $STRATUS_ETCD_BIN.
func Etcd(lookup func(string) (string, error)) (string, error) {
	if b := os.Getenv(EtcdEnv); b != "" {
		return b, nil
	}
	const debian = "/usr/bin/etcd"
	if st, err := os.Stat(debian); err == nil && st.Mode()&0o111 != 0 {
		return debian, nil
	}
	if p, err := lookup("etcd"); err == nil {
		return p, nil
	}
	return "", errors.New("etcd is missing (the cluster's store): install Debian's etcd-server: apt-get install -y etcd-server")
}

// InstallSelf puts a copy of this executable at dst (a hard link when it can), so the
// supervisor and the podlets run a binary that outlives `go run`'s temporary one.
func InstallSelf(dst string) error {
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find own executable: %w", err)
	}
	return install(self, dst)
}

// Install puts src at dst: a hard link when both are on one filesystem, else a copy.
func Install(src, dst string) error { return install(src, dst) }

// Link makes dst name the same program as src (a symlink), replacing what was there.
func Link(src, dst string) error {
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	_ = os.Remove(dst)
	return os.Symlink(src, dst)
}

func install(src, dst string) error {
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	_ = os.Remove(dst)
	if err := os.Link(src, dst); err == nil {
		return nil
	}
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o755)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return fmt.Errorf("copy %s to %s: %w", src, dst, err)
	}
	return out.Close()
}

func complete(dir string, names []string) bool {
	for _, n := range names {
		st, err := os.Stat(filepath.Join(dir, n))
		if err != nil || st.Mode()&0o111 == 0 {
			return false
		}
	}
	return true
}

// lock takes an exclusive flock on path.
func lock(path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return func() { _ = unix.Flock(int(f.Fd()), unix.LOCK_UN); f.Close() }, nil
}

// prune keeps the newest keep builds under base (and always current).
func prune(base, current string, keep int) {
	entries, err := os.ReadDir(base)
	if err != nil {
		return
	}
	type build struct {
		path string
		mod  time.Time
	}
	var builds []build
	for _, e := range entries {
		if !e.IsDir() || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		p := filepath.Join(base, e.Name())
		if p == current {
			continue
		}
		if info, err := e.Info(); err == nil {
			builds = append(builds, build{p, info.ModTime()})
		}
	}
	slices.SortFunc(builds, func(a, b build) int { return b.mod.Compare(a.mod) })
	for i, b := range builds {
		if i >= keep-1 {
			_ = os.RemoveAll(b.path)
		}
	}
}
