// Command stratus-cni is the stratus-bridge CNI plugin. Installed as
// /opt/cni/bin/stratus-bridge and run by a container runtime with CNI_COMMAND set,
// it is the plugin; otherwise it runs a subcommand:
//
//	stratus-cni install [--src FILE] [--dst /opt/cni/bin]
//
// The plugin is a short-lived process on every pod ADD and DEL, so it stays lean:
// it never links client-go (a test pins that; the node agent that talks to the
// API is its own binary, cmd/stratus-cni-agent), and it skips the runtime's cgroup
// probing for GOMAXPROCS, which costs start-up time and buys a process that lives
// a few milliseconds nothing.
//
//go:debug containermaxprocs=0
//go:debug updatemaxprocs=0
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"

	"github.com/containernetworking/cni/pkg/skel"

	"github.com/stratus-cloud/stratus/cni"
	"github.com/stratus-cloud/stratus/internal/version"
)

func main() {
	if os.Getenv("CNI_COMMAND") != "" {
		skel.PluginMainFuncs(cni.Funcs(), cni.VersionInfo, cni.About)
		return
	}
	if len(os.Args) < 2 {
		usage()
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "agent":
		fmt.Fprintln(os.Stderr, "stratus-cni: the node agent is its own binary now: run stratus-cni-agent with the same flags")
		os.Exit(2)
	case "install":
		err = runInstall(os.Args[2:])
	case "-h", "--help", "help":
		usage()
		return
	case "--version", "-version", "version":
		fmt.Println(version.String("stratus-cni"))
		return
	default:
		fmt.Fprintf(os.Stderr, "stratus-cni: unknown subcommand %q\n", os.Args[1])
		usage()
		os.Exit(2)
	}
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "stratus-cni %s: %v\n", os.Args[1], err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintf(os.Stderr, `%s

With CNI_COMMAND set this binary is the CNI plugin %q. Subcommand:
  install  copy this binary into the CNI bin dir as %s
Run "stratus-cni install -h" for flags. The node agent that writes the CNI
conflist from the Node's podCIDR is stratus-cni-agent.
Also: stratus-cni version (or --version) prints the version.
`, cni.About, cni.PluginType, cni.PluginType)
}

func runInstall(args []string) error {
	fs := flag.NewFlagSet("install", flag.ContinueOnError)
	src := fs.String("src", "", "binary to install (default: this executable)")
	dst := fs.String("dst", "/opt/cni/bin", "CNI bin directory")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *src == "" {
		self, err := os.Executable()
		if err != nil {
			return fmt.Errorf("install: find own executable: %w", err)
		}
		*src = self
	}
	path, err := cni.InstallPlugin(*src, *dst)
	if err != nil {
		return err
	}
	// Plain stderr rather than klog: the plugin links no logging library, so
	// nothing of one is initialised on every pod ADD and DEL.
	fmt.Fprintf(os.Stderr, "stratus-cni install: installed the CNI plugin as %s\n", path)
	return nil
}
