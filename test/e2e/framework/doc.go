// Package framework is the e2e harness: it runs a real control plane (etcd and
// kube-apiserver) and arbitrary binaries as child processes of a Go test, each with its
// log captured under a per-test artifacts directory and torn down by t.Cleanup even when
// the test fails or panics. It also registers Nodes the way a kubelet with
// --cloud-provider=external does, so cloud-controller-manager tests can assert what the
// CCM did to them.
//
// The generic parts (processes, etcd, kube-apiserver, Nodes, waiting) know nothing about
// Stratus' cloud; starters for Stratus' own binaries build on them in files of their own.
// Nothing here reaches any address but loopback, or one a test passes in explicitly (an
// address in a network namespace it created).
package framework
