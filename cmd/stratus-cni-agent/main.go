// Command stratus-cni-agent is the node agent of the stratus-bridge CNI plugin: it
// watches its own Node's spec.podCIDR with a client-go informer and writes the
// node's CNI conflist (/etc/cni/net.d/10-stratus.conflist) from it.
//
//	stratus-cni-agent [--kubeconfig FILE] --node-name NODE [--cni-conf-dir DIR] ...
//
// It is its own binary so that the plugin (cmd/stratus-cni), exec'd once per pod
// ADD and DEL, stays small and quick to start while the agent, a long-running
// process, gets client-go: every kubeconfig kubectl understands works here,
// including exec and auth-provider credentials, and in a pod without --kubeconfig
// it uses the pod's service account.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"k8s.io/client-go/kubernetes"
	// Registers the auth-provider plugins client-go still ships (oidc), so a
	// kubeconfig with an auth-provider user works; exec credentials need nothing.
	_ "k8s.io/client-go/plugin/pkg/client/auth"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/klog/v2"

	"github.com/stratus-cloud/stratus/cni"
	"github.com/stratus-cloud/stratus/cni/agent"
	"github.com/stratus-cloud/stratus/internal/version"
)

const userAgent = "stratus-cni-agent"

func main() {
	if version.Requested(os.Args[1:]) {
		fmt.Println(version.String("stratus-cni-agent"))
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stderr)
	stop()
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		klog.ErrorS(err, "stratus-cni-agent failed")
		klog.Flush()
		os.Exit(1)
	}
	klog.Flush()
}

// config is what the command line sets.
type config struct {
	kubeconfig string
	master     string
	agent      agent.Options
}

// parseFlags reads args; the manifests test parses the DaemonSet's args with it.
func parseFlags(args []string, output io.Writer) (*config, error) {
	fs := flag.NewFlagSet("stratus-cni-agent", flag.ContinueOnError)
	fs.SetOutput(output)
	klog.InitFlags(fs)
	c := &config{}
	fs.StringVar(&c.kubeconfig, "kubeconfig", "", "kubeconfig file; empty means the pod's service account (in-cluster config)")
	fs.StringVar(&c.master, "master", "", "API server address; overrides the kubeconfig's server")
	o := &c.agent
	fs.StringVar(&o.NodeName, "node-name", os.Getenv("NODE_NAME"), "name of this node (default $NODE_NAME)")
	fs.StringVar(&o.ConfDir, "cni-conf-dir", agent.DefaultConfDir, "directory the runtime loads CNI configs from")
	fs.StringVar(&o.ConfName, "conflist-name", agent.DefaultConfName, "file name of the conflist")
	fs.StringVar(&o.NetworkName, "network-name", agent.DefaultNetworkName, "CNI network name")
	fs.StringVar(&o.Bridge, "bridge", cni.DefaultBridge, "node bridge name")
	fs.IntVar(&o.MTU, "mtu", 0, "pod MTU; 0 means the node uplink's MTU")
	fs.BoolVar(&o.HairpinMode, "hairpin-mode", true, "let a pod reach itself through a Service")
	fs.BoolVar(&o.IPMasq, "ip-masq", true, "masquerade traffic leaving the non-masquerade CIDRs")
	nonMasq := fs.String("non-masquerade-cidrs", "", "comma-separated cluster and VPC CIDRs that are reached without NAT")
	fs.StringVar(&o.DataDir, "data-dir", cni.DefaultDataDir, "IPAM state directory on the node (written by the plugin, not the agent)")
	fs.DurationVar(&o.Resync, "resync", 0, "how often the conflist is re-checked against the Node, repairing a deleted or edited file (default 1m)")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	for _, cidr := range strings.Split(*nonMasq, ",") {
		if cidr = strings.TrimSpace(cidr); cidr != "" {
			o.NonMasqueradeCIDRs = append(o.NonMasqueradeCIDRs, cidr)
		}
	}
	return c, nil
}

// restConfig loads the kubeconfig the way kubectl does (exec and auth-provider
// users included), or the pod's service account when neither flag is set.
func restConfig(kubeconfig, master string) (*rest.Config, error) {
	var cfg *rest.Config
	var err error
	if kubeconfig == "" && master == "" {
		cfg, err = rest.InClusterConfig()
		if err != nil {
			return nil, fmt.Errorf("in-cluster config (pass --kubeconfig outside a pod): %w", err)
		}
	} else {
		cfg, err = clientcmd.BuildConfigFromFlags(master, kubeconfig)
		if err != nil {
			return nil, fmt.Errorf("load kubeconfig %q: %w", kubeconfig, err)
		}
	}
	cfg = rest.CopyConfig(cfg)
	rest.AddUserAgent(cfg, userAgent)
	// Nodes are built-in: protobuf is cheaper for the apiserver and for us.
	cfg.ContentType = "application/vnd.kubernetes.protobuf"
	cfg.AcceptContentTypes = "application/vnd.kubernetes.protobuf,application/json"
	return cfg, nil
}

func run(ctx context.Context, args []string, output io.Writer) error {
	c, err := parseFlags(args, output)
	if err != nil {
		return err
	}
	cfg, err := restConfig(c.kubeconfig, c.master)
	if err != nil {
		return err
	}
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return fmt.Errorf("client for %s: %w", cfg.Host, err)
	}
	a, err := agent.New(client, c.agent)
	if err != nil {
		return err
	}
	return a.Run(ctx)
}
