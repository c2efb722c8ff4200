package fakecloud

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/stratus-cloud/stratus/fakecloud/api"
	"github.com/stratus-cloud/stratus/fakecloud/cbs"
	cbsdp "github.com/stratus-cloud/stratus/fakecloud/cbs/dataplane"
	"github.com/stratus-cloud/stratus/fakecloud/clb"
	"github.com/stratus-cloud/stratus/fakecloud/cvm"
	"github.com/stratus-cloud/stratus/fakecloud/vpc"
	"github.com/stratus-cloud/stratus/fakecloud/vpc/routerplane"
)

// modules are the services fakecloud serves, in dependency order (a module may read the
// tables of the ones before it, and its seed is imported after theirs).
var modules = []func(w *api.World) api.Module{
	vpc.New,
	cvm.New,
	clb.New,
	cbs.New,
}

// DataPlane makes the simulated resources real on this machine: CLB listeners bind
// loopback addresses and proxy to their targets, CBS disks are image files bound to loop
// devices when attached to a local instance, and route tables become kernel routes in a
// VPC's router namespace when one is given. The disk and router halves need root.
type DataPlane struct {
	// DiskDevRoot is where attached disks appear as disk/by-id/virtio-<id> (default /dev).
	// "{instanceId}" in it gives every local instance its own device tree.
	DiskDevRoot string
	// LoopbackPool is where listeners bind (default 127.240.0.0/16).
	LoopbackPool netip.Prefix
	// TargetMap translates target private IPs onto loopback (10.0.0.0/16 -> 127.10.0.0/16
	// sends 10.0.1.11's traffic to 127.10.1.11); keep it clear of LoopbackPool.
	TargetMap []clb.PrefixMap
	// VPCRouters maps a VPC ID to a network namespace (a path, or a name under
	// /run/netns) that plays the VPC's router: its route tables become kernel routes
	// there (package routerplane; needs root). Empty: routes stay API state only.
	VPCRouters map[string]string
}

// dataPlaneModules is the module list with both data planes on.
func dataPlaneModules(dataDir string, dp DataPlane) ([]func(*api.World) api.Module, error) {
	if dataDir == "" {
		return nil, errors.New("the data plane needs a data dir for disk images")
	}
	lbOpts := clb.Options{DataPlane: true, LoopbackPool: dp.LoopbackPool, TargetMap: dp.TargetMap}
	if err := lbOpts.Validate(); err != nil {
		return nil, fmt.Errorf("load balancer data plane: %w", err)
	}
	newVPC := vpc.New
	if len(dp.VPCRouters) > 0 {
		rp, err := routerplane.New(routerplane.Options{Routers: dp.VPCRouters})
		if err != nil {
			return nil, fmt.Errorf("VPC router data plane: %w", err)
		}
		newVPC = vpc.WithOptions(vpc.Options{Router: rp})
	}
	return []func(*api.World) api.Module{
		newVPC,
		cvm.New,
		clb.WithOptions(lbOpts),
		cbs.WithOptions(cbs.Options{DataPlane: &cbsdp.Options{DataDir: dataDir, DevRoot: dp.DiskDevRoot}}),
	}, nil
}
