// Package podlet plays the kubelet on a sandbox node, which has no container runtime.
// It registers the node's Node object (with the uninitialized taint, as a kubelet with
// --cloud-provider=external does), keeps its status and Lease fresh, and runs one narrow
// kind of Pod: one whose containers all use the reserved image EchoImage. Such a Pod gets
// a network namespace wired by CNI ADD (through libcni with the node's conflist, as a
// runtime would), a small built-in server answering its pod name on every container port,
// and its IP and Ready condition written to the API, so EndpointSlices and kube-proxy
// treat it as real. Deleting the Pod runs CNI DEL and removes the namespace. Any other
// Pod stays Pending with a Warning event saying why.
//
// Volumes are a seam (Volumes): stage 1 runs no Pod that needs a PersistentVolumeClaim,
// CSI or ephemeral volume and says so in an event; stage 2 stages and publishes them
// through the CSI node plugin's gRPC socket.
//
// The podlet runs inside its node's network namespace. It owns the Node object of its
// node, the Lease of that node, the status of Pods bound to it, the pod namespaces it
// made (recorded under its pods dir before they exist) and their CNI attachments. It
// never touches another node's Pods or anything outside its node.
package podlet
