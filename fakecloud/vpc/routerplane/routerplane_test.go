package routerplane_test

import (
	"context"
	"fmt"
	"net"
	"net/http/httptest"
	"net/netip"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/containernetworking/plugins/pkg/utils/sysctl"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/stratus-cloud/stratus/cloudapi"
	vpcapi "github.com/stratus-cloud/stratus/cloudapi/vpc"
	"github.com/stratus-cloud/stratus/cni/nstest"
	"github.com/stratus-cloud/stratus/fakecloud"
	"github.com/stratus-cloud/stratus/fakecloud/api"
	"github.com/stratus-cloud/stratus/fakecloud/cvm"
	"github.com/stratus-cloud/stratus/fakecloud/vpc"
	"github.com/stratus-cloud/stratus/fakecloud/vpc/routerplane"
)

const (
	base = routerplane.DefaultTableBase
	prio = routerplane.DefaultRulePriority
)

// router is a namespace with the subnet 10.0.1.0/24 connected (10.0.1.1 on a veth pair
// inside it), so next hops in that subnet are reachable and others are not.
func router(t *testing.T) *nstest.NS {
	t.Helper()
	nstest.Require(t)
	r := nstest.New(t, "rtr")
	ip(t, "-n", r.Name, "link", "add", "sn1", "type", "veth", "peer", "name", "sn1p")
	ip(t, "-n", r.Name, "addr", "add", "10.0.1.1/24", "dev", "sn1")
	ip(t, "-n", r.Name, "link", "set", "sn1", "up")
	ip(t, "-n", r.Name, "link", "set", "sn1p", "up")
	return r
}

func ip(t *testing.T, args ...string) {
	t.Helper()
	out, err := exec.Command("ip", args...).CombinedOutput()
	require.NoError(t, err, "ip %s: %s", strings.Join(args, " "), out)
}

func nsPath(n *nstest.NS) string { return filepath.Join("/var/run/netns", n.Name) }

func handle(t *testing.T, n *nstest.NS) *netlink.Handle {
	t.Helper()
	h, err := netlink.NewHandleAt(ns2handle(t, n))
	require.NoError(t, err)
	t.Cleanup(h.Close)
	return h
}

// kernelRoutes lists "table dst via gw" for every route of the plane's protocol.
func kernelRoutes(t *testing.T, n *nstest.NS) []string {
	t.Helper()
	rs, err := handle(t, n).RouteListFiltered(netlink.FAMILY_V4, &netlink.Route{Table: unix.RT_TABLE_UNSPEC, Protocol: routerplane.Proto},
		netlink.RT_FILTER_TABLE|netlink.RT_FILTER_PROTOCOL)
	require.NoError(t, err)
	var out []string
	for _, r := range rs {
		out = append(out, fmt.Sprintf("%d %s via %s", r.Table, r.Dst, r.Gw))
	}
	return out
}

// kernelRules lists "priority [from src] table" for the plane's two priorities.
func kernelRules(t *testing.T, n *nstest.NS) []string {
	t.Helper()
	rs, err := handle(t, n).RuleList(netlink.FAMILY_V4)
	require.NoError(t, err)
	var out []string
	for _, r := range rs {
		if r.Priority != prio && r.Priority != prio+1 {
			continue
		}
		s := fmt.Sprint(r.Priority)
		if r.Src != nil {
			s += " from " + r.Src.String()
		}
		out = append(out, fmt.Sprintf("%s table %d", s, r.Table))
	}
	return out
}

func pfx(s string) netip.Prefix { return netip.MustParsePrefix(s) }

func cvmRoute(dst, gw string) vpc.RouterRoute {
	return vpc.RouterRoute{Destination: pfx(dst), GatewayType: vpcapi.GatewayTypeNormalCVM, GatewayID: gw}
}

func spec(tables ...vpc.RouterTable) vpc.RouterSpec {
	return vpc.RouterSpec{VPCs: []vpc.RouterVPC{{VpcID: "vpc-test1", CIDR: pfx("10.0.0.0/16"), Tables: tables}}}
}

func newPlane(t *testing.T, r *nstest.NS) *routerplane.Plane {
	t.Helper()
	p, err := routerplane.New(routerplane.Options{Routers: map[string]string{"vpc-test1": nsPath(r)}, Resync: -1})
	require.NoError(t, err)
	t.Cleanup(func() { _ = p.Close() })
	return p
}

// TestApply walks one router namespace through a sequence of specs; each step states the
// whole kernel state the plane must leave.
func TestApply(t *testing.T) {
	r := router(t)
	p := newPlane(t, r)
	// Somebody else's route and rule in the same namespace: the plane never touches them.
	ip(t, "-n", r.Name, "route", "add", "192.168.9.0/24", "via", "10.0.1.9")
	ip(t, "-n", r.Name, "rule", "add", "priority", fmt.Sprint(prio), "from", "10.0.9.0/24", "table", "50")

	main := func(routes ...vpc.RouterRoute) vpc.RouterTable {
		return vpc.RouterTable{RouteTableID: "rtb-main1", Main: true, Subnets: []netip.Prefix{pfx("10.0.1.0/24")}, Routes: routes}
	}
	steps := []struct {
		name       string
		spec       vpc.RouterSpec
		wantErr    string
		wantRoutes []string
		wantRules  []string
	}{
		{
			name:       "main table: one route per podCIDR via its node, and a catch-all rule",
			spec:       spec(main(cvmRoute("10.244.1.0/24", "10.0.1.11"), cvmRoute("10.244.2.0/24", "10.0.1.12"))),
			wantRoutes: []string{"10000 10.244.1.0/24 via 10.0.1.11", "10000 10.244.2.0/24 via 10.0.1.12"},
			wantRules:  []string{"20000 from 10.0.9.0/24 table 50", "20001 table 10000"},
		},
		{
			name:       "a route deleted from the table leaves the kernel; a changed gateway is replaced",
			spec:       spec(main(cvmRoute("10.244.2.0/24", "10.0.1.13"))),
			wantRoutes: []string{"10000 10.244.2.0/24 via 10.0.1.13"},
			wantRules:  []string{"20000 from 10.0.9.0/24 table 50", "20001 table 10000"},
		},
		{
			name: "a non-main table routes the traffic of its subnets, consulted before the main table",
			spec: spec(
				main(cvmRoute("10.244.2.0/24", "10.0.1.13")),
				vpc.RouterTable{RouteTableID: "rtb-other1", Subnets: []netip.Prefix{pfx("10.0.5.0/24")}, Routes: []vpc.RouterRoute{cvmRoute("10.244.7.0/24", "10.0.1.17")}},
			),
			wantRoutes: []string{"10000 10.244.2.0/24 via 10.0.1.13", "10001 10.244.7.0/24 via 10.0.1.17"},
			wantRules:  []string{"20000 from 10.0.9.0/24 table 50", "20000 from 10.0.5.0/24 table 10001", "20001 table 10000"},
		},
		{
			name: "a gateway no subnet of the router reaches is an error naming the route; the rest is applied",
			spec: spec(main(
				cvmRoute("10.244.2.0/24", "10.0.1.13"),
				cvmRoute("10.244.3.0/24", "10.0.3.11"),
				vpc.RouterRoute{Destination: pfx("10.244.4.0/24"), GatewayType: vpcapi.GatewayTypeNAT, GatewayID: "nat-abcdefgh"},
			)),
			wantErr:    "route table rtb-main1: route to 10.244.3.0/24 via 10.0.3.11",
			wantRoutes: []string{"10000 10.244.2.0/24 via 10.0.1.13"},
			wantRules:  []string{"20000 from 10.0.9.0/24 table 50", "20001 table 10000"},
		},
		{
			name:      "an empty spec removes everything the plane made and nothing else",
			spec:      vpc.RouterSpec{},
			wantRules: []string{"20000 from 10.0.9.0/24 table 50"},
		},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			err := p.Apply(s.spec)
			if s.wantErr != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), s.wantErr)
				assert.Contains(t, err.Error(), "VPC vpc-test1")
			} else {
				require.NoError(t, err)
			}
			assert.ElementsMatch(t, s.wantRoutes, kernelRoutes(t, r))
			assert.ElementsMatch(t, s.wantRules, kernelRules(t, r))
			out, err := exec.Command("ip", "-n", r.Name, "route", "show", "192.168.9.0/24").CombinedOutput()
			require.NoError(t, err)
			assert.Contains(t, string(out), "via 10.0.1.9", "a route of another owner survives")
		})
	}
}

func TestApplyIsIdempotentAndSkipsUnknownVPCs(t *testing.T) {
	r := router(t)
	p := newPlane(t, r)
	s := spec(vpc.RouterTable{RouteTableID: "rtb-main1", Main: true, Routes: []vpc.RouterRoute{cvmRoute("10.244.1.0/24", "10.0.1.11")}})
	s.VPCs = append(s.VPCs, vpc.RouterVPC{VpcID: "vpc-elsewhere", CIDR: pfx("10.1.0.0/16"), Tables: []vpc.RouterTable{{RouteTableID: "rtb-x", Main: true, Routes: []vpc.RouterRoute{cvmRoute("10.245.0.0/24", "10.1.0.5")}}}})
	for range 3 {
		require.NoError(t, p.Apply(s))
	}
	assert.Equal(t, []string{"10000 10.244.1.0/24 via 10.0.1.11"}, kernelRoutes(t, r))
	assert.Equal(t, []string{"20001 table 10000"}, kernelRules(t, r))
}

func TestResyncRepairsRoutesChangedBehindItsBack(t *testing.T) {
	r := router(t)
	p, err := routerplane.New(routerplane.Options{Routers: map[string]string{"vpc-test1": r.Name}, Resync: 50 * time.Millisecond})
	require.NoError(t, err)
	defer p.Close()
	require.NoError(t, p.Apply(spec(vpc.RouterTable{RouteTableID: "rtb-main1", Main: true, Routes: []vpc.RouterRoute{cvmRoute("10.244.1.0/24", "10.0.1.11")}})))
	ip(t, "-n", r.Name, "route", "flush", "table", fmt.Sprint(base))
	require.Empty(t, kernelRoutes(t, r))
	assert.Eventually(t, func() bool { return len(kernelRoutes(t, r)) == 1 }, 30*time.Second, 20*time.Millisecond,
		"the resync puts the flushed route back")
}

func TestNewRejectsBadOptions(t *testing.T) {
	cases := []struct {
		name string
		opts routerplane.Options
		want string
	}{
		{"table base in the kernel's range", routerplane.Options{TableBase: 254}, "table base 254"},
		{"rule priority after the main table", routerplane.Options{RulePriority: 32766}, "rule priority 32766"},
		{"empty namespace", routerplane.Options{Routers: map[string]string{"vpc-a1": ""}}, "VPC vpc-a1: empty router namespace"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := routerplane.New(c.opts)
			require.Error(t, err)
			assert.Contains(t, err.Error(), c.want)
		})
	}
}

// world is a cloud whose VPC vpc-test1 (10.0.0.0/16, subnet 10.0.1.0/24) is routed by r.
func world(t *testing.T, r *nstest.NS, dataDir string) (*fakecloud.Cloud, *vpcapi.Client) {
	t.Helper()
	seed := &api.Seed{Region: "ap-guangzhou", Zones: []string{"ap-guangzhou-1"}}
	vpc.SetSeed(seed, []vpc.SeedVPC{{
		VpcID: "vpc-test1", CidrBlock: "10.0.0.0/16",
		Subnets:     []vpc.SeedSubnet{{SubnetID: "subnet-test1", CidrBlock: "10.0.1.0/24", Zone: "ap-guangzhou-1"}},
		RouteTables: []vpc.SeedRouteTable{{RouteTableID: "rtb-test1", Default: true}},
	}})
	// The next hops are instances of the VPC, as the cloud requires of a NORMAL_CVM route.
	cvm.SetSeed(seed, []cvm.SeedInstance{
		{InstanceID: "ins-node0011", Zone: "ap-guangzhou-1", VpcID: "vpc-test1", SubnetID: "subnet-test1", PrivateIP: "10.0.1.11"},
		{InstanceID: "ins-node0012", Zone: "ap-guangzhou-1", VpcID: "vpc-test1", SubnetID: "subnet-test1", PrivateIP: "10.0.1.12"},
	})
	c, err := fakecloud.New(fakecloud.Config{
		Seed: seed, DataDir: dataDir, RateLimit: -1,
		DataPlane: &fakecloud.DataPlane{DiskDevRoot: t.TempDir(), VPCRouters: map[string]string{"vpc-test1": nsPath(r)}},
	})
	require.NoError(t, err)
	srv := httptest.NewServer(c)
	t.Cleanup(func() { srv.Close(); _ = c.Close() })
	id, key := c.Credentials()
	cl, err := cloudapi.New(cloudapi.Config{Endpoint: srv.URL, Region: c.Region(), Credentials: cloudapi.Credentials{SecretID: id, SecretKey: key}, RateLimit: -1, MaxAttempts: 1})
	require.NoError(t, err)
	return c, vpcapi.New(cl)
}

func podRoute(dst, gw string) vpcapi.Route {
	return vpcapi.Route{DestinationCidrBlock: dst, GatewayType: vpcapi.GatewayTypeNormalCVM, GatewayId: gw}
}

// TestThroughTheAPI drives the plane the way a user of the cloud does: routes created and
// deleted through the API appear in and leave the router at once, and a restarted cloud
// puts back what its state says.
func TestThroughTheAPI(t *testing.T) {
	r := router(t)
	dataDir := t.TempDir()
	ctx := context.Background()
	c, client := world(t, r, dataDir)

	_, err := client.CreateRoutes(ctx, &vpcapi.CreateRoutesRequest{RouteTableId: "rtb-test1", Routes: []vpcapi.Route{
		podRoute("10.244.1.0/24", "10.0.1.11"), podRoute("10.244.2.0/24", "10.0.1.12"),
	}})
	require.NoError(t, err)
	assert.ElementsMatch(t, []string{"10000 10.244.1.0/24 via 10.0.1.11", "10000 10.244.2.0/24 via 10.0.1.12"}, kernelRoutes(t, r))

	_, err = client.DeleteRoutes(ctx, &vpcapi.DeleteRoutesRequest{RouteTableId: "rtb-test1", Routes: []vpcapi.Route{{DestinationCidrBlock: "10.244.1.0/24"}}})
	require.NoError(t, err)
	assert.Equal(t, []string{"10000 10.244.2.0/24 via 10.0.1.12"}, kernelRoutes(t, r))

	// A rejected write changes neither the cloud nor the kernel.
	_, err = client.CreateRoutes(ctx, &vpcapi.CreateRoutesRequest{RouteTableId: "rtb-test1", Routes: []vpcapi.Route{podRoute("10.0.9.0/24", "10.0.1.11")}})
	assert.Equal(t, "InvalidParameterValue.VpcCidrConflict", cloudapi.ErrorCode(err))
	assert.Equal(t, []string{"10000 10.244.2.0/24 via 10.0.1.12"}, kernelRoutes(t, r))

	// Restart: the kernel lost its routes meanwhile; the new cloud restores them from its
	// state as it starts.
	require.NoError(t, c.Close())
	ip(t, "-n", r.Name, "route", "flush", "table", fmt.Sprint(base))
	require.Empty(t, kernelRoutes(t, r))
	_, _ = world(t, r, dataDir)
	assert.Equal(t, []string{"10000 10.244.2.0/24 via 10.0.1.12"}, kernelRoutes(t, r))
}

// TestTrafficFollowsTheRouteTable proves the router is real at L3: a client in one node
// namespace reaches an address behind another node only while the cloud's route table has
// a route for it.
func TestTrafficFollowsTheRouteTable(t *testing.T) {
	r := router(t)
	ctx := context.Background()
	_, client := world(t, r, t.TempDir())

	// Two nodes on the router's bridge br1 (10.0.1.1/24): a client at 10.0.1.11 and a
	// node at 10.0.1.12 that owns 10.244.2.5, a "pod" address on its loopback.
	ip(t, "-n", r.Name, "addr", "del", "10.0.1.1/24", "dev", "sn1")
	ip(t, "-n", r.Name, "link", "add", "br1", "type", "bridge")
	ip(t, "-n", r.Name, "addr", "add", "10.0.1.1/24", "dev", "br1")
	ip(t, "-n", r.Name, "link", "set", "br1", "up")
	mustSysctl(t, r, "net.ipv4.ip_forward", "1")
	nodes := map[string]*nstest.NS{}
	for i, addr := range []string{"10.0.1.11", "10.0.1.12"} {
		n := nstest.New(t, fmt.Sprint("nd", i))
		port := fmt.Sprint("p", i)
		ip(t, "-n", r.Name, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", n.Name)
		ip(t, "-n", r.Name, "link", "set", port, "master", "br1", "up")
		ip(t, "-n", n.Name, "addr", "add", addr+"/24", "dev", "eth0")
		ip(t, "-n", n.Name, "link", "set", "eth0", "up")
		ip(t, "-n", n.Name, "route", "add", "default", "via", "10.0.1.1")
		nodes[addr] = n
	}
	ip(t, "-n", nodes["10.0.1.12"].Name, "addr", "add", "10.244.2.5/32", "dev", "lo")

	var ln net.Listener
	require.NoError(t, nodes["10.0.1.12"].Do(func(ns.NetNS) (err error) {
		ln, err = net.Listen("tcp", "10.244.2.5:0")
		return err
	}))
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_, _ = c.Write([]byte("pod\n"))
			_ = c.Close()
		}
	}()
	dial := func() error {
		return nodes["10.0.1.11"].Do(func(ns.NetNS) error {
			c, err := net.DialTimeout("tcp", ln.Addr().String(), 2*time.Second)
			if err != nil {
				return err
			}
			defer c.Close()
			buf := make([]byte, 4)
			_, err = c.Read(buf)
			return err
		})
	}

	require.Error(t, dial(), "no route in the cloud's table: the router has nowhere to send it")
	_, err := client.CreateRoutes(ctx, &vpcapi.CreateRoutesRequest{RouteTableId: "rtb-test1", Routes: []vpcapi.Route{podRoute("10.244.2.0/24", "10.0.1.12")}})
	require.NoError(t, err)
	require.NoError(t, dial(), "the route to 10.244.2.0/24 via 10.0.1.12 carries the traffic")
	_, err = client.DeleteRoutes(ctx, &vpcapi.DeleteRoutesRequest{RouteTableId: "rtb-test1", Routes: []vpcapi.Route{{DestinationCidrBlock: "10.244.2.0/24"}}})
	require.NoError(t, err)
	require.Error(t, dial(), "the route is gone again")
}

func mustSysctl(t *testing.T, n *nstest.NS, key, value string) {
	t.Helper()
	require.NoError(t, n.Do(func(ns.NetNS) error {
		_, err := sysctl.Sysctl(key, value)
		return err
	}))
}

func ns2handle(t *testing.T, n *nstest.NS) netns.NsHandle {
	t.Helper()
	h, err := netns.GetFromPath(nsPath(n))
	require.NoError(t, err)
	t.Cleanup(func() { _ = h.Close() })
	return h
}
