// Command stratus runs the local sandbox: a Kubernetes cluster whose nodes are network
// namespaces of this machine, on fakecloud as its cloud, with Stratus' CCM and CNI.
//
//	sudo stratus up [--nodes 3]   bring the sandbox up and wait until it is ready
//	sudo stratus status           what runs, what is unhealthy, and whether it is ready
//	sudo stratus demo             show the sandbox end to end, each step with its duration
//	sudo stratus down             stop everything and remove everything it made
//
// --state-dir (or $STRATUS_STATE_DIR) picks the sandbox; the default is
// /var/lib/stratus/sandbox. Two state dirs are two independent sandboxes.
//
// `stratus supervise` (the detached supervisor `up` starts) and `stratus podlet` (the
// kubelet stand-in of one node) are internal subcommands.
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"

	"github.com/stratus-cloud/stratus/sandbox/plan"
)

// StateDirEnv sets the default --state-dir.
const StateDirEnv = "STRATUS_STATE_DIR"

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	if len(args) == 0 {
		usage()
		return 2
	}
	var err error
	switch args[0] {
	case "up":
		err = cmdUp(args[1:])
	case "down":
		err = cmdDown(args[1:])
	case "status":
		err = cmdStatus(args[1:])
	case "demo":
		err = cmdDemo(args[1:])
	case "supervise":
		err = cmdSupervise(args[1:])
	case "podlet":
		err = cmdPodlet(args[1:])
	case "-h", "--help", "help":
		usage()
		return 0
	default:
		fmt.Fprintf(os.Stderr, "stratus: unknown command %q\n", args[0])
		usage()
		return 2
	}
	var code exitCode
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, &code):
		return int(code)
	}
	fmt.Fprintf(os.Stderr, "stratus %s: %v\n", args[0], err)
	return 1
}

// exitCode ends the command with a status and no further message (it printed its own).
type exitCode int

func (e exitCode) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

func usage() {
	fmt.Fprint(os.Stderr, `usage: stratus <command> [flags]

Commands (all need root):
  up      bring up a local sandbox (fakecloud, etcd, kube-apiserver, kube-scheduler,
          kube-controller-manager, the Stratus CCM, and N nodes in network namespaces)
  status  show each component and whether the cluster is ready
  demo    show the running sandbox end to end, step by step, each with its duration
  down    stop the sandbox and remove everything it made

Run "stratus <command> -h" for its flags. docs/sandbox.md explains the sandbox.
`)
}

func stateDirFlag(fs *flag.FlagSet) *string {
	def := os.Getenv(StateDirEnv)
	if def == "" {
		def = plan.DefaultStateDir
	}
	return fs.String("state-dir", def, "the sandbox's state directory (env "+StateDirEnv+")")
}

// geteuid is replaced in tests.
var geteuid = os.Geteuid

// requireRoot is the first check of every command that touches the machine.
func requireRoot(what string) error {
	if geteuid() != 0 {
		return fmt.Errorf("needs root (%s): run it with sudo", what)
	}
	return nil
}
