package main

import (
	"context"
	"flag"
	"os/signal"
	"syscall"

	"k8s.io/klog/v2"

	"github.com/stratus-cloud/stratus/sandbox/state"
	"github.com/stratus-cloud/stratus/sandbox/supervisor"
)

// cmdSupervise is the detached supervisor `up` starts; it logs to the state dir.
func cmdSupervise(args []string) error {
	fs := flag.NewFlagSet("supervise", flag.ContinueOnError)
	klog.InitFlags(fs)
	stateDir := stateDirFlag(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	defer klog.Flush()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	defer stop()
	if err := supervisor.Run(ctx, state.Dir(*stateDir)); err != nil {
		klog.ErrorS(err, "Sandbox failed")
		return err
	}
	klog.InfoS("Sandbox stopped")
	return nil
}
