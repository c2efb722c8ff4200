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
// devices when attached to a local instance. The disk half needs root.
type DataPlane struct {
	// DiskDevRoot is where attached disks appear as disk/by-id/virtio-<id> (default /dev).
	// "{instanceId}" in it gives every local instance its own device tree.
	DiskDevRoot string
	// LoopbackPool is where listeners bind (default 127.240.0.0/16).
	LoopbackPool netip.Prefix
	// PublicPool is where public load balancers get their VIPs (default 198.18.0.0/16). A
	// loopback prefix outside LoopbackPool (127.241.0.0/24, say) makes each public VIP
	// answer on this machine at the very address the API and a Service's EXTERNAL-IP show.
	PublicPool netip.Prefix
	// TargetMap translates target private IPs onto loopback (10.0.0.0/16 -> 127.10.0.0/16
	// sends 10.0.1.11's traffic to 127.10.1.11); keep it clear of LoopbackPool.
	TargetMap []clb.PrefixMap
}

// dataPlaneModules is the module list with both data planes on.
func dataPlaneModules(dataDir string, dp DataPlane) ([]func(*api.World) api.Module, error) {
	if dataDir == "" {
		return nil, errors.New("the data plane needs a data dir for disk images")
	}
	lbOpts := clb.Options{DataPlane: true, LoopbackPool: dp.LoopbackPool, PublicPool: dp.PublicPool, TargetMap: dp.TargetMap}
	if err := lbOpts.Validate(); err != nil {
		return nil, fmt.Errorf("load balancer data plane: %w", err)
	}
	return []func(*api.World) api.Module{
		vpc.New,
		cvm.New,
		clb.WithOptions(lbOpts),
		cbs.WithOptions(cbs.Options{DataPlane: &cbsdp.Options{DataDir: dataDir, DevRoot: dp.DiskDevRoot}}),
	}, nil
}
