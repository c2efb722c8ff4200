// Package dataplane carries real traffic for fakecloud's load balancers: each listener
// binds a loopback address and port and proxies TCP connections or UDP datagrams to its
// targets, choosing among the healthy ones with non-zero weight (weighted round robin or
// least connections, with optional source-IP session persistence), and health-checks the
// targets the way the listener's HealthCheck says.
//
// The package is driven by a desired state (Spec) handed to Apply; it knows nothing about
// the API, the store or instances, so it can be tested with plain sockets. Apply never
// waits on the network: it binds or closes sockets and swaps target sets in place, so a
// change of targets keeps established connections to targets that are still there.
//
// It binds only loopback addresses, or any address inside the network namespace a
// listener names (a VPC's router namespace, where the VIP is the router's), and it
// connects only to loopback targets or to targets inside the prefixes a listener says
// this machine routes (the VPC's CIDR, routed into that router); anything else is
// refused.
package dataplane
