package plan_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stratus-cloud/stratus/cloudapi"
	"github.com/stratus-cloud/stratus/cloudapi/cvm"
	"github.com/stratus-cloud/stratus/cloudprovider/qcloud"
	"github.com/stratus-cloud/stratus/fakecloud"
	"github.com/stratus-cloud/stratus/sandbox/plan"
)

func TestDefaults(t *testing.T) {
	p, err := plan.New(plan.Options{})
	require.NoError(t, err)
	assert.Equal(t, plan.DefaultStateDir, p.StateDir)
	assert.Len(t, p.ID, 6)
	assert.Equal(t, "stratus-"+p.ID+"-vpc", p.RouterNetns)
	assert.Equal(t, "stratus"+p.ID, p.HostLink)
	assert.LessOrEqual(t, len(p.HostLink), 15, "a Linux interface name has at most 15 characters")
	assert.Equal(t, netip.MustParsePrefix("10.0.255.252/30"), p.Transit)
	assert.Equal(t, "10.0.255.253", p.HostIP.String())
	assert.Equal(t, "10.0.255.254", p.RouterIP.String())
	assert.Equal(t, []netip.Prefix{netip.MustParsePrefix("10.0.0.0/16"), netip.MustParsePrefix("10.244.0.0/16"), netip.MustParsePrefix("198.18.0.0/24")}, p.HostRoutes())

	require.Len(t, p.Nodes, 3)
	want := []struct{ name, ins, zone, ip, gw string }{
		{"node-1", "ins-sbnode01", "ap-guangzhou-1", "10.0.1.11", "10.0.1.1"},
		{"node-2", "ins-sbnode02", "ap-guangzhou-1", "10.0.1.12", "10.0.1.1"},
		{"node-3", "ins-sbnode03", "ap-guangzhou-2", "10.0.2.11", "10.0.2.1"},
	}
	for i, w := range want {
		n := p.Nodes[i]
		assert.Equal(t, w.name, n.Name)
		assert.Equal(t, w.ins, n.InstanceID)
		assert.Equal(t, w.zone, n.Zone)
		assert.Equal(t, w.ip, n.IP.String())
		assert.Equal(t, w.gw, n.Subnet.Gateway.String())
		assert.True(t, n.Subnet.CIDR.Contains(n.IP))
		assert.False(t, p.Transit.Contains(n.IP))
		assert.Equal(t, "stratus-"+p.ID+"-"+w.name, n.Netns)
		assert.Equal(t, filepath.Join(plan.DefaultStateDir, "nodes", w.name), n.Dir)
	}
}

func TestNodesFillZonesInPairs(t *testing.T) {
	p, err := plan.New(plan.Options{StateDir: "/tmp/x", Nodes: 7, VPCCIDR: "172.20.0.0/16"})
	require.NoError(t, err)
	seen := map[netip.Addr]bool{}
	for _, n := range p.Nodes {
		assert.False(t, seen[n.IP], "node %s: address %s given twice", n.Name, n.IP)
		seen[n.IP] = true
	}
	var zones []string
	for _, n := range p.Nodes {
		zones = append(zones, n.Zone[len(n.Zone)-1:])
	}
	assert.Equal(t, []string{"1", "1", "2", "2", "3", "3", "1"}, zones, "pairs of nodes share a zone, so a volume can move between them")
	assert.Equal(t, "172.20.2.12", p.Nodes[3].IP.String(), "node-4 is the second node of zone 2")
	assert.Equal(t, "172.20.1.13", p.Nodes[6].IP.String(), "node-7 is the third node of zone 1")
	assert.Equal(t, "172.20.255.253", p.HostIP.String())
}

func TestStateDirsGetDistinctNames(t *testing.T) {
	a, err := plan.New(plan.Options{StateDir: "/tmp/sandbox-a"})
	require.NoError(t, err)
	b, err := plan.New(plan.Options{StateDir: "/tmp/sandbox-b/"})
	require.NoError(t, err)
	c, err := plan.New(plan.Options{StateDir: "/tmp/sandbox-b"})
	require.NoError(t, err)
	assert.NotEqual(t, a.ID, b.ID)
	assert.NotEqual(t, a.NetnsPrefix, b.NetnsPrefix)
	assert.NotEqual(t, a.LinkPrefix, b.LinkPrefix)
	assert.Equal(t, b.ID, c.ID, "the same directory, however written, is the same sandbox")
}

func TestRejectsBadOptions(t *testing.T) {
	cases := []struct {
		name string
		opts plan.Options
		want string
	}{
		{"relative state dir", plan.Options{StateDir: "sandbox"}, "--state-dir \"sandbox\": must be an absolute path"},
		{"root state dir", plan.Options{StateDir: "/"}, "--state-dir /: refusing"},
		{"too many nodes", plan.Options{Nodes: 51}, "--nodes 51: must be between 1 and 50"},
		{"negative nodes", plan.Options{Nodes: -1}, "--nodes -1"},
		{"vpc not a cidr", plan.Options{VPCCIDR: "10.0.0.0"}, "--vpc-cidr \"10.0.0.0\": not an IPv4 CIDR block"},
		{"vpc host bits", plan.Options{VPCCIDR: "10.0.0.1/16"}, "did you mean 10.0.0.0/16"},
		{"vpc too small", plan.Options{VPCCIDR: "10.0.0.0/20"}, "must be /16 or larger"},
		{"vpc public", plan.Options{VPCCIDR: "8.8.0.0/16"}, "must be inside 10.0.0.0/12, 172.16.0.0/12 or 192.168.0.0/16"},
		{"vpc in 10/8 but outside the cloud's 10/12", plan.Options{VPCCIDR: "10.30.0.0/16"}, "--vpc-cidr 10.30.0.0/16: must be inside 10.0.0.0/12"},
		{"vpc larger than its range", plan.Options{VPCCIDR: "192.168.0.0/15"}, "--vpc-cidr 192.168.0.0/15: larger than 192.168.0.0/16"},
		{"vpc larger than 10/12", plan.Options{VPCCIDR: "10.0.0.0/11"}, "--vpc-cidr 10.0.0.0/11: larger than 10.0.0.0/12"},
		{"pool overlaps vpc", plan.Options{PublicPool: "10.0.9.0/24"}, "--vpc-cidr 10.0.0.0/16 overlaps --lb-public-pool 10.0.9.0/24"},
		{"pool on loopback", plan.Options{PublicPool: "127.9.0.0/24"}, "--lb-public-pool 127.9.0.0/24: must be a unicast range"},
		{"pool too large", plan.Options{PublicPool: "198.0.0.0/8"}, "between /16 and /28"},
		{"cluster overlaps vpc", plan.Options{ClusterCIDR: "10.0.128.0/17"}, "--vpc-cidr 10.0.0.0/16 overlaps --cluster-cidr 10.0.128.0/17"},
		{"service overlaps cluster", plan.Options{ServiceCIDR: "10.244.0.0/20"}, "--cluster-cidr 10.244.0.0/16 overlaps --service-cidr 10.244.0.0/20"},
		{"cluster too small", plan.Options{Nodes: 5, ClusterCIDR: "10.244.0.0/23"}, "too small for 5 nodes"},
		{"bad port", plan.Options{APIServerPort: 70000}, "--apiserver-port 70000"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := plan.New(c.opts)
			require.Error(t, err)
			assert.Contains(t, err.Error(), c.want)
		})
	}
}

// TestSeedAndCloudConfigDescribeTheSameWorld loads the seed into a real fakecloud and the
// cloud-config through the CCM's own loader: every node is a RUNNING instance at its
// planned address in its zone, and the config names the seeded VPC and route table.
func TestSeedAndCloudConfigDescribeTheSameWorld(t *testing.T) {
	p, err := plan.New(plan.Options{StateDir: "/tmp/seedtest", Nodes: 4, VPCCIDR: "10.3.0.0/16", ClusterCIDR: "10.31.0.0/16"})
	require.NoError(t, err)
	seedYAML, err := p.Seed()
	require.NoError(t, err)
	dir := t.TempDir()
	seedPath := filepath.Join(dir, "seed.yaml")
	require.NoError(t, os.WriteFile(seedPath, seedYAML, 0o600))
	seed, err := fakecloud.LoadSeed(seedPath)
	require.NoError(t, err, "the seed parses strictly")
	cloud, err := fakecloud.New(fakecloud.Config{Seed: seed, RateLimit: -1})
	require.NoError(t, err)
	defer cloud.Close()
	srv := httptest.NewServer(cloud)
	defer srv.Close()

	id, key := cloud.Credentials()
	creds := filepath.Join(dir, "credentials.yaml")
	require.NoError(t, os.WriteFile(creds, []byte("secretId: "+id+"\nsecretKey: "+key+"\n"), 0o600))
	cfg, err := qcloud.LoadConfig(bytes.NewReader(p.CloudConfig(srv.URL, creds)))
	require.NoError(t, err, "the CCM accepts the cloud-config")
	assert.Equal(t, plan.VPCID, cfg.VpcID)
	assert.Equal(t, plan.RouteTableID, cfg.RouteTableID)

	client, err := cloudapi.New(cloudapi.Config{Endpoint: srv.URL, Region: cfg.Region, Credentials: cfg.Credentials(), RateLimit: -1})
	require.NoError(t, err)
	out, err := cvm.New(client).DescribeInstances(context.Background(), &cvm.DescribeInstancesRequest{})
	require.NoError(t, err)
	require.Len(t, out.InstanceSet, len(p.Nodes))
	byID := map[string]cvm.Instance{}
	for _, in := range out.InstanceSet {
		byID[in.InstanceId] = in
	}
	for _, n := range p.Nodes {
		in, ok := byID[n.InstanceID]
		require.True(t, ok, "instance of %s", n.Name)
		assert.Equal(t, []string{n.IP.String()}, in.PrivateIpAddresses)
		assert.Equal(t, n.Zone, in.Placement.Zone)
		assert.Equal(t, plan.VPCID, in.VirtualPrivateCloud.VpcId)
		assert.Equal(t, cvm.StateRunning, in.InstanceState)
	}
}

func TestSlots(t *testing.T) {
	vpc, cluster, pool := plan.Slot(0)
	assert.Equal(t, []string{"10.0.0.0/16", "10.244.0.0/16", "198.18.0.0/24"}, []string{vpc, cluster, pool})
	vpc, cluster, pool = plan.Slot(15)
	assert.Equal(t, []string{"10.15.0.0/16", "10.229.0.0/16", "198.18.15.0/24"}, []string{vpc, cluster, pool})
	assert.Equal(t, 0, plan.FirstSlot(plan.DefaultStateDir))
	assert.Equal(t, 0, plan.FirstSlot(plan.DefaultStateDir+"/"))
	seen := map[netip.Prefix]bool{}
	for k := range plan.Slots {
		p, err := plan.New(plan.Options{StateDir: "/tmp/slot", VPCCIDR: must(plan.Slot(k))})
		require.NoError(t, err, "slot %d is a valid VPC", k)
		assert.False(t, seen[p.VPCCIDR], "slot %d repeats a VPC", k)
		seen[p.VPCCIDR] = true
	}
	// Another state dir starts elsewhere (with 16 slots some collide; these two do not).
	a, err := plan.New(plan.Options{StateDir: "/tmp/sandbox-a"})
	require.NoError(t, err)
	vpc, _, _ = plan.Slot(plan.FirstSlot("/tmp/sandbox-a"))
	assert.Equal(t, vpc, a.VPCCIDR.String(), "an empty range takes the state dir's first slot")
}

func must(vpc, _, _ string) string { return vpc }

func TestChooseSkipsSlotsThatCollide(t *testing.T) {
	dir := "/tmp/choose"
	first := plan.FirstSlot(dir)
	taken, _, _ := plan.Slot(first)
	busy := netip.MustParsePrefix(taken)
	fits := func(p *plan.Plan) error {
		if p.VPCCIDR.Overlaps(busy) {
			return fmt.Errorf("--vpc-cidr %s overlaps the host route %s", p.VPCCIDR, busy)
		}
		return nil
	}
	p, opts, err := plan.Choose(plan.Options{StateDir: dir}, fits)
	require.NoError(t, err)
	next, cluster, pool := plan.Slot(first + 1)
	assert.Equal(t, next, p.VPCCIDR.String(), "the next slot")
	assert.Equal(t, plan.Options{StateDir: dir, VPCCIDR: next, ClusterCIDR: cluster, PublicPool: pool}, opts, "the options that make the plan")

	// A range the user gave is kept, and its collision reported as it is.
	_, _, err = plan.Choose(plan.Options{StateDir: dir, VPCCIDR: taken}, fits)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "--vpc-cidr "+taken+" overlaps the host route")

	// Nothing fits: the first slot's reason.
	_, _, err = plan.Choose(plan.Options{StateDir: dir}, func(p *plan.Plan) error { return fmt.Errorf("slot %s busy", p.VPCCIDR) })
	assert.EqualError(t, err, "slot "+taken+" busy")
}
