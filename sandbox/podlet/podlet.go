package podlet

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2"
)

// Config configures a Podlet. Network, Servers and Volumes are the seams tests (and
// stage 2's CSI) replace.
type Config struct {
	Node     NodeInfo
	Client   kubernetes.Interface
	Recorder record.EventRecorder
	Network  Network
	Servers  Servers
	Volumes  Volumes
	// PodsDir holds the sandbox records.
	PodsDir string
	// NetnsPrefix starts the name of every pod namespace ("<prefix>pod-<uid>").
	NetnsPrefix string
	// HeartbeatInterval is how often the Lease is renewed and the status posted (10s).
	HeartbeatInterval time.Duration
	// GCInterval is how often sandboxes of pods the API no longer has are removed (30s).
	GCInterval time.Duration
	// VolumePoll is how soon a pod waiting for its volumes (a binding, an attach, a
	// detach) is looked at again (500ms).
	VolumePoll time.Duration
	// Now replaces time.Now (tests).
	Now func() time.Time
}

// Podlet is the kubelet stand-in of one node.
type Podlet struct {
	cfg     Config
	records records
	queue   workqueue.TypedRateLimitingInterface[string]
	lister  corelisters.PodLister

	registered atomic.Bool
	synced     atomic.Bool

	mu     sync.Mutex
	local  map[string]*Sandbox // by pod UID
	warned map[string]bool     // uid/reason: each Warning is posted once per pod
}

// New checks cfg and builds a Podlet.
func New(cfg Config) (*Podlet, error) {
	switch {
	case cfg.Node.Name == "" || cfg.Node.IP == "":
		return nil, errors.New("podlet: node name and IP are required")
	case cfg.Client == nil || cfg.Network == nil || cfg.Servers == nil:
		return nil, errors.New("podlet: client, network and servers are required")
	case cfg.PodsDir == "" || cfg.NetnsPrefix == "":
		return nil, errors.New("podlet: pods dir and netns prefix are required")
	}
	if cfg.Volumes == nil {
		cfg.Volumes = NoVolumes{}
	}
	if cfg.Recorder == nil {
		cfg.Recorder = &record.FakeRecorder{}
	}
	if cfg.HeartbeatInterval == 0 {
		cfg.HeartbeatInterval = HeartbeatInterval
	}
	if cfg.GCInterval == 0 {
		cfg.GCInterval = 30 * time.Second
	}
	if cfg.VolumePoll == 0 {
		cfg.VolumePoll = 500 * time.Millisecond
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Podlet{
		cfg:     cfg,
		records: records{dir: cfg.PodsDir},
		queue:   workqueue.NewTypedRateLimitingQueue(workqueue.DefaultTypedControllerRateLimiter[string]()),
		local:   map[string]*Sandbox{},
		warned:  map[string]bool{},
	}, nil
}

// Healthy reports nil once the Node is registered and the pod cache has synced.
func (p *Podlet) Healthy() error {
	if !p.registered.Load() {
		return errors.New("node not registered yet")
	}
	if !p.synced.Load() {
		return errors.New("pod cache not synced yet")
	}
	return nil
}

// Run registers the node, adopts the sandboxes a previous run left, and serves the
// node's pods until ctx ends. The sandboxes stay when it returns: the pods keep their
// namespaces and addresses across a podlet restart (their servers come back with it).
func (p *Podlet) Run(ctx context.Context) error {
	defer p.queue.ShutDown()
	n := p.cfg.Node
	if err := wait.PollUntilContextCancel(ctx, time.Second, true, func(ctx context.Context) (bool, error) {
		if err := registerNode(ctx, p.cfg.Client, n, p.cfg.Network.Ready(), p.cfg.Now()); err != nil {
			klog.ErrorS(err, "Registering the node; retrying", "node", n.Name)
			return false, nil
		}
		return true, nil
	}); err != nil {
		return fmt.Errorf("node %s: register: %w", n.Name, err)
	}
	klog.InfoS("Node registered", "node", n.Name, "ip", n.IP)
	p.registered.Store(true)
	if r, ok := p.cfg.Volumes.(interface{ Register(context.Context) error }); ok {
		go p.registerPlugin(ctx, r)
	}

	p.adopt(ctx)

	factory := informers.NewSharedInformerFactoryWithOptions(p.cfg.Client, 0,
		informers.WithTweakListOptions(func(o *metav1.ListOptions) { o.FieldSelector = "spec.nodeName=" + n.Name }))
	inf := factory.Core().V1().Pods()
	p.lister = inf.Lister()
	enqueue := func(obj any) {
		if key, err := cache.DeletionHandlingMetaNamespaceKeyFunc(obj); err == nil {
			p.queue.Add(key)
		}
	}
	if _, err := inf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    enqueue,
		UpdateFunc: func(_, obj any) { enqueue(obj) },
		DeleteFunc: enqueue,
	}); err != nil {
		return err
	}
	factory.Start(ctx.Done())
	if !cache.WaitForCacheSync(ctx.Done(), inf.Informer().HasSynced) {
		return ctx.Err()
	}
	p.synced.Store(true)
	klog.InfoS("Serving pods", "node", n.Name)

	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for p.processNext(ctx) {
			}
		}()
	}
	wg.Add(2)
	go func() { defer wg.Done(); p.heartbeat(ctx) }()
	go func() {
		defer wg.Done()
		wait.UntilWithContext(ctx, p.gc, p.cfg.GCInterval)
	}()
	<-ctx.Done()
	p.queue.ShutDown()
	wg.Wait()
	return nil
}

// registerPlugin registers the CSI node plugin as soon as it answers, and again every
// minute, which repairs a CSINode or annotation someone changed.
func (p *Podlet) registerPlugin(ctx context.Context, r interface{ Register(context.Context) error }) {
	interval, done := 500*time.Millisecond, false
	for {
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := r.Register(cctx)
		cancel()
		switch {
		case err == nil && !done:
			klog.InfoS("CSI node plugin registered", "node", p.cfg.Node.Name)
			done, interval = true, time.Minute
		case err != nil && ctx.Err() == nil:
			klog.V(2).InfoS("Registering the CSI node plugin; retrying", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(interval):
		}
	}
}

// heartbeat renews the Lease and posts status every interval, and at once when the
// network becomes ready (or stops being), so a node turns Ready as soon as its CNI
// config appears.
func (p *Podlet) heartbeat(ctx context.Context) {
	n := p.cfg.Node
	last := p.cfg.Network.Ready() == nil
	tick := time.NewTicker(p.cfg.HeartbeatInterval)
	defer tick.Stop()
	probe := time.NewTicker(250 * time.Millisecond)
	defer probe.Stop()
	// The first Lease right away: kube-node-lease may not exist for a moment after the
	// apiserver starts serving, so retry quickly rather than at the next heartbeat.
	_ = wait.PollUntilContextCancel(ctx, 500*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		err := renewLease(ctx, p.cfg.Client, n, p.cfg.Now())
		if err != nil {
			klog.V(2).InfoS("Creating the lease; retrying", "err", err)
		}
		return err == nil, nil
	})
	beat := func() {
		ready := p.cfg.Network.Ready()
		last = ready == nil
		if err := renewLease(ctx, p.cfg.Client, n, p.cfg.Now()); err != nil && ctx.Err() == nil {
			klog.ErrorS(err, "Renewing the lease")
		}
		if err := postStatus(ctx, p.cfg.Client, n, ready, p.cfg.Now()); err != nil && ctx.Err() == nil {
			klog.ErrorS(err, "Posting node status")
		}
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			beat()
		case <-probe.C:
			if (p.cfg.Network.Ready() == nil) != last {
				beat()
			}
		}
	}
}

func (p *Podlet) processNext(ctx context.Context) bool {
	key, quit := p.queue.Get()
	if quit {
		return false
	}
	defer p.queue.Done(key)
	if err := p.sync(ctx, key); err != nil {
		klog.ErrorS(err, "Syncing pod; retrying", "pod", key)
		p.queue.AddRateLimited(key)
		return true
	}
	p.queue.Forget(key)
	return true
}

// adopt takes over the sandboxes a previous podlet made: a namespace that is still there
// gets its servers back; a record without its namespace is cleaned up.
func (p *Podlet) adopt(ctx context.Context) {
	list, err := p.records.list()
	if err != nil {
		klog.ErrorS(err, "Reading sandbox records", "dir", p.cfg.PodsDir)
		return
	}
	for _, sb := range list {
		if sb.IP == "" || !p.cfg.Network.Exists(sb) {
			klog.InfoS("Removing a sandbox a previous run did not finish", "pod", sb.Namespace+"/"+sb.Name, "netns", sb.Netns)
			p.destroy(ctx, sb)
			continue
		}
		if err := p.cfg.Servers.Start(sb, sb.Name); err != nil {
			klog.ErrorS(err, "Restarting the server of an adopted sandbox", "pod", sb.Namespace+"/"+sb.Name)
		}
		p.mu.Lock()
		p.local[sb.UID] = sb
		p.mu.Unlock()
		klog.InfoS("Adopted sandbox", "pod", sb.Namespace+"/"+sb.Name, "ip", sb.IP)
	}
}

// gc removes sandboxes whose pod the API no longer has (a force delete while the podlet
// was down, a delete event it missed).
func (p *Podlet) gc(ctx context.Context) {
	p.mu.Lock()
	var stale []*Sandbox
	for uid, sb := range p.local {
		pod, err := p.lister.Pods(sb.Namespace).Get(sb.Name)
		if err != nil || string(pod.UID) != uid {
			stale = append(stale, sb)
		}
	}
	p.mu.Unlock()
	for _, sb := range stale {
		_ = p.teardown(ctx, sb.UID)
	}
	// Volumes of pods whose sandbox is gone already (a crash between the two).
	if known, ok := p.cfg.Volumes.(interface{ UIDs() []string }); ok {
		for _, uid := range known.UIDs() {
			p.mu.Lock()
			_, local := p.local[uid]
			p.mu.Unlock()
			if local || p.podExists(uid) {
				continue
			}
			if err := p.cfg.Volumes.Release(ctx, uid); err != nil && !isPending(err) {
				klog.ErrorS(err, "Releasing the volumes of a pod that is gone", "uid", uid)
			}
		}
	}
}

// podExists reports whether the pod cache holds a pod with uid on this node.
func (p *Podlet) podExists(uid string) bool {
	pods, err := p.lister.List(labels.Everything())
	if err != nil {
		return true // unsure: keep its volumes
	}
	for _, pod := range pods {
		if string(pod.UID) == uid {
			return true
		}
	}
	return false
}

func (p *Podlet) sync(ctx context.Context, key string) error {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return nil
	}
	pod, err := p.lister.Pods(ns).Get(name)
	if apierrors.IsNotFound(err) || (err == nil && pod.Spec.NodeName != p.cfg.Node.Name) {
		var errs []error
		for _, uid := range p.uidsOf(ns, name, "") {
			if err := p.teardown(ctx, uid); err != nil && !isPending(err) {
				errs = append(errs, err)
			}
		}
		return errors.Join(errs...)
	}
	if err != nil {
		return err
	}
	// A sandbox of an older pod of the same name goes first.
	for _, uid := range p.uidsOf(ns, name, string(pod.UID)) {
		_ = p.teardown(ctx, uid)
	}
	if pod.DeletionTimestamp != nil {
		return p.finalize(ctx, pod)
	}
	if pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
		return nil
	}
	if ok, why := Runnable(pod); !ok {
		p.warnOnce(pod, ReasonUnsupported, why)
		return nil
	}
	mounts, err := p.cfg.Volumes.Prepare(ctx, pod)
	if err != nil {
		if reason := reasonOf(err); reason != "" {
			p.warnOnce(pod, reason, err.Error())
		}
		switch {
		case errors.Is(err, ErrVolumeUnsupported):
			return nil // nothing will change until the pod does
		case isPending(err):
			// Someone else's move (the claim's binding, the attacher): look again soon,
			// without the growing backoff of a failure.
			klog.V(2).InfoS("Waiting for volumes", "pod", key, "waiting", err.Error())
			p.queue.AddAfter(key, p.cfg.VolumePoll)
			return nil
		}
		return err
	}
	sb, err := p.ensureSandbox(ctx, pod, mounts)
	if err != nil {
		p.cfg.Recorder.Event(pod, corev1.EventTypeWarning, ReasonSandboxFailed, err.Error())
		return err
	}
	want := RunningStatus(pod, sb.IP, p.cfg.Node.IP, sb.Created)
	if statusEqual(pod.Status, want) {
		return nil
	}
	update := pod.DeepCopy()
	update.Status = want
	if _, err := p.cfg.Client.CoreV1().Pods(ns).UpdateStatus(ctx, update, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("pod %s: update status: %w", key, err)
	}
	klog.InfoS("Pod running", "pod", key, "ip", sb.IP)
	return nil
}

func (p *Podlet) ensureSandbox(ctx context.Context, pod *corev1.Pod, mounts []Mount) (*Sandbox, error) {
	uid := string(pod.UID)
	p.mu.Lock()
	sb := p.local[uid]
	p.mu.Unlock()
	if sb != nil {
		return sb, nil
	}
	sb = &Sandbox{
		UID: uid, Namespace: pod.Namespace, Name: pod.Name,
		Netns: p.cfg.NetnsPrefix + "pod-" + uid, ContainerID: "podlet-" + uid,
		Ports: Ports(pod), Mounts: mounts, Created: p.cfg.Now(),
	}
	// Recorded before anything exists, so a crash in between leaves nothing unknown.
	if err := p.records.save(sb); err != nil {
		return nil, err
	}
	if err := p.cfg.Network.Setup(ctx, sb); err != nil {
		_ = p.records.remove(uid)
		return nil, err
	}
	if err := p.records.save(sb); err != nil {
		p.destroy(ctx, sb)
		return nil, err
	}
	if err := p.cfg.Servers.Start(sb, pod.Name); err != nil {
		p.destroy(ctx, sb)
		return nil, err
	}
	p.mu.Lock()
	p.local[uid] = sb
	p.mu.Unlock()
	ports := make([]string, 0, len(sb.Ports))
	for _, pt := range sb.Ports {
		ports = append(ports, fmt.Sprintf("%d/%s", pt.Port, pt.Protocol))
	}
	p.cfg.Recorder.Eventf(pod, corev1.EventTypeNormal, ReasonStarted, "Started the sandbox's echo server at %s on %s", sb.IP, strings.Join(ports, ", "))
	return sb, nil
}

// finalize stops a deleted pod and removes its object, as the kubelet does once the
// containers are gone.
func (p *Podlet) finalize(ctx context.Context, pod *corev1.Pod) error {
	if err := p.teardown(ctx, string(pod.UID)); err != nil {
		// The pod stays terminating until its volumes are released, as with a kubelet.
		if isPending(err) {
			klog.V(2).InfoS("Waiting for volumes to be released", "pod", pod.Namespace+"/"+pod.Name, "waiting", err.Error())
			p.queue.AddAfter(pod.Namespace+"/"+pod.Name, p.cfg.VolumePoll)
			return nil
		}
		return fmt.Errorf("pod %s/%s: release volumes: %w", pod.Namespace, pod.Name, err)
	}
	zero := int64(0)
	err := p.cfg.Client.CoreV1().Pods(pod.Namespace).Delete(ctx, pod.Name, metav1.DeleteOptions{
		GracePeriodSeconds: &zero,
		Preconditions:      &metav1.Preconditions{UID: &pod.UID},
	})
	if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
		return fmt.Errorf("pod %s/%s: delete: %w", pod.Namespace, pod.Name, err)
	}
	klog.InfoS("Pod deleted", "pod", pod.Namespace+"/"+pod.Name)
	return nil
}

// teardown stops the pod's sandbox and releases its volumes; the error is Release's.
func (p *Podlet) teardown(ctx context.Context, uid string) error {
	p.mu.Lock()
	sb := p.local[uid]
	delete(p.local, uid)
	for k := range p.warned {
		if strings.HasPrefix(k, uid+"/") {
			delete(p.warned, k)
		}
	}
	p.mu.Unlock()
	if sb != nil {
		p.destroy(ctx, sb)
	}
	if err := p.cfg.Volumes.Release(ctx, uid); err != nil {
		if !isPending(err) {
			klog.ErrorS(err, "Releasing volumes", "uid", uid)
		}
		return err
	}
	return nil
}

// destroy stops the server, runs CNI DEL, removes the namespace and the record. A
// failure keeps the record, so the next start (or `stratus down`) still finds it.
func (p *Podlet) destroy(ctx context.Context, sb *Sandbox) {
	p.cfg.Servers.Stop(sb.UID)
	if err := p.cfg.Network.Teardown(ctx, sb); err != nil {
		klog.ErrorS(err, "Tearing down sandbox", "pod", sb.Namespace+"/"+sb.Name)
		return
	}
	if err := p.records.remove(sb.UID); err != nil {
		klog.ErrorS(err, "Removing sandbox record", "pod", sb.Namespace+"/"+sb.Name)
	}
	klog.InfoS("Sandbox removed", "pod", sb.Namespace+"/"+sb.Name, "netns", sb.Netns)
}

// uidsOf lists the local sandboxes of namespace/name, except the one with keep.
func (p *Podlet) uidsOf(ns, name, keep string) []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []string
	for uid, sb := range p.local {
		if sb.Namespace == ns && sb.Name == name && uid != keep {
			out = append(out, uid)
		}
	}
	return out
}

// warnOnce posts each distinct Warning of a pod once.
func (p *Podlet) warnOnce(pod *corev1.Pod, reason, msg string) {
	k := string(pod.UID) + "/" + reason + "/" + msg
	p.mu.Lock()
	seen := p.warned[k]
	p.warned[k] = true
	p.mu.Unlock()
	if !seen {
		p.cfg.Recorder.Event(pod, corev1.EventTypeWarning, reason, msg)
		klog.InfoS("Pod not run", "pod", pod.Namespace+"/"+pod.Name, "reason", reason, "message", msg)
	}
}
