// Package vpcroutes binds the cloud-neutral routes engine to one VPC route table through
// cloudapi/vpc: it lists, creates and deletes routes with DescribeRouteTables,
// CreateRoutes and DeleteRoutes (next hop type NORMAL_CVM, the node's private IP), finds
// the table (routeTableId, or the one table of the VPC tagged stratus.io/cluster=<id>),
// and says which next hops are live by asking the provider's instance lookups (a narrow
// Instances interface), so that no route costs a DescribeInstances of its own.
//
// It keeps every call within the cloud's per-request limits (constants below) and turns
// the cloud's refusals into routes.Refusal, so that the engine can split a refused batch.
// It decides nothing about which routes should exist and never touches a table other
// than the one it resolved.
package vpcroutes
