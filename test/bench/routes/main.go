// Command routes measures pod route creation by the cloud-controller-manager's route
// controller (the real one, from k8s.io/cloud-provider) driving the qcloud provider's
// routes engine against fakecloud over loopback HTTP, with route batching on and then off
// (one CreateRoutes call per route), in the same run:
//
//	go run ./test/bench/routes            # 5,000 nodes
//	go run ./test/bench/routes -nodes 500
//
// Everything runs in one process: fakecloud (one instance per node, the per-table route
// quota raised to fit every node: the default is 200) behind an httptest server, the
// provider with its real cloudapi client, and the route controller over a fake clientset
// preloaded with the Nodes (each with its podCIDR, as node IPAM would set it). The clock
// starts when the controller starts on an empty route table and stops when the last
// CreateRoute has succeeded; then the route table is checked route by route.
//
// It prints, per mode, that time and the CreateRoutes calls fakecloud answered, then checks
// the target: batching on makes at most one call per 50 routes and is at least 20x faster
// than off. It exits 1 when the target is missed. A baseline that does not finish within
// -timeout is reported as such, and its time counts as a lower bound of the speedup.
package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"net/http/httptest"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	cloudprovider "k8s.io/cloud-provider"
	routecontroller "k8s.io/cloud-provider/controllers/route"
	controllersmetrics "k8s.io/component-base/metrics/prometheus/controllers"
	// The route controller reads its feature gates; the controller manager registers them.
	_ "k8s.io/controller-manager/pkg/features/register"
	"k8s.io/klog/v2"

	"github.com/stratus-cloud/stratus/cloudapi"
	"github.com/stratus-cloud/stratus/cloudapi/vpc"
	"github.com/stratus-cloud/stratus/cloudprovider/qcloud"
	"github.com/stratus-cloud/stratus/fakecloud"
	"github.com/stratus-cloud/stratus/fakecloud/api"
	fccvm "github.com/stratus-cloud/stratus/fakecloud/cvm"
	fcvpc "github.com/stratus-cloud/stratus/fakecloud/vpc"
	"github.com/stratus-cloud/stratus/routes"
)

const (
	region      = "ap-guangzhou"
	vpcID       = "vpc-bench"
	tableID     = "rtb-bench"
	clusterID   = "bench"
	clusterCIDR = "10.64.0.0/11" // 8,192 /24 pod CIDRs, outside the VPC's 10.1.0.0/16
)

var zones = []string{region + "-1", region + "-2", region + "-3"}

type result struct {
	mode      string
	nodes     int
	elapsed   time.Duration
	creates   int // CreateRoutes answered by fakecloud
	attempts  int // CreateRoutes attempts by the client, retries included
	failed    int // attempts that failed (throttled)
	describes int // DescribeInstances answered (next-hop checks through the instance lookups)
	timedOut  bool
	created   int64
}

func main() {
	nodes := flag.Int("nodes", 5000, "nodes (instances, pod CIDRs) to route")
	rate := flag.Float64("rate", 20, "per-action rate limit in requests/s, on the client and on fakecloud (the API's default is 20)")
	timeout := flag.Duration("timeout", 20*time.Minute, "give up on a mode after this long (a baseline cut short is a lower bound)")
	klog.InitFlags(nil)
	_ = flag.Set("v", "0")
	_ = flag.Set("logtostderr", "false")
	_ = flag.Set("stderrthreshold", "FATAL")
	flag.Parse()

	fmt.Printf("pod routes: %d nodes with a podCIDR each, empty route table, rate limit %.0f req/s per action (fakecloud and client), route quota raised to %d\n",
		*nodes, *rate, *nodes+100)
	fmt.Println("driver: real route controller (k8s.io/cloud-provider v0.37.2, 200 concurrent operations) + fake clientset; provider qcloud -> routes engine -> vpcroutes -> cloudapi -> fakecloud over loopback HTTP")
	var results []result
	for _, batching := range []bool{true, false} {
		r, err := run(*nodes, *rate, *timeout, batching)
		if err != nil {
			fmt.Fprintln(os.Stderr, "routes bench:", err)
			os.Exit(1)
		}
		results = append(results, r)
		fmt.Printf("  %s: done in %s\n", r.mode, r.elapsed.Round(time.Millisecond))
	}

	tw := tabwriter.NewWriter(os.Stdout, 2, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "\nmode\tnodes\ttime to all routes created\tCreateRoutes calls\tclient attempts (failed)\troutes per call\tDescribeInstances calls")
	for _, r := range results {
		t := r.elapsed.Round(time.Millisecond).String()
		if r.timedOut {
			t = fmt.Sprintf("TIMEOUT (%d of %d created)", r.created, r.nodes)
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%d\t%d (%d)\t%.1f\t%d\n", r.mode, r.nodes, t, r.creates, r.attempts, r.failed, float64(r.nodes)/float64(max(r.creates, 1)), r.describes)
	}
	tw.Flush()

	on, off := results[0], results[1]
	budget := (on.nodes + 49) / 50
	// A baseline that runs out of time still bounds the speedup from below: it would
	// have taken at least that long.
	speedup := off.elapsed.Seconds() / on.elapsed.Seconds()
	bound := ""
	if off.timedOut {
		bound = "at least "
		fmt.Printf("\none call per route did not finish within %s (%d of %d routes, %.1f routes/s): its time is a lower bound\n",
			off.elapsed.Round(time.Second), off.created, off.nodes, float64(off.created)/off.elapsed.Seconds())
	}
	fmt.Printf("\nbatching on: %d CreateRoutes calls (target <= %d, 1 per 50 routes); %s%.1fx faster than one call per route (target >= 20x)\n",
		on.creates, budget, bound, speedup)
	if on.timedOut || on.creates > budget || speedup < 20 {
		fmt.Println("target: MISSED")
		os.Exit(1)
	}
	fmt.Println("target: met")
}

// countingRoutes passes calls through and notes when the last wanted route was created.
type countingRoutes struct {
	cloudprovider.Routes
	want    int64
	created atomic.Int64
	done    chan struct{}
	once    sync.Once
}

func (c *countingRoutes) CreateRoute(ctx context.Context, cluster, hint string, r *cloudprovider.Route) error {
	err := c.Routes.CreateRoute(ctx, cluster, hint, r)
	if err == nil && c.created.Add(1) == c.want {
		c.once.Do(func() { close(c.done) })
	}
	return err
}

func run(n int, rate float64, timeout time.Duration, batching bool) (result, error) {
	mode := "batching off"
	if batching {
		mode = "batching on"
	}
	res := result{mode: mode, nodes: n}

	seed, ips := benchSeed(n)
	fc, err := fakecloud.New(fakecloud.Config{Seed: seed, RateLimit: rate})
	if err != nil {
		return res, fmt.Errorf("fakecloud: %w", err)
	}
	defer fc.Close()
	srv := httptest.NewServer(fc)
	defer srv.Close()
	id, key := fc.Credentials()
	creds := cloudapi.Credentials{SecretID: id, SecretKey: key}

	cfg := (&qcloud.Config{
		Region: region, VpcID: vpcID, ClusterID: clusterID, Endpoint: srv.URL, RouteTableID: tableID,
		Routes: qcloud.RoutesConfig{Batching: &batching},
		API:    qcloud.APIConfig{RateLimit: &rate},
	}).WithCredentials(creds)
	if errs := cfg.Validate(); len(errs) > 0 {
		return res, fmt.Errorf("config: %w", errs.ToAggregate())
	}
	var mu sync.Mutex
	hook := func(c cloudapi.Call) {
		if c.Action != "CreateRoutes" {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		res.attempts++
		if c.Err != nil {
			res.failed++
		}
	}
	cloud, err := qcloud.New(cfg, qcloud.Options{Hooks: []cloudapi.CallHook{hook}})
	if err != nil {
		return res, err
	}

	objs := make([]runtime.Object, n)
	podCIDRs := make([]string, n)
	for i := range n {
		podCIDRs[i] = podCIDR(i)
		objs[i] = newNode(fmt.Sprintf("node-%05d", i), ips[i], podCIDRs[i])
	}
	client := fake.NewClientset(objs...)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	factory := informers.NewSharedInformerFactory(client, 0)
	cloud.SetInformers(factory)
	r, ok := cloud.Routes()
	if !ok {
		return res, fmt.Errorf("the provider serves no routes")
	}
	counting := &countingRoutes{Routes: r, want: int64(n), done: make(chan struct{})}
	_, cidr, _ := net.ParseCIDR(clusterCIDR)
	rc, err := routecontroller.New(counting, client, factory.Core().V1().Nodes(), "kubernetes", []*net.IPNet{cidr})
	if err != nil {
		return res, err
	}
	factory.Start(ctx.Done())
	factory.WaitForCacheSync(ctx.Done())
	fc.ResetCalls()

	start := time.Now()
	go rc.Run(ctx, 10*time.Second, controllersmetrics.NewControllerManagerMetrics("bench"))
	select {
	case <-counting.done:
		res.elapsed = time.Since(start)
	case <-time.After(timeout):
		res.elapsed, res.timedOut = time.Since(start), true
	}
	res.created = counting.created.Load()
	calls := fc.Calls()
	res.creates, res.describes = calls["CreateRoutes"], calls["DescribeInstances"]
	cancel()
	if res.timedOut {
		return res, nil
	}
	return res, verify(srv.URL, creds, ips, podCIDRs)
}

// verify checks the route table route by route, so that speed is never bought with a
// wrong table.
func verify(endpoint string, creds cloudapi.Credentials, ips, podCIDRs []string) error {
	c, err := cloudapi.New(cloudapi.Config{Endpoint: endpoint, Region: region, Credentials: creds, RateLimit: -1})
	if err != nil {
		return err
	}
	out, err := vpc.New(c).DescribeRouteTables(context.Background(), &vpc.DescribeRouteTablesRequest{RouteTableIds: []string{tableID}})
	if err != nil {
		return fmt.Errorf("verify: %w", err)
	}
	got := map[string]vpc.Route{}
	for _, r := range out.RouteTableSet[0].RouteSet {
		if _, dup := got[r.DestinationCidrBlock]; dup {
			return fmt.Errorf("verify: two routes to %s", r.DestinationCidrBlock)
		}
		got[r.DestinationCidrBlock] = r
	}
	if len(got) != len(ips) {
		return fmt.Errorf("verify: %d routes in the table, want %d", len(got), len(ips))
	}
	for i, ip := range ips {
		r, ok := got[podCIDRs[i]]
		switch {
		case !ok:
			return fmt.Errorf("verify: no route to %s", podCIDRs[i])
		case r.GatewayId != ip || r.GatewayType != vpc.GatewayTypeNormalCVM || r.RouteDescription != routes.Marker(clusterID):
			return fmt.Errorf("verify: route to %s is %s %s %q, want NORMAL_CVM %s %q", podCIDRs[i], r.GatewayType, r.GatewayId, r.RouteDescription, ip, routes.Marker(clusterID))
		}
	}
	return nil
}

func podCIDR(i int) string {
	base := netip.MustParsePrefix(clusterCIDR).Addr().As4()
	v := uint32(base[0])<<24 | uint32(base[1])<<16 | uint32(base[2])<<8 | uint32(base[3])
	v += uint32(i) << 8
	return netip.PrefixFrom(netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}), 24).String()
}

// benchSeed declares a VPC with one subnet per zone, n instances spread over them with
// known private IPs, the route table, and a route quota that fits every node.
func benchSeed(n int) (*api.Seed, []string) {
	seed := &api.Seed{
		Region: region,
		Zones:  zones,
		// An account quota, not a per-request limit: the default of 200 routes per table
		// cannot hold 5,000 nodes.
		Limits: map[string]int{"routes-per-table": n + 100},
	}
	fcvpc.SetSeed(seed, []fcvpc.SeedVPC{{
		VpcID: vpcID, Name: "bench", CidrBlock: "10.1.0.0/16",
		Subnets: []fcvpc.SeedSubnet{
			{SubnetID: "subnet-bench1", Name: "b1", CidrBlock: "10.1.0.0/20", Zone: zones[0]},
			{SubnetID: "subnet-bench2", Name: "b2", CidrBlock: "10.1.16.0/20", Zone: zones[1]},
			{SubnetID: "subnet-bench3", Name: "b3", CidrBlock: "10.1.32.0/20", Zone: zones[2]},
		},
		RouteTables: []fcvpc.SeedRouteTable{{RouteTableID: tableID, Name: "pods", Default: true}},
	}})
	var instances []fccvm.SeedInstance
	ips := make([]string, n)
	for i := range n {
		z, k := i%3, i/3+10 // skip the low addresses a subnet reserves
		ips[i] = fmt.Sprintf("10.1.%d.%d", z*16+k/256, k%256)
		instances = append(instances, fccvm.SeedInstance{
			InstanceID:   fmt.Sprintf("ins-b%07d", i),
			Name:         fmt.Sprintf("node-%05d", i),
			Zone:         zones[z],
			InstanceType: "S5.MEDIUM2",
			SubnetID:     fmt.Sprintf("subnet-bench%d", z+1),
			PrivateIP:    ips[i],
		})
	}
	fccvm.SetSeed(seed, instances)
	return seed, ips
}

// newNode is an initialized Node with its podCIDR, as node IPAM sets it.
func newNode(name, ip, podCIDR string) *v1.Node {
	return &v1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec:       v1.NodeSpec{PodCIDR: podCIDR, PodCIDRs: []string{podCIDR}, ProviderID: "qcloud:///" + zones[0] + "/ins-" + name},
		Status: v1.NodeStatus{
			Addresses: []v1.NodeAddress{{Type: v1.NodeInternalIP, Address: ip}, {Type: v1.NodeHostName, Address: name}},
			Conditions: []v1.NodeCondition{{Type: v1.NodeReady, Status: v1.ConditionTrue, Reason: "KubeletReady",
				LastHeartbeatTime: metav1.Now(), LastTransitionTime: metav1.Now()}},
		},
	}
}
