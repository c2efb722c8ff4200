// Package loadbalancer is Stratus's cloud-neutral LoadBalancer engine: it turns a
// Kubernetes Service of type LoadBalancer into a cloud load balancer through a small
// Backend interface that each cloud implements.
//
// It is built in three layers, each testable on its own:
//
//   - Resolve (spec.go) is pure: Service + nodes + endpoints + Settings -> the desired
//     load balancer (Spec). It makes no API calls, reads no clock and emits no events, and
//     it reports every invalid annotation at once.
//   - Plan (plan.go) is pure too: desired Spec vs the actual LoadBalancer -> the smallest
//     ordered list of operations (a node added is one RegisterTargets, nothing changed is
//     nothing).
//   - Engine (engine.go) implements k8s.io/cloud-provider's LoadBalancer: it keeps a cache
//     of the load balancers this cluster owns (cache.go), so an unchanged Service costs no
//     cloud call at all, and runs plans against the Backend.
//
// Ownership is strict: the engine deletes only load balancers whose tags name this
// cluster and the Service's UID, and on a load balancer it adopted (an existing one the
// Service names) it changes only listeners whose name marks them as the Service's.
//
// The package never imports a cloud SDK or cloudapi; the adapter binding Backend to a
// cloud lives elsewhere (cloudprovider/clbbackend for Stratus's cloud).
package loadbalancer
