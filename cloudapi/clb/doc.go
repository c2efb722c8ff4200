// Package clb holds the typed operations and wire types of the cloud load balancer
// service (clb, version 2018-03-17): load balancers, layer-4 listeners, their targets, and
// the asynchronous tasks every write starts.
//
// Field and JSON names follow the public API (the official SDK's clb/v20180317 models), so
// fakecloud decodes requests into these same types and the official SDK can talk to it.
// The package only describes and sends calls through a *cloudapi.Client; it keeps no state
// and never imports Kubernetes.
package clb
