// Command lb measures the LoadBalancer engine driven by the real service controller
// (k8s.io/cloud-provider's) against fakecloud over loopback HTTP, and a naive baseline
// against its own fakecloud with the same settings, in the same run:
//
//	go run ./test/bench/lb                 # 1,000 Services x 200 nodes, 20 req/s, 2s tasks
//	go run ./test/bench/lb -services 100 -nodes 50 -task 500ms
//
// Scenario 1: 1,000 Services are created at once, from an empty cloud, until every one
// has its ingress IP. Scenario 2: once everything is quiet, one node is added, until every
// load balancer has it as a target (its write committed) and until that write's task is
// over too.
//
// fakecloud limits every action to -rate requests per second and every CLB write starts a
// task that runs -task (the load balancer refuses other writes meanwhile). Stratus runs
// as in the CCM: provider qcloud (engine + CLB adapter) with its real cloudapi client
// (client-side limit -rate per action), under the upstream service controller with
// -workers (--concurrent-service-syncs) over a fake clientset. The baseline is the naive
// controller: per Service, serially, DescribeLoadBalancers, CreateLoadBalancer and
// CreateListener each followed by a wait for its task, then RegisterTargets for one target
// at a time, each waited for; adding a node is a Describe and one RegisterTargets per
// Service. With real task times it needs minutes per Service, so it runs for
// -baseline-budget: its fixed part is measured on the first Service, its per-node part on
// as many registrations as fit, and its totals for every Service and node are projected
// from those (it is serial and every Service costs the same); the table says so.
//
// The rate-limit bound: each load balancer needs at least one CreateLoadBalancer, one
// CreateListener and one BatchRegisterTargets (200 targets fit in one call of 500), in
// that order, each after the previous task ended. A per-action token bucket of R req/s
// holds R tokens, so S calls of one action need (S - R)/R seconds, and the last load
// balancer's chain adds two task durations after its creation: bound = (S - R)/R +
// 2*task. A node added needs one BatchRegisterTargets per load balancer: (S - R)/R until
// the last write, + task until it took effect. The targets: Stratus within 1.5x of the
// bound and >= 10x fewer calls than the baseline (create), and <= 1 write per load
// balancer, no read, within 1.5x of the bound (node added). It exits 1 when one is missed.
package main

import (
	"context"
	"flag"
	"fmt"
	"net/http/httptest"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	utilfeature "k8s.io/apiserver/pkg/util/feature"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	servicecontroller "k8s.io/cloud-provider/controllers/service"
	controllersmetrics "k8s.io/component-base/metrics/prometheus/controllers"
	"k8s.io/klog/v2"

	"github.com/stratus-cloud/stratus/cloudapi"
	"github.com/stratus-cloud/stratus/cloudapi/clb"
	"github.com/stratus-cloud/stratus/cloudprovider/providerid"
	"github.com/stratus-cloud/stratus/cloudprovider/qcloud"
	"github.com/stratus-cloud/stratus/fakecloud"
	"github.com/stratus-cloud/stratus/fakecloud/api"
	fcclb "github.com/stratus-cloud/stratus/fakecloud/clb"
	fccvm "github.com/stratus-cloud/stratus/fakecloud/cvm"
	"github.com/stratus-cloud/stratus/fakecloud/store"
	fcvpc "github.com/stratus-cloud/stratus/fakecloud/vpc"
)

const (
	region = "ap-guangzhou"
	zone   = "ap-guangzhou-1"
	vpcID  = "vpc-bench"
)

type params struct {
	services, nodes, workers int
	rate                     float64
	task, budget, timeout    time.Duration
}

// row is one line of a table.
type row struct {
	who       string
	services  int // completed
	projected bool
	elapsed   time.Duration
	untilDone time.Duration  // node added: until the last write's task ended
	calls     map[string]int // answered by fakecloud, every attempt
	refused   map[string]int // "action code": attempts the cloud refused (throttled, busy)
}

func (r row) total() int {
	n := 0
	for _, c := range r.calls {
		n += c
	}
	return n
}

func main() {
	var p params
	flag.IntVar(&p.services, "services", 1000, "Services of type LoadBalancer created at once")
	flag.IntVar(&p.nodes, "nodes", 200, "nodes (every one a target of every load balancer)")
	flag.IntVar(&p.workers, "workers", 100, "service controller workers (--concurrent-service-syncs)")
	flag.Float64Var(&p.rate, "rate", 20, "per-action rate limit in requests/s, on fakecloud and on the client")
	flag.DurationVar(&p.task, "task", 2*time.Second, "how long every CLB task runs (fakecloud's LBTask delay)")
	flag.DurationVar(&p.budget, "baseline-budget", 60*time.Second, "how long the naive baseline runs before its totals are projected")
	flag.DurationVar(&p.timeout, "timeout", 15*time.Minute, "give up on Stratus's scenario after this long")
	klog.InitFlags(nil)
	_ = flag.Set("v", "0")
	_ = flag.Set("logtostderr", "false")
	_ = flag.Set("stderrthreshold", "FATAL")
	flag.Parse()

	fmt.Printf("load balancers: %d Services x %d nodes; fakecloud and client at %.0f req/s per action; every CLB task runs %s; %d service controller workers\n",
		p.services, p.nodes, p.rate, p.task, p.workers)
	fmt.Println("Stratus: upstream service controller (k8s.io/cloud-provider v0.37.2) + fake clientset; provider qcloud -> engine -> CLB adapter -> cloudapi -> fakecloud over loopback HTTP")

	create, add, err := runStratus(p)
	if err != nil {
		fail(err)
	}
	baseCreate, baseAdd, err := runBaseline(p)
	if err != nil {
		fail(err)
	}

	// A per-action token bucket of rate r holds r tokens (burst), so N calls of one action
	// need at least (N - r)/r seconds.
	rate := p.rate
	calls := float64(p.services) - rate
	createBound := time.Duration(max(calls, 0)/rate*float64(time.Second)) + 2*p.task
	addBound := time.Duration(max(calls, 0) / rate * float64(time.Second))
	printTable("1) Services created at once, until every ingress IP is set", []row{create, baseCreate}, p.services)
	fmt.Printf("rate-limit bound: (%d creations - %.0f burst) / %.0f req/s + 2 x %s tasks = %s; Stratus %s = %.2fx the bound (target <= 1.5x)\n",
		p.services, rate, rate, p.task, createBound.Round(time.Millisecond), create.elapsed.Round(time.Millisecond), create.elapsed.Seconds()/createBound.Seconds())
	fmt.Printf("calls: Stratus %d, baseline %d (projected) = %.1fx fewer (target >= 10x); Stratus attempts refused and sent again: %v\n\n",
		create.total(), baseCreate.total(), float64(baseCreate.total())/float64(max(create.total(), 1)), create.refused)

	printTable("2) One node added to every Service, until every load balancer has it", []row{add, baseAdd}, p.services)
	// A write the cloud refused (throttled at the per-action limit, or busy) and the
	// client sent again changed nothing: count what the cloud executed.
	writes, reads, refusedWrites := 0, 0, 0
	for a, c := range add.calls {
		if strings.HasPrefix(a, "Describe") {
			reads += c
		} else {
			writes += c
		}
	}
	for k, c := range add.refused {
		if !strings.HasPrefix(k, "Describe") {
			refusedWrites += c
		}
	}
	writes -= refusedWrites
	fmt.Printf("rate-limit bound: (%d writes - %.0f burst) / %.0f req/s = %s until the last write (+ %s until its task ended = %s); Stratus %s = %.2fx (until the task ended: %s = %.2fx)\n",
		p.services, rate, rate, addBound.Round(time.Millisecond), p.task, (addBound + p.task).Round(time.Millisecond),
		add.elapsed.Round(time.Millisecond), add.elapsed.Seconds()/addBound.Seconds(),
		add.untilDone.Round(time.Millisecond), add.untilDone.Seconds()/(addBound+p.task).Seconds())
	fmt.Printf("Stratus: %.2f writes per load balancer executed, %d reads (target <= 1 write, 0 reads); attempts refused and sent again: %v\n",
		float64(writes)/float64(p.services), reads, add.refused)

	ok := create.elapsed <= createBound*3/2 && float64(baseCreate.total()) >= 10*float64(create.total()) &&
		writes <= p.services && reads == 0 && add.elapsed <= addBound*3/2 && add.untilDone <= (addBound+p.task)*3/2
	if !ok {
		fmt.Println("target: MISSED")
		os.Exit(1)
	}
	fmt.Println("target: met")
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "lb bench:", err)
	os.Exit(1)
}

func printTable(title string, rows []row, services int) {
	fmt.Println("\n" + title)
	actions := map[string]bool{}
	for _, r := range rows {
		for a := range r.calls {
			actions[a] = true
		}
	}
	names := slices.Sorted(func(yield func(string) bool) {
		for a := range actions {
			if !yield(a) {
				return
			}
		}
	})
	tw := tabwriter.NewWriter(os.Stdout, 2, 8, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "\twall time\tcalls\t")
	for _, a := range names {
		fmt.Fprintf(tw, "%s\t", a)
	}
	fmt.Fprintln(tw)
	for _, r := range rows {
		who := r.who
		if r.projected {
			who += fmt.Sprintf(", measured on %d of %d Services, projected", r.services, services)
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t", who, r.elapsed.Round(time.Millisecond), r.total())
		for _, a := range names {
			fmt.Fprintf(tw, "%d\t", r.calls[a])
		}
		fmt.Fprintln(tw)
	}
	tw.Flush()
}

// newCloud is a fakecloud with nodes instances (+1 spare for the node added), the
// per-action rate limit and the task delay, served over loopback HTTP.
func newCloud(p params) (*fakecloud.Cloud, *httptest.Server, error) {
	seed := &api.Seed{
		Region: region, Zones: []string{zone},
		// Account quotas, not per-request limits: a region holds 100 load balancers by
		// default, raised here for the benchmark's 1,000.
		Limits: map[string]int{"clb-per-region": 2 * p.services},
	}
	fcvpc.SetSeed(seed, []fcvpc.SeedVPC{{VpcID: vpcID, CidrBlock: "10.1.0.0/16", Subnets: []fcvpc.SeedSubnet{{SubnetID: "subnet-bench1", CidrBlock: "10.1.0.0/20", Zone: zone}}}})
	var instances []fccvm.SeedInstance
	for i := range p.nodes + 1 {
		instances = append(instances, fccvm.SeedInstance{InstanceID: instanceID(i), Name: fmt.Sprintf("node-%d", i), Zone: zone,
			SubnetID: "subnet-bench1", PrivateIP: fmt.Sprintf("10.1.%d.%d", i/250, i%250+10)})
	}
	fccvm.SetSeed(seed, instances)
	fc, err := fakecloud.New(fakecloud.Config{Seed: seed, RateLimit: p.rate, Delays: &fakecloud.Delays{CLB: fcclb.Delays{Task: p.task}}})
	if err != nil {
		return nil, nil, err
	}
	return fc, httptest.NewServer(fc), nil
}

func instanceID(i int) string { return fmt.Sprintf("ins-b%07d", i) }

func node(i int) *v1.Node {
	return &v1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("node-%d", i)},
		Spec:       v1.NodeSpec{ProviderID: providerid.Format(zone, instanceID(i))},
		Status:     v1.NodeStatus{Conditions: []v1.NodeCondition{{Type: v1.NodeReady, Status: v1.ConditionTrue}}},
	}
}

func service(i int) *v1.Service {
	return &v1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: fmt.Sprintf("svc-%04d", i), UID: types.UID(fmt.Sprintf("00000000-0000-0000-0000-%012d", i))},
		Spec: v1.ServiceSpec{Type: v1.ServiceTypeLoadBalancer, ExternalTrafficPolicy: v1.ServiceExternalTrafficPolicyCluster,
			Ports: []v1.ServicePort{{Name: "http", Protocol: v1.ProtocolTCP, Port: 80, NodePort: int32(30000 + i%2000)}}},
	}
}

// counts are fakecloud's per-action answers.
func counts(fc *fakecloud.Cloud) map[string]int {
	out := map[string]int{}
	for a, c := range fc.Calls() {
		out[a] = c
	}
	return out
}

// lbState reads, from fakecloud's store (not through the API, so it costs no call), how
// many load balancers have every target and when the last task ends.
func lbState(fc *fakecloud.Cloud, wantTarget string, wantTargets int) (complete int, lastTask time.Time) {
	w := fc.World()
	lbs, listeners := fcclb.LoadBalancers(w.Store), fcclb.Listeners(w.Store)
	_ = w.Store.View(func(tx *store.Tx) error {
		full := map[string]bool{}
		for _, l := range listeners.List(tx) {
			has := wantTarget == "" || slices.ContainsFunc(l.Targets, func(t fcclb.Target) bool { return t.InstanceId == wantTarget })
			full[l.LoadBalancerId] = has && len(l.Targets) == wantTargets
		}
		for _, lb := range lbs.List(tx) {
			if full[lb.LoadBalancerId] {
				complete++
			}
			if lb.BusyUntil.After(lastTask) {
				lastTask = lb.BusyUntil
			}
		}
		return nil
	})
	return complete, lastTask
}

func runStratus(p params) (row, row, error) {
	create := row{who: "Stratus", services: p.services}
	add := row{who: "Stratus", services: p.services}
	fc, srv, err := newCloud(p)
	if err != nil {
		return create, add, err
	}
	defer fc.Close()
	defer srv.Close()
	id, key := fc.Credentials()
	rate := p.rate
	cfg := (&qcloud.Config{Region: region, VpcID: vpcID, ClusterID: "bench", Endpoint: srv.URL, API: qcloud.APIConfig{RateLimit: &rate}}).
		WithCredentials(cloudapi.Credentials{SecretID: id, SecretKey: key})
	if errs := cfg.Validate(); len(errs) > 0 {
		return create, add, errs.ToAggregate()
	}
	var mu sync.Mutex
	refused := map[string]int{}
	hook := func(c cloudapi.Call) {
		if c.Err != nil {
			mu.Lock()
			refused[c.Action+" "+c.Code]++
			mu.Unlock()
		}
	}
	takeRefused := func() map[string]int {
		mu.Lock()
		defer mu.Unlock()
		out := refused
		refused = map[string]int{}
		return out
	}
	cloud, err := qcloud.New(cfg, qcloud.Options{Hooks: []cloudapi.CallHook{hook}})
	if err != nil {
		return create, add, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// The simple clientset: the field-managed one serializes every write through a merge
	// and would be the bottleneck here, not the cloud. The Services exist before the
	// controller starts (they are "created at once"), so the watch never sees a burst.
	var objs []runtime.Object
	for i := range p.nodes {
		objs = append(objs, node(i))
	}
	for i := range p.services {
		objs = append(objs, service(i))
	}
	client := fake.NewSimpleClientset(objs...)
	cloud.SetKubeClient(client, ctx.Done())
	factory := informers.NewSharedInformerFactory(client, 0)
	cloud.SetInformers(factory)
	sc, err := servicecontroller.New(cloud, client, factory.Core().V1().Services(), factory.Core().V1().Nodes(), "kubernetes", utilfeature.DefaultFeatureGate)
	if err != nil {
		return create, add, err
	}
	factory.Start(ctx.Done())
	factory.WaitForCacheSync(ctx.Done())
	svcLister := factory.Core().V1().Services().Lister()
	fc.ResetCalls()
	start := time.Now()
	go sc.Run(ctx, p.workers, controllersmetrics.NewControllerManagerMetrics("bench"))
	deadline := start.Add(p.timeout)
	lastProgress := time.Now()
	for {
		svcs, _ := svcLister.List(labels.Everything())
		ready := 0
		for _, s := range svcs {
			if len(s.Status.LoadBalancer.Ingress) > 0 {
				ready++
			}
		}
		if ready == p.services {
			create.elapsed = time.Since(start)
			break
		}
		if time.Now().After(deadline) {
			return create, add, fmt.Errorf("only %d of %d Services got an ingress IP in %s", ready, p.services, p.timeout)
		}
		if time.Since(lastProgress) > 10*time.Second {
			lastProgress = time.Now()
			fmt.Fprintf(os.Stderr, "  %s: %d of %d Services have an ingress IP; calls %v\n", time.Since(start).Round(time.Second), ready, p.services, fc.Calls())
		}
		time.Sleep(20 * time.Millisecond)
	}
	create.calls, create.refused = counts(fc), takeRefused()
	if n, _ := lbState(fc, "", p.nodes); n != p.services {
		return create, add, fmt.Errorf("only %d of %d load balancers have all %d targets", n, p.services, p.nodes)
	}

	// Quiet: every task over, and the controller's follow-up syncs (the annotation Stratus
	// writes) done, before the node comes.
	for {
		_, last := lbState(fc, "", p.nodes)
		before := fc.Calls()
		time.Sleep(p.task + time.Second)
		if time.Now().After(last) && mapsEqual(before, fc.Calls()) {
			break
		}
	}
	fc.ResetCalls()
	takeRefused()
	start = time.Now()
	if _, err := client.CoreV1().Nodes().Create(ctx, node(p.nodes), metav1.CreateOptions{}); err != nil {
		return create, add, err
	}
	for {
		n, last := lbState(fc, instanceID(p.nodes), p.nodes+1)
		if n == p.services {
			add.elapsed = time.Since(start)
			add.untilDone = last.Sub(start)
			break
		}
		if time.Since(start) > p.timeout {
			return create, add, fmt.Errorf("only %d of %d load balancers got the new node in %s", n, p.services, p.timeout)
		}
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(time.Second) // let a straggling extra call show in the counts
	add.calls, add.refused = counts(fc), takeRefused()
	return create, add, nil
}

func mapsEqual(a, b map[string]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// runBaseline is the naive controller: serial, one call per thing, waiting for each task.
// A Service costs a fixed part (describe, create, listener, each waited for) and a part
// per node (one RegisterTargets, waited for). Both are measured, the fixed part on the
// first Service and the per-node part on as many registrations as the budget allows, and
// the totals for every Service and node are projected from them.
func runBaseline(p params) (row, row, error) {
	create := row{who: "naive baseline", projected: true}
	add := row{who: "naive baseline", projected: true}
	fc, srv, err := newCloud(p)
	if err != nil {
		return create, add, err
	}
	defer fc.Close()
	defer srv.Close()
	id, key := fc.Credentials()
	c, err := cloudapi.New(cloudapi.Config{Endpoint: srv.URL, Region: region, Credentials: cloudapi.Credentials{SecretID: id, SecretKey: key}, RateLimit: p.rate})
	if err != nil {
		return create, add, err
	}
	api := clb.New(c)
	ctx := context.Background()
	wait := func(reqID string) error { return api.WaitTask(ctx, reqID) }
	type made struct{ lb, listener string }
	newLB := func(i int) (made, error) {
		name := fmt.Sprintf("svc-%04d", i)
		if _, err := api.DescribeLoadBalancers(ctx, &clb.DescribeLoadBalancersRequest{LoadBalancerName: name}); err != nil {
			return made{}, err
		}
		out, err := api.CreateLoadBalancer(ctx, &clb.CreateLoadBalancerRequest{LoadBalancerType: clb.TypeOpen, VpcId: vpcID, LoadBalancerName: name})
		if err != nil {
			return made{}, err
		}
		if err := wait(out.RequestId); err != nil {
			return made{}, err
		}
		ls, err := api.CreateListener(ctx, &clb.CreateListenerRequest{LoadBalancerId: out.LoadBalancerIds[0], Protocol: clb.ProtocolTCP, Ports: []int64{80}})
		if err != nil {
			return made{}, err
		}
		return made{out.LoadBalancerIds[0], ls.ListenerIds[0]}, wait(ls.RequestId)
	}
	register := func(m made, i, n int) error {
		r, err := api.RegisterTargets(ctx, &clb.RegisterTargetsRequest{LoadBalancerId: m.lb, ListenerId: m.listener,
			Targets: []clb.Target{{InstanceId: cloudapi.String(instanceID(n)), Port: cloudapi.Int64(int64(30000 + i%2000))}}})
		if err != nil {
			return err
		}
		return wait(r.RequestId)
	}

	// The fixed part, on the first Service.
	start := time.Now()
	first, err := newLB(0)
	if err != nil {
		return create, add, err
	}
	fixedTime, fixedCalls := time.Since(start), counts(fc)
	// The per-node part: registrations, Service after Service, within the budget.
	fc.ResetCalls()
	start = time.Now()
	regs, lbs := 0, []made{first}
	for i := 0; i < p.services && time.Since(start) < p.budget; i++ {
		m := first
		if i > 0 {
			if m, err = newLB(i); err != nil {
				return create, add, err
			}
			lbs = append(lbs, m)
		}
		for n := 0; n < p.nodes && time.Since(start) < p.budget; n++ {
			if err := register(m, i, n); err != nil {
				return create, add, err
			}
			regs++
		}
	}
	regTime, regCalls := time.Since(start), counts(fc)
	// Load balancers made after the first one count in regCalls: take their fixed share out.
	extra := len(lbs) - 1
	create.services = len(lbs)
	create.calls = map[string]int{}
	perService := float64(p.nodes)
	for a, c := range fixedCalls {
		create.calls[a] += c * p.services
		regCalls[a] -= c * extra
	}
	for a, c := range regCalls {
		create.calls[a] += int(float64(c) / float64(regs) * perService * float64(p.services))
	}
	regTime -= time.Duration(extra) * fixedTime
	create.elapsed = time.Duration(float64(p.services) * (float64(fixedTime) + float64(regTime)/float64(regs)*perService))
	create.who = fmt.Sprintf("naive baseline (%d registrations measured)", regs)

	// A node added: per Service, find the load balancer, register the node, wait. Measured
	// on a few load balancers and projected.
	for len(lbs) < 5 {
		m, err := newLB(len(lbs))
		if err != nil {
			return create, add, err
		}
		lbs = append(lbs, m)
	}
	fc.ResetCalls()
	start = time.Now()
	for i, m := range lbs {
		if _, err := api.DescribeLoadBalancers(ctx, &clb.DescribeLoadBalancersRequest{LoadBalancerIds: []string{m.lb}}); err != nil {
			return create, add, err
		}
		if err := register(m, i, p.nodes); err != nil {
			return create, add, err
		}
	}
	add.services = len(lbs)
	add.elapsed = time.Duration(float64(time.Since(start)) * float64(p.services) / float64(len(lbs)))
	add.untilDone = add.elapsed
	add.calls = project(counts(fc), len(lbs), p.services)
	return create, add, nil
}

// project scales measured counts of done Services to all Services.
func project(calls map[string]int, done, all int) map[string]int {
	out := map[string]int{}
	keys := make([]string, 0, len(calls))
	for k := range calls {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		out[k] = calls[k] * all / max(done, 1)
	}
	return out
}
