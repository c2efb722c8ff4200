package main

import (
	"net"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stratus-cloud/stratus/cni/nstest"
)

// vpc is a namespace acting as the VPC router: one link per node, and a route per
// podCIDR to its node, as the VPC route table (written by the CCM) would hold.
// It also holds an "outside" address beyond the cluster and VPC CIDRs.
type vpc struct {
	*nstest.NS
	outside net.IP
}

const uplinkMTU = 1400

func newVPC(t *testing.T) *vpc {
	t.Helper()
	v := &vpc{NS: nstest.New(t, "vpc"), outside: net.ParseIP("203.0.113.10").To4()}
	mustRun(t, v.NS, "sysctl", "-qw", "net.ipv4.ip_forward=1")
	mustRun(t, v.NS, "ip", "addr", "add", v.outside.String()+"/32", "dev", "lo")
	return v
}

// attach wires node to the VPC on link 198.18.<idx>.0/24 and routes podCIDR to it.
func (v *vpc) attach(t *testing.T, node *testNode, idx int, podCIDR string) net.IP {
	t.Helper()
	vpcSide := "vpc" + nstest.RandHex(3)
	routerIP := net.IPv4(198, 18, byte(idx), 1).To4()
	nodeIP := net.IPv4(198, 18, byte(idx), 2).To4()
	mustRun(t, v.NS, "ip", "link", "add", vpcSide, "mtu", "1400", "type", "veth", "peer", "name", "eth0", "mtu", "1400", "netns", node.Name)
	mustRun(t, v.NS, "ip", "addr", "add", routerIP.String()+"/24", "dev", vpcSide)
	mustRun(t, v.NS, "ip", "link", "set", vpcSide, "up")
	mustRun(t, v.NS, "ip", "route", "add", podCIDR, "via", nodeIP.String())
	mustRun(t, node.NS, "ip", "addr", "add", nodeIP.String()+"/24", "dev", "eth0")
	mustRun(t, node.NS, "ip", "link", "set", "eth0", "up")
	mustRun(t, node.NS, "ip", "route", "add", "default", "via", routerIP.String())
	return nodeIP
}

func mustRun(t *testing.T, n *nstest.NS, name string, args ...string) {
	t.Helper()
	_, err := n.Run(name, args...)
	require.NoError(t, err)
}

func TestTwoNodesOneVPCPodToPodWithoutNAT(t *testing.T) {
	t.Parallel()
	requireNS(t)
	masq := []nodeOpt{withPlugin("ipMasq", true), withPlugin("nonMasqueradeCIDRs", []string{"10.244.0.0/16", "198.18.0.0/16"})}
	nodeA := newNode(t, "10.244.1.0/24", masq...)
	nodeB := newNode(t, "10.244.2.0/24", masq...)
	v := newVPC(t)
	nodeAIP := v.attach(t, nodeA, 1, "10.244.1.0/24")
	v.attach(t, nodeB, 2, "10.244.2.0/24")

	podA, podB := newPod(t), newPod(t)
	resA, resB := nodeA.add(t, podA), nodeB.add(t, podB)
	ipA, ipB := podIP(t, resA), podIP(t, resB)
	require.True(t, nodeA.Subnet.Contains(ipA))
	require.True(t, nodeB.Subnet.Contains(ipB))

	// The MTU defaults to the node uplink's.
	assert.Equal(t, uplinkMTU, podLink(t, podA, "eth0").Attrs().MTU)

	// Pod A -> pod B across the VPC: B sees A's pod IP (no NAT inside the cluster).
	seen, err := dial(podA, listen(t, podB, ipB))
	require.NoError(t, err)
	assert.Equal(t, ipA.String(), seen, "receiver must see the sender's pod IP")
	// And back.
	seen, err = dial(podB, listen(t, podA, ipA))
	require.NoError(t, err)
	assert.Equal(t, ipB.String(), seen)

	// Traffic leaving the cluster and VPC CIDRs is masqueraded behind the node.
	seen, err = dial(podA, listen(t, v, v.outside))
	require.NoError(t, err)
	assert.Equal(t, nodeAIP.String(), seen, "traffic to outside the VPC must leave as the node")

	// Without the VPC route the pods cannot talk: there is no overlay.
	mustRun(t, v.NS, "ip", "route", "del", "10.244.2.0/24")
	_, err = dial(podA, net.JoinHostPort(ipB.String(), "9"))
	require.Error(t, err)

	require.NoError(t, nodeA.RT.Del(ctx(t), podA.RC))
	require.NoError(t, nodeB.RT.Del(ctx(t), podB.RC))
	assert.Empty(t, nodeA.natRules(t))
	assert.Empty(t, nodeA.allocations(t))
}
