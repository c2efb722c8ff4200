package qcloud

import (
	"context"
	"fmt"
	"net"
	"sync"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	cloudprovider "k8s.io/cloud-provider"

	"github.com/stratus-cloud/stratus/cloudprovider/instancelookup"
	"github.com/stratus-cloud/stratus/cloudprovider/providerid"
)

// zones implements cloudprovider.Zones. The controllers of an external cloud provider use
// InstancesV2 instead; this serves other callers of the deprecated interface.
type zones struct {
	instances *instances

	mu     sync.Mutex
	client kubernetes.Interface
}

var _ cloudprovider.Zones = (*zones)(nil)

func (z *zones) setClient(c kubernetes.Interface) {
	z.mu.Lock()
	defer z.mu.Unlock()
	z.client = c
}

// GetZone is for code running on the node itself (the kubelet), which an external
// provider does not serve.
func (z *zones) GetZone(context.Context) (cloudprovider.Zone, error) {
	return cloudprovider.Zone{}, fmt.Errorf("GetZone: %w: use GetZoneByProviderID or GetZoneByNodeName", cloudprovider.NotImplemented)
}

// GetZoneByProviderID reads the zone from the providerID itself: instances never move
// between zones, so no API call is needed.
func (z *zones) GetZoneByProviderID(_ context.Context, providerID string) (cloudprovider.Zone, error) {
	id, err := providerid.Parse(providerID)
	if err != nil {
		return cloudprovider.Zone{}, err
	}
	return cloudprovider.Zone{FailureDomain: id.Zone, Region: z.instances.region}, nil
}

// GetZoneByNodeName finds the node's instance: directly when the name is an IP, else
// through the Node object (its providerID or addresses).
func (z *zones) GetZoneByNodeName(ctx context.Context, nodeName types.NodeName) (cloudprovider.Zone, error) {
	node := &v1.Node{ObjectMeta: metav1.ObjectMeta{Name: string(nodeName)}}
	if net.ParseIP(string(nodeName)) == nil {
		z.mu.Lock()
		client := z.client
		z.mu.Unlock()
		if client == nil {
			return cloudprovider.Zone{}, fmt.Errorf("zone of node %s: the name is not an IP and the provider has no Kubernetes client to read the Node", nodeName)
		}
		n, err := client.CoreV1().Nodes().Get(ctx, string(nodeName), metav1.GetOptions{})
		if err != nil {
			return cloudprovider.Zone{}, fmt.Errorf("zone of node %s: %w", nodeName, err)
		}
		if n.Spec.ProviderID != "" {
			return z.GetZoneByProviderID(ctx, n.Spec.ProviderID)
		}
		node = n
	}
	inst, err := z.instances.find(ctx, node, instancelookup.Metadata)
	if err != nil {
		return cloudprovider.Zone{}, fmt.Errorf("zone of node %s: %w", nodeName, err)
	}
	return cloudprovider.Zone{FailureDomain: inst.Zone, Region: z.instances.region}, nil
}
