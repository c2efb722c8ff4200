package qcloud

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	cloudprovider "k8s.io/cloud-provider"
	"k8s.io/klog/v2"

	"github.com/stratus-cloud/stratus/cloudapi"
	"github.com/stratus-cloud/stratus/cloudapi/vpc"
	"github.com/stratus-cloud/stratus/cloudprovider/instancelookup"
	"github.com/stratus-cloud/stratus/cloudprovider/vpcroutes"
	"github.com/stratus-cloud/stratus/routes"
)

// resolveTimeout bounds the route table discovery Routes() does at start.
const resolveTimeout = 30 * time.Second

// podRoutes is the routes engine bound to the VPC route table of the cloud-config.
type podRoutes struct {
	table  *vpcroutes.Table
	engine *routes.Engine
	once   sync.Once
}

func newPodRoutes(cfg *Config, client *cloudapi.Client, lookup *instancelookup.Lookup) (*podRoutes, error) {
	table, err := vpcroutes.New(vpc.New(client), vpcroutes.Config{
		VpcID: cfg.VpcID, ClusterID: cfg.ClusterID, RouteTableID: cfg.RouteTableID,
		Instances: lookupStates{lookup},
	})
	if err != nil {
		return nil, fmt.Errorf("qcloud: routes: %w", err)
	}
	engine, err := routes.New(routes.Config{
		ClusterID: cfg.ClusterID, Table: table,
		Batching: cfg.RoutesBatching(), Window: cfg.RoutesBatchWindow(),
	})
	if err != nil {
		return nil, fmt.Errorf("qcloud: routes: %w", err)
	}
	return &podRoutes{table: table, engine: engine}, nil
}

// Routes serves the route controller. The first call finds the route table, so that a
// cloud-config naming none, a missing one, or a VPC with several tagged tables is
// reported when the controller starts; every ListRoutes reports it again (and tries
// again, in case it was a transient failure or the user fixed the tags).
func (c *Cloud) Routes() (cloudprovider.Routes, bool) {
	if c.routes == nil {
		return nil, false
	}
	c.routes.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), resolveTimeout)
		defer cancel()
		id, err := c.routes.table.Resolve(ctx)
		if err != nil {
			klog.ErrorS(err, "Pod routes cannot be managed until the route table is found", "vpc", c.cfg.VpcID, "cluster", c.cfg.ClusterID)
			return
		}
		klog.InfoS("Managing pod routes", "routeTable", id, "vpc", c.cfg.VpcID, "marker", routes.Marker(c.cfg.ClusterID), "batching", c.cfg.RoutesBatching())
	})
	return c.routes.engine, true
}

// setRouteInformers lets the routes engine list Nodes from the shared informers, to
// attribute each route to the node holding its next hop.
func (c *Cloud) setRouteInformers(factory informers.SharedInformerFactory) {
	if c.routes == nil {
		return
	}
	lister := factory.Core().V1().Nodes().Lister()
	c.routes.engine.SetNodeLister(func() ([]*v1.Node, error) { return lister.List(labels.Everything()) })
}

// lookupStates answers the routes adapter from the instance lookups the node controllers
// share (one VPC listing per TTL), so checking a route's next hop costs no call of its own.
// A current answer is a State lookup (listing younger than cacheTTL); otherwise a
// Metadata one (up to metadataMaxAge), so that creating thousands of routes, which
// outlasts cacheTTL, does not list the VPC again and again.
type lookupStates struct{ l *instancelookup.Lookup }

func (s lookupStates) StateByPrivateIP(ctx context.Context, ip string, current bool) (string, error) {
	need := instancelookup.Metadata
	if current {
		need = instancelookup.State
	}
	inst, err := s.l.ByPrivateIP(ctx, ip, need)
	if errors.Is(err, instancelookup.ErrNotFound) {
		return "", vpcroutes.ErrNoInstance
	}
	if err != nil {
		return "", err
	}
	return inst.State, nil
}
