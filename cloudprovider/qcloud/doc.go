// Package qcloud is the Kubernetes cloud provider "qcloud" (k8s.io/cloud-provider) for
// Stratus: its cloud-config, node lifecycle (InstancesV2), Zones, pod routes (Routes: the
// routes engine over the VPC route table adapter), and the binding of the instance
// lookups to the cloud's CVM API. Importing it registers the provider.
//
// It never deletes or changes cloud resources for nodes: it only reads instances, and it
// answers "gone" only for an instance that a fresh query did not find. LoadBalancer is
// the cloud-neutral engine of package loadbalancer on the CLB adapter
// (cloudprovider/clbbackend); it changes only load balancers tagged for this cluster.
// Routes is the engine of package routes on the VPC adapter (cloudprovider/vpcroutes);
// the only routes it changes carry its cluster's marker in their description.
package qcloud
