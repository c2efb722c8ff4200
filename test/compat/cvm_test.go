package compat

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/common"
	cvm "github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/cvm/v20170312"
)

func newCVM(t *testing.T, e *sdkEnv) *cvm.Client {
	t.Helper()
	c, err := cvm.NewClient(e.cred, e.region, e.profile)
	require.NoError(t, err)
	return c
}

func sdkRunRequest(count int64) *cvm.RunInstancesRequest {
	req := cvm.NewRunInstancesRequest()
	req.Placement = &cvm.Placement{Zone: common.StringPtr("ap-guangzhou-1"), ProjectId: common.Int64Ptr(0)}
	req.InstanceChargeType = common.StringPtr("POSTPAID_BY_HOUR")
	req.InstanceType = common.StringPtr("S5.MEDIUM2")
	req.ImageId = common.StringPtr("img-eb30mz89")
	req.SystemDisk = &cvm.SystemDisk{DiskType: common.StringPtr("CLOUD_PREMIUM"), DiskSize: common.Int64Ptr(50)}
	req.VirtualPrivateCloud = &cvm.VirtualPrivateCloud{VpcId: common.StringPtr("vpc-stratus1"), SubnetId: common.StringPtr("subnet-gz1")}
	req.InternetAccessible = &cvm.InternetAccessible{
		InternetChargeType:      common.StringPtr("TRAFFIC_POSTPAID_BY_HOUR"),
		InternetMaxBandwidthOut: common.Int64Ptr(10),
		PublicIpAssigned:        common.BoolPtr(true),
	}
	req.InstanceCount = common.Int64Ptr(count)
	req.InstanceName = common.StringPtr("sdk")
	req.LoginSettings = &cvm.LoginSettings{Password: common.StringPtr("Not-Logged-1")}
	req.SecurityGroupIds = ptrs("sg-abcd1234")
	req.EnhancedService = &cvm.EnhancedService{
		SecurityService: &cvm.RunSecurityServiceEnabled{Enabled: common.BoolPtr(true)},
		MonitorService:  &cvm.RunMonitorServiceEnabled{Enabled: common.BoolPtr(true)},
	}
	req.ClientToken = common.StringPtr("sdk-token-1")
	req.HostName = common.StringPtr("sdk-host")
	req.TagSpecification = []*cvm.TagSpecification{{
		ResourceType: common.StringPtr("instance"),
		Tags:         []*cvm.Tag{{Key: common.StringPtr("stratus.io/cluster"), Value: common.StringPtr("sdk")}},
	}}
	req.UserData = common.StringPtr("IyEvYmluL3NoCg==")
	return req
}

func TestSDKRunInstances(t *testing.T) {
	e := newSDKEnv(t)
	c := newCVM(t, e)
	resp, err := c.RunInstances(sdkRunRequest(2))
	require.NoError(t, err)
	require.Len(t, resp.Response.InstanceIdSet, 2)
	require.NotNil(t, resp.Response.RequestId)

	// Same ClientToken: same instances, nothing new.
	again, err := c.RunInstances(sdkRunRequest(2))
	require.NoError(t, err)
	assert.Equal(t, common.StringValues(resp.Response.InstanceIdSet), common.StringValues(again.Response.InstanceIdSet))

	prepaid := sdkRunRequest(1)
	prepaid.ClientToken = nil
	prepaid.InstanceChargeType = common.StringPtr("PREPAID")
	prepaid.InstanceChargePrepaid = &cvm.InstanceChargePrepaid{Period: common.Int64Ptr(1), RenewFlag: common.StringPtr("NOTIFY_AND_AUTO_RENEW")}
	_, err = c.RunInstances(prepaid)
	require.NoError(t, err)

	bad := sdkRunRequest(1)
	bad.ClientToken = nil
	bad.InstanceType = common.StringPtr("S5.HUGE9000")
	_, err = c.RunInstances(bad)
	assert.Equal(t, "InvalidParameterValue.InstanceTypeNotFound", sdkCode(t, err))
	bad = sdkRunRequest(1)
	bad.ClientToken = nil
	bad.VirtualPrivateCloud.SubnetId = common.StringPtr("subnet-gz2")
	_, err = c.RunInstances(bad)
	assert.Equal(t, "InvalidParameterValue.VpcIdZoneIdNotMatch", sdkCode(t, err))
}

func TestSDKDescribeInstances(t *testing.T) {
	e := newSDKEnv(t)
	c := newCVM(t, e)
	run, err := c.RunInstances(sdkRunRequest(1))
	require.NoError(t, err)
	id := *run.Response.InstanceIdSet[0]

	req := cvm.NewDescribeInstancesRequest()
	req.Filters = []*cvm.Filter{
		{Name: common.StringPtr("private-ip-address"), Values: ptrs("10.0.1.11", "10.0.2.11")},
		{Name: common.StringPtr("instance-state"), Values: ptrs("RUNNING")},
	}
	resp, err := c.DescribeInstances(req)
	require.NoError(t, err)
	require.EqualValues(t, 2, *resp.Response.TotalCount)
	assert.Equal(t, "ins-node0001", *resp.Response.InstanceSet[0].InstanceId)
	n3 := resp.Response.InstanceSet[1]
	assert.Equal(t, "ins-node0003", *n3.InstanceId)
	assert.Equal(t, "ap-guangzhou-2", *n3.Placement.Zone)
	assert.Equal(t, []string{"203.0.113.10"}, common.StringValues(n3.PublicIpAddresses))
	assert.Equal(t, "vpc-stratus1", *n3.VirtualPrivateCloud.VpcId)
	assert.Equal(t, "RUNNING", *n3.InstanceState)
	assert.EqualValues(t, 4, *n3.CPU)

	byID := cvm.NewDescribeInstancesRequest()
	byID.InstanceIds = ptrs(id)
	resp, err = c.DescribeInstances(byID)
	require.NoError(t, err)
	require.Len(t, resp.Response.InstanceSet, 1)
	got := resp.Response.InstanceSet[0]
	assert.Equal(t, "sdk", *got.InstanceName)
	assert.Equal(t, "stratus.io/cluster", *got.Tags[0].Key)
	assert.Len(t, got.PublicIpAddresses, 1)
	assert.Equal(t, "subnet-gz1", *got.VirtualPrivateCloud.SubnetId)
	assert.Equal(t, "RunInstances", *got.LatestOperation)

	tag := cvm.NewDescribeInstancesRequest()
	tag.Filters = []*cvm.Filter{{Name: common.StringPtr("tag:stratus.io/cluster"), Values: ptrs("sdk")}}
	tag.Offset, tag.Limit = common.Int64Ptr(0), common.Int64Ptr(100)
	resp, err = c.DescribeInstances(tag)
	require.NoError(t, err)
	assert.EqualValues(t, 1, *resp.Response.TotalCount)

	both := cvm.NewDescribeInstancesRequest()
	both.InstanceIds = ptrs(id)
	both.Filters = []*cvm.Filter{{Name: common.StringPtr("zone"), Values: ptrs("ap-guangzhou-1")}}
	_, err = c.DescribeInstances(both)
	assert.Equal(t, "InvalidParameter.AtMostOne", sdkCode(t, err))
	badFilter := cvm.NewDescribeInstancesRequest()
	badFilter.Filters = []*cvm.Filter{{Name: common.StringPtr("colour"), Values: ptrs("red")}}
	_, err = c.DescribeInstances(badFilter)
	assert.Equal(t, "InvalidFilter", sdkCode(t, err))
}

func TestSDKStopStartTerminate(t *testing.T) {
	e := newSDKEnv(t)
	c := newCVM(t, e)
	state := func(id string) string {
		t.Helper()
		req := cvm.NewDescribeInstancesRequest()
		req.InstanceIds = ptrs(id)
		resp, err := c.DescribeInstances(req)
		require.NoError(t, err)
		if len(resp.Response.InstanceSet) == 0 {
			return ""
		}
		return *resp.Response.InstanceSet[0].InstanceState
	}

	stop := cvm.NewStopInstancesRequest()
	stop.InstanceIds = ptrs("ins-node0002")
	stop.ForceStop = common.BoolPtr(false)
	stop.StopType = common.StringPtr("SOFT_FIRST")
	stop.StoppedMode = common.StringPtr("KEEP_CHARGING")
	_, err := c.StopInstances(stop)
	require.NoError(t, err)
	assert.Equal(t, "STOPPED", state("ins-node0002"))
	_, err = c.StopInstances(stop)
	assert.Equal(t, "UnsupportedOperation.InstanceStateStopped", sdkCode(t, err))

	start := cvm.NewStartInstancesRequest()
	start.InstanceIds = ptrs("ins-node0002")
	_, err = c.StartInstances(start)
	require.NoError(t, err)
	assert.Equal(t, "RUNNING", state("ins-node0002"))
	_, err = c.StartInstances(start)
	assert.Equal(t, "UnsupportedOperation.InstanceStateRunning", sdkCode(t, err))

	term := cvm.NewTerminateInstancesRequest()
	term.InstanceIds = ptrs("ins-node0002")
	_, err = c.TerminateInstances(term)
	require.NoError(t, err)
	assert.Equal(t, "", state("ins-node0002"))
	_, err = c.TerminateInstances(term)
	assert.Equal(t, "InvalidInstanceId.NotFound", sdkCode(t, err))
	malformed := cvm.NewTerminateInstancesRequest()
	malformed.InstanceIds = ptrs("node-2")
	_, err = c.TerminateInstances(malformed)
	assert.Equal(t, "InvalidInstanceId.Malformed", sdkCode(t, err))
}

func TestSDKDescribeZones(t *testing.T) {
	e := newSDKEnv(t)
	c := newCVM(t, e)
	resp, err := c.DescribeZones(cvm.NewDescribeZonesRequest())
	require.NoError(t, err)
	require.EqualValues(t, 3, *resp.Response.TotalCount)
	assert.Equal(t, "ap-guangzhou-1", *resp.Response.ZoneSet[0].Zone)
	assert.Equal(t, "AVAILABLE", *resp.Response.ZoneSet[0].ZoneState)

	// The error case of a parameterless action: a region this endpoint does not serve.
	other, err := cvm.NewClient(e.cred, "ap-shanghai", e.profile)
	require.NoError(t, err)
	_, err = other.DescribeZones(cvm.NewDescribeZonesRequest())
	assert.Equal(t, "UnsupportedRegion", sdkCode(t, err))
	// ... and a wrong key, which the SDK's TC3 signature must carry to the server.
	wrong, err := cvm.NewClient(common.NewCredential(e.cred.SecretId, "wrong"), e.region, e.profile)
	require.NoError(t, err)
	_, err = wrong.DescribeZones(cvm.NewDescribeZonesRequest())
	assert.Equal(t, "AuthFailure.SignatureFailure", sdkCode(t, err))
}

func TestSDKDescribeInstanceTypeConfigs(t *testing.T) {
	e := newSDKEnv(t)
	c := newCVM(t, e)
	req := cvm.NewDescribeInstanceTypeConfigsRequest()
	req.Filters = []*cvm.Filter{{Name: common.StringPtr("instance-type"), Values: ptrs("S5.LARGE8")}}
	resp, err := c.DescribeInstanceTypeConfigs(req)
	require.NoError(t, err)
	require.Len(t, resp.Response.InstanceTypeConfigSet, 3, "one per zone")
	assert.EqualValues(t, 8, *resp.Response.InstanceTypeConfigSet[0].Memory)
	req.Filters = []*cvm.Filter{{Name: common.StringPtr("gpu"), Values: ptrs("1")}}
	_, err = c.DescribeInstanceTypeConfigs(req)
	assert.Equal(t, "InvalidFilter", sdkCode(t, err))
}
