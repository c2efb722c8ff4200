package supervisor

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/stratus-cloud/stratus/cni/nstest"
	"github.com/stratus-cloud/stratus/sandbox/component"
	"github.com/stratus-cloud/stratus/sandbox/state"
)

func testSupervisor(t *testing.T, timeout time.Duration) (*Supervisor, string) {
	t.Helper()
	dir := t.TempDir()
	require.NoError(t, os.MkdirAll(state.Dir(dir).LogDir(), 0o755))
	s := &Supervisor{dir: state.Dir(dir), cfg: &Config{Timeout: timeout}, procs: map[string]*proc{}, readyLine: "test"}
	s.status = state.Status{Phase: state.PhaseStarting, StartedAt: time.Now()}
	return s, dir
}

// sh is a component running a shell script.
func sh(name, script string, after ...string) component.Spec {
	return component.Spec{Name: name, Binary: "/bin/sh", Args: []string{"-c", script}, After: after}
}

func ready(context.Context) error { return nil }

// run orchestrates in the background; stop cancels and waits, returning its error.
func run(t *testing.T, s *Supervisor, specs []component.Spec, clusterReady func(context.Context) error) (stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		err := s.orchestrate(ctx, specs, clusterReady)
		s.stopAll()
		errc <- err
	}()
	return func() error {
		cancel()
		select {
		case err := <-errc:
			return err
		case <-time.After(30 * time.Second):
			t.Fatal("orchestrate did not return")
			return nil
		}
	}
}

func waitPhase(t *testing.T, s *Supervisor, phase string) {
	t.Helper()
	require.Eventually(t, func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.status.Phase == phase
	}, 30*time.Second, 10*time.Millisecond, "phase %s", phase)
}

func TestOrderAndReadiness(t *testing.T) {
	s, dir := testSupervisor(t, time.Minute)
	aReady := filepath.Join(dir, "a.ready")
	bSaw := filepath.Join(dir, "b.saw")
	specs := []component.Spec{
		// b must not start before a is healthy, which takes a's script 300ms.
		sh("b", fmt.Sprintf("test -e %s && echo yes > %s || echo no > %s; exec sleep 300", aReady, bSaw, bSaw), "a"),
		sh("a", fmt.Sprintf("sleep 0.3; touch %s; exec sleep 300", aReady)),
	}
	specs[1].Health = component.File{Path: aReady}
	specs[0].Health = component.File{Path: bSaw}
	clusterCalls := 0
	stop := run(t, s, specs, func(context.Context) error {
		if clusterCalls++; clusterCalls < 3 {
			return fmt.Errorf("waiting for node-1: not Ready")
		}
		return nil
	})
	waitPhase(t, s, state.PhaseReady)
	b, err := os.ReadFile(bSaw)
	require.NoError(t, err)
	assert.Equal(t, "yes\n", string(b), "b started only once a was healthy")
	assert.GreaterOrEqual(t, clusterCalls, 3, "ready waits for the cluster check too")
	st := s.snapshot()
	require.Len(t, st.Components, 2)
	for _, c := range st.Components {
		assert.Equal(t, state.StateRunning, c.State, c.Name)
		assert.True(t, c.Proc.Alive(), c.Name)
		_, err := os.Stat(state.Dir(dir).PidFile(c.Name))
		assert.NoError(t, err, "pidfile of %s", c.Name)
	}
	assert.Contains(t, strings.Join(st.Progress, "\n"), "a healthy")
	require.NoError(t, stop())
	for _, c := range st.Components {
		assert.False(t, c.Proc.Alive(), "%s stopped", c.Name)
		_, err := os.Stat(state.Dir(dir).PidFile(c.Name))
		assert.ErrorIs(t, err, os.ErrNotExist, "pidfile of %s removed", c.Name)
	}
}

func TestExitBeforeHealthyFailsWithItsLogLine(t *testing.T) {
	s, dir := testSupervisor(t, time.Minute)
	specs := []component.Spec{
		sh("etcd", "exec sleep 300"),
		sh("kube-apiserver", "echo starting; echo 'E1201 run.go:72] error: failed to listen on 10.0.255.253:6443: bind: address already in use'; echo bye; exit 1", "etcd"),
	}
	specs[1].Health = component.File{Path: filepath.Join(dir, "never")}
	err := s.orchestrate(context.Background(), specs, ready)
	s.stopAll()
	require.Error(t, err)
	assert.Contains(t, err.Error(), "kube-apiserver exited before it was healthy (exit status 1)")
	assert.Contains(t, err.Error(), "bind: address already in use", "the reason from the log, in the same line")
	assert.Contains(t, err.Error(), state.Dir(dir).LogFile("kube-apiserver"))
	assert.NotContains(t, err.Error(), "\n")
}

func TestTimeoutNamesWhatIsNotHealthy(t *testing.T) {
	s, dir := testSupervisor(t, 500*time.Millisecond)
	specs := []component.Spec{sh("slow", "exec sleep 300")}
	specs[0].Health = component.File{Path: filepath.Join(dir, "never")}
	err := run(t, s, specs, ready)()
	require.NoError(t, err, "cancelled before the timeout: no error")

	s, dir = testSupervisor(t, 300*time.Millisecond)
	specs[0].Health = component.File{Path: filepath.Join(dir, "never")}
	ctx := context.Background()
	err = s.orchestrate(ctx, specs, ready)
	s.stopAll()
	require.Error(t, err)
	assert.Contains(t, err.Error(), "not healthy after 300ms: slow (")
	assert.Contains(t, err.Error(), "never not written yet")
}

func TestRestartAfterReady(t *testing.T) {
	s, dir := testSupervisor(t, time.Minute)
	count := filepath.Join(dir, "count")
	// Dies 200ms into every run; the supervisor brings it back.
	specs := []component.Spec{sh("flaky", fmt.Sprintf("echo x >> %s; sleep 0.2; exit 3", count))}
	stop := run(t, s, specs, ready)
	defer stop()
	waitPhase(t, s, state.PhaseReady)
	require.Eventually(t, func() bool {
		b, _ := os.ReadFile(count)
		return strings.Count(string(b), "x") >= 3
	}, 30*time.Second, 20*time.Millisecond, "restarted (with backoff 1s, 2s)")
	st := s.snapshot()
	assert.GreaterOrEqual(t, st.Components[0].Restarts, 2)
	assert.Equal(t, state.PhaseReady, st.Phase, "a crash after ready is a restart, not a failure")
}

func TestStopKillsWhatIgnoresSIGTERM(t *testing.T) {
	s, dir := testSupervisor(t, time.Minute)
	child := filepath.Join(dir, "child.pid")
	// The component ignores SIGTERM and has a child of its own in its process group.
	specs := []component.Spec{sh("stubborn", fmt.Sprintf("trap '' TERM; sleep 300 & echo $! > %s; wait", child))}
	specs[0].Health = component.File{Path: child}
	stop := run(t, s, specs, ready)
	waitPhase(t, s, state.PhaseReady)
	b, err := os.ReadFile(child)
	require.NoError(t, err)
	var pid int
	_, err = fmt.Sscan(string(b), &pid)
	require.NoError(t, err)
	grandchild, err := state.ProcOf(pid)
	require.NoError(t, err)
	leader := s.snapshot().Components[0].Proc

	start := time.Now()
	require.NoError(t, stop())
	assert.Less(t, time.Since(start), StopGrace+5*time.Second)
	assert.False(t, leader.Alive())
	assert.Eventually(t, func() bool { return !grandchild.Alive() }, 10*time.Second, 20*time.Millisecond, "its process group went with it")
}

func TestDependencyOnAMissingComponent(t *testing.T) {
	s, _ := testSupervisor(t, time.Minute)
	err := s.orchestrate(context.Background(), []component.Spec{sh("a", "true", "nothere")}, ready)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "component a comes after nothere, which is not in the sandbox")
}

// TestComponentRunsInItsNamespace: the child is in the node's network namespace yet in
// the host's mount namespace (it sees /run/netns as the host does).
func TestComponentRunsInItsNamespace(t *testing.T) {
	nstest.Require(t)
	n := nstest.New(t, "sup")
	s, dir := testSupervisor(t, time.Minute)
	out := filepath.Join(dir, "ns")
	spec := sh("in-ns", fmt.Sprintf("readlink /proc/self/ns/net > %s.tmp; readlink /proc/self/ns/mnt >> %s.tmp; mv %s.tmp %s; exec sleep 300", out, out, out, out))
	spec.Netns = n.Name
	spec.Health = component.File{Path: out}
	stop := run(t, s, []component.Spec{spec}, ready)
	defer stop()
	waitPhase(t, s, state.PhaseReady)
	b, err := os.ReadFile(out)
	require.NoError(t, err)
	lines := strings.Fields(string(b))
	require.Len(t, lines, 2)
	var st unix.Stat_t
	require.NoError(t, unix.Stat(filepath.Join("/run/netns", n.Name), &st))
	assert.Equal(t, fmt.Sprintf("net:[%d]", st.Ino), lines[0])
	selfMnt, err := os.Readlink("/proc/self/ns/mnt")
	require.NoError(t, err)
	assert.Equal(t, selfMnt, lines[1])
}

// TestAfterServing: a client starts once its server accepts connections; an exit while
// the server is not healthy yet is a restart, not a failure of the sandbox.
func TestAfterServing(t *testing.T) {
	s, dir := testSupervisor(t, time.Minute)
	serving, healthy := filepath.Join(dir, "serving"), filepath.Join(dir, "healthy")
	started := filepath.Join(dir, "client-starts")
	server := sh("server", fmt.Sprintf("sleep 0.2; touch %s; sleep 1.5; touch %s; exec sleep 300", serving, healthy))
	server.Serving = component.File{Path: serving}
	server.Health = component.File{Path: healthy}
	// The client gives up while the server is not healthy, as a controller's
	// WaitForAPIServer does; after a restart it finds the server healthy.
	client := sh("client", fmt.Sprintf("echo x >> %s; test -e %s || exit 1; exec sleep 300", started, healthy))
	client.AfterServing = []string{"server"}
	client.Health = component.File{Path: healthy}
	stop := run(t, s, []component.Spec{server, client}, ready)
	defer stop()
	waitPhase(t, s, state.PhaseReady)
	b, err := os.ReadFile(started)
	require.NoError(t, err)
	assert.GreaterOrEqual(t, strings.Count(string(b), "x"), 2, "the client started before the server was healthy, and again after")
	for _, c := range s.snapshot().Components {
		if c.Name == "client" {
			assert.GreaterOrEqual(t, c.Restarts, 1)
		}
	}
}
