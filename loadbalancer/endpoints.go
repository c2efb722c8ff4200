package loadbalancer

import (
	"context"
	"fmt"
	"strconv"
	"time"

	v1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/labels"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/informers"
	corelisters "k8s.io/client-go/listers/core/v1"
	discoverylisters "k8s.io/client-go/listers/discovery/v1"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2"
)

// CountReadyEndpoints counts the ready endpoints of a Service's EndpointSlices per node.
// An endpoint listed in two slices (while they are being rebalanced) counts once.
func CountReadyEndpoints(slices []*discoveryv1.EndpointSlice) map[string]int {
	out := map[string]int{}
	seen := map[string]bool{}
	for _, s := range slices {
		for _, ep := range s.Endpoints {
			if ep.NodeName == nil || len(ep.Addresses) == 0 || (ep.Conditions.Ready != nil && !*ep.Conditions.Ready) {
				continue
			}
			id := string(s.AddressType) + "/" + ep.Addresses[0]
			if seen[id] {
				continue
			}
			seen[id] = true
			out[*ep.NodeName]++
		}
	}
	return out
}

// EndpointCounter is a Config.Endpoints reading the Service's EndpointSlices from lister.
func EndpointCounter(lister discoverylisters.EndpointSliceLister) func(*v1.Service) (map[string]int, error) {
	return func(svc *v1.Service) (map[string]int, error) {
		sel := labels.SelectorFromSet(labels.Set{discoveryv1.LabelServiceName: svc.Name})
		slices, err := lister.EndpointSlices(svc.Namespace).List(sel)
		if err != nil {
			return nil, fmt.Errorf("list EndpointSlices of %s/%s: %w", svc.Namespace, svc.Name, err)
		}
		return CountReadyEndpoints(slices), nil
	}
}

// EndpointWatcher re-syncs the load balancers whose targets follow their Service's
// endpoints (NeedsEndpoints): the service controller reacts to Service and Node changes
// only, so without this a pod moving to another node would never move the targets.
type EndpointWatcher struct {
	engine   *Engine
	services corelisters.ServiceLister
	nodes    corelisters.NodeLister
	synced   []toolscache.InformerSynced
	queue    workqueue.TypedRateLimitingInterface[string]
}

// WatchEndpoints registers the EndpointSlice, Service and Node informers it needs with
// factory (so that the factory starts them) and returns the watcher; Run processes it.
func (e *Engine) WatchEndpoints(factory informers.SharedInformerFactory) (*EndpointWatcher, error) {
	slices := factory.Discovery().V1().EndpointSlices()
	svcs := factory.Core().V1().Services()
	nodes := factory.Core().V1().Nodes()
	w := &EndpointWatcher{
		engine: e, services: svcs.Lister(), nodes: nodes.Lister(),
		synced: []toolscache.InformerSynced{slices.Informer().HasSynced, svcs.Informer().HasSynced, nodes.Informer().HasSynced},
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(
			workqueue.NewTypedItemExponentialFailureRateLimiter[string](time.Second, 5*time.Minute),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "stratus-lb-endpoints"}),
	}
	enqueue := func(obj any) {
		if t, ok := obj.(toolscache.DeletedFinalStateUnknown); ok {
			obj = t.Obj
		}
		s, ok := obj.(*discoveryv1.EndpointSlice)
		if !ok || s.Labels[discoveryv1.LabelServiceName] == "" {
			return
		}
		w.queue.Add(s.Namespace + "/" + s.Labels[discoveryv1.LabelServiceName])
	}
	if _, err := slices.Informer().AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc:    enqueue,
		UpdateFunc: func(_, cur any) { enqueue(cur) },
		DeleteFunc: enqueue,
	}); err != nil {
		return nil, fmt.Errorf("watch EndpointSlices: %w", err)
	}
	return w, nil
}

// Run processes endpoint changes with workers goroutines until ctx ends.
func (w *EndpointWatcher) Run(ctx context.Context, workers int) {
	defer utilruntime.HandleCrash()
	defer w.queue.ShutDown()
	if !toolscache.WaitForNamedCacheSync("stratus-lb-endpoints", ctx.Done(), w.synced...) {
		return
	}
	for range max(workers, 1) {
		go wait.UntilWithContext(ctx, func(ctx context.Context) {
			for w.next(ctx) {
			}
		}, time.Second)
	}
	<-ctx.Done()
}

func (w *EndpointWatcher) next(ctx context.Context) bool {
	k, quit := w.queue.Get()
	if quit {
		return false
	}
	defer w.queue.Done(k)
	if err := w.sync(ctx, k); err != nil {
		klog.ErrorS(err, "Re-syncing a load balancer after an endpoint change failed; retrying", "service", k)
		w.queue.AddRateLimited(k)
		return true
	}
	w.queue.Forget(k)
	return true
}

func (w *EndpointWatcher) sync(ctx context.Context, k string) error {
	ns, name, err := toolscache.SplitMetaNamespaceKey(k)
	if err != nil {
		return err
	}
	svc, err := w.services.Services(ns).Get(name)
	if err != nil {
		return nil // gone: the service controller cleans up
	}
	if svc.Spec.Type != v1.ServiceTypeLoadBalancer || svc.Spec.LoadBalancerClass != nil || svc.DeletionTimestamp != nil || !NeedsEndpoints(svc) {
		return nil
	}
	all, err := w.nodes.List(labels.Everything())
	if err != nil {
		return err
	}
	err = w.engine.UpdateLoadBalancer(ctx, "", svc.DeepCopy(), candidateNodes(all))
	if err != nil && !isNoLoadBalancer(err) {
		return err
	}
	return nil
}

// candidateNodes applies the service controller's own node predicates: not being
// deleted, not excluded from load balancers, not about to be removed by the autoscaler.
func candidateNodes(nodes []*v1.Node) []*v1.Node {
	var out []*v1.Node
	for _, n := range nodes {
		if !n.DeletionTimestamp.IsZero() {
			continue
		}
		if v, ok := n.Labels[v1.LabelNodeExcludeBalancers]; ok {
			if b, err := strconv.ParseBool(v); err != nil || b {
				continue
			}
		}
		tainted := false
		for _, t := range n.Spec.Taints {
			if t.Key == "ToBeDeletedByClusterAutoscaler" {
				tainted = true
			}
		}
		if !tainted {
			out = append(out, n)
		}
	}
	return out
}
