package qcloud

import (
	"context"
	"encoding/json"
	"fmt"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"

	"github.com/stratus-cloud/stratus/cloudapi"
	"github.com/stratus-cloud/stratus/cloudapi/clb"
	"github.com/stratus-cloud/stratus/cloudapi/vpc"
	"github.com/stratus-cloud/stratus/cloudprovider/clbbackend"
	"github.com/stratus-cloud/stratus/cloudprovider/providerid"
	"github.com/stratus-cloud/stratus/loadbalancer"
)

// lbSettings are the engine settings of this cloud, with the cloud-config's defaults.
func lbSettings(cfg *Config) loadbalancer.Settings {
	s := clbbackend.Settings(cfg.ClusterID)
	if cfg.LoadBalancer.DefaultMode == ModeVIP {
		s.DefaultMode = loadbalancer.ModeVIP
	}
	s.DefaultInternalSubnet = cfg.LoadBalancer.InternalSubnetID
	return s
}

// newLoadBalancer builds the engine on backend (the CLB adapter when nil).
func (c *Cloud) newLoadBalancer(client *cloudapi.Client, backend loadbalancer.Backend) error {
	if backend == nil {
		b, err := clbbackend.New(clbbackend.Config{CLB: clb.New(client), VPC: vpc.New(client), ClusterID: c.cfg.ClusterID, VpcID: c.cfg.VpcID})
		if err != nil {
			return fmt.Errorf("qcloud: load balancer backend: %w", err)
		}
		backend = b
	}
	engine, err := loadbalancer.New(loadbalancer.Config{
		Settings:    lbSettings(c.cfg),
		Backend:     backend,
		NodeID:      nodeInstanceID,
		CacheMaxAge: c.cfg.LBCacheMaxAge(),
		RecordID:    c.recordLoadBalancerID,
	})
	if err != nil {
		return fmt.Errorf("qcloud: load balancer engine: %w", err)
	}
	c.lb = engine
	return nil
}

// nodeInstanceID is the instance of a node with a qcloud providerID.
func nodeInstanceID(n *v1.Node) (string, bool) {
	if n.Spec.ProviderID == "" {
		return "", false
	}
	id, err := providerid.Parse(n.Spec.ProviderID)
	if err != nil {
		return "", false
	}
	return id.InstanceID, true
}

// recordLoadBalancerID writes the read-only annotation TKE users look for, with a merge
// patch that touches nothing else.
func (c *Cloud) recordLoadBalancerID(ctx context.Context, svc *v1.Service, id string) error {
	c.kubeMu.Lock()
	client := c.kube
	c.kubeMu.Unlock()
	if client == nil {
		return nil // no Kubernetes client (tests, benchmarks): nothing to record
	}
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": map[string]string{loadbalancer.AnnotationLoadBalancerID: id}}})
	if err != nil {
		return err
	}
	_, err = client.CoreV1().Services(svc.Namespace).Patch(ctx, svc.Name, types.MergePatchType, patch, metav1.PatchOptions{})
	return err
}

// setLBInformers gives the load balancer engine the Service's ready endpoints per node,
// for TKE's Local annotations, and re-syncs those Services when their endpoints move.
func (c *Cloud) setLBInformers(factory informers.SharedInformerFactory) {
	if c.lb == nil {
		return
	}
	c.lb.SetEndpoints(loadbalancer.EndpointCounter(factory.Discovery().V1().EndpointSlices().Lister()))
	w, err := c.lb.WatchEndpoints(factory)
	if err != nil {
		klog.ErrorS(err, "Load balancers will not follow endpoint changes")
		return
	}
	c.kubeMu.Lock()
	stop := c.stop
	c.kubeMu.Unlock()
	// The watcher ends with the provider (Stop, or the manager's stop channel).
	ctx, cancel := context.WithCancel(c.life.ctx)
	c.onStop(stop, cancel)
	c.life.wg.Add(1)
	go func() {
		defer c.life.wg.Done()
		w.Run(ctx, 2)
	}()
}

func (c *Cloud) setKube(client kubernetes.Interface) {
	c.kubeMu.Lock()
	defer c.kubeMu.Unlock()
	c.kube = client
}
