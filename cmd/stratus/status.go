package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"text/tabwriter"
	"time"

	"github.com/stratus-cloud/stratus/sandbox/plan"
	"github.com/stratus-cloud/stratus/sandbox/state"
	"github.com/stratus-cloud/stratus/sandbox/supervisor"
)

// cmdStatus prints every component and whether the cluster is ready; it exits 0 only
// when it is.
func cmdStatus(args []string) error {
	flags := flag.NewFlagSet("status", flag.ContinueOnError)
	stateDir := stateDirFlag(flags)
	if err := flags.Parse(args); err != nil {
		return err
	}
	if err := requireRoot("it reads the sandbox's state dir"); err != nil {
		return err
	}
	st, p, err := loadSandbox(*stateDir)
	if errors.Is(err, fs.ErrNotExist) {
		fmt.Printf("no sandbox in %s (start one with `stratus up`)\n", *stateDir)
		return exitCode(3)
	}
	if err != nil {
		return err
	}

	supAlive := st.Supervisor.Alive()
	since := ""
	if st.ReadyAt != nil {
		since = fmt.Sprintf(", ready since %s (%.1fs after start)", st.ReadyAt.Format(time.TimeOnly), st.ReadyAt.Sub(st.StartedAt).Seconds())
	}
	supState := fmt.Sprintf("supervisor pid %d", st.Supervisor.Pid)
	if !supAlive {
		supState = "supervisor NOT RUNNING"
	}
	fmt.Printf("sandbox %s: %s, phase %s%s\n", *stateDir, supState, st.Phase, since)
	if st.Error != "" {
		fmt.Printf("error: %s\n", st.Error)
	}
	tw := tabwriter.NewWriter(os.Stdout, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "COMPONENT\tPID\tSTATE\tRESTARTS\tDETAIL")
	healthy := supAlive
	for _, c := range st.Components {
		s := c.State
		switch {
		case !c.Proc.Alive():
			s = state.StateStopped
			healthy = false
		case !supAlive:
			s = "orphaned"
			healthy = false
		case s != state.StateRunning:
			healthy = false
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%d\t%s\n", c.Name, c.Proc.Pid, s, c.Restarts, c.Detail)
	}
	_ = tw.Flush()
	fmt.Printf("kubeconfig %s, fakecloud %s\n", st.Endpoints.Kubeconfig, st.Endpoints.Fakecloud)

	if !healthy {
		fmt.Println("not ready: a component is not running")
		return exitCode(1)
	}
	client, err := supervisor.ClientFor(st.Endpoints.Kubeconfig)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := supervisor.CheckCluster(ctx, client, p); err != nil {
		fmt.Printf("not ready: %v\n", err)
		return exitCode(1)
	}
	fmt.Println("ready")
	return nil
}

// loadSandbox reads what `up` left in the state dir: the supervisor's last status and the
// plan of its options. A state dir without a status is fs.ErrNotExist.
func loadSandbox(stateDir string) (state.Status, *plan.Plan, error) {
	dir := state.Dir(stateDir)
	var st state.Status
	if err := state.ReadJSON(dir.StatusFile(), &st); err != nil {
		return st, nil, err
	}
	cfg, err := supervisor.LoadConfig(dir)
	if err != nil {
		return st, nil, err
	}
	p, err := plan.New(cfg.Options)
	return st, p, err
}
