// Package cni is the library behind the stratus-bridge CNI plugin: it parses and
// validates the plugin configuration, creates the node bridge, wires one veth per
// pod onto it, hands out pod IPs from the node's podCIDR (node-local, durable IPAM)
// and keeps the node's masquerade rules for traffic that leaves the cluster and VPC.
//
// It owns only what it creates on the node: the bridge named in the config, host
// veths whose alias carries its network name, the IPAM files under dataDir and the
// iptables chain of its network. It never builds an overlay, never touches routes
// outside the pod's namespace (the VPC route table carries podCIDRs between nodes)
// and never talks to the Kubernetes API (that is the agent's job, in cni/agent).
package cni
