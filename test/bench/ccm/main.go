// Command ccm measures node initialization by the cloud-controller-manager's cloud-node
// controller (the real one, from k8s.io/cloud-provider) driving the qcloud provider
// against fakecloud over loopback HTTP, with instance batching on and then off, in the
// same run:
//
//	go run ./test/bench/ccm            # 2,000 nodes, 1 worker (the upstream default)
//	go run ./test/bench/ccm -nodes 500 -workers 4
//
// Everything runs in one process: fakecloud (seeded with one instance per node) behind an
// httptest server, the provider with its real cloudapi client, and the controller with a
// fake clientset (no kube-apiserver: the figure is about cloud calls, and an apiserver on
// 2 shared cores would dominate the time). All nodes are registered at once, then the
// command waits until every uninitialized taint is gone.
//
// It prints, per mode, the time until all nodes are initialized and the DescribeInstances
// calls fakecloud answered (and the attempts the client made, retries included), then
// checks the target: batching on makes at most one call per 100 nodes plus retries, and at
// least 50x fewer than off. Every DescribeInstances is also checked, in front of
// fakecloud, against the real API's per-request limits (at most 100 InstanceIds, 10
// Filters of 5 Values, never InstanceIds with Filters, Limit at most 100), so the figure
// holds against the real cloud even where fakecloud is looser. It exits 1 when the target
// is missed or any request is over those limits.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime/pprof"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	cloudproviderapi "k8s.io/cloud-provider/api"
	nodecontroller "k8s.io/cloud-provider/controllers/node"
	controllersmetrics "k8s.io/component-base/metrics/prometheus/controllers"
	"k8s.io/klog/v2"

	"github.com/stratus-cloud/stratus/cloudapi"
	"github.com/stratus-cloud/stratus/cloudapi/cvm"
	"github.com/stratus-cloud/stratus/cloudprovider/qcloud"
	"github.com/stratus-cloud/stratus/fakecloud"
	"github.com/stratus-cloud/stratus/fakecloud/api"
	fakecvm "github.com/stratus-cloud/stratus/fakecloud/cvm"
	"github.com/stratus-cloud/stratus/fakecloud/vpc"
)

const (
	region = "ap-guangzhou"
	vpcID  = "vpc-bench"
)

var zones = []string{region + "-1", region + "-2", region + "-3"}

type result struct {
	mode      string
	nodes     int
	elapsed   time.Duration
	calls     int // DescribeInstances answered by fakecloud
	attempts  int // DescribeInstances attempts by the client, retries included
	errors    int // attempts that failed (throttled, injected)
	overLimit int // requests over the real API's per-request limits
	violation string
	timedOut  bool
	remaining int
}

func main() {
	nodes := flag.Int("nodes", 2000, "nodes (and instances) to register at once")
	workers := flag.Int("workers", 1, "cloud-node controller workers (--concurrent-node-syncs; upstream default 1)")
	rate := flag.Float64("rate", 20, "per-action rate limit in requests/s, on the client and on fakecloud (the API's default is 20)")
	ttl := flag.Duration("ttl", qcloud.DefaultCacheTTL, "instance listing cache TTL (instances.cacheTTL)")
	timeout := flag.Duration("timeout", 10*time.Minute, "give up on a mode after this long")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of the whole run to this file")
	klog.InitFlags(nil)
	_ = flag.Set("v", "0")
	_ = flag.Set("logtostderr", "false")
	_ = flag.Set("stderrthreshold", "FATAL")
	flag.Parse()
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			fmt.Fprintln(os.Stderr, "ccm bench:", err)
			os.Exit(1)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintln(os.Stderr, "ccm bench:", err)
			os.Exit(1)
		}
		defer pprof.StopCPUProfile()
	}

	fmt.Printf("ccm node initialization: %d nodes registered at once, %d worker(s), rate limit %.0f req/s per action, listing TTL %s\n",
		*nodes, *workers, *rate, *ttl)
	fmt.Println("driver: real cloud-node controller (k8s.io/cloud-provider v0.37.2) + fake clientset; provider qcloud -> cloudapi -> fakecloud over loopback HTTP")
	var results []result
	for _, batching := range []bool{true, false} {
		r, err := run(*nodes, *workers, *rate, *ttl, *timeout, batching)
		if err != nil {
			fmt.Fprintln(os.Stderr, "ccm bench:", err)
			os.Exit(1)
		}
		results = append(results, r)
	}

	tw := tabwriter.NewWriter(os.Stdout, 2, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "\nmode\tnodes\ttime to all initialized\tDescribeInstances calls\tclient attempts (failed)\tcalls per 100 nodes\tover the real limits")
	for _, r := range results {
		t := r.elapsed.Round(time.Millisecond).String()
		if r.timedOut {
			t = fmt.Sprintf("TIMEOUT (%d left)", r.remaining)
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%d\t%d (%d)\t%.2f\t%d\n", r.mode, r.nodes, t, r.calls, r.attempts, r.errors, float64(r.calls)*100/float64(r.nodes), r.overLimit)
	}
	tw.Flush()
	for _, r := range results {
		if r.overLimit > 0 {
			fmt.Printf("%s: %d DescribeInstances over the real limits, e.g. %s\n", r.mode, r.overLimit, r.violation)
		}
	}

	on, off := results[0], results[1]
	budget := (on.nodes+99)/100 + on.errors
	ratio := float64(off.calls) / float64(max(on.calls, 1))
	fmt.Printf("\nbatching on: %d calls (budget: %d = 1 per 100 nodes + %d retried failures); off/on = %.1fx fewer calls (target >= 50x); time %.1fx faster\n",
		on.calls, budget, on.errors, ratio, off.elapsed.Seconds()/on.elapsed.Seconds())
	if on.timedOut || off.timedOut || on.calls > budget || ratio < 50 || on.overLimit > 0 || off.overLimit > 0 {
		fmt.Println("target: MISSED")
		os.Exit(1)
	}
	fmt.Println("target: met")
}

// run initializes n nodes against a fresh fakecloud with one provider configuration.
func run(n, workers int, rate float64, ttl, timeout time.Duration, batching bool) (result, error) {
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
	var over atomic.Int64
	var firstViolation atomic.Value
	srv := httptest.NewServer(strictDescribeInstances(fc, func(v string) {
		over.Add(1)
		firstViolation.CompareAndSwap(nil, v)
	}))
	defer srv.Close()
	id, key := fc.Credentials()

	cfg := (&qcloud.Config{
		Region: region, VpcID: vpcID, ClusterID: "bench", Endpoint: srv.URL,
		Instances: qcloud.InstancesConfig{Batching: &batching, CacheTTL: &metav1.Duration{Duration: ttl}},
		API:       qcloud.APIConfig{RateLimit: &rate},
	}).WithCredentials(cloudapi.Credentials{SecretID: id, SecretKey: key})
	if errs := cfg.Validate(); len(errs) > 0 {
		return res, fmt.Errorf("config: %w", errs.ToAggregate())
	}
	var mu sync.Mutex
	hook := func(c cloudapi.Call) {
		if c.Action != "DescribeInstances" {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		res.attempts++
		if c.Err != nil {
			res.errors++
		}
	}
	cloud, err := qcloud.New(cfg, qcloud.Options{Hooks: []cloudapi.CallHook{hook}})
	if err != nil {
		return res, err
	}
	defer cloud.Stop()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// The field-managed fake clientset costs a few ms per write (it rebuilds a REST mapper
	// on every call); both modes pay it. The simple one cannot be used: its watch channel
	// holds only 100 events and panics under 2,000 registrations.
	client := fake.NewClientset()
	cloud.SetKubeClient(client, ctx.Done())
	factory := informers.NewSharedInformerFactory(client, 0)
	nodeInformer := factory.Core().V1().Nodes()
	cnc, err := nodecontroller.NewCloudNodeController(nodeInformer, client, cloud, 5*time.Minute, int32(workers), int32(workers))
	if err != nil {
		return res, err
	}
	factory.Start(ctx.Done())
	go cnc.RunWithContext(ctx, controllersmetrics.NewControllerManagerMetrics("bench"))
	if !waitSynced(ctx, nodeInformer.Informer().HasSynced) {
		return res, fmt.Errorf("node informer did not sync")
	}
	fc.ResetCalls()

	// Register every node at once, as a fleet of kubelets starting together would.
	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			if _, err := client.CoreV1().Nodes().Create(ctx, newNode(fmt.Sprintf("node-%05d", i), ips[i]), metav1.CreateOptions{}); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		return res, fmt.Errorf("register node: %w", err)
	}

	deadline := time.Now().Add(timeout)
	for {
		left := uninitialized(nodeInformer.Lister().List(labels.Everything()))
		if left == 0 && len(mustList(nodeInformer.Lister().List(labels.Everything()))) == n {
			res.elapsed = time.Since(start)
			break
		}
		if time.Now().After(deadline) {
			res.elapsed, res.timedOut, res.remaining = time.Since(start), true, left
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	res.calls = fc.Calls()["DescribeInstances"]
	res.overLimit = int(over.Load())
	if v, ok := firstViolation.Load().(string); ok {
		res.violation = v
	}
	if err := verify(nodeInformer.Lister().List(labels.Everything())); err != nil && !res.timedOut {
		return res, fmt.Errorf("%s: %w", mode, err)
	}
	return res, nil
}

func waitSynced(ctx context.Context, synced func() bool) bool {
	for range 500 {
		if synced() {
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(10 * time.Millisecond):
		}
	}
	return false
}

func mustList(nodes []*v1.Node, err error) []*v1.Node {
	if err != nil {
		return nil
	}
	return nodes
}

func uninitialized(nodes []*v1.Node, err error) int {
	if err != nil {
		return -1
	}
	left := 0
	for _, n := range nodes {
		for _, t := range n.Spec.Taints {
			if t.Key == cloudproviderapi.TaintExternalCloudProvider {
				left++
				break
			}
		}
	}
	return left
}

// verify checks that every node got what its instance says, so that speed is never
// bought with a wrong answer.
func verify(nodes []*v1.Node, err error) error {
	if err != nil {
		return err
	}
	for _, n := range nodes {
		if n.Spec.ProviderID == "" || n.Labels[v1.LabelTopologyZone] == "" || n.Labels[v1.LabelInstanceTypeStable] == "" {
			return fmt.Errorf("node %s initialized without providerID/zone/type: %q %v", n.Name, n.Spec.ProviderID, n.Labels)
		}
	}
	return nil
}

// benchSeed declares a VPC with one subnet per zone and n instances spread over them,
// with known private IPs.
func benchSeed(n int) (*api.Seed, []string) {
	seed := &api.Seed{Region: region, Zones: zones}
	vpc.SetSeed(seed, []vpc.SeedVPC{{
		VpcID: vpcID, Name: "bench", CidrBlock: "10.1.0.0/16",
		Subnets: []vpc.SeedSubnet{
			{SubnetID: "subnet-bench1", Name: "b1", CidrBlock: "10.1.0.0/20", Zone: zones[0]},
			{SubnetID: "subnet-bench2", Name: "b2", CidrBlock: "10.1.16.0/20", Zone: zones[1]},
			{SubnetID: "subnet-bench3", Name: "b3", CidrBlock: "10.1.32.0/20", Zone: zones[2]},
		},
	}})
	var instances []fakecvm.SeedInstance
	ips := make([]string, n)
	for i := range n {
		z, k := i%3, i/3+10 // skip the low addresses a subnet reserves
		ips[i] = fmt.Sprintf("10.1.%d.%d", z*16+k/256, k%256)
		instances = append(instances, fakecvm.SeedInstance{
			InstanceID:   fmt.Sprintf("ins-b%07d", i),
			Name:         fmt.Sprintf("node-%05d", i),
			Zone:         zones[z],
			InstanceType: "S5.MEDIUM2",
			SubnetID:     fmt.Sprintf("subnet-bench%d", z+1),
			PrivateIP:    ips[i],
		})
	}
	fakecvm.SetSeed(seed, instances)
	return seed, ips
}

// newNode is the Node a kubelet with --cloud-provider=external and --node-ip registers.
func newNode(name, ip string) *v1.Node {
	return &v1.Node{
		ObjectMeta: metav1.ObjectMeta{
			Name:        name,
			Annotations: map[string]string{cloudproviderapi.AnnotationAlphaProvidedIPAddr: ip},
		},
		Spec: v1.NodeSpec{Taints: []v1.Taint{{Key: cloudproviderapi.TaintExternalCloudProvider, Value: "true", Effect: v1.TaintEffectNoSchedule}}},
		Status: v1.NodeStatus{
			Addresses: []v1.NodeAddress{{Type: v1.NodeInternalIP, Address: ip}, {Type: v1.NodeHostName, Address: name}},
			Conditions: []v1.NodeCondition{{Type: v1.NodeReady, Status: v1.ConditionTrue, Reason: "KubeletReady",
				LastHeartbeatTime: metav1.Now(), LastTransitionTime: metav1.Now()}},
		},
	}
}

// strictDescribeInstances passes every request to next and reports each DescribeInstances
// that the real API would refuse (tencentcloud-sdk-go v1.0.162 cvm/v20170312 models.go).
func strictDescribeInstances(next http.Handler, report func(string)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-TC-Action") == "DescribeInstances" {
			body, err := io.ReadAll(r.Body)
			if err != nil {
				report(fmt.Sprintf("unreadable body: %v", err))
			}
			r.Body = io.NopCloser(bytes.NewReader(body))
			var req cvm.DescribeInstancesRequest
			if err := json.Unmarshal(body, &req); err != nil {
				report(fmt.Sprintf("undecodable body %.200s: %v", body, err))
			} else if v := overRealLimits(&req); v != "" {
				report(fmt.Sprintf("%s: %.300s", v, body))
			}
		}
		next.ServeHTTP(w, r)
	})
}

func overRealLimits(req *cvm.DescribeInstancesRequest) string {
	switch {
	case len(req.InstanceIds) > 0 && len(req.Filters) > 0:
		return "InstanceIds and Filters in one request"
	case len(req.InstanceIds) > 100:
		return fmt.Sprintf("%d InstanceIds (at most 100)", len(req.InstanceIds))
	case len(req.Filters) > 10:
		return fmt.Sprintf("%d Filters (at most 10)", len(req.Filters))
	case req.Limit != nil && (*req.Limit > 100 || *req.Limit < 0):
		return fmt.Sprintf("Limit %d (at most 100)", *req.Limit)
	}
	for _, f := range req.Filters {
		if len(f.Values) > 5 {
			return fmt.Sprintf("filter %s with %d Values (at most 5)", f.Name, len(f.Values))
		}
	}
	return ""
}
