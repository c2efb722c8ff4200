// Package qcloud is the Kubernetes cloud provider "qcloud" (k8s.io/cloud-provider) for
// Stratus: its cloud-config, node lifecycle (InstancesV2), Zones, pod routes (Routes: the
// routes engine over the VPC route table adapter), and the binding of the instance
// lookups to the cloud's CVM API. Importing it registers the provider.
//
// It never deletes or changes cloud resources for nodes: it only reads instances, and it
// answers "gone" only for an instance that a fresh query did not find. The only cloud
// resources it changes are routes carrying its cluster's marker in their description.
// Load balancers are not served yet (LoadBalancer reports unsupported).
package qcloud
