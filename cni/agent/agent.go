// Package agent is the node agent of stratus-bridge: it watches its own Node's
// spec.podCIDR(s) and keeps the node's CNI conflist in step with it. It owns one
// file, the conflist; it never touches the network of the node and never writes
// to the Kubernetes API.
package agent

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"

	"k8s.io/klog/v2"

	"github.com/stratus-cloud/stratus/cni"
)

// Options are the agent's settings; every path is configurable so tests use temp
// dirs.
type Options struct {
	NodeName           string
	ConfDir            string
	ConfName           string
	NetworkName        string
	Bridge             string
	MTU                int
	HairpinMode        bool
	IPMasq             bool
	NonMasqueradeCIDRs []string
	DataDir            string
	// Resync re-checks the file against the Node this often, repairing a conflist
	// someone deleted or edited.
	Resync time.Duration
	// RetryInterval is the wait after a failed write.
	RetryInterval time.Duration
}

// Defaults for a real node.
const (
	DefaultConfDir     = "/etc/cni/net.d"
	DefaultConfName    = "10-stratus.conflist"
	DefaultNetworkName = "stratus"
	// CNIVersion is the spec version an older runtime reads from the conflist;
	// a runtime that knows cniVersions picks the newest it speaks from CNIVersions
	// (1.1.0 brings GC and STATUS).
	CNIVersion = "1.0.0"
)

// CNIVersions are the versions the conflist offers.
var CNIVersions = []string{"1.0.0", "1.1.0"}

func (o *Options) setDefaults() {
	if o.ConfDir == "" {
		o.ConfDir = DefaultConfDir
	}
	if o.ConfName == "" {
		o.ConfName = DefaultConfName
	}
	if o.NetworkName == "" {
		o.NetworkName = DefaultNetworkName
	}
	if o.Bridge == "" {
		o.Bridge = cni.DefaultBridge
	}
	if o.DataDir == "" {
		o.DataDir = cni.DefaultDataDir
	}
	if o.Resync == 0 {
		o.Resync = time.Minute
	}
	if o.RetryInterval == 0 {
		o.RetryInterval = 2 * time.Second
	}
}

// ConfPath is the conflist the agent owns.
func (o Options) ConfPath() string { return filepath.Join(o.ConfDir, o.ConfName) }

// NodeSource delivers the Node's state: first its current state, then every
// change, until ctx ends. NodeWatcher is the API-backed implementation.
type NodeSource interface {
	Watch(ctx context.Context, name string, onNode func(*Node)) error
}

// Agent keeps the conflist in step with the Node.
type Agent struct {
	opts   Options
	source NodeSource

	mu     sync.Mutex
	latest *Node
	kick   chan struct{}
}

// New returns an agent for opts.NodeName.
func New(source NodeSource, opts Options) (*Agent, error) {
	opts.setDefaults()
	if opts.NodeName == "" {
		return nil, errors.New("agent: node name is required")
	}
	if _, err := Render(opts, "10.0.0.0/24"); err != nil {
		return nil, fmt.Errorf("agent: options: %w", err)
	}
	return &Agent{opts: opts, source: source, kick: make(chan struct{}, 1)}, nil
}

// Run keeps the conflist in step with the Node until ctx ends.
func (a *Agent) Run(ctx context.Context) error {
	klog.InfoS("Watching node for podCIDR", "node", a.opts.NodeName, "conflist", a.opts.ConfPath())
	watchDone := make(chan error, 1)
	go func() { watchDone <- a.source.Watch(ctx, a.opts.NodeName, a.observe) }()

	resync := time.NewTicker(a.opts.Resync)
	defer resync.Stop()
	var retry <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			<-watchDone
			return nil
		case err := <-watchDone:
			if ctx.Err() == nil {
				return fmt.Errorf("agent: watch of node %s ended: %w", a.opts.NodeName, err)
			}
			return nil
		case <-a.kick:
		case <-retry:
		case <-resync.C:
		}
		retry = nil
		if err := a.sync(); err != nil {
			klog.ErrorS(err, "Writing CNI conflist failed; retrying", "node", a.opts.NodeName, "path", a.opts.ConfPath())
			retry = time.After(a.opts.RetryInterval)
		}
	}
}

// observe only records the Node, so a slow disk never blocks the watch.
func (a *Agent) observe(node *Node) {
	if node.Name() != a.opts.NodeName {
		return
	}
	a.mu.Lock()
	a.latest = node
	a.mu.Unlock()
	select {
	case a.kick <- struct{}{}:
	default:
	}
}

func (a *Agent) sync() error {
	a.mu.Lock()
	node := a.latest
	a.mu.Unlock()
	if node == nil {
		return nil
	}
	cidr := PodCIDR(node)
	if cidr == "" {
		// Without a conflist the runtime reports the network as not ready, which is
		// the truth until the node has a podCIDR.
		klog.InfoS("Node has no IPv4 podCIDR yet; not writing a conflist", "node", node.Name())
		return nil
	}
	want, err := Render(a.opts, cidr)
	if err != nil {
		return err
	}
	path := a.opts.ConfPath()
	have, err := os.ReadFile(path)
	if err == nil && bytes.Equal(have, want) {
		return nil
	}
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("read %s: %w", path, err)
	}
	if err := cni.WriteFileAtomic(path, want, 0o644); err != nil {
		return fmt.Errorf("write %s for node %s podCIDR %s: %w", path, node.Name(), cidr, err)
	}
	klog.InfoS("Wrote CNI conflist", "node", node.Name(), "podCIDR", cidr, "path", path)
	return nil
}
