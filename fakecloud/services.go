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

// Delays are the built-in services' state-machine delays (each service owns its type).
type Delays struct {
	CVM cvm.Delays
	CBS cbs.Delays
	CLB clb.Delays
}

// seedDelays reads each service's delay section from the seed.
func seedDelays(seed *api.Seed) (Delays, error) {
	var d Delays
	var err error
	if d.CVM, _, err = cvm.SeedDelays(seed); err != nil {
		return d, err
	}
	if d.CBS, _, err = cbs.SeedDelays(seed); err != nil {
		return d, err
	}
	d.CLB, _, err = clb.SeedDelays(seed)
	return d, err
}

// builtinModules are the services fakecloud serves, in dependency order (a module may
// read the tables of the ones before it, and its seed is imported after theirs), with
// their delays (the seed's, or cfg's when set) and data planes.
func builtinModules(cfg Config, seed *api.Seed) ([]api.NewModule, error) {
	d, err := seedDelays(seed)
	if err != nil {
		return nil, err
	}
	if cfg.Delays != nil {
		d = *cfg.Delays
	}
	lbOpts := clb.Options{Delays: d.CLB}
	newVPC := vpc.New
	cbsOpts := cbs.Options{Delays: d.CBS}
	if dp := cfg.DataPlane; dp != nil {
		if cfg.DataDir == "" {
			return nil, errors.New("the data plane needs a data dir for disk images")
		}
		lbOpts.DataPlane, lbOpts.LoopbackPool, lbOpts.PublicPool, lbOpts.TargetMap = true, dp.LoopbackPool, dp.PublicPool, dp.TargetMap
		if err := lbOpts.Validate(); err != nil {
			return nil, fmt.Errorf("load balancer data plane: %w", err)
		}
		cbsOpts.DataPlane = &cbsdp.Options{DataDir: cfg.DataDir, DevRoot: dp.DiskDevRoot}
		if len(dp.VPCRouters) > 0 {
			rp, err := routerplane.New(routerplane.Options{Routers: dp.VPCRouters})
			if err != nil {
				return nil, fmt.Errorf("VPC router data plane: %w", err)
			}
			newVPC = vpc.WithOptions(vpc.Options{Router: rp})
			lbOpts.VIPRouter = rp
		}
	}
	return []api.NewModule{
		newVPC,
		cvm.WithOptions(cvm.Options{Delays: d.CVM}),
		clb.WithOptions(lbOpts),
		cbs.WithOptions(cbsOpts),
	}, nil
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
	// PublicPool is where public load balancers get their VIPs (default 198.18.0.0/16). A
	// loopback prefix outside LoopbackPool (127.241.0.0/24, say) makes each public VIP
	// answer on this machine at the very address the API and a Service's EXTERNAL-IP show.
	PublicPool netip.Prefix
	// TargetMap translates target private IPs onto loopback (10.0.0.0/16 -> 127.10.0.0/16
	// sends 10.0.1.11's traffic to 127.10.1.11); keep it clear of LoopbackPool.
	TargetMap []clb.PrefixMap
	// VPCRouters maps a VPC ID to a network namespace (a path, or a name under
	// /run/netns) that plays the VPC's router: its route tables become kernel routes
	// there (package routerplane; needs root). Empty: routes stay API state only.
	VPCRouters map[string]string
}
