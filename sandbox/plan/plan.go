// Package plan turns the flags of `stratus up` into the sandbox's layout: the names of
// every namespace and link it will make (all carrying a prefix derived from the state
// dir, so two sandboxes never collide and `stratus down` can sweep by name), the VPC's
// address plan (subnets, the host's transit link, one address per node), the nodes
// (name, instance ID, zone, netns, directories), and the cloud seed and cloud-config
// that describe the same world to fakecloud and the CCM.
//
// It is pure: it reads no machine state, starts nothing and writes no file (the seed and
// cloud-config are returned as bytes).
package plan

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"path/filepath"

	"sigs.k8s.io/yaml"
)

// Defaults of Options. The VPC, the pods' range and the public VIP pool default to one of
// Slots address slots (see Slot); the default state dir starts at slot 0, which is
// 10.0.0.0/16, 10.244.0.0/16 and 198.18.0.0/24.
const (
	DefaultStateDir    = "/var/lib/stratus/sandbox"
	DefaultNodes       = 3
	DefaultServiceCIDR = "10.96.0.0/16"
	// Slots is how many address slots there are: the /16s of 10.0.0.0/12, the largest
	// VPC range the cloud allows in 10/8.
	Slots = 16
	// MaxNodes keeps a sandbox within what one machine runs comfortably (and within
	// the /24 podCIDRs of a /16 cluster CIDR many times over).
	MaxNodes = 50
	// NodeCIDRMaskSize is the podCIDR size kube-controller-manager hands each node.
	NodeCIDRMaskSize = 24
)

// The cloud world every sandbox gets (IDs are fixed so that configs can name them).
const (
	Region       = "ap-guangzhou"
	VPCID        = "vpc-sandbox"
	RouteTableID = "rtb-sandbox"
	ClusterID    = "stratus-sandbox"
	InstanceType = "S5.MEDIUM4"
)

// Zones are the region's zones, each with its own subnet; nodes fill them in pairs.
var Zones = []string{Region + "-1", Region + "-2", Region + "-3"}

// Options are the user's choices.
type Options struct {
	StateDir    string
	Nodes       int
	VPCCIDR     string
	ClusterCIDR string
	ServiceCIDR string
	// PublicPool is where public load balancer VIPs come from; the host routes it into the
	// router namespace.
	PublicPool string
	// Ports pin the fakecloud and kube-apiserver ports; 0 picks a free one at start.
	FakecloudPort int
	APIServerPort int
}

// Subnet is one VPC subnet: a bridge in the router namespace whose address (the first
// host of the subnet, as in the cloud) is every node's gateway.
type Subnet struct {
	ID      string
	Zone    string
	CIDR    netip.Prefix
	Gateway netip.Addr
	// Bridge is the bridge's name inside the router namespace.
	Bridge string
}

// Node is one simulated node: a network namespace with one address in its subnet,
// registered as a cloud instance and as a Node.
type Node struct {
	Name       string
	InstanceID string
	Zone       string
	Subnet     Subnet
	IP         netip.Addr
	// Netns is the node's network namespace (under /run/netns).
	Netns string
	// RouterPort is the router-side end of the node's veth (inside the router namespace).
	RouterPort string
	// Dir holds the node's own files: CNI config and IPAM state, the podlet's pod records.
	Dir string
}

// CNIConfDir is where the CNI agent writes the node's conflist.
func (n Node) CNIConfDir() string { return filepath.Join(n.Dir, "cni", "net.d") }

// CNIDataDir is the IPAM state of the node's stratus-bridge plugin.
func (n Node) CNIDataDir() string { return filepath.Join(n.Dir, "cni", "ipam") }

// CNICacheDir is libcni's result cache of the node's runtime (the podlet).
func (n Node) CNICacheDir() string { return filepath.Join(n.Dir, "cni", "cache") }

// PodsDir holds the podlet's records of the pod sandboxes it made.
func (n Node) PodsDir() string { return filepath.Join(n.Dir, "pods") }

// KubeletDir is the node's kubelet directory: the podlet stages volumes under its
// plugins/ and publishes them under its pods/, as a kubelet does under /var/lib/kubelet.
func (n Node) KubeletDir() string { return filepath.Join(n.Dir, "kubelet") }

// CSISocket is the CSI node plugin's socket. It sits right in the node's directory,
// not under the kubelet directory's plugins/ as a kubelet's registration would have it:
// a unix socket's path must stay under 108 bytes, and a state dir deep in a checkout
// (the e2e tests') leaves no room for more.
func (n Node) CSISocket() string { return filepath.Join(n.Dir, "csi.sock") }

// Plan is the whole layout of one sandbox.
type Plan struct {
	StateDir string
	// ID is derived from StateDir; every global name carries it.
	ID string
	// NetnsPrefix starts every network namespace of this sandbox (router, nodes, pods).
	NetnsPrefix string
	// LinkPrefix starts every link this sandbox makes in the host namespace.
	LinkPrefix string

	RouterNetns string
	// HostLink is the host end of the host<->router veth; RouterHostPort its router end.
	HostLink       string
	RouterHostPort string
	// Transit is the /30 of that link: HostIP on the host, RouterIP in the router. It is
	// the VPC's last /30, which no subnet uses, so it is never a node's address.
	Transit  netip.Prefix
	HostIP   netip.Addr
	RouterIP netip.Addr

	VPCCIDR     netip.Prefix
	ClusterCIDR netip.Prefix
	ServiceCIDR netip.Prefix
	// PublicPool is the public VIP pool of the sandbox's load balancers (fakecloud's
	// --lb-public-pool): owned by the sandbox, routed by the host into the router.
	PublicPool netip.Prefix
	Subnets    []Subnet
	Nodes      []Node

	FakecloudPort int
	APIServerPort int
}

// Slot is the address slot k (0 <= k < Slots): VPC 10.k.0.0/16, pods 10.(244-k).0.0/16,
// public VIPs 198.18.k.0/24 (198.18.0.0/15 is the benchmarking range: no network routes
// it, and fakecloud's default public pool is inside it).
func Slot(k int) (vpc, cluster, publicPool string) {
	k = ((k % Slots) + Slots) % Slots
	return fmt.Sprintf("10.%d.0.0/16", k), fmt.Sprintf("10.%d.0.0/16", 244-k), fmt.Sprintf("198.18.%d.0/24", k)
}

// FirstSlot is the slot a state dir tries first: 0 for the default state dir, else one
// derived from the directory, so that two sandboxes usually differ from the start.
func FirstSlot(stateDir string) int {
	stateDir = filepath.Clean(stateDir)
	if stateDir == DefaultStateDir {
		return 0
	}
	sum := sha256.Sum256([]byte(stateDir))
	return int(sum[0]) % Slots
}

// Choose lays out the sandbox like New, trying the address slots in order (from
// FirstSlot) for the ranges opts leaves empty, and returns the first plan that fits (a
// nil from fits; fits checks it against the machine, e.g. vpcnet.CheckHost) with the
// options that make it. When none fits it returns the first slot's error, so the user
// learns what collides and which flag picks another range.
func Choose(opts Options, fits func(*Plan) error) (*Plan, Options, error) {
	if opts.StateDir == "" {
		opts.StateDir = DefaultStateDir
	}
	first := FirstSlot(opts.StateDir)
	var firstErr error
	for i := range Slots {
		o := opts
		vpc, cluster, pool := Slot(first + i)
		if o.VPCCIDR == "" {
			o.VPCCIDR = vpc
		}
		if o.ClusterCIDR == "" {
			o.ClusterCIDR = cluster
		}
		if o.PublicPool == "" {
			o.PublicPool = pool
		}
		p, err := New(o)
		if err != nil {
			return nil, o, err // the user's own ranges are wrong: no slot helps
		}
		if err = fits(p); err == nil {
			return p, o, nil
		}
		if firstErr == nil {
			firstErr = err
		}
		if opts.VPCCIDR != "" && opts.ClusterCIDR != "" && opts.PublicPool != "" {
			break // nothing left to vary
		}
	}
	return nil, opts, firstErr
}

// New validates opts and lays out the sandbox; empty ranges take FirstSlot's. Every
// error names the flag.
func New(opts Options) (*Plan, error) {
	if opts.StateDir == "" {
		opts.StateDir = DefaultStateDir
	}
	if !filepath.IsAbs(opts.StateDir) {
		return nil, fmt.Errorf("--state-dir %q: must be an absolute path", opts.StateDir)
	}
	stateDir := filepath.Clean(opts.StateDir)
	if stateDir == "/" {
		return nil, errors.New("--state-dir /: refusing to use the root directory (down removes the state dir)")
	}
	if opts.Nodes == 0 {
		opts.Nodes = DefaultNodes
	}
	if opts.Nodes < 1 || opts.Nodes > MaxNodes {
		return nil, fmt.Errorf("--nodes %d: must be between 1 and %d", opts.Nodes, MaxNodes)
	}
	defVPC, defCluster, defPool := Slot(FirstSlot(stateDir))
	vpc, err := parseCIDR("--vpc-cidr", opts.VPCCIDR, defVPC)
	if err != nil {
		return nil, err
	}
	if vpc.Bits() > 16 {
		return nil, fmt.Errorf("--vpc-cidr %s: the prefix must be /16 or larger (the sandbox carves /24 subnets from it)", vpc)
	}
	if r, ok := vpcRange(vpc); !ok {
		return nil, fmt.Errorf("--vpc-cidr %s: must be inside 10.0.0.0/12, 172.16.0.0/12 or 192.168.0.0/16, as a VPC's CIDR is", vpc)
	} else if vpc.Bits() < r.Bits() {
		return nil, fmt.Errorf("--vpc-cidr %s: larger than %s, the range it lies in (a VPC is at most as large as its range)", vpc, r)
	}
	cluster, err := parseCIDR("--cluster-cidr", opts.ClusterCIDR, defCluster)
	if err != nil {
		return nil, err
	}
	if cluster.Bits() > NodeCIDRMaskSize-bitsFor(opts.Nodes) {
		return nil, fmt.Errorf("--cluster-cidr %s: too small for %d nodes with a /%d podCIDR each", cluster, opts.Nodes, NodeCIDRMaskSize)
	}
	service, err := parseCIDR("--service-cidr", opts.ServiceCIDR, DefaultServiceCIDR)
	if err != nil {
		return nil, err
	}
	if service.Bits() < 12 || service.Bits() > 24 {
		return nil, fmt.Errorf("--service-cidr %s: the prefix must be between /12 and /24", service)
	}
	pool, err := parseCIDR("--lb-public-pool", opts.PublicPool, defPool)
	if err != nil {
		return nil, err
	}
	if pool.Bits() < 16 || pool.Bits() > 28 {
		return nil, fmt.Errorf("--lb-public-pool %s: the prefix must be between /16 and /28", pool)
	}
	if pool.Addr().IsLoopback() || pool.Addr().IsMulticast() || pool.Addr().IsLinkLocalUnicast() || pool.Addr().IsUnspecified() {
		return nil, fmt.Errorf("--lb-public-pool %s: must be a unicast range the host can route into the sandbox", pool)
	}
	ranges := []struct {
		flag string
		p    netip.Prefix
	}{{"--vpc-cidr", vpc}, {"--cluster-cidr", cluster}, {"--service-cidr", service}, {"--lb-public-pool", pool}}
	for i, a := range ranges {
		for _, b := range ranges[i+1:] {
			if a.p.Overlaps(b.p) {
				return nil, fmt.Errorf("%s %s overlaps %s %s: they must be disjoint", a.flag, a.p, b.flag, b.p)
			}
		}
	}
	for _, port := range []struct {
		flag string
		v    int
	}{{"--fakecloud-port", opts.FakecloudPort}, {"--apiserver-port", opts.APIServerPort}} {
		if port.v < 0 || port.v > 65535 {
			return nil, fmt.Errorf("%s %d: not a port (0 picks a free one)", port.flag, port.v)
		}
	}

	sum := sha256.Sum256([]byte(stateDir))
	id := hex.EncodeToString(sum[:])[:6]
	p := &Plan{
		StateDir:       stateDir,
		ID:             id,
		NetnsPrefix:    "stratus-" + id + "-",
		LinkPrefix:     "stratus" + id, // 13 characters: room for nothing else, and none needed
		RouterHostPort: "host0",
		VPCCIDR:        vpc,
		ClusterCIDR:    cluster,
		ServiceCIDR:    service,
		PublicPool:     pool,
		FakecloudPort:  opts.FakecloudPort,
		APIServerPort:  opts.APIServerPort,
	}
	p.RouterNetns = p.NetnsPrefix + "vpc"
	p.HostLink = p.LinkPrefix
	last := lastAddr(vpc)
	p.Transit = netip.PrefixFrom(addrAdd(last, -3), 30)
	p.HostIP = addrAdd(last, -2)
	p.RouterIP = addrAdd(last, -1)

	for i, zone := range Zones {
		cidr := netip.PrefixFrom(addrAdd(vpc.Addr(), (i+1)<<8), 24)
		p.Subnets = append(p.Subnets, Subnet{
			ID: fmt.Sprintf("subnet-sandbox%d", i+1), Zone: zone, CIDR: cidr,
			Gateway: cidr.Addr().Next(), Bridge: fmt.Sprintf("subnet%d", i+1),
		})
	}
	perZone := make([]int, len(p.Subnets))
	for i := range opts.Nodes {
		// Nodes fill the zones in pairs (node-1 and node-2 in zone 1, node-3 and node-4 in
		// zone 2, ...): a CBS disk attaches only in its own zone, so a volume can move
		// between the two nodes of a pair, while node-1 and node-3 sit in different zones
		// and subnets, with the router between them.
		z := (i / 2) % len(p.Subnets)
		sn := p.Subnets[z]
		nth := perZone[z]
		perZone[z]++
		name := fmt.Sprintf("node-%d", i+1)
		p.Nodes = append(p.Nodes, Node{
			Name:       name,
			InstanceID: fmt.Sprintf("ins-sbnode%02d", i+1),
			Zone:       sn.Zone,
			Subnet:     sn,
			IP:         addrAdd(sn.CIDR.Addr(), 11+nth),
			Netns:      p.NetnsPrefix + name,
			RouterPort: fmt.Sprintf("n%d", i+1),
			Dir:        filepath.Join(stateDir, "nodes", name),
		})
	}
	return p, nil
}

// Node returns the node called name.
func (p *Plan) Node(name string) (Node, bool) {
	for _, n := range p.Nodes {
		if n.Name == name {
			return n, true
		}
	}
	return Node{}, false
}

// PodNetns is the network namespace of the pod with uid.
func (p *Plan) PodNetns(uid string) string { return p.NetnsPrefix + "pod-" + uid }

// HostRoutes are the routes the host gets through the router: the VPC, the pods and the
// public VIPs of the load balancers.
func (p *Plan) HostRoutes() []netip.Prefix {
	return []netip.Prefix{p.VPCCIDR, p.ClusterCIDR, p.PublicPool}
}

// RangeFlags names each host-routed range by the flag that picks it, for messages.
func (p *Plan) RangeFlags() map[string]netip.Prefix {
	return map[string]netip.Prefix{"--vpc-cidr": p.VPCCIDR, "--cluster-cidr": p.ClusterCIDR, "--lb-public-pool": p.PublicPool}
}

// Seed is fakecloud's starting world for this sandbox (YAML): the VPC with a subnet per
// zone and the route table the CCM writes pod routes to, and one RUNNING instance per
// node at the node's address, local (its disks are attached on this machine, under the
// node's own device tree).
func (p *Plan) Seed() ([]byte, error) {
	type subnet struct {
		SubnetID  string `json:"subnetId"`
		Name      string `json:"name"`
		CidrBlock string `json:"cidrBlock"`
		Zone      string `json:"zone"`
	}
	type table struct {
		RouteTableID string `json:"routeTableId"`
		Name         string `json:"name"`
		Default      bool   `json:"default"`
	}
	type vpcSeed struct {
		VpcID       string   `json:"vpcId"`
		Name        string   `json:"name"`
		CidrBlock   string   `json:"cidrBlock"`
		Subnets     []subnet `json:"subnets"`
		RouteTables []table  `json:"routeTables"`
	}
	type instance struct {
		InstanceID   string            `json:"instanceId"`
		Name         string            `json:"name"`
		Zone         string            `json:"zone"`
		InstanceType string            `json:"instanceType"`
		SubnetID     string            `json:"subnetId"`
		PrivateIP    string            `json:"privateIp"`
		Tags         map[string]string `json:"tags"`
		// Local: the instance is this machine (its disks become loop devices here).
		Local bool `json:"local"`
	}
	v := vpcSeed{VpcID: VPCID, Name: "sandbox", CidrBlock: p.VPCCIDR.String(),
		RouteTables: []table{{RouteTableID: RouteTableID, Name: "default", Default: true}}}
	for _, s := range p.Subnets {
		v.Subnets = append(v.Subnets, subnet{SubnetID: s.ID, Name: s.Zone, CidrBlock: s.CIDR.String(), Zone: s.Zone})
	}
	var instances []instance
	for _, n := range p.Nodes {
		instances = append(instances, instance{
			InstanceID: n.InstanceID, Name: n.Name, Zone: n.Zone, InstanceType: InstanceType,
			SubnetID: n.Subnet.ID, PrivateIP: n.IP.String(), Tags: map[string]string{"stratus.io/sandbox": p.ID}, Local: true,
		})
	}
	seed := map[string]any{
		"region":    Region,
		"zones":     Zones,
		"vpcs":      []vpcSeed{v},
		"instances": instances,
	}
	j, err := json.Marshal(seed)
	if err != nil {
		return nil, fmt.Errorf("fakecloud seed: %w", err)
	}
	out, err := yaml.JSONToYAML(j)
	if err != nil {
		return nil, fmt.Errorf("fakecloud seed: %w", err)
	}
	return append([]byte("# fakecloud seed of the Stratus sandbox in "+p.StateDir+" (written by stratus up)\n"), out...), nil
}

// CloudConfig is the CCM's --cloud-config for this sandbox's world.
func (p *Plan) CloudConfig(endpoint, credentialsFile string) []byte {
	return fmt.Appendf(nil, "region: %s\nvpcId: %s\nclusterId: %s\nrouteTableId: %s\nendpoint: %s\ncredentialsFile: %s\n",
		Region, VPCID, ClusterID, RouteTableID, endpoint, credentialsFile)
}

func parseCIDR(flag, v, def string) (netip.Prefix, error) {
	if v == "" {
		v = def
	}
	p, err := netip.ParsePrefix(v)
	if err != nil || !p.Addr().Is4() {
		return netip.Prefix{}, fmt.Errorf("%s %q: not an IPv4 CIDR block", flag, v)
	}
	if p != p.Masked() {
		return netip.Prefix{}, fmt.Errorf("%s %s: has host bits set (did you mean %s?)", flag, p, p.Masked())
	}
	return p, nil
}

// vpcRanges are where a VPC's CIDR may lie, as the cloud's CreateVpc documents.
var vpcRanges = []netip.Prefix{
	netip.MustParsePrefix("10.0.0.0/12"),
	netip.MustParsePrefix("172.16.0.0/12"),
	netip.MustParsePrefix("192.168.0.0/16"),
}

// vpcRange is the range p lies in.
func vpcRange(p netip.Prefix) (netip.Prefix, bool) {
	for _, r := range vpcRanges {
		if r.Contains(p.Addr()) {
			return r, true
		}
	}
	return netip.Prefix{}, false
}

// bitsFor is how many prefix bits n podCIDRs need.
func bitsFor(n int) int {
	b := 0
	for 1<<b < n {
		b++
	}
	return b
}

func lastAddr(p netip.Prefix) netip.Addr {
	a := p.Addr().As4()
	v := uint32(a[0])<<24 | uint32(a[1])<<16 | uint32(a[2])<<8 | uint32(a[3])
	v |= 1<<(32-p.Bits()) - 1
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

func addrAdd(a netip.Addr, n int) netip.Addr {
	b := a.As4()
	v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	v = uint32(int64(v) + int64(n))
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}
