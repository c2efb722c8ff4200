package qcloud

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"

	v1 "k8s.io/api/core/v1"
	"k8s.io/client-go/tools/record"
	cloudprovider "k8s.io/cloud-provider"
	cloudproviderapi "k8s.io/cloud-provider/api"
	"k8s.io/klog/v2"

	"github.com/stratus-cloud/stratus/cloudapi/cvm"
	"github.com/stratus-cloud/stratus/cloudprovider/instancelookup"
	"github.com/stratus-cloud/stratus/cloudprovider/providerid"
)

// Event reasons the provider records on Nodes.
const (
	// ReasonInstanceNotFound: a node without providerID matches no instance by IP.
	ReasonInstanceNotFound = "InstanceNotFound"
	// ReasonNoInstanceKey: a node has neither a providerID nor an IP to match one by.
	ReasonNoInstanceKey = "NoInstanceKey"
)

// instances implements cloudprovider.InstancesV2.
type instances struct {
	lookup *instancelookup.Lookup
	region string
	vpcID  string

	mu       sync.Mutex
	recorder record.EventRecorder
}

var _ cloudprovider.InstancesV2 = (*instances)(nil)

func (i *instances) setRecorder(r record.EventRecorder) {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.recorder = r
}

func (i *instances) event(node *v1.Node, reason, format string, args ...any) {
	i.mu.Lock()
	r := i.recorder
	i.mu.Unlock()
	if r != nil {
		r.Eventf(node, v1.EventTypeWarning, reason, format, args...)
	}
}

// errNoKey says a node carries nothing to find its instance by.
var errNoKey = errors.New("no providerID and no IP address to match an instance by")

// find returns node's instance: by providerID when the node has one, else by private IP
// (the node name when it is an IP, the kubelet's --node-ip annotation, the InternalIP
// addresses). A miss wraps cloudprovider.InstanceNotFound; any other failure is returned
// as it is, never turned into a miss.
//
// need says whether the caller acts on the instance's state or only reads its metadata,
// which may come from an older listing.
func (i *instances) find(ctx context.Context, node *v1.Node, need instancelookup.Need) (instancelookup.Instance, error) {
	if node.Spec.ProviderID != "" {
		id, err := providerid.Parse(node.Spec.ProviderID)
		if err != nil {
			return instancelookup.Instance{}, fmt.Errorf("node %s: %w", node.Name, err)
		}
		inst, err := i.lookup.ByID(ctx, id.InstanceID, need)
		if errors.Is(err, instancelookup.ErrNotFound) {
			return inst, fmt.Errorf("node %s: instance %s: %w", node.Name, id.InstanceID, cloudprovider.InstanceNotFound)
		}
		if err != nil {
			return inst, fmt.Errorf("node %s: look up instance %s: %w", node.Name, id.InstanceID, err)
		}
		return inst, nil
	}
	ips := nodeIPs(node)
	if len(ips) == 0 {
		return instancelookup.Instance{}, fmt.Errorf("node %s: %w", node.Name, errNoKey)
	}
	for _, ip := range ips {
		inst, err := i.lookup.ByPrivateIP(ctx, ip, need)
		if errors.Is(err, instancelookup.ErrNotFound) {
			continue
		}
		if err != nil {
			return inst, fmt.Errorf("node %s: look up instance with private IP %s: %w", node.Name, ip, err)
		}
		return inst, nil
	}
	return instancelookup.Instance{}, fmt.Errorf("node %s: no instance in VPC %s has private IP %s: %w",
		node.Name, i.vpcID, strings.Join(ips, " or "), cloudprovider.InstanceNotFound)
}

// nodeIPs lists the addresses a node without providerID may be matched by, most specific
// first, without duplicates.
func nodeIPs(node *v1.Node) []string {
	var ips []string
	add := func(s string) {
		s = strings.TrimSpace(s)
		if net.ParseIP(s) == nil {
			return
		}
		for _, have := range ips {
			if have == s {
				return
			}
		}
		ips = append(ips, s)
	}
	add(node.Name)
	for _, s := range strings.Split(node.Annotations[cloudproviderapi.AnnotationAlphaProvidedIPAddr], ",") {
		add(s)
	}
	for _, a := range node.Status.Addresses {
		if a.Type == v1.NodeInternalIP {
			add(a.Address)
		}
	}
	return ips
}

// gone reports an instance state from which an instance never comes back.
func gone(state string) bool {
	return state == cvm.StateTerminating || state == cvm.StateLaunchFailed
}

// InstanceExists is false only for an instance that a query made for this call did not
// find, or found terminating. Errors are returned, never read as "gone", so that a cloud
// outage cannot delete Nodes. A node without providerID that matches no instance is
// reported as existing: it was never tied to an instance, so there is nothing known to be
// gone, and deleting it would hide the reason it is not initialized.
func (i *instances) InstanceExists(ctx context.Context, node *v1.Node) (bool, error) {
	inst, err := i.find(ctx, node, instancelookup.State)
	switch {
	case errors.Is(err, cloudprovider.InstanceNotFound) && node.Spec.ProviderID == "":
		klog.V(2).InfoS("Node matches no instance; not treating it as gone", "node", klog.KObj(node), "err", err)
		return true, nil
	case errors.Is(err, cloudprovider.InstanceNotFound):
		// find looked up by id, and a miss by id always comes from a direct query.
		klog.InfoS("Instance of node is gone", "node", klog.KObj(node), "providerID", node.Spec.ProviderID)
		return false, nil
	case err != nil:
		return false, err
	}
	if !gone(inst.State) {
		return true, nil
	}
	// The listing may be old; only a fresh answer may say "gone".
	fresh, err := i.lookup.ConfirmByID(ctx, inst.ID)
	switch {
	case errors.Is(err, instancelookup.ErrNotFound):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("node %s: confirm instance %s: %w", node.Name, inst.ID, err)
	}
	if gone(fresh.State) {
		klog.InfoS("Instance of node is terminating", "node", klog.KObj(node), "instance", fresh.ID, "state", fresh.State)
		return false, nil
	}
	return true, nil
}

// InstanceShutdown is true for a STOPPED (or SHUTDOWN, that is isolated) instance.
func (i *instances) InstanceShutdown(ctx context.Context, node *v1.Node) (bool, error) {
	inst, err := i.find(ctx, node, instancelookup.State)
	if errors.Is(err, cloudprovider.InstanceNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return inst.State == cvm.StateStopped || inst.State == cvm.StateShutdown, nil
}

// InstanceMetadata returns what the cloud-node controller writes on the Node: providerID,
// addresses, instance type, zone and region.
func (i *instances) InstanceMetadata(ctx context.Context, node *v1.Node) (*cloudprovider.InstanceMetadata, error) {
	inst, err := i.find(ctx, node, instancelookup.Metadata)
	if err != nil {
		switch {
		case errors.Is(err, cloudprovider.InstanceNotFound):
			i.event(node, ReasonInstanceNotFound, "Cannot initialize node: %v", err)
		case errors.Is(err, errNoKey):
			i.event(node, ReasonNoInstanceKey, "Cannot initialize node: %v", err)
		}
		klog.ErrorS(err, "Cannot find the instance of node", "node", klog.KObj(node))
		return nil, err
	}
	return &cloudprovider.InstanceMetadata{
		ProviderID:    providerid.Format(inst.Zone, inst.ID),
		InstanceType:  inst.Type,
		NodeAddresses: addresses(node, inst),
		Zone:          inst.Zone,
		Region:        i.region,
	}, nil
}

func addresses(node *v1.Node, inst instancelookup.Instance) []v1.NodeAddress {
	var out []v1.NodeAddress
	for _, ip := range inst.PrivateIPs {
		out = append(out, v1.NodeAddress{Type: v1.NodeInternalIP, Address: ip})
	}
	for _, ip := range inst.PublicIPs {
		out = append(out, v1.NodeAddress{Type: v1.NodeExternalIP, Address: ip})
	}
	return append(out, v1.NodeAddress{Type: v1.NodeHostName, Address: node.Name})
}
