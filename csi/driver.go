package csi

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"k8s.io/klog/v2"
)

// DriverName is the CSI driver name (CSIDriver object, StorageClass provisioner).
const DriverName = "cbs.csi.stratus.io"

// TopologyKey is the topology segment the driver reports and honours.
const TopologyKey = "topology.kubernetes.io/zone"

// Mode says which services a driver process serves.
type Mode string

// The modes of --mode.
const (
	ModeController Mode = "controller"
	ModeNode       Mode = "node"
	ModeAll        Mode = "all"
)

// ParseMode reads a --mode value.
func ParseMode(s string) (Mode, error) {
	switch m := Mode(s); m {
	case ModeController, ModeNode, ModeAll:
		return m, nil
	}
	return "", fmt.Errorf("mode %q is not controller, node or all", s)
}

// Options configures a Driver.
type Options struct {
	Mode Mode
	// Name and Version are what GetPluginInfo answers (defaults DriverName, "dev").
	Name, Version string

	// Disks is the cloud (controller mode).
	Disks Disks
	// DefaultZone is where volumes go when CreateVolume names no topology.
	DefaultZone string
	// MaxVolumesPerNode is the per-node attachment limit: NodeGetInfo reports it and
	// ControllerPublish refuses the attachment beyond it (0: no limit of the driver's own;
	// the cloud's still applies).
	MaxVolumesPerNode int64

	// NodeID is this node's instance id and NodeZone its zone (node mode).
	NodeID, NodeZone string
	// Mounter and Resolver are this machine (node mode).
	Mounter  Mounter
	Resolver DeviceResolver
}

// Driver serves the CSI identity service and, by mode, the controller and node services.
type Driver struct {
	opts       Options
	identity   *identityServer
	controller *controllerServer
	node       *nodeServer

	mu     sync.Mutex
	server *grpc.Server
}

// New checks opts and builds a Driver.
func New(opts Options) (*Driver, error) {
	if opts.Name == "" {
		opts.Name = DriverName
	}
	if opts.Version == "" {
		opts.Version = "dev"
	}
	if _, err := ParseMode(string(opts.Mode)); err != nil {
		return nil, err
	}
	d := &Driver{opts: opts, identity: &identityServer{name: opts.Name, version: opts.Version}}
	if opts.Mode != ModeNode {
		if opts.Disks == nil {
			return nil, errors.New("csi driver: controller mode needs Disks")
		}
		if len(opts.Disks.DiskTypes()) == 0 {
			return nil, errors.New("csi driver: the cloud lists no disk types")
		}
		d.controller = newControllerServer(opts)
	}
	if opts.Mode != ModeController {
		switch {
		case opts.NodeID == "":
			return nil, errors.New("csi driver: node mode needs the node's instance id")
		case opts.Mounter == nil || opts.Resolver == nil:
			return nil, errors.New("csi driver: node mode needs a Mounter and a DeviceResolver")
		}
		d.node = &nodeServer{opts: opts}
	}
	return d, nil
}

// Register adds the driver's services to s.
func (d *Driver) Register(s *grpc.Server) {
	csi.RegisterIdentityServer(s, d.identity)
	if d.controller != nil {
		csi.RegisterControllerServer(s, d.controller)
	}
	if d.node != nil {
		csi.RegisterNodeServer(s, d.node)
	}
}

// Listen opens endpoint, "unix:///path/csi.sock" (or unix:/path, or a bare path),
// replacing a stale socket file.
func Listen(endpoint string) (net.Listener, error) {
	path, err := socketPath(endpoint)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, fmt.Errorf("endpoint %s: %w", endpoint, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("endpoint %s: remove stale socket: %w", endpoint, err)
	}
	l, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("endpoint %s: %w", endpoint, err)
	}
	return l, nil
}

func socketPath(endpoint string) (string, error) {
	if strings.HasPrefix(endpoint, "/") {
		return endpoint, nil
	}
	u, err := url.Parse(endpoint)
	if err != nil || u.Scheme != "unix" {
		return "", fmt.Errorf("endpoint %q is not unix://PATH", endpoint)
	}
	p := u.Path
	if p == "" {
		p = u.Opaque
	}
	if u.Host != "" {
		p = u.Host + p // unix://relative/path
	}
	if p == "" {
		return "", fmt.Errorf("endpoint %q has no path", endpoint)
	}
	return p, nil
}

// Serve answers CSI calls on l until ctx ends, then stops gracefully (running calls
// finish, for at most 30 seconds).
func (d *Driver) Serve(ctx context.Context, l net.Listener) error {
	s := grpc.NewServer(grpc.UnaryInterceptor(logCalls))
	d.Register(s)
	d.mu.Lock()
	d.server = s
	d.mu.Unlock()
	klog.InfoS("CSI driver serving", "driver", d.opts.Name, "version", d.opts.Version, "mode", d.opts.Mode, "endpoint", l.Addr().String())
	done := make(chan struct{})
	go func() {
		select {
		case <-ctx.Done():
			stopped := make(chan struct{})
			go func() { s.GracefulStop(); close(stopped) }()
			select {
			case <-stopped:
			case <-time.After(30 * time.Second):
				s.Stop()
			}
		case <-done:
		}
	}()
	err := s.Serve(l)
	close(done)
	if errors.Is(err, grpc.ErrServerStopped) {
		return nil
	}
	return err
}

// logCalls logs every call at V(4) and every failure at V(2) (with its code), never a
// request's secrets.
func logCalls(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	start := time.Now()
	resp, err := handler(ctx, req)
	method := info.FullMethod[strings.LastIndex(info.FullMethod, "/")+1:]
	if err != nil {
		klog.V(2).InfoS("CSI call failed", "method", method, "code", status.Code(err), "err", err, "duration", time.Since(start))
	} else if !strings.HasSuffix(method, "Probe") {
		klog.V(4).InfoS("CSI call", "method", method, "duration", time.Since(start))
	}
	if err != nil && status.Code(err) == codes.Unknown {
		err = status.Error(codes.Internal, err.Error())
	}
	return resp, err
}
