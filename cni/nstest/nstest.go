// Package nstest is test support for code that runs in real network namespaces:
// named namespaces that clean themselves up, and a runtime that drives a CNI plugin
// through libcni from inside a node namespace, the way containerd or CRI-O would.
// It is imported by tests and benchmarks only; it needs root.
package nstest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/invoke"
	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/cni/pkg/version"
	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/stratus-cloud/stratus/internal/testcap"
)

// NamePrefix starts every namespace this package creates, followed by the creating
// process's PID, so Sweep can remove what a killed test run left behind.
const NamePrefix = "sbt"

const netnsDir = "/var/run/netns"

// Usable reports why namespace tests cannot run here, or "" when they can.
func Usable() string {
	if os.Geteuid() != 0 {
		return "needs root (network namespaces, veth, iptables)"
	}
	if _, err := exec.LookPath("ip"); err != nil {
		return "needs the ip command (iproute2) for `ip netns`"
	}
	name := fmt.Sprintf("%s%d-probe-%s", NamePrefix, os.Getpid(), RandHex(3))
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		return fmt.Sprintf("`ip netns add` is not supported here: %v: %s", err, strings.TrimSpace(string(out)))
	}
	_ = exec.Command("ip", "netns", "del", name).Run()
	return ""
}

// Require skips the test, loudly, when namespace tests cannot run (fails it under CI=true).
func Require(t testing.TB) {
	t.Helper()
	if why := Usable(); why != "" {
		testcap.Missing(t, "network namespace test: %s", why)
	}
}

// RandHex returns n random bytes as hex.
func RandHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// NS is a named network namespace (`ip netns add`), visible under /var/run/netns.
type NS struct {
	Name string
	ns.NetNS
}

// Create makes a namespace named sbt<pid>-<tag>-<random> with loopback up.
func Create(tag string) (*NS, error) {
	name := fmt.Sprintf("%s%d-%s-%s", NamePrefix, os.Getpid(), tag, RandHex(3))
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("ip netns add %s: %v: %s", name, err, out)
	}
	if out, err := exec.Command("ip", "-n", name, "link", "set", "lo", "up").CombinedOutput(); err != nil {
		_ = exec.Command("ip", "netns", "del", name).Run()
		return nil, fmt.Errorf("lo up in %s: %v: %s", name, err, out)
	}
	h, err := ns.GetNS(filepath.Join(netnsDir, name))
	if err != nil {
		_ = exec.Command("ip", "netns", "del", name).Run()
		return nil, fmt.Errorf("open netns %s: %w", name, err)
	}
	return &NS{Name: name, NetNS: h}, nil
}

// New creates a namespace that is deleted when the test ends, pass or fail.
// Deleting it takes its links, routes and iptables rules with it.
func New(t testing.TB, tag string) *NS {
	t.Helper()
	n, err := Create(tag)
	if err != nil {
		t.Fatalf("create netns: %v", err)
	}
	t.Cleanup(func() {
		if err := n.Delete(); err != nil {
			t.Errorf("delete netns %s: %v", n.Name, err)
		}
	})
	return n
}

// Delete closes and removes the namespace.
func (n *NS) Delete() error {
	_ = n.Close()
	out, err := exec.Command("ip", "netns", "del", n.Name).CombinedOutput()
	if err != nil && !strings.Contains(string(out), "No such file") {
		return fmt.Errorf("ip netns del %s: %v: %s", n.Name, err, out)
	}
	return nil
}

// Run runs a command inside the namespace and returns its combined output.
func (n *NS) Run(name string, args ...string) (string, error) {
	cmd := exec.Command("ip", append([]string{"netns", "exec", n.Name, name}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s %s in %s: %w: %s", name, strings.Join(args, " "), n.Name, err, out)
	}
	return string(out), nil
}

// Sweep deletes namespaces left by earlier test processes that no longer run
// (a test binary killed by its timeout never runs its cleanups).
func Sweep() {
	entries, err := os.ReadDir(netnsDir)
	if err != nil {
		return
	}
	for _, e := range entries {
		rest, ok := strings.CutPrefix(e.Name(), NamePrefix)
		if !ok {
			continue
		}
		pidStr, _, ok := strings.Cut(rest, "-")
		pid, err := strconv.Atoi(pidStr)
		if !ok || err != nil || pid == os.Getpid() {
			continue
		}
		if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
			_ = exec.Command("ip", "netns", "del", e.Name()).Run()
		}
	}
}

// BuildPlugin builds cmd/stratus-cni into dir as stratus-bridge, the file name a
// runtime finds it by.
func BuildPlugin(dir string) (string, error) {
	out := filepath.Join(dir, "stratus-bridge")
	cmd := exec.Command("go", "build", "-o", out, "github.com/stratus-cloud/stratus/cmd/stratus-cni")
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build stratus-cni: %w: %s", err, b)
	}
	return out, nil
}

// Runtime drives a conflist through libcni with the plugin processes started
// inside Node, so the node's bridge, veths and iptables rules live in Node.
type Runtime struct {
	Node *NS
	CNI  *libcni.CNIConfig
	List *libcni.NetworkConfigList

	binDirs  []string
	cacheDir string
}

// envExec adds environment to every plugin invocation (fault injection) without
// touching the test process's environment, so parallel tests stay independent.
type envExec struct {
	invoke.RawExec
	version.PluginDecoder
	env []string
}

func (e *envExec) ExecPlugin(ctx context.Context, path string, stdin []byte, environ []string) ([]byte, error) {
	return e.RawExec.ExecPlugin(ctx, path, stdin, append(environ, e.env...))
}

// NewRuntime parses conflist and prepares libcni with binDirs and its own cache dir.
// extraEnv is added to each plugin's environment.
func NewRuntime(node *NS, binDirs []string, cacheDir string, conflist []byte, extraEnv ...string) (*Runtime, error) {
	list, err := libcni.ConfListFromBytes(conflist)
	if err != nil {
		return nil, fmt.Errorf("parse conflist: %w", err)
	}
	exe := &envExec{RawExec: invoke.RawExec{Stderr: os.Stderr}, env: extraEnv}
	return &Runtime{Node: node, CNI: libcni.NewCNIConfigWithCacheDir(binDirs, cacheDir, exe), List: list,
		binDirs: binDirs, cacheDir: cacheDir}, nil
}

// WithEnv returns a runtime sharing the cache whose plugins also get env.
func (r *Runtime) WithEnv(env ...string) *Runtime {
	exe := &envExec{RawExec: invoke.RawExec{Stderr: os.Stderr}, env: env}
	return &Runtime{Node: r.Node, CNI: libcni.NewCNIConfigWithCacheDir(r.binDirs, r.cacheDir, exe), List: r.List,
		binDirs: r.binDirs, cacheDir: r.cacheDir}
}

// Pod is what a runtime knows about a pod sandbox.
func Pod(containerID, netnsPath, ifName string) *libcni.RuntimeConf {
	return &libcni.RuntimeConf{ContainerID: containerID, NetNS: netnsPath, IfName: ifName}
}

func (r *Runtime) inNode(fn func() error) error {
	return r.Node.Do(func(ns.NetNS) error { return fn() })
}

// Add runs ADD for the whole list and returns the result as a 1.x result.
func (r *Runtime) Add(ctx context.Context, rt *libcni.RuntimeConf) (*current.Result, error) {
	var res types.Result
	err := r.inNode(func() (err error) {
		res, err = r.CNI.AddNetworkList(ctx, r.List, rt)
		return err
	})
	if err != nil {
		return nil, err
	}
	return current.NewResultFromResult(res)
}

// AddRaw runs ADD and returns the result as the plugin printed it for the list's
// cniVersion.
func (r *Runtime) AddRaw(ctx context.Context, rt *libcni.RuntimeConf) (types.Result, error) {
	var res types.Result
	err := r.inNode(func() (err error) {
		res, err = r.CNI.AddNetworkList(ctx, r.List, rt)
		return err
	})
	return res, err
}

// Del runs DEL.
func (r *Runtime) Del(ctx context.Context, rt *libcni.RuntimeConf) error {
	return r.inNode(func() error { return r.CNI.DelNetworkList(ctx, r.List, rt) })
}

// Check runs CHECK (libcni supplies the cached result as prevResult).
func (r *Runtime) Check(ctx context.Context, rt *libcni.RuntimeConf) error {
	return r.inNode(func() error { return r.CNI.CheckNetworkList(ctx, r.List, rt) })
}

// GC runs GC with the given valid attachments.
func (r *Runtime) GC(ctx context.Context, valid ...types.GCAttachment) error {
	return r.inNode(func() error {
		return r.CNI.GCNetworkList(ctx, r.List, &libcni.GCArgs{ValidAttachments: valid})
	})
}

// Status runs STATUS.
func (r *Runtime) Status(ctx context.Context) error {
	return r.inNode(func() error { return r.CNI.GetStatusNetworkList(ctx, r.List) })
}
