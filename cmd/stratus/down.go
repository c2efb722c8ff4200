package main

import (
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/stratus-cloud/stratus/sandbox/plan"
	"github.com/stratus-cloud/stratus/sandbox/state"
	"github.com/stratus-cloud/stratus/sandbox/supervisor"
	"github.com/stratus-cloud/stratus/sandbox/teardown"
)

func cmdDown(args []string) error {
	fs := flag.NewFlagSet("down", flag.ContinueOnError)
	stateDir := stateDirFlag(fs)
	keepLogs := fs.Bool("keep-logs", false, "keep the components' logs in the state dir")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := requireRoot("it removes network namespaces, links and processes"); err != nil {
		return err
	}
	start := time.Now()
	// The names to sweep by come from the state dir alone, so down works even when
	// sandbox.json is gone or unreadable.
	opts := plan.Options{StateDir: *stateDir}
	if cfg, err := supervisor.LoadConfig(state.Dir(*stateDir)); err == nil {
		opts = cfg.Options
		opts.StateDir = *stateDir
	}
	p, err := plan.New(opts)
	if err != nil {
		if p, err = plan.New(plan.Options{StateDir: *stateDir}); err != nil {
			return err
		}
	}
	rep, err := teardown.Down(teardown.Options{Plan: p, KeepLogs: *keepLogs})
	took := time.Since(start)
	if err != nil {
		fmt.Fprintf(os.Stderr, "stratus down: %s in %.1fs, with errors:\n%v\n", rep, took.Seconds(), err)
		return exitCode(1)
	}
	if rep == (teardown.Report{}) {
		fmt.Printf("nothing to clean up in %s\n", *stateDir)
		return nil
	}
	fmt.Printf("sandbox %s down in %.1fs: %s\n", *stateDir, took.Seconds(), rep)
	return nil
}
