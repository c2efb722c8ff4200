// Package sanity runs csi-sanity (github.com/kubernetes-csi/csi-test) and the real node
// path against the Stratus CSI driver: the driver serves a real unix socket, its Disks
// are cloudprovider/cbsdisks on an in-process fakecloud with the CBS data plane, so every
// attach is a loop device and every node call formats and mounts for real (root).
//
// The package holds tests only.
package sanity
