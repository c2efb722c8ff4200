// Package qcloud is the Kubernetes cloud provider "qcloud" (k8s.io/cloud-provider) for
// Stratus: its cloud-config, node lifecycle (InstancesV2), Zones, and the binding of the
// instance lookups to the cloud's CVM API. Importing it registers the provider.
//
// It never deletes or changes cloud resources for nodes: it only reads instances, and it
// answers "gone" only for an instance that a fresh query did not find. LoadBalancer is
// the cloud-neutral engine of package loadbalancer on the CLB adapter
// (cloudprovider/clbbackend); it changes only load balancers tagged for this cluster.
package qcloud
