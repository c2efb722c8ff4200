package framework

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// StopGrace is the default for Process.StopGrace.
const StopGrace = 10 * time.Second

// logTailLines is how much of a process log a failing test prints inline; the whole log
// stays in the artifacts directory.
const logTailLines = 40

// Process is a child process started by StartProcess or StartCommand. Its stdout and
// stderr go to LogPath. It runs in its own process group, so stopping it also stops
// whatever it spawned (for example the real command behind `ip netns exec`).
type Process struct {
	Name    string
	LogPath string
	// StopGrace is how long Stop waits after SIGTERM before SIGKILL; set it before Stop.
	StopGrace time.Duration

	cmd      *exec.Cmd
	done     chan struct{}
	waitErr  error
	stopOnce sync.Once
	mu       sync.Mutex
	// signalled is set before any signal goes out: an exit the test caused is not a failure.
	signalled bool
	// errSeen is set once Stop has handed an unexpected exit to its caller, so cleanup does
	// not report it a second time.
	errSeen bool
	// reaped is set, under mu, just before the leader is reaped; Signal holds mu while it
	// signals, so it never signals a group id that may already belong to someone else.
	reaped bool
}

// StartProcess runs binary with args as a child of the test. It is stopped by t.Cleanup
// whatever happens to the test; if the test failed, the tail of its log is printed. The log
// starts with the command line, so pass secrets in files, never as arguments.
func StartProcess(t testing.TB, name, binary string, args ...string) *Process {
	t.Helper()
	return StartCommand(t, name, exec.Command(binary, args...))
}

// StartCommand is StartProcess for a caller that needs to set Env or Dir. It owns
// cmd.Stdout, cmd.Stderr and cmd.SysProcAttr; cmd must not have been started.
func StartCommand(t testing.TB, name string, cmd *exec.Cmd) *Process {
	t.Helper()
	logPath, logFile := createLog(t, name)
	// The child writes straight into the file, so its log is complete even if the test
	// binary dies first.
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Setpgid: true,
		// t.Cleanup does not run when the test binary is killed (go test -timeout, ^C);
		// this makes the kernel kill the child then instead of leaving it running.
		Pdeathsig: syscall.SIGKILL,
	}
	fmt.Fprintf(logFile, "# %s: %s\n", name, strings.Join(cmd.Args, " "))
	if err := cmd.Start(); err != nil {
		logFile.Close()
		t.Fatalf("start %s (%s): %v", name, cmd.Path, err)
	}
	logFile.Close() // the child holds its own descriptor
	p := &Process{Name: name, LogPath: logPath, StopGrace: StopGrace, cmd: cmd, done: make(chan struct{})}
	go p.wait()
	t.Logf("started %s (pid %d), log %s", name, cmd.Process.Pid, logPath)
	t.Cleanup(func() {
		if err := p.stop(); err != nil && !p.seen() {
			t.Errorf("stop %s: %v", name, err)
		}
		if t.Failed() {
			t.Logf("%s log %s, last %d lines:\n%s", name, logPath, logTailLines, p.LogTail(logTailLines))
		}
	})
	return p
}

func createLog(t testing.TB, name string) (string, *os.File) {
	t.Helper()
	dir := ArtifactsDir(t)
	base := sanitizeName(name)
	// A test may start the same component twice (a restart); keep both logs.
	for i := 1; ; i++ {
		path := filepath.Join(dir, base+".log")
		if i > 1 {
			path = filepath.Join(dir, fmt.Sprintf("%s-%d.log", base, i))
		}
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if err == nil {
			return path, f
		}
		if !errors.Is(err, os.ErrExist) {
			t.Fatalf("create log for %s: %v", name, err)
		}
	}
}

// wait reaps the process. Before reaping it kills whatever is left in the process group:
// while the leader is an unreaped zombie its pid, and so the group id, cannot be reused, so
// the signal cannot hit an unrelated process.
func (p *Process) wait() {
	pid := p.cmd.Process.Pid
	var info unix.Siginfo
	for {
		err := unix.Waitid(unix.P_PID, pid, &info, unix.WEXITED|unix.WNOWAIT, nil)
		if !errors.Is(err, unix.EINTR) {
			break
		}
	}
	p.mu.Lock()
	p.reaped = true // from here on Signal must not use the pid: it may be reused
	_ = unix.Kill(-pid, unix.SIGKILL)
	p.mu.Unlock()
	p.waitErr = p.cmd.Wait()
	close(p.done)
}

// Pid is the process id, which is also its process group id.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Done is closed once the process has exited and been reaped.
func (p *Process) Done() <-chan struct{} { return p.done }

// Exited reports whether the process has exited, and if so how (nil for exit status 0).
func (p *Process) Exited() (bool, error) {
	select {
	case <-p.done:
		return true, p.waitErr
	default:
		return false, nil
	}
}

// Signal sends sig to the whole process group, for tests that exercise reload or crash
// handling. Once a test has signalled a process, its exit is no longer reported as an
// error by Stop. Signalling a process that has exited does nothing.
func (p *Process) Signal(sig syscall.Signal) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.reaped {
		return nil
	}
	p.signalled = true
	if err := unix.Kill(-p.Pid(), sig); err != nil && !errors.Is(err, unix.ESRCH) {
		return fmt.Errorf("signal %s (pgid %d) %s: %w", p.Name, p.Pid(), sig, err)
	}
	return nil
}

// Stop sends SIGTERM to the process group, then SIGKILL after StopGrace, and waits for the
// process to be reaped. It is idempotent. An exit the test caused (through Stop or Signal)
// is not an error; a non-zero exit nobody asked for is. Cleanup reports such an exit by
// failing the test (a component that crashed mid-test fails it even if its assertions had
// passed) unless the test already received it from Stop.
func (p *Process) Stop() error {
	err := p.stop()
	if err != nil {
		p.mu.Lock()
		p.errSeen = true
		p.mu.Unlock()
	}
	return err
}

func (p *Process) stop() error {
	p.stopOnce.Do(func() {
		if exited, _ := p.Exited(); exited {
			return
		}
		_ = p.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(p.StopGrace):
			_ = p.Signal(syscall.SIGKILL)
			<-p.done
		}
	})
	<-p.done
	p.mu.Lock()
	signalled := p.signalled
	p.mu.Unlock()
	if signalled || p.waitErr == nil {
		return nil
	}
	return fmt.Errorf("%s exited before it was stopped: %w (log %s)", p.Name, p.waitErr, p.LogPath)
}

func (p *Process) seen() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.errSeen
}

// LogTail returns the last n lines of the process log.
func (p *Process) LogTail(n int) string {
	data, err := os.ReadFile(p.LogPath)
	if err != nil {
		return fmt.Sprintf("(read %s: %v)", p.LogPath, err)
	}
	lines := bytes.Split(bytes.TrimRight(data, "\n"), []byte("\n"))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return string(bytes.Join(lines, []byte("\n")))
}
