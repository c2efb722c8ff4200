// Command fakecloud serves a simulated cloud API (Tencent Cloud API 3.0 style) on one
// endpoint for every service: `fakecloud serve --listen ADDR --data-dir DIR [--seed FILE]`.
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
	"strings"
	"syscall"
	"time"

	"k8s.io/klog/v2"

	"github.com/stratus-cloud/stratus/fakecloud"
	"github.com/stratus-cloud/stratus/fakecloud/clb"
	"github.com/stratus-cloud/stratus/internal/version"
)

const usage = `usage: fakecloud serve --listen ADDR --data-dir DIR [--seed FILE] [--dataplane [--vpc-router VPC=NETNS] ...]
       fakecloud --version

Credentials: FAKECLOUD_SECRET_ID / FAKECLOUD_SECRET_KEY when set, else the seed's,
else the default pair ` + fakecloud.DefaultSecretID + ` / ` + fakecloud.DefaultSecretKey + `.
Without --seed the world is region ap-guangzhou with zones ap-guangzhou-1, -2, -3.
`

func main() {
	if version.Requested(os.Args[1:2]) {
		fmt.Println(version.String("fakecloud"))
		return
	}
	if len(os.Args) < 2 || os.Args[1] != "serve" {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := serve(ctx, os.Args[2:], nil); err != nil {
		klog.ErrorS(err, "fakecloud failed")
		klog.Flush()
		os.Exit(1)
	}
}

// serve runs until ctx ends; ready, when set, learns the bound address.
func serve(ctx context.Context, args []string, ready func(addr string)) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	klog.InitFlags(fs)
	listen := fs.String("listen", "127.0.0.1:8090", "address to serve the API and the admin endpoint on")
	dataDir := fs.String("data-dir", "", "directory for the state database (required)")
	seedPath := fs.String("seed", "", "YAML seed file imported into an empty data dir")
	rateLimit := fs.Float64("rate-limit", fakecloud.DefaultRateLimit, "default per-action rate limit in requests per second (negative: unlimited)")
	dataPlane := fs.Bool("dataplane", false, "make resources real on this machine: listeners proxy on loopback, attached disks of local instances become loop devices (needs root)")
	devRoot := fs.String("disk-dev-root", "/dev", "with --dataplane: where attached disks appear as disk/by-id/virtio-<disk-id>; {instanceId} gives each local instance its own tree")
	lbPool := fs.String("lb-loopback-pool", "127.240.0.0/16", "with --dataplane: loopback prefix listeners bind in")
	lbPublicPool := fs.String("lb-public-pool", "", "with --dataplane: prefix public load balancer VIPs come from (default 198.18.0.0/16); a loopback prefix outside --lb-loopback-pool, e.g. 127.241.0.0/24, makes the VIP itself answer on this machine")
	readTimeout := fs.Duration("read-timeout", 30*time.Second, "longest a whole request (headers and body) may take to arrive; a body that never finishes is cut off")
	readHeaderTimeout := fs.Duration("read-header-timeout", 10*time.Second, "longest the request headers may take to arrive")
	idleTimeout := fs.Duration("idle-timeout", 2*time.Minute, "longest a keep-alive connection may wait for its next request")
	var targetMaps prefixMaps
	var routers vpcRouters
	fs.Var(&routers, "vpc-router", "with --dataplane: VPC=NETNS makes the VPC's route tables kernel routes in network namespace NETNS (a name under /run/netns or a path), which plays the VPC's router (repeatable; needs root)")
	fs.Var(&targetMaps, "lb-target-map", "with --dataplane: FROM=TO prefix translation of target IPs onto loopback, e.g. 10.0.0.0/16=127.10.0.0/16, outside the loopback pool (repeatable)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *dataDir == "" {
		return errors.New("--data-dir is required")
	}
	if *readTimeout <= 0 || *readHeaderTimeout <= 0 || *idleTimeout <= 0 {
		return errors.New("--read-timeout, --read-header-timeout and --idle-timeout must be positive")
	}
	cfg := fakecloud.Config{DataDir: *dataDir, RateLimit: *rateLimit}
	if *dataPlane {
		pool, err := netip.ParsePrefix(*lbPool)
		if err != nil {
			return fmt.Errorf("--lb-loopback-pool: %w", err)
		}
		cfg.DataPlane = &fakecloud.DataPlane{DiskDevRoot: *devRoot, LoopbackPool: pool, TargetMap: targetMaps, VPCRouters: routers}
		if *lbPublicPool != "" {
			if cfg.DataPlane.PublicPool, err = netip.ParsePrefix(*lbPublicPool); err != nil {
				return fmt.Errorf("--lb-public-pool: %w", err)
			}
		}
	} else if len(routers) > 0 {
		return errors.New("--vpc-router needs --dataplane")
	}
	if *seedPath != "" {
		seed, err := fakecloud.LoadSeed(*seedPath)
		if err != nil {
			return err
		}
		cfg.Seed = seed
	}
	if id, key := os.Getenv("FAKECLOUD_SECRET_ID"), os.Getenv("FAKECLOUD_SECRET_KEY"); id != "" || key != "" {
		if id == "" || key == "" {
			return errors.New("set both FAKECLOUD_SECRET_ID and FAKECLOUD_SECRET_KEY, or neither")
		}
		cfg.Credentials = map[string]string{id: key}
	}
	cloud, err := fakecloud.New(cfg)
	if err != nil {
		return err
	}
	defer func() {
		if err := cloud.Close(); err != nil {
			klog.ErrorS(err, "Closing state")
		}
	}()
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", *listen, err)
	}
	// ReadTimeout covers the whole request, body included, so a client that trickles a
	// body forever holds a connection for a bounded time; the body's size is bounded by
	// the handler (fakecloud.MaxBody). No WriteTimeout: injected latency faults may
	// legitimately hold an answer for longer.
	srv := &http.Server{
		Handler:           cloud,
		ReadTimeout:       *readTimeout,
		ReadHeaderTimeout: *readHeaderTimeout,
		IdleTimeout:       *idleTimeout,
		MaxHeaderBytes:    64 << 10,
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	id, _ := cloud.Credentials()
	klog.InfoS("fakecloud serving", "address", ln.Addr().String(), "region", cloud.Region(), "dataDir", *dataDir, "secretId", id)
	if ready != nil {
		ready(ln.Addr().String())
	}
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	klog.InfoS("Shutting down")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return srv.Shutdown(shutdownCtx)
}

// prefixMaps is a repeatable FROM=TO flag.
type prefixMaps []clb.PrefixMap

func (p *prefixMaps) String() string {
	parts := make([]string, 0, len(*p))
	for _, m := range *p {
		parts = append(parts, m.From.String()+"="+m.To.String())
	}
	return strings.Join(parts, ",")
}

func (p *prefixMaps) Set(v string) error {
	from, to, ok := strings.Cut(v, "=")
	if !ok {
		return fmt.Errorf("%q is not FROM=TO", v)
	}
	f, err := netip.ParsePrefix(from)
	if err != nil {
		return err
	}
	t, err := netip.ParsePrefix(to)
	if err != nil {
		return err
	}
	*p = append(*p, clb.PrefixMap{From: f, To: t})
	return nil
}

// vpcRouters is a repeatable VPC=NETNS flag.
type vpcRouters map[string]string

func (r *vpcRouters) String() string {
	parts := make([]string, 0, len(*r))
	for id, ns := range *r {
		parts = append(parts, id+"="+ns)
	}
	return strings.Join(parts, ",")
}

func (r *vpcRouters) Set(v string) error {
	id, ns, ok := strings.Cut(v, "=")
	if !ok || id == "" || ns == "" {
		return fmt.Errorf("%q is not VPC=NETNS", v)
	}
	if *r == nil {
		*r = vpcRouters{}
	}
	if _, dup := (*r)[id]; dup {
		return fmt.Errorf("VPC %s is given twice", id)
	}
	(*r)[id] = ns
	return nil
}
