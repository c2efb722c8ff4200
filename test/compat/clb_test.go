package compat

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	clb "github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/clb/v20180317"
	"github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/common"
)

func newCLB(t *testing.T, e *sdkEnv) *clb.Client {
	t.Helper()
	c, err := clb.NewClient(e.cred, e.region, e.profile)
	require.NoError(t, err)
	return c
}

// clbCreateLB creates an OPEN load balancer in the seed's VPC through the SDK.
func clbCreateLB(t *testing.T, c *clb.Client, name string) string {
	t.Helper()
	req := clb.NewCreateLoadBalancerRequest()
	req.LoadBalancerType = common.StringPtr("OPEN")
	req.LoadBalancerName = common.StringPtr(name)
	req.VpcId = common.StringPtr("vpc-stratus1")
	resp, err := c.CreateLoadBalancer(req)
	require.NoError(t, err)
	require.Len(t, resp.Response.LoadBalancerIds, 1)
	return *resp.Response.LoadBalancerIds[0]
}

func clbCreateListener(t *testing.T, c *clb.Client, lb string, port int64) string {
	t.Helper()
	req := clb.NewCreateListenerRequest()
	req.LoadBalancerId = common.StringPtr(lb)
	req.Protocol = common.StringPtr("TCP")
	req.Ports = []*int64{common.Int64Ptr(port)}
	resp, err := c.CreateListener(req)
	require.NoError(t, err)
	require.Len(t, resp.Response.ListenerIds, 1)
	return *resp.Response.ListenerIds[0]
}

func TestSDKCLBLoadBalancers(t *testing.T) {
	e := newSDKEnv(t)
	c := newCLB(t, e)

	req := clb.NewCreateLoadBalancerRequest()
	req.LoadBalancerType = common.StringPtr("INTERNAL")
	req.SubnetId = common.StringPtr("subnet-gz1")
	req.LoadBalancerName = common.StringPtr("sdk-internal")
	req.Forward = common.Int64Ptr(1)
	req.Tags = []*clb.TagInfo{{TagKey: common.StringPtr("stratus.io/cluster"), TagValue: common.StringPtr("sdk")}}
	req.ClientToken = common.StringPtr("sdk-token-1")
	resp, err := c.CreateLoadBalancer(req)
	require.NoError(t, err)
	id := *resp.Response.LoadBalancerIds[0]
	again, err := c.CreateLoadBalancer(req)
	require.NoError(t, err)
	assert.Equal(t, id, *again.Response.LoadBalancerIds[0], "the same ClientToken gives the same load balancer")

	bad := clb.NewCreateLoadBalancerRequest()
	bad.LoadBalancerType = common.StringPtr("INTERNAL")
	_, err = c.CreateLoadBalancer(bad)
	assert.Equal(t, "MissingParameter", sdkCode(t, err))

	task := clb.NewDescribeTaskStatusRequest()
	task.TaskId = resp.Response.RequestId
	st, err := c.DescribeTaskStatus(task)
	require.NoError(t, err)
	assert.EqualValues(t, 0, *st.Response.Status)
	task.TaskId = common.StringPtr("no-such-task")
	_, err = c.DescribeTaskStatus(task)
	assert.Equal(t, "ResourceNotFound", sdkCode(t, err))

	list := clb.NewDescribeLoadBalancersRequest()
	list.Filters = []*clb.Filter{{Name: common.StringPtr("tag:stratus.io/cluster"), Values: ptrs("sdk")}}
	list.Offset, list.Limit = common.Int64Ptr(0), common.Int64Ptr(20)
	desc, err := c.DescribeLoadBalancers(list)
	require.NoError(t, err)
	require.EqualValues(t, 1, *desc.Response.TotalCount)
	lb := desc.Response.LoadBalancerSet[0]
	assert.Equal(t, id, *lb.LoadBalancerId)
	assert.Equal(t, "sdk-internal", *lb.LoadBalancerName)
	assert.Equal(t, "INTERNAL", *lb.LoadBalancerType)
	assert.Equal(t, "vpc-stratus1", *lb.VpcId)
	assert.Equal(t, "subnet-gz1", *lb.SubnetId)
	assert.EqualValues(t, 1, *lb.Status)
	assert.Equal(t, "sdk", *lb.Tags[0].TagValue)
	require.Len(t, lb.LoadBalancerVips, 1)
	assert.Contains(t, *lb.LoadBalancerVips[0], "10.0.1.")
	assert.Equal(t, "ap-guangzhou-1", *lb.MasterZone.Zone)

	badList := clb.NewDescribeLoadBalancersRequest()
	badList.Limit = common.Int64Ptr(1000)
	_, err = c.DescribeLoadBalancers(badList)
	assert.Equal(t, "InvalidParameterValue", sdkCode(t, err))

	del := clb.NewDeleteLoadBalancerRequest()
	del.LoadBalancerIds = ptrs(id)
	_, err = c.DeleteLoadBalancer(del)
	require.NoError(t, err)
	_, err = c.DeleteLoadBalancer(del)
	assert.Equal(t, "InvalidParameter.LBIdNotFound", sdkCode(t, err))
}

func TestSDKCLBListeners(t *testing.T) {
	e := newSDKEnv(t)
	c := newCLB(t, e)
	lb := clbCreateLB(t, c, "sdk-listeners")

	req := clb.NewCreateListenerRequest()
	req.LoadBalancerId = common.StringPtr(lb)
	req.Protocol = common.StringPtr("TCP")
	req.Ports = []*int64{common.Int64Ptr(80), common.Int64Ptr(443)}
	req.ListenerNames = ptrs("http", "https")
	req.Scheduler = common.StringPtr("LEAST_CONN")
	req.SessionExpireTime = common.Int64Ptr(300)
	req.HealthCheck = &clb.HealthCheck{
		HealthSwitch: common.Int64Ptr(1), TimeOut: common.Int64Ptr(3), IntervalTime: common.Int64Ptr(10),
		HealthNum: common.Int64Ptr(2), UnHealthNum: common.Int64Ptr(4), CheckType: common.StringPtr("HTTP"),
		HttpCheckPath: common.StringPtr("/healthz"), HttpCode: common.Int64Ptr(2), HttpCheckMethod: common.StringPtr("GET"),
	}
	resp, err := c.CreateListener(req)
	require.NoError(t, err)
	require.Len(t, resp.Response.ListenerIds, 2)
	l80 := *resp.Response.ListenerIds[0]

	dup := clb.NewCreateListenerRequest()
	dup.LoadBalancerId = common.StringPtr(lb)
	dup.Protocol = common.StringPtr("TCP")
	dup.Ports = []*int64{common.Int64Ptr(80)}
	_, err = c.CreateListener(dup)
	assert.Equal(t, "InvalidParameterValue.Duplicate", sdkCode(t, err))

	desc := clb.NewDescribeListenersRequest()
	desc.LoadBalancerId = common.StringPtr(lb)
	desc.Port = common.Int64Ptr(80)
	out, err := c.DescribeListeners(desc)
	require.NoError(t, err)
	require.Len(t, out.Response.Listeners, 1)
	l := out.Response.Listeners[0]
	assert.Equal(t, l80, *l.ListenerId)
	assert.Equal(t, "http", *l.ListenerName)
	assert.Equal(t, "LEAST_CONN", *l.Scheduler)
	assert.EqualValues(t, 300, *l.SessionExpireTime)
	assert.EqualValues(t, 10, *l.HealthCheck.IntervalTime)
	assert.Equal(t, "/healthz", *l.HealthCheck.HttpCheckPath)
	desc.LoadBalancerId = common.StringPtr("lb-nothere")
	_, err = c.DescribeListeners(desc)
	assert.Equal(t, "InvalidParameter.LBIdNotFound", sdkCode(t, err))

	mod := clb.NewModifyListenerRequest()
	mod.LoadBalancerId = common.StringPtr(lb)
	mod.ListenerId = common.StringPtr(l80)
	mod.ListenerName = common.StringPtr("web")
	mod.HealthCheck = &clb.HealthCheck{HealthSwitch: common.Int64Ptr(0)}
	_, err = c.ModifyListener(mod)
	require.NoError(t, err)
	mod.Scheduler = common.StringPtr("RANDOM")
	_, err = c.ModifyListener(mod)
	assert.Equal(t, "InvalidParameterValue", sdkCode(t, err))

	dl := clb.NewDeleteListenerRequest()
	dl.LoadBalancerId = common.StringPtr(lb)
	dl.ListenerId = common.StringPtr(l80)
	_, err = c.DeleteListener(dl)
	require.NoError(t, err)
	_, err = c.DeleteListener(dl)
	assert.Equal(t, "InvalidParameter.ListenerIdNotFound", sdkCode(t, err))
}

func TestSDKCLBTargets(t *testing.T) {
	e := newSDKEnv(t)
	c := newCLB(t, e)
	lb := clbCreateLB(t, c, "sdk-targets")
	l1 := clbCreateListener(t, c, lb, 80)
	l2 := clbCreateListener(t, c, lb, 81)

	reg := clb.NewRegisterTargetsRequest()
	reg.LoadBalancerId = common.StringPtr(lb)
	reg.ListenerId = common.StringPtr(l1)
	reg.Targets = []*clb.Target{
		{InstanceId: common.StringPtr("ins-node0001"), Port: common.Int64Ptr(30080), Weight: common.Int64Ptr(20)},
		{EniIp: common.StringPtr("10.0.2.50"), Port: common.Int64Ptr(8080)},
	}
	_, err := c.RegisterTargets(reg)
	require.NoError(t, err)
	reg.Targets = []*clb.Target{{InstanceId: common.StringPtr("ins-nothere"), Port: common.Int64Ptr(80)}}
	_, err = c.RegisterTargets(reg)
	assert.Equal(t, "InvalidParameter", sdkCode(t, err))

	desc := clb.NewDescribeTargetsRequest()
	desc.LoadBalancerId = common.StringPtr(lb)
	desc.ListenerIds = ptrs(l1)
	out, err := c.DescribeTargets(desc)
	require.NoError(t, err)
	require.Len(t, out.Response.Listeners, 1)
	ts := out.Response.Listeners[0].Targets
	require.Len(t, ts, 2)
	assert.Equal(t, "CVM", *ts[0].Type)
	assert.Equal(t, "ins-node0001", *ts[0].InstanceId)
	assert.EqualValues(t, 20, *ts[0].Weight)
	assert.Equal(t, []string{"10.0.1.11"}, common.StringValues(ts[0].PrivateIpAddresses))
	assert.Equal(t, "node-1", *ts[0].InstanceName)
	assert.Equal(t, "ENI", *ts[1].Type)
	assert.EqualValues(t, 10, *ts[1].Weight, "the default weight")
	desc.LoadBalancerId = common.StringPtr("lb-nothere")
	_, err = c.DescribeTargets(desc)
	assert.Equal(t, "InvalidParameter.LBIdNotFound", sdkCode(t, err))

	dereg := clb.NewDeregisterTargetsRequest()
	dereg.LoadBalancerId = common.StringPtr(lb)
	dereg.ListenerId = common.StringPtr(l1)
	dereg.Targets = []*clb.Target{{EniIp: common.StringPtr("10.0.2.50"), Port: common.Int64Ptr(8080)}}
	_, err = c.DeregisterTargets(dereg)
	require.NoError(t, err)
	_, err = c.DeregisterTargets(dereg)
	assert.Equal(t, "InvalidParameter", sdkCode(t, err), "deregistering what is not bound")

	batch := clb.NewBatchRegisterTargetsRequest()
	batch.LoadBalancerId = common.StringPtr(lb)
	batch.Targets = []*clb.BatchTarget{
		{ListenerId: common.StringPtr(l1), InstanceId: common.StringPtr("ins-node0002"), Port: common.Int64Ptr(30080)},
		{ListenerId: common.StringPtr(l2), InstanceId: common.StringPtr("ins-node0003"), Port: common.Int64Ptr(30081), Weight: common.Int64Ptr(0)},
	}
	bout, err := c.BatchRegisterTargets(batch)
	require.NoError(t, err)
	assert.Empty(t, bout.Response.FailListenerIdSet)
	batch.Targets = []*clb.BatchTarget{{ListenerId: common.StringPtr("lbl-nothere"), InstanceId: common.StringPtr("ins-node0002"), Port: common.Int64Ptr(1)}}
	_, err = c.BatchRegisterTargets(batch)
	assert.Equal(t, "InvalidParameter.ListenerIdNotFound", sdkCode(t, err))

	all := clb.NewDescribeTargetsRequest()
	all.LoadBalancerId = common.StringPtr(lb)
	out, err = c.DescribeTargets(all)
	require.NoError(t, err)
	require.Len(t, out.Response.Listeners, 2)
	assert.Len(t, out.Response.Listeners[0].Targets, 2)
	assert.Len(t, out.Response.Listeners[1].Targets, 1)

	bdel := clb.NewBatchDeregisterTargetsRequest()
	bdel.LoadBalancerId = common.StringPtr(lb)
	bdel.Targets = []*clb.BatchTarget{
		{ListenerId: common.StringPtr(l1), InstanceId: common.StringPtr("ins-node0002"), Port: common.Int64Ptr(30080)},
		{ListenerId: common.StringPtr(l2), InstanceId: common.StringPtr("ins-node0003"), Port: common.Int64Ptr(30081)},
	}
	_, err = c.BatchDeregisterTargets(bdel)
	require.NoError(t, err)
	_, err = c.BatchDeregisterTargets(bdel)
	assert.Equal(t, "InvalidParameter", sdkCode(t, err))
	out, err = c.DescribeTargets(all)
	require.NoError(t, err)
	assert.Len(t, out.Response.Listeners[0].Targets, 1)
	assert.Empty(t, out.Response.Listeners[1].Targets)
}

func TestSDKCLBSecurityGroupsAndBatches(t *testing.T) {
	e := newSDKEnv(t)
	c := newCLB(t, e)
	v := newVPC(t, e)

	create := clb.NewCreateLoadBalancerRequest()
	create.LoadBalancerType, create.VpcId = common.StringPtr("OPEN"), common.StringPtr("vpc-stratus1")
	create.InternetAccessible = &clb.InternetAccessible{InternetChargeType: common.StringPtr("BANDWIDTH_POSTPAID_BY_HOUR"), InternetMaxBandwidthOut: common.Int64Ptr(100)}
	resp, err := c.CreateLoadBalancer(create)
	require.NoError(t, err, "InternetAccessible is a known parameter")
	lb := *resp.Response.LoadBalancerIds[0]
	l1 := clbCreateListener(t, c, lb, 80)
	l2 := clbCreateListener(t, c, lb, 81)
	clbCreateListener(t, c, lb, 82)

	sg1, sg2 := sdkSecurityGroup(t, v, "sdk-a"), sdkSecurityGroup(t, v, "sdk-b")
	set := clb.NewSetLoadBalancerSecurityGroupsRequest()
	set.LoadBalancerId, set.SecurityGroups = common.StringPtr(lb), ptrs(sg2, sg1)
	_, err = c.SetLoadBalancerSecurityGroups(set)
	require.NoError(t, err)

	desc := clb.NewDescribeLoadBalancersRequest()
	desc.SecurityGroup = common.StringPtr(sg1)
	out, err := c.DescribeLoadBalancers(desc)
	require.NoError(t, err)
	require.EqualValues(t, 1, *out.Response.TotalCount, "filtered by a bound group")
	got := out.Response.LoadBalancerSet[0]
	assert.Equal(t, []string{sg2, sg1}, common.StringValues(got.SecureGroups), "in priority order")
	require.NotNil(t, got.NetworkAttributes)
	assert.Equal(t, "BANDWIDTH_POSTPAID_BY_HOUR", *got.NetworkAttributes.InternetChargeType)
	assert.EqualValues(t, 100, *got.NetworkAttributes.InternetMaxBandwidthOut)

	set.SecurityGroups = nil
	_, err = c.SetLoadBalancerSecurityGroups(set)
	require.NoError(t, err, "no groups unbinds all")
	out, err = c.DescribeLoadBalancers(desc)
	require.NoError(t, err)
	assert.EqualValues(t, 0, *out.Response.TotalCount)

	reg := clb.NewBatchRegisterTargetsRequest()
	reg.LoadBalancerId = common.StringPtr(lb)
	reg.Targets = []*clb.BatchTarget{
		{ListenerId: common.StringPtr(l1), InstanceId: common.StringPtr("ins-node0001"), Port: common.Int64Ptr(30080)},
		{ListenerId: common.StringPtr(l2), InstanceId: common.StringPtr("ins-node0002"), Port: common.Int64Ptr(30081)},
	}
	_, err = c.BatchRegisterTargets(reg)
	require.NoError(t, err)
	weights := clb.NewBatchModifyTargetWeightRequest()
	weights.LoadBalancerId = common.StringPtr(lb)
	weights.ModifyList = []*clb.RsWeightRule{
		{ListenerId: common.StringPtr(l1), Targets: []*clb.Target{{InstanceId: common.StringPtr("ins-node0001"), Port: common.Int64Ptr(30080)}}, Weight: common.Int64Ptr(0)},
		{ListenerId: common.StringPtr(l2), Targets: []*clb.Target{{InstanceId: common.StringPtr("ins-node0002"), Port: common.Int64Ptr(30081), Weight: common.Int64Ptr(70)}}},
	}
	_, err = c.BatchModifyTargetWeight(weights)
	require.NoError(t, err)
	dt := clb.NewDescribeTargetsRequest()
	dt.LoadBalancerId = common.StringPtr(lb)
	tout, err := c.DescribeTargets(dt)
	require.NoError(t, err)
	byListener := map[string]int64{}
	for _, l := range tout.Response.Listeners {
		for _, tg := range l.Targets {
			byListener[*l.ListenerId] = *tg.Weight
		}
	}
	assert.Equal(t, map[string]int64{l1: 0, l2: 70}, byListener)

	dl := clb.NewDeleteLoadBalancerListenersRequest()
	dl.LoadBalancerId, dl.ListenerIds = common.StringPtr(lb), ptrs(l1, l2)
	_, err = c.DeleteLoadBalancerListeners(dl)
	require.NoError(t, err)
	ls := clb.NewDescribeListenersRequest()
	ls.LoadBalancerId = common.StringPtr(lb)
	lout, err := c.DescribeListeners(ls)
	require.NoError(t, err)
	assert.EqualValues(t, 1, *lout.Response.TotalCount, "the two named listeners are gone")
	dl.ListenerIds = nil
	_, err = c.DeleteLoadBalancerListeners(dl)
	require.NoError(t, err, "no ids deletes every listener")
	lout, err = c.DescribeListeners(ls)
	require.NoError(t, err)
	assert.EqualValues(t, 0, *lout.Response.TotalCount)
}
