// Package agent is the node agent of stratus-bridge: it watches its own Node's
// spec.podCIDR(s) through a client-go informer and keeps the node's CNI conflist in
// step with it. It owns one file, the conflist; it never touches the network of the
// node and never writes to the Kubernetes API.
//
// The agent is a long-running process with its own binary (cmd/stratus-cni-agent),
// so it can afford client-go; the plugin binary (cmd/stratus-cni), exec'd once per
// pod ADD and DEL, never imports this package.
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

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	coreinformers "k8s.io/client-go/informers/core/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
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

// Agent keeps the conflist in step with the Node.
type Agent struct {
	opts   Options
	client kubernetes.Interface

	mu sync.Mutex
	// latest is the last state of the Node the informer delivered. It survives
	// the Node's deletion: pods still on the node need the conflist for DEL.
	latest *corev1.Node
	kick   chan struct{}
	// handled, when set (tests), is called after each informer event for the
	// agent's node: "add", "update" or "delete".
	handled func(event string)
}

// New returns an agent for opts.NodeName that reads its Node through client.
func New(client kubernetes.Interface, opts Options) (*Agent, error) {
	opts.setDefaults()
	if opts.NodeName == "" {
		return nil, errors.New("agent: node name is required")
	}
	if client == nil {
		return nil, errors.New("agent: a Kubernetes client is required")
	}
	if _, err := Render(opts, "10.0.0.0/24"); err != nil {
		return nil, fmt.Errorf("agent: options: %w", err)
	}
	return &Agent{opts: opts, client: client, kick: make(chan struct{}, 1)}, nil
}

// ownNode narrows every list and watch to the agent's own Node: the agent reads
// one object, not the cluster's nodes, on every node of the cluster.
func (a *Agent) ownNode(o *metav1.ListOptions) {
	o.FieldSelector = fields.OneTermEqualSelector("metadata.name", a.opts.NodeName).String()
}

// Run keeps the conflist in step with the Node until ctx ends. The informer
// relists after an expired watch (410 Gone), follows bookmarks and reconnects
// after any failure; Run returns only when ctx ends.
func (a *Agent) Run(ctx context.Context) error {
	// One informer, no factory: the agent watches nothing else. No informer
	// resync either: the ticker below re-checks the file without the cache.
	informer := coreinformers.NewFilteredNodeInformer(a.client, 0, cache.Indexers{}, a.ownNode)
	if err := informer.SetTransform(podCIDROnly); err != nil {
		return fmt.Errorf("agent: watch node %s: %w", a.opts.NodeName, err)
	}
	if _, err := informer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { a.observe("add", obj) },
		UpdateFunc: func(_, obj any) { a.observe("update", obj) },
		DeleteFunc: a.deleted,
	}); err != nil {
		return fmt.Errorf("agent: watch node %s: %w", a.opts.NodeName, err)
	}
	klog.InfoS("Watching node for podCIDR", "node", a.opts.NodeName, "conflist", a.opts.ConfPath())
	stopped := make(chan struct{})
	informerCtx, stopInformer := context.WithCancel(ctx)
	go func() {
		defer close(stopped)
		informer.RunWithContext(informerCtx)
	}()
	defer func() {
		stopInformer()
		<-stopped
	}()
	go func() {
		// Tells an operator the agent reached the API with working credentials;
		// until then client-go logs why each list failed.
		if cache.WaitForCacheSync(ctx.Done(), informer.HasSynced) {
			_, found, _ := informer.GetStore().GetByKey(a.opts.NodeName)
			klog.InfoS("Node informer synced", "node", a.opts.NodeName, "nodeFound", found)
		}
	}()

	resync := time.NewTicker(a.opts.Resync)
	defer resync.Stop()
	var retry <-chan time.Time
	for {
		select {
		case <-ctx.Done():
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

// podCIDROnly keeps of a Node what the agent reads. A Node's status (images,
// conditions, addresses) and managed fields are most of its size and none of the
// agent's business, so the cache holds a few hundred bytes instead.
func podCIDROnly(obj any) (any, error) {
	node, ok := obj.(*corev1.Node)
	if !ok {
		return obj, nil
	}
	return &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: node.Name, UID: node.UID, ResourceVersion: node.ResourceVersion},
		Spec:       corev1.NodeSpec{PodCIDR: node.Spec.PodCIDR, PodCIDRs: node.Spec.PodCIDRs},
	}, nil
}

// observe only records the Node, so a slow disk never blocks the informer.
func (a *Agent) observe(event string, obj any) {
	node, ok := obj.(*corev1.Node)
	// The API honours the field selector; a client that does not (a fake in a
	// test, a proxy) must still never make another node's podCIDR ours.
	if !ok || node.Name != a.opts.NodeName {
		return
	}
	a.mu.Lock()
	a.latest = node
	a.mu.Unlock()
	select {
	case a.kick <- struct{}{}:
	default:
	}
	if a.handled != nil {
		a.handled(event)
	}
}

// deleted keeps the last conflist: the pods still running on the node need it for
// their DEL, and a Node registered again under the same name brings its podCIDR
// through observe.
func (a *Agent) deleted(obj any) {
	if tomb, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = tomb.Obj
	}
	if node, ok := obj.(*corev1.Node); ok && node.Name == a.opts.NodeName {
		klog.InfoS("Node deleted; keeping the CNI conflist for the pods still on it", "node", node.Name, "path", a.opts.ConfPath())
		if a.handled != nil {
			a.handled("delete")
		}
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
		klog.InfoS("Node has no IPv4 podCIDR yet; not writing a conflist", "node", node.Name)
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
		return fmt.Errorf("write %s for node %s podCIDR %s: %w", path, node.Name, cidr, err)
	}
	klog.InfoS("Wrote CNI conflist", "node", node.Name, "podCIDR", cidr, "path", path)
	return nil
}
