package clbbackend_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/stratus-cloud/stratus/cloudapi"
	"github.com/stratus-cloud/stratus/cloudapi/clb"
	"github.com/stratus-cloud/stratus/cloudapi/vpc"
	"github.com/stratus-cloud/stratus/cloudprovider/clbbackend"
	"github.com/stratus-cloud/stratus/cloudprovider/providerid"
	"github.com/stratus-cloud/stratus/fakecloud"
	"github.com/stratus-cloud/stratus/fakecloud/api"
	fcclb "github.com/stratus-cloud/stratus/fakecloud/clb"
	"github.com/stratus-cloud/stratus/fakecloud/cvm"
	fcvpc "github.com/stratus-cloud/stratus/fakecloud/vpc"
	"github.com/stratus-cloud/stratus/loadbalancer"
)

const cluster = "cls-test"

// testSeed is one VPC with a subnet and n instances node-1..node-n (10.0.1.11, ...).
func testSeed(n int) *api.Seed {
	s := &api.Seed{
		Region: "ap-guangzhou",
		Zones:  []string{"ap-guangzhou-1"},
		Limits: map[string]int{},
	}
	fcvpc.SetSeed(s, []fcvpc.SeedVPC{{VpcID: "vpc-test1", CidrBlock: "10.0.0.0/16", Subnets: []fcvpc.SeedSubnet{
		{SubnetID: "subnet-gz1", CidrBlock: "10.0.1.0/24", Zone: "ap-guangzhou-1"},
		{SubnetID: "subnet-big1", CidrBlock: "10.0.64.0/18", Zone: "ap-guangzhou-1"},
	}}})
	var instances []cvm.SeedInstance
	for i := 1; i <= n; i++ {
		sub, ip := "subnet-gz1", fmt.Sprintf("10.0.1.%d", 10+i)
		if i > 200 {
			sub, ip = "subnet-big1", fmt.Sprintf("10.0.%d.%d", 64+i/250, i%250+1)
		}
		instances = append(instances, cvm.SeedInstance{InstanceID: fmt.Sprintf("ins-node%04d", i), Name: fmt.Sprintf("node-%d", i),
			Zone: "ap-guangzhou-1", SubnetID: sub, PrivateIP: ip})
	}
	cvm.SetSeed(s, instances)
	return s
}

type env struct {
	t      *testing.T
	cloud  *fakecloud.Cloud
	srv    *httptest.Server
	engine *loadbalancer.Engine
	calls  *cloudapi.CallCounter
	clb    *clb.Client // the test's own client, not counted
	vpc    *vpc.Client
	ctx    context.Context
	mod    *fcclb.Module
}

type envOpts struct {
	seed   *api.Seed
	delay  time.Duration
	clbOpt fcclb.Options
}

func newEnv(t *testing.T, o envOpts) *env {
	t.Helper()
	if o.seed == nil {
		o.seed = testSeed(3)
	}
	e := &env{t: t, ctx: context.Background(), calls: &cloudapi.CallCounter{}}
	opt := o.clbOpt
	opt.Delays.Task = o.delay
	require.NoError(t, opt.Validate())
	c, err := fakecloud.New(fakecloud.Config{Seed: o.seed, RateLimit: -1,
		Modules: []api.NewModule{fcvpc.New, cvm.New, func(w *api.World) (api.Module, error) {
			m, err := fcclb.NewWithOptions(w, opt)
			if err != nil {
				return nil, err
			}
			e.mod = m
			return m, nil
		}}})
	require.NoError(t, err)
	srv := httptest.NewServer(c)
	t.Cleanup(func() { srv.Close(); _ = c.Close() })
	e.cloud, e.srv = c, srv
	own := e.client(nil)
	e.clb, e.vpc = clb.New(own), vpc.New(own)
	e.engine = e.newEngine()
	return e
}

func (e *env) client(hooks []cloudapi.CallHook) *cloudapi.Client {
	id, key := e.cloud.Credentials()
	c, err := cloudapi.New(cloudapi.Config{Endpoint: e.srv.URL, Region: e.cloud.Region(), Credentials: cloudapi.Credentials{SecretID: id, SecretKey: key},
		RateLimit: -1, Hooks: hooks, BackoffBase: 10 * time.Millisecond, BackoffMax: 50 * time.Millisecond})
	require.NoError(e.t, err)
	return c
}

// newEngine is the engine of a (re)started CCM: a fresh cache on the same cloud.
func (e *env) newEngine() *loadbalancer.Engine {
	c := e.client([]cloudapi.CallHook{e.calls.Hook})
	b, err := clbbackend.New(clbbackend.Config{CLB: clb.New(c), VPC: vpc.New(c), ClusterID: cluster, VpcID: "vpc-test1"})
	require.NoError(e.t, err)
	eng, err := loadbalancer.New(loadbalancer.Config{Settings: clbbackend.Settings(cluster), Backend: b, NodeID: nodeID})
	require.NoError(e.t, err)
	return eng
}

func nodeID(n *v1.Node) (string, bool) {
	id, err := providerid.Parse(n.Spec.ProviderID)
	return id.InstanceID, err == nil
}

func nodes(ids ...int) []*v1.Node {
	out := make([]*v1.Node, len(ids))
	for i, n := range ids {
		out[i] = &v1.Node{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("node-%d", n)},
			Spec: v1.NodeSpec{ProviderID: providerid.Format("ap-guangzhou-1", fmt.Sprintf("ins-node%04d", n))}}
	}
	return out
}

func nodeRange(n int) []*v1.Node {
	ids := make([]int, n)
	for i := range ids {
		ids[i] = i + 1
	}
	return nodes(ids...)
}

func service(name string, mode loadbalancer.Mode, ports ...v1.ServicePort) *v1.Service {
	if len(ports) == 0 {
		ports = []v1.ServicePort{{Name: "http", Protocol: v1.ProtocolTCP, Port: 80, NodePort: 30080}}
	}
	return &v1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name, UID: types.UID("uid-" + name),
			Annotations: map[string]string{loadbalancer.AnnotationMode: string(mode)}},
		Spec: v1.ServiceSpec{Type: v1.ServiceTypeLoadBalancer, ExternalTrafficPolicy: v1.ServiceExternalTrafficPolicyCluster, Ports: ports},
	}
}

// lbs are the cloud's load balancers, as the API shows them.
func (e *env) lbs() []clb.LoadBalancer {
	e.t.Helper()
	out, err := e.clb.DescribeLoadBalancers(e.ctx, &clb.DescribeLoadBalancersRequest{Limit: cloudapi.Int64(100)})
	require.NoError(e.t, err)
	return out.LoadBalancerSet
}

func (e *env) lb(id string) clb.LoadBalancer {
	e.t.Helper()
	out, err := e.clb.DescribeLoadBalancers(e.ctx, &clb.DescribeLoadBalancersRequest{LoadBalancerIds: []string{id}})
	require.NoError(e.t, err)
	require.Len(e.t, out.LoadBalancerSet, 1)
	return out.LoadBalancerSet[0]
}

// targets maps "PROTO/port" to the listener's "instance:port/weight" targets.
func (e *env) targets(id string) map[string][]string {
	e.t.Helper()
	out, err := e.clb.DescribeTargets(e.ctx, &clb.DescribeTargetsRequest{LoadBalancerId: id})
	require.NoError(e.t, err)
	got := map[string][]string{}
	for _, l := range out.Listeners {
		k := fmt.Sprintf("%s/%d", l.Protocol, l.Port)
		got[k] = []string{}
		for _, t := range l.Targets {
			got[k] = append(got[k], fmt.Sprintf("%s:%d/%d", t.InstanceId, t.Port, t.Weight))
		}
	}
	return got
}

func (e *env) listeners(id string) []clb.Listener {
	e.t.Helper()
	out, err := e.clb.DescribeListeners(e.ctx, &clb.DescribeListenersRequest{LoadBalancerId: id})
	require.NoError(e.t, err)
	return out.Listeners
}

func (e *env) ensure(svc *v1.Service, ns []*v1.Node) *v1.LoadBalancerStatus {
	e.t.Helper()
	st, err := e.engine.EnsureLoadBalancer(e.ctx, "kubernetes", svc, ns)
	require.NoError(e.t, err)
	return st
}

// ownedBy returns the id of the one load balancer tagged for svc.
func (e *env) ownedBy(svc *v1.Service) string {
	e.t.Helper()
	var ids []string
	for _, lb := range e.lbs() {
		for _, tag := range lb.Tags {
			if tag.TagKey == loadbalancer.TagServiceUID && tag.TagValue == string(svc.UID) {
				ids = append(ids, lb.LoadBalancerId)
			}
		}
	}
	require.Len(e.t, ids, 1, "exactly one load balancer for %s", svc.Name)
	return ids[0]
}
