package qcloud

import (
	"fmt"
	"io"
	"sync"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/tools/record"
	cloudprovider "k8s.io/cloud-provider"
	"k8s.io/klog/v2"

	"github.com/stratus-cloud/stratus/cloudapi"
	"github.com/stratus-cloud/stratus/cloudapi/cvm"
	"github.com/stratus-cloud/stratus/cloudprovider/instancelookup"
	"github.com/stratus-cloud/stratus/cloudprovider/metrics"
	"github.com/stratus-cloud/stratus/loadbalancer"
)

// ProviderName is the --cloud-provider value.
const ProviderName = "qcloud"

func init() {
	cloudprovider.RegisterCloudProvider(ProviderName, func(r io.Reader) (cloudprovider.Interface, error) {
		cfg, err := LoadConfig(r)
		if err != nil {
			return nil, err
		}
		return New(cfg, Options{})
	})
}

// Options are the knobs that are not part of the cloud-config file.
type Options struct {
	// Hooks observe every cloud API attempt, after the Prometheus metrics hook.
	Hooks []cloudapi.CallHook
	// API replaces the CVM binding of the instance lookups (tests).
	API instancelookup.API
	// Now replaces the clock of the instance cache (tests).
	Now func() time.Time
	// LoadBalancerBackend replaces the CLB binding of the load balancer engine (tests).
	LoadBalancerBackend loadbalancer.Backend
}

// Cloud is the qcloud provider.
type Cloud struct {
	cfg       *Config
	life      *lifecycle
	lookup    *instancelookup.Lookup
	instances *instances
	zones     *zones
	lb        *loadbalancer.Engine

	kubeMu sync.Mutex
	kube   kubernetes.Interface
	stop   <-chan struct{}
	routes *podRoutes // nil when the provider has no cloud API client (tests with a fake API)
}

var _ cloudprovider.Interface = (*Cloud)(nil)

// New builds the provider from a loaded Config.
func New(cfg *Config, opts Options) (*Cloud, error) {
	client, clientErr := cloudapi.New(cloudapi.Config{
		Endpoint:    cfg.Endpoint,
		Region:      cfg.Region,
		Credentials: cfg.Credentials(),
		RateLimit:   cfg.RateLimit(),
		Hooks:       append([]cloudapi.CallHook{metrics.Hook}, opts.Hooks...),
	})
	api := opts.API
	if api == nil {
		if clientErr != nil {
			return nil, fmt.Errorf("qcloud: cloud API client: %w", clientErr)
		}
		api = cvmAPI{c: cvm.New(client)}
	}
	metrics.Register()
	life := newLifecycle()
	lookup := instancelookup.New(life.ctx, api, instancelookup.Config{
		VpcID:          cfg.VpcID,
		Batching:       cfg.Batching(),
		TTL:            cfg.CacheTTL(),
		MetadataMaxAge: cfg.MetadataMaxAge(),
		Window:         cfg.BatchWindow(),
		Now:            opts.Now,
	})
	c := &Cloud{cfg: cfg, life: life, lookup: lookup}
	c.instances = &instances{lookup: lookup, region: cfg.Region, vpcID: cfg.VpcID}
	c.zones = &zones{instances: c.instances}
	switch {
	case opts.LoadBalancerBackend != nil || clientErr == nil:
		if err := c.newLoadBalancer(client, opts.LoadBalancerBackend); err != nil {
			return nil, err
		}
	default:
		// Only tests inject an instance API without credentials for a real client.
		klog.InfoS("No cloud API client: load balancers are not served", "err", clientErr)
	}
	if clientErr == nil {
		r, err := newPodRoutes(cfg, client, lookup)
		if err != nil {
			return nil, err
		}
		c.routes = r
	}
	// Never log the credentials: only which secret id (its String redacts all but a prefix).
	klog.InfoS("qcloud provider configured", "region", cfg.Region, "vpc", cfg.VpcID, "cluster", cfg.ClusterID,
		"endpoint", cfg.Endpoint, "credentials", cfg.Credentials().String(), "batching", cfg.Batching(),
		"cacheTTL", cfg.CacheTTL(), "metadataMaxAge", cfg.MetadataMaxAge(), "batchWindow", cfg.BatchWindow())
	return c, nil
}

// Initialize gets a client for the events that explain why a node cannot be initialized,
// and for the node lookups of GetZoneByNodeName. When stop closes, the provider stops.
func (c *Cloud) Initialize(clientBuilder cloudprovider.ControllerClientBuilder, stop <-chan struct{}) {
	c.onStop(stop, nil)
	client, err := clientBuilder.Client("qcloud-cloud-provider")
	if err != nil {
		klog.ErrorS(err, "No Kubernetes client for the qcloud provider; node events are not recorded")
		return
	}
	c.SetKubeClient(client, stop)
}

// SetKubeClient is Initialize for callers that already have a client (benchmarks, tests);
// stop closing stops the provider as well.
func (c *Cloud) SetKubeClient(client kubernetes.Interface, stop <-chan struct{}) {
	broadcaster := record.NewBroadcaster()
	broadcaster.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: client.CoreV1().Events("")})
	recorder := broadcaster.NewRecorder(scheme.Scheme, v1.EventSource{Component: "qcloud-cloud-provider"})
	c.instances.setRecorder(recorder)
	c.zones.setClient(client)
	c.setKube(client)
	c.kubeMu.Lock()
	c.stop = stop
	c.kubeMu.Unlock()
	c.onStop(stop, broadcaster.Shutdown)
}

// SetInformers implements cloudprovider.InformerUser: the controller manager hands over
// its shared informers before it starts them; the routes and load balancer engines take
// what they watch from them.
func (c *Cloud) SetInformers(factory informers.SharedInformerFactory) {
	c.setRouteInformers(factory)
	c.setLBInformers(factory)
}

var _ cloudprovider.InformerUser = (*Cloud)(nil)

// Config returns the loaded cloud-config.
func (c *Cloud) Config() *Config { return c.cfg }

// LoadBalancer serves Services of type LoadBalancer with CLB load balancers.
func (c *Cloud) LoadBalancer() (cloudprovider.LoadBalancer, bool) {
	if c.lb == nil {
		return nil, false
	}
	return c.lb, true
}

// Instances is the legacy interface; InstancesV2 replaces it.
func (c *Cloud) Instances() (cloudprovider.Instances, bool) { return nil, false }

// InstancesV2 serves node initialization and lifecycle.
func (c *Cloud) InstancesV2() (cloudprovider.InstancesV2, bool) { return c.instances, true }

// Zones serves GetZoneByProviderID and GetZoneByNodeName (the controllers use InstancesV2).
func (c *Cloud) Zones() (cloudprovider.Zones, bool) { return c.zones, true }

// Clusters is not supported.
func (c *Cloud) Clusters() (cloudprovider.Clusters, bool) { return nil, false }

// ProviderName is "qcloud".
func (c *Cloud) ProviderName() string { return ProviderName }

// HasClusterID is true: clusterId is a required key.
func (c *Cloud) HasClusterID() bool { return c.cfg.ClusterID != "" }
