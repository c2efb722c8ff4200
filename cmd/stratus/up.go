package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/stratus-cloud/stratus/sandbox/binaries"
	"github.com/stratus-cloud/stratus/sandbox/controlplane"
	"github.com/stratus-cloud/stratus/sandbox/plan"
	"github.com/stratus-cloud/stratus/sandbox/podlet"
	"github.com/stratus-cloud/stratus/sandbox/state"
	"github.com/stratus-cloud/stratus/sandbox/supervisor"
	"github.com/stratus-cloud/stratus/sandbox/teardown"
	"github.com/stratus-cloud/stratus/sandbox/vpcnet"
)

func cmdUp(args []string) error {
	fs := flag.NewFlagSet("up", flag.ContinueOnError)
	opts := plan.Options{}
	stateDir := stateDirFlag(fs)
	fs.IntVar(&opts.Nodes, "nodes", plan.DefaultNodes, "number of nodes")
	fs.StringVar(&opts.VPCCIDR, "vpc-cidr", "", "the VPC's CIDR (up to /16, inside 10.0.0.0/12, 172.16.0.0/12 or 192.168.0.0/16); the host routes it into the sandbox (default: the first free of 10.N.0.0/16)")
	fs.StringVar(&opts.ClusterCIDR, "cluster-cidr", "", "the pods' CIDR; each node gets a /24 of it; the host routes it into the sandbox (default: 10.(244-N).0.0/16)")
	fs.StringVar(&opts.ServiceCIDR, "service-cidr", plan.DefaultServiceCIDR, "the Services' cluster IP range")
	fs.StringVar(&opts.PublicPool, "lb-public-pool", "", "where public load balancer VIPs come from; the host routes it into the sandbox (default: 198.18.N.0/24)")
	fs.IntVar(&opts.FakecloudPort, "fakecloud-port", 0, "fakecloud's port on the host's transit address (0: a free one)")
	fs.IntVar(&opts.APIServerPort, "apiserver-port", 0, "kube-apiserver's port (0: a free one)")
	timeout := fs.Duration("timeout", supervisor.DefaultTimeout, "how long to wait for the cluster to be ready")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	start := time.Now()
	opts.StateDir = *stateDir
	if err := requireRoot("it makes network namespaces, veth pairs and host routes"); err != nil {
		return err
	}
	// The address ranges the user left open take the first slot no host route collides
	// with; sandbox.json keeps the chosen ones for the supervisor and `down`.
	p, opts, err := plan.Choose(opts, vpcnet.CheckHost)
	if err != nil {
		if p, err2 := plan.New(opts); err2 == nil {
			if perr := preflight(p, binaries.LookTool); perr != nil {
				return perr // a leftover sandbox explains the collision better
			}
		}
		return err
	}
	if err := preflight(p, binaries.LookTool); err != nil {
		return err
	}
	etcd, err := binaries.Etcd(binaries.LookTool)
	if err != nil {
		return err
	}

	res, err := binaries.NewResolver(os.Stderr)
	if err != nil {
		return err
	}
	stratusBins, _, err := res.Stratus()
	if err != nil {
		return err
	}
	kubeDir, err := res.Kube()
	if err != nil {
		return err
	}
	sidecarDir, err := res.Sidecars()
	if err != nil {
		return err
	}

	dir := state.Dir(p.StateDir)
	// From here on the state dir holds a sandbox: a failure is cleaned up by `down`.
	if err := os.MkdirAll(dir.LogDir(), 0o755); err != nil {
		return fmt.Errorf("state dir: %w", err)
	}
	bins := binaries.Set{Stratus: map[string]string{}, KubeDir: kubeDir, SidecarDir: sidecarDir, Etcd: etcd}
	// The sandbox runs its own links of the binaries: pruning the build cache, or a
	// `go run` that deletes its temporary executable, never pulls one from under it.
	for name, path := range stratusBins {
		dst := filepath.Join(dir.BinDir(), name)
		if err := binaries.Install(path, dst); err != nil {
			return fmt.Errorf("install %s: %w", name, err)
		}
		bins.Stratus[name] = dst
	}
	self := filepath.Join(dir.BinDir(), "stratus")
	if err := binaries.InstallSelf(self); err != nil {
		return fmt.Errorf("install stratus: %w", err)
	}
	cfg := supervisor.Config{Options: opts, Bins: bins, Stratus: self, Timeout: *timeout}
	if err := state.WriteJSON(dir.ConfigFile(), cfg); err != nil {
		return err
	}
	sup, err := spawnSupervisor(self, dir)
	if err != nil {
		return err
	}
	interrupt := make(chan os.Signal, 1)
	signal.Notify(interrupt, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(interrupt)
	st, err := waitUp(dir, sup, os.Stdout, interrupt)
	if errors.Is(err, errInterrupted) {
		fmt.Fprintf(os.Stderr, "stratus up: interrupted; the sandbox keeps starting in the background: `stratus status%s` follows it, `stratus down%s` removes it\n", dirFlag(p), dirFlag(p))
		return exitCode(130)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "stratus up: %v\n", err)
		rep, derr := teardown.Down(teardown.Options{Plan: p, KeepLogs: true})
		if derr != nil {
			fmt.Fprintf(os.Stderr, "stratus up: cleaning up failed too: %v\n", derr)
		} else {
			fmt.Fprintf(os.Stderr, "stratus up: cleaned up (%s); logs kept in %s\n", rep, dir.LogDir())
		}
		return exitCode(1)
	}
	printReady(os.Stdout, p, st, time.Since(start), pathHint(dir.BinDir(), kubeDir))
	return nil
}

// preflight turns every condition that would make `up` fail half-way into one line
// saying what to do.
func preflight(p *plan.Plan, lookup func(string) (string, error)) error {
	dir := state.Dir(p.StateDir)
	flag := dirFlag(p)
	if dir.Exists() {
		if sup, err := state.ReadPidFile(dir.SupervisorPidFile()); err == nil && sup.Alive() {
			return fmt.Errorf("a sandbox is already running in %s (supervisor pid %d): `stratus status%s` shows it, `stratus down%s` stops it", p.StateDir, sup.Pid, flag, flag)
		}
		return fmt.Errorf("a previous sandbox in %s did not shut down cleanly: run `stratus down%s` first", p.StateDir, flag)
	}
	if err := controlplane.CheckSockets(p); err != nil {
		return err
	}
	if left := leftovers(p); len(left) > 0 {
		return fmt.Errorf("a previous sandbox of %s left %s behind: run `stratus down%s` first", p.StateDir, strings.Join(left, ", "), flag)
	}
	if dir.OnlyLogs() {
		// What a failed `up` kept for the user; this run writes its own.
		if err := os.RemoveAll(dir.LogDir()); err != nil {
			return fmt.Errorf("remove the previous run's logs: %w", err)
		}
	}
	if entries, err := os.ReadDir(p.StateDir); err == nil && len(entries) > 0 {
		return fmt.Errorf("state dir %s is not empty and holds no sandbox: pick another with --state-dir", p.StateDir)
	}
	if err := binaries.CheckTools(lookup); err != nil {
		return err
	}
	if err := vpcnet.CheckHost(p); err != nil {
		return err
	}
	if p.FakecloudPort != 0 {
		// It serves on the host's transit address, which does not exist yet: a port
		// taken on any address counts (the supervisor checks the exact one again).
		if err := supervisor.PortFree("", p.FakecloudPort); err != nil {
			return fmt.Errorf("%w: pick another with --fakecloud-port, or free it", err)
		}
	}
	return nil
}

// leftovers lists namespaces and host links carrying the sandbox's prefixes.
func leftovers(p *plan.Plan) []string {
	var out []string
	if entries, err := os.ReadDir(vpcnet.NetnsDir); err == nil {
		for _, e := range entries {
			if strings.HasPrefix(e.Name(), p.NetnsPrefix) {
				out = append(out, "network namespace "+e.Name())
			}
		}
	}
	if _, err := os.Stat(filepath.Join("/sys/class/net", p.HostLink)); err == nil {
		out = append(out, "host link "+p.HostLink)
	}
	slices.Sort(out)
	if len(out) > 3 {
		out = append(out[:3], fmt.Sprintf("and %d more", len(out)-3))
	}
	return out
}

var errInterrupted = errors.New("interrupted")

func dirFlag(p *plan.Plan) string {
	if p.StateDir != plan.DefaultStateDir {
		return " --state-dir " + p.StateDir
	}
	return ""
}

// spawnSupervisor starts `stratus supervise` in a session of its own, so that it
// outlives this command and the terminal.
func spawnSupervisor(self string, dir state.Dir) (state.Proc, error) {
	logFile, err := os.OpenFile(dir.LogFile("supervisor"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return state.Proc{}, err
	}
	defer logFile.Close()
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		return state.Proc{}, err
	}
	defer devnull.Close()
	cmd := exec.Command(self, "supervise", "--state-dir", string(dir))
	cmd.Stdin, cmd.Stdout, cmd.Stderr = devnull, logFile, logFile
	cmd.Dir = "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return state.Proc{}, fmt.Errorf("start the supervisor: %w", err)
	}
	pr, err := state.ProcOf(cmd.Process.Pid)
	// Reap it if it dies while we wait; once we return, init adopts it.
	go func() { _ = cmd.Wait() }()
	return pr, err
}

// waitUp follows the status file until the sandbox is ready or failed, printing each
// progress line once.
func waitUp(dir state.Dir, sup state.Proc, out io.Writer, interrupt <-chan os.Signal) (*state.Status, error) {
	printed := 0
	for {
		select {
		case <-interrupt:
			return nil, errInterrupted
		default:
		}
		var st state.Status
		err := state.ReadJSON(dir.StatusFile(), &st)
		if err == nil {
			for ; printed < len(st.Progress); printed++ {
				fmt.Fprintln(out, st.Progress[printed])
			}
			switch st.Phase {
			case state.PhaseReady:
				return &st, nil
			case state.PhaseFailed:
				return nil, errors.New(st.Error)
			}
		}
		if !sup.Alive() {
			// It may have written its last status just before exiting.
			if err := state.ReadJSON(dir.StatusFile(), &st); err == nil && st.Phase == state.PhaseFailed {
				return nil, errors.New(st.Error)
			}
			return nil, fmt.Errorf("the supervisor exited before the sandbox was ready; see %s", dir.LogFile("supervisor"))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func printReady(w io.Writer, p *plan.Plan, st *state.Status, took time.Duration, path string) {
	flag := dirFlag(p)
	node1 := p.Nodes[0]
	fmt.Fprintf(w, `
Stratus sandbox ready in %.1fs: %d nodes, VPC %s, pods %s.
  kubeconfig:  %s
  apiserver:   %s
  fakecloud:   %s  (credentials: %s)

Try:
  export KUBECONFIG=%s%s
  kubectl get nodes -o wide
  kubectl create deployment web --image=%s --replicas=2 --port=8080
  kubectl expose deployment web --port=80 --target-port=8080
  sudo ip netns exec %s curl -s http://$(kubectl get svc web -o jsonpath='{.spec.clusterIP}')
  kubectl patch svc web -p '{"spec":{"type":"LoadBalancer"}}'
  curl -s http://$(kubectl get svc web -o jsonpath='{.status.loadBalancer.ingress[0].ip}')
  stratus demo%s
  stratus status%s
  stratus down%s
`, took.Seconds(), len(p.Nodes), p.VPCCIDR, p.ClusterCIDR,
		st.Endpoints.Kubeconfig, st.Endpoints.APIServer, st.Endpoints.Fakecloud, st.Endpoints.CredentialsFile,
		st.Endpoints.Kubeconfig, path, podlet.EchoImage, node1.Netns, flag, flag, flag)
}

// pathHint is the PATH line of the "Try:" list: the sandbox's own stratus (a `go run`
// leaves none on PATH) and the kubectl built with the Kubernetes binaries, when the
// shell would not find them already.
func pathHint(binDir, kubeDir string) string {
	var dirs []string
	if _, err := exec.LookPath("stratus"); err != nil {
		dirs = append(dirs, binDir)
	}
	if _, err := exec.LookPath("kubectl"); err != nil {
		if _, err := os.Stat(filepath.Join(kubeDir, "kubectl")); err == nil {
			dirs = append(dirs, kubeDir)
		}
	}
	if len(dirs) == 0 {
		return ""
	}
	return "\n  export PATH=" + strings.Join(dirs, ":") + ":$PATH"
}
