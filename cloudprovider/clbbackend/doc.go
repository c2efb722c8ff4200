// Package clbbackend binds the cloud-neutral load balancer engine (package loadbalancer)
// to the cloud's CLB API and, for source ranges, its VPC security groups: it implements
// loadbalancer.Backend on cloudapi/clb and cloudapi/vpc.
//
// It owns the cloud's rules the engine does not know: every per-request limit (the named
// constants in limits.go, taken from the API documentation), the asynchronous tasks every
// CLB write starts (a load balancer refuses the next write until the task ends), and the
// mapping of listeners, health checks and targets onto the wire types.
//
// It never decides what should exist (the engine does) and it never changes a resource
// it was not asked to: security groups are created and deleted only when tagged for the
// Service they are made for.
package clbbackend
