package clb_test

import (
	"context"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/stratus-cloud/stratus/cloudapi"
	clbapi "github.com/stratus-cloud/stratus/cloudapi/clb"
	cvmapi "github.com/stratus-cloud/stratus/cloudapi/cvm"
	"github.com/stratus-cloud/stratus/fakecloud"
	"github.com/stratus-cloud/stratus/fakecloud/api"
	"github.com/stratus-cloud/stratus/fakecloud/clb"
	"github.com/stratus-cloud/stratus/fakecloud/cvm"
	"github.com/stratus-cloud/stratus/fakecloud/fakecloudtest"
	"github.com/stratus-cloud/stratus/fakecloud/vpc"
)

// clock is a settable fake clock shared by fakecloud and the client's signer.
type clock = fakecloudtest.Clock

func newClock() *clock { return fakecloudtest.NewClock() }

// The test world: VPC vpc-main (10.0.0.0/16) with a subnet in each of two zones and three
// instances, and VPC vpc-other with one instance, to test cross-VPC refusals.
func testSeed() *api.Seed {
	s := &api.Seed{
		Region: "ap-guangzhou",
		Zones:  []string{"ap-guangzhou-1", "ap-guangzhou-2"},
	}
	vpc.SetSeed(s, []vpc.SeedVPC{
		{VpcID: "vpc-main0001", CidrBlock: "10.0.0.0/16", Subnets: []vpc.SeedSubnet{
			{SubnetID: "subnet-gz1", CidrBlock: "10.0.1.0/24", Zone: "ap-guangzhou-1"},
			{SubnetID: "subnet-gz2", CidrBlock: "10.0.2.0/24", Zone: "ap-guangzhou-2"},
			{SubnetID: "subnet-tiny", CidrBlock: "10.0.3.0/29", Zone: "ap-guangzhou-1"},
		}},
		{VpcID: "vpc-other001", CidrBlock: "172.16.0.0/16", Subnets: []vpc.SeedSubnet{
			{SubnetID: "subnet-oth1", CidrBlock: "172.16.1.0/24", Zone: "ap-guangzhou-1"},
		}},
	})
	cvm.SetSeed(s, []cvm.SeedInstance{
		{InstanceID: "ins-node0001", Name: "node-1", Zone: "ap-guangzhou-1", SubnetID: "subnet-gz1", PrivateIP: "10.0.1.11"},
		{InstanceID: "ins-node0002", Name: "node-2", Zone: "ap-guangzhou-1", SubnetID: "subnet-gz1", PrivateIP: "10.0.1.12"},
		{InstanceID: "ins-node0003", Name: "node-3", Zone: "ap-guangzhou-2", SubnetID: "subnet-gz2", PrivateIP: "10.0.2.11", PublicIP: "203.0.113.77"},
		{InstanceID: "ins-other001", Name: "other", Zone: "ap-guangzhou-1", SubnetID: "subnet-oth1", PrivateIP: "172.16.1.11"},
	})
	return s
}

type env struct {
	cloud *fakecloud.Cloud
	srv   *httptest.Server
	clb   *clbapi.Client
	cvm   *cvmapi.Client
	clock *clock
	mod   *clb.Module
	ctx   context.Context
}

type envOpts struct {
	seed    *api.Seed
	delays  *clb.Delays
	dataDir string
	clock   *clock
	clb     clb.Options
	limits  map[string]int
}

func newEnv(t *testing.T, o envOpts) *env {
	t.Helper()
	if o.seed == nil {
		o.seed = testSeed()
	}
	if o.limits != nil {
		o.seed.Limits = o.limits
	}
	var now func() time.Time
	if o.clock != nil {
		now = o.clock.Now
	}
	e := &env{clock: o.clock, ctx: context.Background()}
	if o.delays != nil {
		o.clb.Delays = *o.delays
	}
	require.NoError(t, o.clb.Validate())
	c, err := fakecloud.New(fakecloud.Config{
		Seed: o.seed, DataDir: o.dataDir, Clock: now, RateLimit: -1,
		Modules: moduleList(t, o.clb, &e.mod),
	})
	require.NoError(t, err)
	srv := httptest.NewServer(c)
	t.Cleanup(func() { srv.Close(); _ = c.Close() })
	id, key := c.Credentials()
	cl, err := cloudapi.New(cloudapi.Config{
		Endpoint: srv.URL, Region: c.Region(), Credentials: cloudapi.Credentials{SecretID: id, SecretKey: key},
		RateLimit: -1, MaxAttempts: 1, Now: now,
	})
	require.NoError(t, err)
	e.cloud, e.srv, e.clb, e.cvm = c, srv, clbapi.New(cl), cvmapi.New(cl)
	return e
}

func ptr[T any](v T) *T { return &v }

// requireCode asserts err is an API error with exactly code.
func requireCode(t *testing.T, err error, code string) {
	t.Helper()
	require.Error(t, err)
	require.Equal(t, code, cloudapi.ErrorCode(err), "error: %v", err)
}

func (e *env) createLB(t *testing.T, in *clbapi.CreateLoadBalancerRequest) string {
	t.Helper()
	out, err := e.clb.CreateLoadBalancer(e.ctx, in)
	require.NoError(t, err)
	require.Len(t, out.LoadBalancerIds, 1)
	return out.LoadBalancerIds[0]
}

func (e *env) openLB(t *testing.T, name string, tags ...clbapi.TagInfo) string {
	t.Helper()
	return e.createLB(t, &clbapi.CreateLoadBalancerRequest{LoadBalancerType: clbapi.TypeOpen, VpcId: "vpc-main0001", LoadBalancerName: name, Tags: tags})
}

func (e *env) listener(t *testing.T, lbID, protocol string, port int64, mut func(*clbapi.CreateListenerRequest)) string {
	t.Helper()
	in := &clbapi.CreateListenerRequest{LoadBalancerId: lbID, Protocol: protocol, Ports: []int64{port}}
	if mut != nil {
		mut(in)
	}
	out, err := e.clb.CreateListener(e.ctx, in)
	require.NoError(t, err)
	require.Len(t, out.ListenerIds, 1)
	return out.ListenerIds[0]
}

func (e *env) describeLB(t *testing.T, id string) clbapi.LoadBalancer {
	t.Helper()
	out, err := e.clb.DescribeLoadBalancers(e.ctx, &clbapi.DescribeLoadBalancersRequest{LoadBalancerIds: []string{id}})
	require.NoError(t, err)
	require.Len(t, out.LoadBalancerSet, 1)
	return out.LoadBalancerSet[0]
}

func (e *env) lbCount(t *testing.T) uint64 {
	t.Helper()
	out, err := e.clb.DescribeLoadBalancers(e.ctx, &clbapi.DescribeLoadBalancersRequest{})
	require.NoError(t, err)
	return out.TotalCount
}

// targets returns listener id's targets as "instance-or-ip:port/weight".
func (e *env) targets(t *testing.T, lbID, listenerID string) []string {
	t.Helper()
	out, err := e.clb.DescribeTargets(e.ctx, &clbapi.DescribeTargetsRequest{LoadBalancerId: lbID, ListenerIds: []string{listenerID}})
	require.NoError(t, err)
	require.Len(t, out.Listeners, 1)
	got := []string{}
	for _, b := range out.Listeners[0].Targets {
		who := b.InstanceId
		if who == "" {
			who = b.PrivateIpAddresses[0]
		}
		got = append(got, who+":"+itoa(b.Port)+"/"+itoa(b.Weight))
	}
	return got
}

func itoa(v int64) string { return strconv.FormatInt(v, 10) }

func insTarget(id string, port int64) clbapi.Target {
	return clbapi.Target{InstanceId: ptr(id), Port: ptr(port)}
}

// stateDump returns the CLB tables, to assert a refused call changed nothing.
func (e *env) stateDump(t *testing.T) map[string]map[string]any {
	t.Helper()
	d := e.cloud.World().Store.Dump()
	out := map[string]map[string]any{}
	for _, name := range []string{"clb.load-balancers", "clb.listeners", "vpc.ip-leases"} {
		out[name] = d[name]
	}
	return out
}

// cloudInvoke sends a raw request body, for what the typed client cannot express.
func (e *env) cloudInvoke(action string, body any) error {
	id, key := e.cloud.Credentials()
	cl, err := cloudapi.New(cloudapi.Config{Endpoint: e.srv.URL, Region: e.cloud.Region(),
		Credentials: cloudapi.Credentials{SecretID: id, SecretKey: key}, RateLimit: -1, MaxAttempts: 1, Now: e.now()})
	if err != nil {
		return err
	}
	return cl.Invoke(e.ctx, cloudapi.Operation{Service: clbapi.Service, Version: clbapi.Version, Action: action}, body, nil)
}

func (e *env) now() func() time.Time {
	if e.clock == nil {
		return nil
	}
	return e.clock.Now
}

// moduleList is fakecloud's services with the CLB module built from opts, stored in *mod.
func moduleList(t *testing.T, opts clb.Options, mod **clb.Module) []api.NewModule {
	return []api.NewModule{vpc.New, cvm.New, func(w *api.World) (api.Module, error) {
		m, err := clb.NewWithOptions(w, opts)
		require.NoError(t, err)
		*mod = m
		return m, err
	}}
}
