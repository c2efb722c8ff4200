// Package framework is the e2e harness: it runs a real control plane (etcd and
// kube-apiserver) and arbitrary binaries as child processes of a Go test, each with its
// log captured under a per-test artifacts directory and torn down by t.Cleanup even when
// the test fails or panics. It also registers Nodes the way a kubelet with
// --cloud-provider=external does, so cloud-controller-manager tests can assert what the
// CCM did to them.
//
// The package knows nothing about Stratus' cloud: starting fakecloud, the CCM and their
// configuration belongs to the tests that use it. It never reaches any address but
// loopback (or one a test passes in explicitly, such as a network namespace it created).
package framework
