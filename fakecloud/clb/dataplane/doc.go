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
// It never binds or connects anywhere but loopback: a listener address or a target that
// is not a loopback address is refused.
package dataplane
