package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/stratus-cloud/stratus/cloudapi"
	vpcapi "github.com/stratus-cloud/stratus/cloudapi/vpc"
	"github.com/stratus-cloud/stratus/sandbox/demo"
	"github.com/stratus-cloud/stratus/sandbox/plan"
	"github.com/stratus-cloud/stratus/sandbox/supervisor"
)

// cmdDemo runs `stratus demo` against the ready sandbox of the state dir.
func cmdDemo(args []string) error {
	flags := flag.NewFlagSet("demo", flag.ContinueOnError)
	stateDir := stateDirFlag(flags)
	timeout := flags.Duration("step-timeout", 2*time.Minute, "how long one step may take")
	keep := flags.Bool("keep", false, "leave the demo's namespace "+demo.Namespace+" and what is in it (the next demo removes it)")
	if err := flags.Parse(args); err != nil {
		return err
	}
	if err := requireRoot("it enters the pods' network namespaces"); err != nil {
		return err
	}
	st, p, err := loadSandbox(*stateDir)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("no sandbox in %s: start one with `stratus up`", *stateDir)
	}
	if err != nil {
		return err
	}
	if st.ReadyAt == nil || !st.Supervisor.Alive() {
		return fmt.Errorf("the sandbox in %s is not ready (phase %s): see `stratus status`", *stateDir, st.Phase)
	}
	client, err := supervisor.ClientFor(st.Endpoints.Kubeconfig)
	if err != nil {
		return err
	}
	creds, err := cloudapi.CredentialsFromFile(st.Endpoints.CredentialsFile)
	if err != nil {
		return fmt.Errorf("fakecloud credentials: %w", err)
	}
	cc, err := cloudapi.New(cloudapi.Config{Endpoint: st.Endpoints.Fakecloud, Region: plan.Region, Credentials: creds, RateLimit: -1})
	if err != nil {
		return fmt.Errorf("fakecloud client: %w", err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	fmt.Printf("stratus demo on the sandbox in %s (%d nodes)\n", *stateDir, len(p.Nodes))
	if err := demo.Run(ctx, demo.Env{Client: client, VPC: vpcapi.New(cc), Plan: p, Out: os.Stdout, Timeout: *timeout, Keep: *keep}); err != nil {
		return err
	}
	return nil
}
