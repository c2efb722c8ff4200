package supervisor

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/containernetworking/plugins/pkg/ns"
	"golang.org/x/sys/unix"
	"k8s.io/klog/v2"

	"github.com/stratus-cloud/stratus/sandbox/component"
	"github.com/stratus-cloud/stratus/sandbox/state"
	"github.com/stratus-cloud/stratus/sandbox/vpcnet"
)

// proc runs one component: it waits for the components it comes after, starts it (in
// its namespace), restarts it with backoff when it exits once the sandbox is up, and
// probes its health.
type proc struct {
	spec component.Spec
	dir  state.Dir
	// healthy is closed the first time the probe passes; serving the first time the
	// Serving probe (or the health probe) passes.
	healthy     chan struct{}
	healthyOnce sync.Once
	serving     chan struct{}
	servingOnce sync.Once

	mu       sync.Mutex
	cmd      *exec.Cmd
	pid      state.Proc
	exited   chan struct{} // closed when the current process has been reaped
	state    string
	restarts int
	lastErr  string
	stopping bool
}

func newProc(spec component.Spec, dir state.Dir) *proc {
	return &proc{spec: spec, dir: dir, healthy: make(chan struct{}), serving: make(chan struct{}), state: state.StateStarting}
}

func (p *proc) status() state.ComponentStatus {
	p.mu.Lock()
	defer p.mu.Unlock()
	health := ""
	if p.spec.Health != nil {
		health = p.spec.Health.String()
	}
	return state.ComponentStatus{
		Name: p.spec.Name, Node: p.spec.Node, Proc: p.pid, State: p.state, Restarts: p.restarts,
		Log: p.dir.LogFile(p.spec.Name), Health: health, Detail: p.lastErr,
	}
}

func (p *proc) set(st, detail string) {
	p.mu.Lock()
	p.state, p.lastErr = st, detail
	p.mu.Unlock()
}

// childEnv is the supervisor's environment without proxy settings: every component talks
// only to the sandbox's own addresses, which a proxy could never reach.
func childEnv(extra []string) []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch strings.ToUpper(k) {
		case "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY", "KUBECONFIG":
			continue
		}
		env = append(env, kv)
	}
	return append(env, extra...)
}

// start launches the process. A component with a namespace is forked from a thread that
// has joined it, so the child lives in that namespace while sharing the host's mount
// namespace (a podlet must see /run/netns as the host does).
func (p *proc) start() error {
	logFile, err := os.OpenFile(p.dir.LogFile(p.spec.Name), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("%s: open log: %w", p.spec.Name, err)
	}
	defer logFile.Close() // the child holds its own descriptor
	cmd := exec.Command(p.spec.Binary, p.spec.Args...)
	cmd.Env = childEnv(p.spec.Env)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.Dir = string(p.dir)
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Setpgid: true,
		// If the supervisor dies, so do its children; `stratus down` then only has to
		// remove what they left on disk and in the kernel.
		Pdeathsig: syscall.SIGKILL,
	}
	fmt.Fprintf(logFile, "# %s %s: %s %s\n", time.Now().Format(time.RFC3339), p.spec.Name, p.spec.Binary, strings.Join(p.spec.Args, " "))
	if p.spec.Netns != "" {
		err = ns.WithNetNSPath(vpcnet.NetnsPath(p.spec.Netns), func(ns.NetNS) error { return cmd.Start() })
	} else {
		err = cmd.Start()
	}
	if err != nil {
		return fmt.Errorf("%s: start %s: %w", p.spec.Name, p.spec.Binary, err)
	}
	pid, err := state.ProcOf(cmd.Process.Pid)
	if err != nil {
		pid = state.Proc{Pid: cmd.Process.Pid}
	}
	if err := state.WritePidFile(p.dir.PidFile(p.spec.Name), pid); err != nil {
		klog.ErrorS(err, "Writing pidfile", "component", p.spec.Name)
	}
	exited := make(chan struct{})
	p.mu.Lock()
	p.cmd, p.pid, p.exited = cmd, pid, exited
	p.mu.Unlock()
	go func() {
		err := waitReaping(cmd)
		p.mu.Lock()
		if !p.stopping {
			p.lastErr = exitString(err)
		}
		p.mu.Unlock()
		_ = os.Remove(p.dir.PidFile(p.spec.Name))
		close(exited)
	}()
	klog.InfoS("Started", "component", p.spec.Name, "pid", pid.Pid, "netns", p.spec.Netns)
	return nil
}

// waitReaping waits for the leader, kills what is left of its process group while the
// leader is an unreaped zombie (so the group id cannot have been reused), then reaps it.
func waitReaping(cmd *exec.Cmd) error {
	pid := cmd.Process.Pid
	var info unix.Siginfo
	for {
		err := unix.Waitid(unix.P_PID, pid, &info, unix.WEXITED|unix.WNOWAIT, nil)
		if !errors.Is(err, unix.EINTR) {
			break
		}
	}
	_ = unix.Kill(-pid, unix.SIGKILL)
	return cmd.Wait()
}

func exitString(err error) string {
	if err == nil {
		return "exited with status 0"
	}
	return err.Error()
}

// signal sends sig to the process group.
func (p *proc) signal(sig syscall.Signal) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil || p.exited == nil {
		return
	}
	select {
	case <-p.exited:
		return
	default:
	}
	_ = unix.Kill(-p.cmd.Process.Pid, sig)
}

func (p *proc) exitedCh() <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.exited == nil {
		c := make(chan struct{})
		close(c)
		return c
	}
	return p.exited
}

// stop asks the process to go, and kills it after grace.
func (p *proc) stop(grace time.Duration) {
	p.mu.Lock()
	p.stopping = true
	p.mu.Unlock()
	p.signal(syscall.SIGTERM)
	select {
	case <-p.exitedCh():
	case <-time.After(grace):
		p.signal(syscall.SIGKILL)
		<-p.exitedCh()
	}
	p.set(state.StateStopped, "")
}

func (p *proc) isStopping() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stopping
}

// probe checks health once; nil Health means running is healthy.
func (p *proc) probe(ctx context.Context) error {
	select {
	case <-p.exitedCh():
		return errors.New("not running")
	default:
	}
	if p.spec.Health == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	return p.spec.Health.Check(ctx)
}

func (p *proc) markHealthy() {
	p.markServing()
	p.healthyOnce.Do(func() { close(p.healthy) })
}

func (p *proc) markServing() { p.servingOnce.Do(func() { close(p.serving) }) }

// probeServing checks the Serving probe once.
func (p *proc) probeServing(ctx context.Context) error {
	if p.spec.Serving == nil {
		return errors.New("no serving probe")
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	return p.spec.Serving.Check(ctx)
}

func (p *proc) isHealthy() bool {
	select {
	case <-p.healthy:
		return true
	default:
		return false
	}
}

// logTail is the end of the component's log, for a failure message.
func (p *proc) logTail(lines int) string {
	data, err := os.ReadFile(p.dir.LogFile(p.spec.Name))
	if err != nil {
		return ""
	}
	all := bytes.Split(bytes.TrimRight(data, "\n"), []byte("\n"))
	if len(all) > lines {
		all = all[len(all)-lines:]
	}
	return string(bytes.Join(all, []byte("\n")))
}
