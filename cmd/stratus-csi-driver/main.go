// Command stratus-csi-driver is the CSI driver for CBS disks (cbs.csi.stratus.io): the
// controller service in the controller Deployment (--mode controller), the node service
// in the node DaemonSet (--mode node), or both in one process (--mode all, for tests and
// the sandbox). It wires package csi to the cloud through cloudprovider/cbsdisks, with
// the cloud-controller-manager's --cloud-config file.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"syscall"
	"time"

	"k8s.io/component-base/metrics/legacyregistry"
	"k8s.io/klog/v2"

	"github.com/stratus-cloud/stratus/cloudapi"
	"github.com/stratus-cloud/stratus/cloudprovider/cbsdisks"
	"github.com/stratus-cloud/stratus/cloudprovider/metrics"
	"github.com/stratus-cloud/stratus/cloudprovider/qcloud"
	"github.com/stratus-cloud/stratus/csi"
	"github.com/stratus-cloud/stratus/internal/version"
)

type flags struct {
	mode, endpoint, nodeID, cloudConfig, devRoot, defaultZone, loopImageDir, httpEndpoint string
	maxVolumes                                                                            int64
	attachTimeout                                                                         time.Duration
}

func main() {
	// Before any other flag is checked, so an image's entrypoint answers --version alone.
	if version.Requested(os.Args[1:]) {
		fmt.Println(version.String("stratus-csi-driver"))
		return
	}
	klog.InitFlags(nil)
	var f flags
	flag.StringVar(&f.mode, "mode", "all", "services to serve: controller, node or all")
	flag.StringVar(&f.endpoint, "endpoint", "unix:///csi/csi.sock", "CSI endpoint, unix://PATH")
	flag.StringVar(&f.nodeID, "node-id", "", "this node's instance id (default: the instance of the VPC with one of this host's private addresses)")
	flag.StringVar(&f.cloudConfig, "cloud-config", "", "the cloud-controller-manager's cloud-config file (region, vpcId, clusterId, endpoint, credentials)")
	flag.StringVar(&f.devRoot, "dev-root", "/dev", "where attached disks appear as disk/by-id/virtio-<disk-id> (fakecloud's --disk-dev-root)")
	flag.StringVar(&f.defaultZone, "default-zone", "", "zone of volumes created without topology (default: this host's instance's zone, when it has one)")
	flag.StringVar(&f.loopImageDir, "loop-image-dir", "", "for a simulated cloud: the only directory a loop device's disk image may be in")
	flag.Int64Var(&f.maxVolumes, "max-volumes-per-node", 20, "volumes a node takes (CBS: 20 data disks per instance)")
	flag.StringVar(&f.httpEndpoint, "http-endpoint", "", "address (host:port) serving /metrics (the cloud API calls) and /healthz; empty: off")
	flag.DurationVar(&f.attachTimeout, "attach-timeout", 5*time.Minute, "how long attach, detach and resize may take")
	flag.Bool("version", false, "print the version and exit")
	drain := flag.String("wait-drain", "", "instead of serving: wait until no volume of this driver is staged below this kubelet directory (the node's preStop)")
	drainTimeout := flag.Duration("wait-drain-timeout", 5*time.Minute, "how long --wait-drain waits")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if *drain != "" {
		ctx, cancel := context.WithTimeout(ctx, *drainTimeout)
		defer cancel()
		if err := csi.WaitDrained(ctx, "/proc/self/mountinfo", *drain, csi.DriverName, 2*time.Second); err != nil {
			klog.ErrorS(err, "Volumes did not drain")
			klog.Flush()
			os.Exit(1)
		}
		return
	}
	if err := run(ctx, f); err != nil {
		klog.ErrorS(err, "stratus-csi-driver failed")
		klog.Flush()
		os.Exit(1)
	}
}

func run(ctx context.Context, f flags) error {
	mode, err := csi.ParseMode(f.mode)
	if err != nil {
		return fmt.Errorf("--mode: %w", err)
	}
	if f.cloudConfig == "" {
		return fmt.Errorf("--cloud-config is required")
	}
	file, err := os.Open(f.cloudConfig)
	if err != nil {
		return fmt.Errorf("--cloud-config: %w", err)
	}
	cfg, err := qcloud.LoadConfig(file)
	file.Close()
	if err != nil {
		return err
	}
	client, err := cloudapi.New(cloudapi.Config{
		Endpoint: cfg.Endpoint, Region: cfg.Region, Credentials: cfg.Credentials(), RateLimit: cfg.RateLimit(),
		Hooks: []cloudapi.CallHook{metrics.Hook},
	})
	if err != nil {
		return fmt.Errorf("cloud API client: %w", err)
	}
	metrics.Register()
	disks, err := cbsdisks.New(client, cbsdisks.Config{ClusterID: cfg.ClusterID, Wait: cloudapi.WaitOptions{Timeout: f.attachTimeout}})
	if err != nil {
		return err
	}
	opts := csi.Options{Mode: mode, Version: version.Version(), DefaultZone: f.defaultZone, MaxVolumesPerNode: f.maxVolumes}
	if mode != csi.ModeController || f.defaultZone == "" {
		self, err := findSelf(ctx, disks, cfg.VpcID, f.nodeID)
		switch {
		case err == nil:
			opts.NodeID, opts.NodeZone = self.ID, self.Zone
			if opts.DefaultZone == "" {
				opts.DefaultZone = self.Zone
			}
		case mode != csi.ModeController:
			return fmt.Errorf("node: %w", err)
		default:
			klog.InfoS("No instance for this host; volumes without topology need --default-zone", "err", err)
		}
	}
	if mode != csi.ModeNode {
		opts.Disks = disks
	}
	if mode != csi.ModeController {
		opts.Mounter = csi.NewMounter()
		opts.Resolver = &csi.ByIDResolver{DevRoot: f.devRoot, LoopImageDir: f.loopImageDir}
	}
	d, err := csi.New(opts)
	if err != nil {
		return err
	}
	l, err := csi.Listen(f.endpoint)
	if err != nil {
		return err
	}
	if f.httpEndpoint != "" {
		if err := serveHTTP(ctx, f.httpEndpoint); err != nil {
			return err
		}
	}
	klog.InfoS("Starting", "mode", mode, "node", opts.NodeID, "zone", opts.NodeZone, "defaultZone", opts.DefaultZone,
		"cluster", cfg.ClusterID, "region", cfg.Region, "credentials", cfg.Credentials().String())
	return d.Serve(ctx, l)
}

// findSelf is this host's instance: --node-id, else the VPC's instance with one of the
// host's private addresses.
func findSelf(ctx context.Context, disks *cbsdisks.Disks, vpcID, nodeID string) (*csi.Instance, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if nodeID != "" {
		in, err := disks.GetInstance(ctx, nodeID)
		if err != nil {
			return nil, fmt.Errorf("--node-id %s: %w", nodeID, err)
		}
		return in, nil
	}
	ips, err := hostAddresses()
	if err != nil {
		return nil, err
	}
	return disks.FindInstanceByIPs(ctx, vpcID, ips)
}

func hostAddresses() ([]string, error) {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil, fmt.Errorf("list this host's addresses: %w", err)
	}
	var out []string
	for _, a := range addrs {
		p, err := netip.ParsePrefix(a.String())
		if err != nil || p.Addr().IsLoopback() || p.Addr().IsLinkLocalUnicast() || !p.Addr().Is4() {
			continue
		}
		out = append(out, p.Addr().String())
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("this host has no private IPv4 address; pass --node-id")
	}
	return out, nil
}

// serveHTTP serves the Prometheus metrics (component-base's legacy registry, where the
// cloud API metrics live) and a health check, until ctx ends.
func serveHTTP(ctx context.Context, addr string) error {
	mux := http.NewServeMux()
	mux.Handle("/metrics", legacyregistry.Handler())
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) })
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("--http-endpoint: %w", err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		_ = srv.Close()
	}()
	go func() {
		if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			klog.ErrorS(err, "HTTP endpoint stopped", "address", addr)
		}
	}()
	return nil
}
