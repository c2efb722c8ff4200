// Package loadbalancer shows another cloud reusing Stratus's load balancer engine: it
// implements loadbalancer.Backend for "Nimbus", an imaginary cloud kept in memory, and
// the Example test drives the engine through it exactly as a cloud-controller-manager's
// service controller would. Nothing here imports Stratus's own cloud API.
package loadbalancer
