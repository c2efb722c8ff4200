// Package supervisor is the detached process `stratus up` leaves running: it builds the
// sandbox's network, writes the control plane's files, starts every component in
// dependency order (each in its namespace), waits until the cluster is ready, and then
// keeps it running: a component that exits is restarted with backoff. It reports all of
// it in the status file, which `up` and `status` read. On SIGTERM it stops every child
// and exits; removing the network and files is `stratus down`'s job (package teardown),
// so that it works just the same after the supervisor was killed.
//
// It owns the processes it starts and nothing else; every namespace and link it makes
// is recorded in the journal before it exists.
package supervisor

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/klog/v2"

	"github.com/stratus-cloud/stratus/sandbox/binaries"
	"github.com/stratus-cloud/stratus/sandbox/component"
	"github.com/stratus-cloud/stratus/sandbox/controlplane"
	"github.com/stratus-cloud/stratus/sandbox/plan"
	"github.com/stratus-cloud/stratus/sandbox/state"
	"github.com/stratus-cloud/stratus/sandbox/vpcnet"
)

// Config is what `up` hands the supervisor, in the state dir's sandbox.json.
type Config struct {
	Options plan.Options  `json:"options"`
	Bins    binaries.Set  `json:"binaries"`
	Stratus string        `json:"stratus"`
	Timeout time.Duration `json:"timeout"`
}

// LoadConfig reads sandbox.json.
func LoadConfig(dir state.Dir) (*Config, error) {
	var c Config
	if err := state.ReadJSON(dir.ConfigFile(), &c); err != nil {
		return nil, fmt.Errorf("sandbox config: %w", err)
	}
	return &c, nil
}

// Defaults.
const (
	DefaultTimeout = 5 * time.Minute
	// StopGrace is how long a component gets after SIGTERM before SIGKILL. Nothing of a
	// sandbox outlives `down`, so a graceful stop buys nothing but time, and `down` has
	// 5 s for everything.
	StopGrace = time.Second
)

// Supervisor runs one sandbox.
type Supervisor struct {
	dir   state.Dir
	cfg   *Config
	plan  *plan.Plan
	procs map[string]*proc
	order []*proc

	mu     sync.Mutex
	status state.Status
	ready  bool

	cancel context.CancelFunc
	// readyLine says what "ready" meant, for the last progress line.
	readyLine string
}

// Run supervises the sandbox in dir until ctx ends (SIGTERM) or start-up fails.
func Run(ctx context.Context, dir state.Dir) error {
	cfg, err := LoadConfig(dir)
	if err != nil {
		return err
	}
	p, err := plan.New(cfg.Options)
	if err != nil {
		return err
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultTimeout
	}
	self, err := state.Self()
	if err != nil {
		return err
	}
	if err := state.WritePidFile(dir.SupervisorPidFile(), self); err != nil {
		return err
	}
	s := &Supervisor{dir: dir, cfg: cfg, plan: p, procs: map[string]*proc{},
		readyLine: fmt.Sprintf("%d nodes initialized by the CCM, with podCIDRs routed in the VPC, Ready, the CSI driver registered", len(p.Nodes))}
	s.status = state.Status{Phase: state.PhaseStarting, Supervisor: self, StartedAt: time.Now()}
	s.writeStatus()

	runCtx, cancel := context.WithCancel(ctx)
	s.cancel = cancel
	defer cancel()
	stopWriter := s.statusWriter()
	err = s.run(runCtx)
	s.stopAll()
	s.mu.Lock()
	if err != nil {
		s.status.Phase, s.status.Error = state.PhaseFailed, err.Error()
	} else {
		s.status.Phase = state.PhaseStopping
	}
	s.mu.Unlock()
	stopWriter()
	s.writeStatus()
	return err
}

func (s *Supervisor) progress(format string, args ...any) {
	line := fmt.Sprintf("%5.1fs  ", time.Since(s.status.StartedAt).Seconds()) + fmt.Sprintf(format, args...)
	klog.InfoS("Progress", "step", line)
	s.mu.Lock()
	s.status.Progress = append(s.status.Progress, line)
	s.mu.Unlock()
	s.writeStatus()
}

func (s *Supervisor) run(ctx context.Context) error {
	p := s.plan
	j, err := state.OpenJournal(s.dir.JournalFile())
	if err != nil {
		return err
	}
	ports, err := s.ports()
	if err != nil {
		return err
	}
	hostPort := func(port int) string { return net.JoinHostPort(p.HostIP.String(), strconv.Itoa(port)) }
	for name, port := range map[string]string{
		"fakecloud": hostPort(ports.Fakecloud), "etcd": loopback(ports.EtcdClient), "etcd-peer": loopback(ports.EtcdPeer),
		"kube-apiserver":          hostPort(ports.APIServer),
		"kube-scheduler":          loopback(ports.Scheduler),
		"kube-controller-manager": loopback(ports.ControllerManager), "stratus-cloud-controller-manager": loopback(ports.CCM),
		"csi-controller": loopback(ports.CSIController), "csi-provisioner": loopback(ports.CSIProvisioner), "csi-attacher": loopback(ports.CSIAttacher),
	} {
		if err := j.Record(state.Resource{Kind: state.KindPort, Name: name, Detail: port}); err != nil {
			return err
		}
	}
	if err := vpcnet.Build(p, j); err != nil {
		return fmt.Errorf("build the VPC network: %w", err)
	}
	s.progress("network: router %s, %d node namespaces, host routes %s, %s and %s via %s", p.RouterNetns, len(p.Nodes), p.VPCCIDR, p.ClusterCIDR, p.PublicPool, p.HostLink)
	// Both serve on the host's transit address, which exists only now.
	if err := portFree(p.HostIP.String(), ports.APIServer); err != nil {
		return fmt.Errorf("%w: pick another with --apiserver-port, or free it", err)
	}
	if err := portFree(p.HostIP.String(), ports.Fakecloud); err != nil {
		return fmt.Errorf("%w: pick another with --fakecloud-port, or free it", err)
	}
	cc := controlplane.Config{Plan: p, Bins: s.cfg.Bins, Stratus: s.cfg.Stratus, Ports: ports}
	files, err := controlplane.Prepare(cc)
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.status.Endpoints = state.Endpoints{
		Kubeconfig: files.Kubeconfig, APIServer: cc.APIServerURL(), Fakecloud: cc.FakecloudURL(), CredentialsFile: files.CredentialsFile,
	}
	s.mu.Unlock()

	client, err := clientFor(files.Kubeconfig)
	if err != nil {
		return err
	}
	return s.orchestrate(ctx, controlplane.All(cc, files), func(ctx context.Context) error {
		// The sandbox's own cluster objects first: a CSIDriver and the default
		// StorageClass, so that a claim works as soon as `up` returns.
		if err := controlplane.EnsureObjects(ctx, client); err != nil {
			return err
		}
		return CheckCluster(ctx, client, p)
	})
}

// orchestrate runs specs in dependency order until every one is healthy and then
// clusterReady passes, and keeps them running (restarting what exits) until ctx ends.
// A component that exits before it was ever healthy, or a start-up that outlasts the
// timeout, ends it with an error.
func (s *Supervisor) orchestrate(ctx context.Context, specs []component.Spec, clusterReady func(context.Context) error) error {
	for _, spec := range specs {
		if _, dup := s.procs[spec.Name]; dup {
			return fmt.Errorf("component %s is listed twice", spec.Name)
		}
		pr := newProc(spec, s.dir)
		s.procs[spec.Name] = pr
		s.order = append(s.order, pr)
	}
	for _, pr := range s.order {
		for _, d := range append(slices.Clone(pr.spec.After), pr.spec.AfterServing...) {
			if _, ok := s.procs[d]; !ok {
				return fmt.Errorf("component %s comes after %s, which is not in the sandbox", pr.spec.Name, d)
			}
		}
	}
	fatalc := make(chan error, len(s.order))
	for _, pr := range s.order {
		go s.supervise(ctx, pr, fatalc)
	}

	deadline := time.NewTimer(s.cfg.Timeout)
	defer deadline.Stop()
	allHealthy := make(chan struct{})
	go func() {
		for _, pr := range s.order {
			select {
			case <-pr.healthy:
			case <-ctx.Done():
				return
			}
		}
		close(allHealthy)
	}()
	select {
	case <-allHealthy:
	case err := <-fatalc:
		return err
	case <-deadline.C:
		return s.timeoutError()
	case <-ctx.Done():
		return nil
	}
	s.progress("all %d components healthy", len(s.order))

	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := clusterReady(cctx)
		cancel()
		if err == nil {
			break
		}
		s.mu.Lock()
		if s.status.Waiting != err.Error() {
			klog.InfoS("Cluster not ready yet", "waiting", err.Error())
		}
		s.status.Waiting = err.Error()
		s.mu.Unlock()
		select {
		case err := <-fatalc:
			return err
		case <-deadline.C:
			return fmt.Errorf("the cluster was not ready after %s: %v", s.cfg.Timeout, err)
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
	now := time.Now()
	s.mu.Lock()
	s.ready = true
	s.status.Phase, s.status.ReadyAt, s.status.Waiting = state.PhaseReady, &now, ""
	s.mu.Unlock()
	s.progress("cluster ready: %s", s.readyLine)

	// Running: failures now are restarts, never the end of the sandbox.
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-fatalc:
			klog.ErrorS(err, "Component failed after the sandbox was ready; it is restarted")
		}
	}
}

// supervise runs one component for the sandbox's life.
func (s *Supervisor) supervise(ctx context.Context, pr *proc, fatalc chan<- error) {
	for _, d := range pr.spec.After {
		select {
		case <-s.procs[d].healthy:
		case <-ctx.Done():
			return
		}
	}
	for _, d := range pr.spec.AfterServing {
		select {
		case <-s.procs[d].serving:
		case <-ctx.Done():
			return
		}
	}
	backoff := time.Second
	for {
		started := time.Now()
		if err := pr.start(); err != nil {
			fatalc <- err
			return
		}
		done := make(chan struct{})
		go s.probeLoop(ctx, pr, started, done)
		select {
		case <-ctx.Done():
			close(done)
			return
		case <-pr.exitedCh():
		}
		close(done)
		if pr.isStopping() || ctx.Err() != nil {
			return
		}
		st := pr.status()
		if !pr.isHealthy() && !s.isReady() && s.depsHealthy(pr) {
			fatalc <- s.exitError(pr, st.Detail)
			return
		}
		if time.Since(started) > time.Minute {
			backoff = time.Second
		}
		pr.mu.Lock()
		pr.restarts++
		pr.state = state.StateExited
		pr.mu.Unlock()
		klog.InfoS("Component exited; restarting", "component", pr.spec.Name, "exit", st.Detail, "backoff", backoff)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 30*time.Second)
	}
}

// probeLoop probes fast until the first success, then every two seconds.
func (s *Supervisor) probeLoop(ctx context.Context, pr *proc, started time.Time, done <-chan struct{}) {
	interval := 100 * time.Millisecond
	fails := 0
	for {
		select {
		case <-done:
			return
		case <-ctx.Done():
			return
		case <-time.After(interval):
		}
		err := pr.probe(ctx)
		if err != nil && pr.spec.Serving != nil {
			if pr.probeServing(ctx) == nil {
				pr.markServing()
			}
		}
		switch {
		case err == nil:
			fails = 0
			if !pr.isHealthy() {
				pr.markHealthy()
				s.progress("%s healthy (%.1fs after its start)", pr.spec.Name, time.Since(started).Seconds())
			}
			pr.set(state.StateRunning, "")
			interval = 2 * time.Second
		case pr.isHealthy():
			// Three misses in a row before a running component is called unhealthy.
			if fails++; fails >= 3 {
				pr.set(state.StateUnhealthy, err.Error())
			}
		default:
			pr.set(state.StateStarting, err.Error())
		}
	}
}

// depsHealthy reports whether everything pr comes after is healthy: only then is an exit
// before pr was healthy its own failure rather than impatience with a server still
// starting.
func (s *Supervisor) depsHealthy(pr *proc) bool {
	for _, d := range append(slices.Clone(pr.spec.After), pr.spec.AfterServing...) {
		if !s.procs[d].isHealthy() {
			return false
		}
	}
	return true
}

func (s *Supervisor) isReady() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ready
}

// exitError says in one line that pr died during start-up, with the line of its log
// most likely to say why.
func (s *Supervisor) exitError(pr *proc, exit string) error {
	return fmt.Errorf("%s exited before it was healthy (%s): %s (log %s)", pr.spec.Name, exit, lastReason(pr.logTail(30)), s.dir.LogFile(pr.spec.Name))
}

func (s *Supervisor) timeoutError() error {
	var waiting []string
	for _, pr := range s.order {
		if !pr.isHealthy() {
			st := pr.status()
			w := pr.spec.Name
			if st.Detail != "" {
				w += " (" + st.Detail + ")"
			}
			waiting = append(waiting, w)
		}
	}
	return fmt.Errorf("not healthy after %s: %s", s.cfg.Timeout, strings.Join(waiting, "; "))
}

// lastReason picks the last log line that reads like an error, else the last line.
func lastReason(tail string) string {
	lines := strings.Split(strings.TrimSpace(tail), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		l := strings.ToLower(lines[i])
		if strings.Contains(l, "error") || strings.Contains(l, "fail") || strings.Contains(l, "fatal") || strings.Contains(l, "in use") {
			return strings.TrimSpace(lines[i])
		}
	}
	if len(lines) > 0 {
		return strings.TrimSpace(lines[len(lines)-1])
	}
	return "(empty log)"
}

// stopAll stops every component at once: SIGTERM, then SIGKILL after StopGrace.
func (s *Supervisor) stopAll() {
	var wg sync.WaitGroup
	for _, pr := range s.order {
		wg.Add(1)
		go func() { defer wg.Done(); pr.stop(StopGrace) }()
	}
	wg.Wait()
}

func (s *Supervisor) snapshot() state.Status {
	s.mu.Lock()
	st := s.status
	st.Progress = append([]string(nil), s.status.Progress...)
	s.mu.Unlock()
	st.Components = nil
	for _, pr := range s.order {
		st.Components = append(st.Components, pr.status())
	}
	return st
}

func (s *Supervisor) writeStatus() {
	if err := state.WriteJSON(s.dir.StatusFile(), s.snapshot()); err != nil {
		klog.ErrorS(err, "Writing status")
	}
}

// statusWriter rewrites the status file twice a second while anything changed.
func (s *Supervisor) statusWriter() func() {
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		var last []byte
		t := time.NewTicker(500 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				b, _ := json.Marshal(s.snapshot())
				if string(b) != string(last) {
					s.writeStatus()
					last = b
				}
			}
		}
	}()
	return func() { close(stop); <-done }
}

// ports picks the control plane's ports: the pinned ones, and free loopback ports for the
// rest (held together, so none is picked twice).
func (s *Supervisor) ports() (controlplane.Ports, error) {
	const n = 10
	free := make([]int, 0, n)
	var held []net.Listener
	defer func() {
		for _, l := range held {
			l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return controlplane.Ports{}, fmt.Errorf("find a free port: %w", err)
		}
		held = append(held, l)
		free = append(free, l.Addr().(*net.TCPAddr).Port)
	}
	pp := controlplane.Ports{
		Fakecloud: free[0], EtcdClient: free[1], EtcdPeer: free[2], APIServer: free[3],
		Scheduler: free[4], ControllerManager: free[5], CCM: free[6],
		CSIController: free[7], CSIProvisioner: free[8], CSIAttacher: free[9],
	}
	if v := s.plan.FakecloudPort; v != 0 {
		pp.Fakecloud = v
	}
	if v := s.plan.APIServerPort; v != 0 {
		pp.APIServer = v
	}
	return pp, nil
}

// portFree reports whether port can be bound on host.
func portFree(host string, port int) error {
	l, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(port)))
	if err != nil {
		if host == "" {
			return fmt.Errorf("port %d is in use", port)
		}
		return fmt.Errorf("port %d on %s is in use", port, host)
	}
	return l.Close()
}

// PortFree is portFree for the preflight of `up`.
func PortFree(host string, port int) error { return portFree(host, port) }

func clientFor(kubeconfig string) (kubernetes.Interface, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("kubeconfig %s: %w", kubeconfig, err)
	}
	// Every address of the sandbox is local: never through a proxy from the environment.
	cfg.Proxy = func(*http.Request) (*url.URL, error) { return nil, nil }
	cfg.QPS, cfg.Burst = 50, 100
	return kubernetes.NewForConfig(cfg)
}

// ClientFor builds a client from the sandbox's kubeconfig, never through a proxy.
func ClientFor(kubeconfig string) (kubernetes.Interface, error) { return clientFor(kubeconfig) }

func loopback(port int) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) }
