// Command stratus-cni is the stratus-bridge CNI plugin and its node tooling in one
// binary. Installed as /opt/cni/bin/stratus-bridge and run by a container runtime
// with CNI_COMMAND set, it is the plugin; otherwise it runs a subcommand:
//
//	stratus-cni agent --kubeconfig FILE --node-name NODE [--cni-conf-dir DIR] ...
//	stratus-cni install [--src FILE] [--dst /opt/cni/bin]
//
// The plugin is a short-lived process on every pod ADD and DEL: it skips the
// runtime's cgroup probing for GOMAXPROCS, which costs start-up time and buys a
// process that lives a few milliseconds nothing.
//
//go:debug containermaxprocs=0
//go:debug updatemaxprocs=0
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/containernetworking/cni/pkg/skel"
	"k8s.io/klog/v2"

	"github.com/stratus-cloud/stratus/cni"
	"github.com/stratus-cloud/stratus/cni/agent"
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
		err = runAgent(os.Args[2:])
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
	if err != nil {
		klog.ErrorS(err, "stratus-cni failed", "subcommand", os.Args[1])
		klog.Flush()
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintf(os.Stderr, `%s

With CNI_COMMAND set this binary is the CNI plugin %q. Subcommands:
  agent    watch this node's podCIDR and write the CNI conflist
  install  copy this binary into the CNI bin dir as %s
  version  print the version (also --version)
Run "stratus-cni <subcommand> -h" for flags.
`, cni.About, cni.PluginType, cni.PluginType)
}

func runAgent(args []string) error {
	fs := flag.NewFlagSet("agent", flag.ContinueOnError)
	klog.InitFlags(fs)
	kubeconfig := fs.String("kubeconfig", "", "kubeconfig file; empty means in-cluster config")
	opts := agent.Options{}
	fs.StringVar(&opts.NodeName, "node-name", os.Getenv("NODE_NAME"), "name of this node (default $NODE_NAME)")
	fs.StringVar(&opts.ConfDir, "cni-conf-dir", agent.DefaultConfDir, "directory the runtime loads CNI configs from")
	fs.StringVar(&opts.ConfName, "conflist-name", agent.DefaultConfName, "file name of the conflist")
	fs.StringVar(&opts.NetworkName, "network-name", agent.DefaultNetworkName, "CNI network name")
	fs.StringVar(&opts.Bridge, "bridge", cni.DefaultBridge, "node bridge name")
	fs.IntVar(&opts.MTU, "mtu", 0, "pod MTU; 0 means the node uplink's MTU")
	fs.BoolVar(&opts.HairpinMode, "hairpin-mode", true, "let a pod reach itself through a Service")
	fs.BoolVar(&opts.IPMasq, "ip-masq", true, "masquerade traffic leaving the non-masquerade CIDRs")
	nonMasq := fs.String("non-masquerade-cidrs", "", "comma-separated cluster and VPC CIDRs that are reached without NAT")
	fs.StringVar(&opts.DataDir, "data-dir", cni.DefaultDataDir, "IPAM state directory on the node")
	if err := fs.Parse(args); err != nil {
		return err
	}
	for _, c := range strings.Split(*nonMasq, ",") {
		if c = strings.TrimSpace(c); c != "" {
			opts.NonMasqueradeCIDRs = append(opts.NonMasqueradeCIDRs, c)
		}
	}

	var cfg *agent.APIConfig
	var err error
	if *kubeconfig != "" {
		cfg, err = agent.LoadKubeconfig(*kubeconfig)
	} else {
		cfg, err = agent.InClusterConfig()
	}
	if err != nil {
		return err
	}
	a, err := agent.New(agent.NewNodeWatcher(cfg), opts)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	return a.Run(ctx)
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
	klog.InfoS("Installed CNI plugin", "path", path)
	klog.Flush()
	return nil
}
