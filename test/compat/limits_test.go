package compat

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	cbs "github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/cbs/v20170312"
	clb "github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/clb/v20180317"
	"github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/common"
	sdkerrors "github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/common/errors"
	cvm "github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/cvm/v20170312"
	vpc "github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/vpc/v20170312"
)

// limitEnv is one fakecloud with the example seed, SDK clients for every service, and a
// disk, a load balancer and a listener for the limits checked only against a resource.
type limitEnv struct {
	cvm *cvm.Client
	vpc *vpc.Client
	clb *clb.Client
	cbs *cbs.Client
	lb  string
	lbl string
	dsk string
}

// limitCase sends a request one past a documented limit through the official SDK. key
// names the limit as its row in fakecloud/LIMITS.md does ("service Action Parameter").
type limitCase struct {
	key  string
	code string
	call func(e *limitEnv) error
}

// mentions is what the error message must name, so that the code comes from this limit
// and not from another check that happens to share it: the parameter of the key up to
// its first dot, unless the case's key says otherwise.
func (c limitCase) mentions() string {
	param := strings.SplitN(c.key, " ", 3)[2]
	if m, ok := mentionOverrides[c.key]; ok {
		return m
	}
	return strings.SplitN(strings.Fields(param)[0], ".", 2)[0]
}

var mentionOverrides = map[string]string{
	"cvm DescribeInstances InstanceIds+Filters": "`InstanceIds` and `Filters` cannot be given together",
	"vpc CreateRoutes routes-per-table quota":   "quota of 200",
}

func strs(prefix string, n int) []*string {
	out := make([]*string, n)
	for i := range out {
		out[i] = common.StringPtr(fmt.Sprintf("%s%08d", prefix, i))
	}
	return out
}

func long(n int) *string { return common.StringPtr(strings.Repeat("a", n)) }

// cjk is n CJK characters, 3n bytes: 21 are within a 60-character limit but over a
// 60-byte one.
func cjk(n int) *string { return common.StringPtr(strings.Repeat("名", n)) }

func cvmFilters(n, values int) []*cvm.Filter {
	out := make([]*cvm.Filter, n)
	for i := range out {
		out[i] = &cvm.Filter{Name: common.StringPtr("zone"), Values: strs("ap-guangzhou-", values)}
	}
	return out
}

func vpcFilters(n, values int) []*vpc.Filter {
	out := make([]*vpc.Filter, n)
	for i := range out {
		out[i] = &vpc.Filter{Name: common.StringPtr("vpc-name"), Values: strs("name-", values)}
	}
	return out
}

func clbFilters(n, values int) []*clb.Filter {
	out := make([]*clb.Filter, n)
	for i := range out {
		out[i] = &clb.Filter{Name: common.StringPtr("vip-isp"), Values: strs("isp-", values)}
	}
	return out
}

func cbsFilters(n, values int) []*cbs.Filter {
	out := make([]*cbs.Filter, n)
	for i := range out {
		out[i] = &cbs.Filter{Name: common.StringPtr("zone"), Values: strs("ap-guangzhou-", values)}
	}
	return out
}

func cvmTags(n, keyLen int) []*cvm.TagSpecification {
	tags := make([]*cvm.Tag, n)
	for i := range tags {
		tags[i] = &cvm.Tag{Key: common.StringPtr(fmt.Sprintf("k%0*d", keyLen-1, i)), Value: common.StringPtr("v")}
	}
	return []*cvm.TagSpecification{{ResourceType: common.StringPtr("instance"), Tags: tags}}
}

func run(mut func(r *cvm.RunInstancesRequest)) func(e *limitEnv) error {
	return func(e *limitEnv) error {
		r := sdkRunRequest(1)
		r.ClientToken = nil
		mut(r)
		_, err := e.cvm.RunInstances(r)
		return err
	}
}

func createDisks(mut func(r *cbs.CreateDisksRequest)) func(e *limitEnv) error {
	return func(e *limitEnv) error {
		r := cbs.NewCreateDisksRequest()
		r.Placement = &cbs.Placement{Zone: common.StringPtr("ap-guangzhou-1")}
		r.DiskType, r.DiskChargeType, r.DiskSize = common.StringPtr("CLOUD_PREMIUM"), common.StringPtr("POSTPAID_BY_HOUR"), common.Uint64Ptr(10)
		mut(r)
		_, err := e.cbs.CreateDisks(r)
		return err
	}
}

func createListener(mut func(r *clb.CreateListenerRequest)) func(e *limitEnv) error {
	return func(e *limitEnv) error {
		r := clb.NewCreateListenerRequest()
		r.LoadBalancerId, r.Protocol, r.Ports = common.StringPtr(e.lb), common.StringPtr("TCP"), []*int64{common.Int64Ptr(9000)}
		mut(r)
		_, err := e.clb.CreateListener(r)
		return err
	}
}

func createLB(mut func(r *clb.CreateLoadBalancerRequest)) func(e *limitEnv) error {
	return func(e *limitEnv) error {
		r := clb.NewCreateLoadBalancerRequest()
		r.LoadBalancerType, r.VpcId = common.StringPtr("OPEN"), common.StringPtr("vpc-stratus1")
		mut(r)
		_, err := e.clb.CreateLoadBalancer(r)
		return err
	}
}

func targets(n int, weight int64) []*clb.Target {
	out := make([]*clb.Target, n)
	for i := range out {
		out[i] = &clb.Target{InstanceId: common.StringPtr("ins-node0001"), Port: common.Int64Ptr(int64(30000 + i)), Weight: common.Int64Ptr(weight)}
	}
	return out
}

func batchTargets(lbl string, n int) []*clb.BatchTarget {
	out := make([]*clb.BatchTarget, n)
	for i := range out {
		out[i] = &clb.BatchTarget{ListenerId: common.StringPtr(lbl), InstanceId: common.StringPtr("ins-node0001"), Port: common.Int64Ptr(int64(30000 + i))}
	}
	return out
}

func routes(n int, mut func(r *vpc.Route)) []*vpc.Route {
	out := make([]*vpc.Route, n)
	for i := range out {
		out[i] = &vpc.Route{
			DestinationCidrBlock: common.StringPtr(fmt.Sprintf("10.%d.%d.0/24", 100+i/256, i%256)),
			GatewayType:          common.StringPtr("NORMAL_CVM"), GatewayId: common.StringPtr("10.0.1.11"),
		}
		if mut != nil {
			mut(out[i])
		}
	}
	return out
}

// limitCases are every per-request limit (and the one route quota Stratus runs into) of
// the actions Stratus uses, each one past its bound.
var limitCases = []limitCase{
	// cvm
	{"cvm DescribeInstances InstanceIds", "InvalidParameterValue.LimitExceeded", func(e *limitEnv) error {
		r := cvm.NewDescribeInstancesRequest()
		r.InstanceIds = strs("ins-", 101)
		_, err := e.cvm.DescribeInstances(r)
		return err
	}},
	{"cvm DescribeInstances Filters", "InvalidFilterValue.LimitExceeded", func(e *limitEnv) error {
		r := cvm.NewDescribeInstancesRequest()
		r.Filters = cvmFilters(11, 1)
		_, err := e.cvm.DescribeInstances(r)
		return err
	}},
	{"cvm DescribeInstances Filters.Values", "InvalidFilterValue.LimitExceeded", func(e *limitEnv) error {
		r := cvm.NewDescribeInstancesRequest()
		r.Filters = []*cvm.Filter{{Name: common.StringPtr("private-ip-address"), Values: strs("10.0.1.", 6)}}
		_, err := e.cvm.DescribeInstances(r)
		return err
	}},
	{"cvm DescribeInstances Limit", "InvalidParameterValue", func(e *limitEnv) error {
		r := cvm.NewDescribeInstancesRequest()
		r.Limit = common.Int64Ptr(101)
		_, err := e.cvm.DescribeInstances(r)
		return err
	}},
	{"cvm DescribeInstances InstanceIds+Filters", "InvalidParameter.AtMostOne", func(e *limitEnv) error {
		r := cvm.NewDescribeInstancesRequest()
		r.InstanceIds, r.Filters = strs("ins-", 1), cvmFilters(1, 1)
		_, err := e.cvm.DescribeInstances(r)
		return err
	}},
	{"cvm DescribeInstances Filters.Name", "InvalidFilter", func(e *limitEnv) error {
		r := cvm.NewDescribeInstancesRequest()
		r.Filters = []*cvm.Filter{{Name: common.StringPtr("Zone"), Values: strs("ap-guangzhou-", 1)}}
		_, err := e.cvm.DescribeInstances(r)
		return err
	}},
	{"cvm DescribeInstances instance-state", "InvalidParameterValue", func(e *limitEnv) error {
		r := cvm.NewDescribeInstancesRequest()
		r.Filters = []*cvm.Filter{{Name: common.StringPtr("instance-state"), Values: ptrs("running")}}
		_, err := e.cvm.DescribeInstances(r)
		return err
	}},
	{"cvm StopInstances InstanceIds", "InvalidParameterValue.LimitExceeded", func(e *limitEnv) error {
		r := cvm.NewStopInstancesRequest()
		r.InstanceIds = strs("ins-", 101)
		_, err := e.cvm.StopInstances(r)
		return err
	}},
	{"cvm StopInstances StopType", "InvalidParameterValue", func(e *limitEnv) error {
		r := cvm.NewStopInstancesRequest()
		r.InstanceIds, r.StopType = ptrs("ins-node0001"), common.StringPtr("soft")
		_, err := e.cvm.StopInstances(r)
		return err
	}},
	{"cvm StopInstances StoppedMode", "InvalidParameterValue", func(e *limitEnv) error {
		r := cvm.NewStopInstancesRequest()
		r.InstanceIds, r.StoppedMode = ptrs("ins-node0001"), common.StringPtr("FREE")
		_, err := e.cvm.StopInstances(r)
		return err
	}},
	{"cvm StartInstances InstanceIds", "InvalidParameterValue.LimitExceeded", func(e *limitEnv) error {
		r := cvm.NewStartInstancesRequest()
		r.InstanceIds = strs("ins-", 101)
		_, err := e.cvm.StartInstances(r)
		return err
	}},
	{"cvm TerminateInstances InstanceIds", "InvalidParameterValue.LimitExceeded", func(e *limitEnv) error {
		r := cvm.NewTerminateInstancesRequest()
		r.InstanceIds = strs("ins-", 101)
		_, err := e.cvm.TerminateInstances(r)
		return err
	}},
	{"cvm RunInstances InstanceCount", "InvalidParameterValue.Range", run(func(r *cvm.RunInstancesRequest) { r.InstanceCount = common.Int64Ptr(101) })},
	{"cvm RunInstances InstanceCount PREPAID", "InvalidParameterValue.Range", run(func(r *cvm.RunInstancesRequest) {
		r.InstanceChargeType, r.InstanceCount = common.StringPtr("PREPAID"), common.Int64Ptr(301)
		r.InstanceChargePrepaid = &cvm.InstanceChargePrepaid{Period: common.Int64Ptr(1)}
	})},
	{"cvm RunInstances InstanceName", "InvalidInstanceName.TooLong", run(func(r *cvm.RunInstancesRequest) { r.InstanceName = cjk(61) })},
	{"cvm RunInstances ClientToken", "InvalidClientToken.TooLong", run(func(r *cvm.RunInstancesRequest) { r.ClientToken = long(65) })},
	{"cvm RunInstances HostName", "InvalidHostName.Malformed", run(func(r *cvm.RunInstancesRequest) { r.HostName = long(61) })},
	{"cvm RunInstances UserData", "InvalidParameterValue.LimitExceeded", run(func(r *cvm.RunInstancesRequest) { r.UserData = common.StringPtr(strings.Repeat("QUFB", 4097)) })},
	{"cvm RunInstances VirtualPrivateCloud.PrivateIpAddresses", "InvalidParameterValue.LimitExceeded", run(func(r *cvm.RunInstancesRequest) {
		r.InstanceCount = common.Int64Ptr(21)
		r.VirtualPrivateCloud.PrivateIpAddresses = strs("10.0.1.", 21)
	})},
	{"cvm RunInstances DataDisks", "InvalidParameterValue.LimitExceeded", run(func(r *cvm.RunInstancesRequest) {
		for range 22 {
			r.DataDisks = append(r.DataDisks, &cvm.DataDisk{DiskType: common.StringPtr("CLOUD_PREMIUM"), DiskSize: common.Int64Ptr(50)})
		}
	})},
	{"cvm RunInstances InstanceChargeType", "InvalidParameterValue", run(func(r *cvm.RunInstancesRequest) { r.InstanceChargeType = common.StringPtr("MONTHLY") })},
	{"cvm RunInstances SystemDisk.DiskType", "InvalidParameterValue", run(func(r *cvm.RunInstancesRequest) { r.SystemDisk.DiskType = common.StringPtr("CLOUD_FAST") })},
	{"cvm RunInstances LoginSettings.Password", "InvalidPassword", run(func(r *cvm.RunInstancesRequest) {
		r.LoginSettings.Password = common.StringPtr("Aa1" + strings.Repeat("a", 28))
	})},
	{"cvm RunInstances TagSpecification.Tags", "InvalidParameterValue", run(func(r *cvm.RunInstancesRequest) { r.TagSpecification = cvmTags(51, 8) })},
	{"cvm RunInstances TagSpecification.Tags.Key", "InvalidParameterValue", run(func(r *cvm.RunInstancesRequest) { r.TagSpecification = cvmTags(1, 128) })},
	{"cvm DescribeInstanceTypeConfigs Filters.Values", "InvalidFilterValue.LimitExceeded", func(e *limitEnv) error {
		r := cvm.NewDescribeInstanceTypeConfigsRequest()
		r.Filters = []*cvm.Filter{{Name: common.StringPtr("instance-family"), Values: ptrs("S5", "SA2")}}
		_, err := e.cvm.DescribeInstanceTypeConfigs(r)
		return err
	}},

	// vpc
	{"vpc CreateVpc VpcName", "InvalidParameterValue.TooLong", func(e *limitEnv) error {
		r := vpc.NewCreateVpcRequest()
		r.VpcName, r.CidrBlock = cjk(21), common.StringPtr("10.1.0.0/16")
		_, err := e.vpc.CreateVpc(r)
		return err
	}},
	{"vpc CreateVpc CidrBlock", "InvalidParameterValue.Range", func(e *limitEnv) error {
		r := vpc.NewCreateVpcRequest()
		r.VpcName, r.CidrBlock = common.StringPtr("x"), common.StringPtr("10.16.0.0/16")
		_, err := e.vpc.CreateVpc(r)
		return err
	}},
	{"vpc CreateVpc DnsServers", "InvalidParameterValue.LimitExceeded", func(e *limitEnv) error {
		r := vpc.NewCreateVpcRequest()
		r.VpcName, r.CidrBlock = common.StringPtr("x"), common.StringPtr("10.1.0.0/16")
		r.DnsServers = ptrs("1.1.1.1", "1.1.1.2", "1.1.1.3", "1.1.1.4", "1.1.1.5")
		_, err := e.vpc.CreateVpc(r)
		return err
	}},
	{"vpc CreateVpc EnableMulticast", "InvalidParameterValue", func(e *limitEnv) error {
		r := vpc.NewCreateVpcRequest()
		r.VpcName, r.CidrBlock, r.EnableMulticast = common.StringPtr("x"), common.StringPtr("10.1.0.0/16"), common.StringPtr("yes")
		_, err := e.vpc.CreateVpc(r)
		return err
	}},
	{"vpc CreateVpc Tags", "InvalidParameterValue.LimitExceeded", func(e *limitEnv) error {
		r := vpc.NewCreateVpcRequest()
		r.VpcName, r.CidrBlock = common.StringPtr("x"), common.StringPtr("10.1.0.0/16")
		for i := range 51 {
			r.Tags = append(r.Tags, &vpc.Tag{Key: common.StringPtr(fmt.Sprintf("k%d", i)), Value: common.StringPtr("v")})
		}
		_, err := e.vpc.CreateVpc(r)
		return err
	}},
	{"vpc DescribeVpcs VpcIds", "InvalidParameterValue.LimitExceeded", func(e *limitEnv) error {
		r := vpc.NewDescribeVpcsRequest()
		r.VpcIds = strs("vpc-", 101)
		_, err := e.vpc.DescribeVpcs(r)
		return err
	}},
	{"vpc DescribeVpcs Filters", "LimitExceeded.NumberOfFilters", func(e *limitEnv) error {
		r := vpc.NewDescribeVpcsRequest()
		r.Filters = vpcFilters(11, 1)
		_, err := e.vpc.DescribeVpcs(r)
		return err
	}},
	{"vpc DescribeVpcs Filters.Values", "InvalidParameterValue.LimitExceeded", func(e *limitEnv) error {
		r := vpc.NewDescribeVpcsRequest()
		r.Filters = vpcFilters(1, 6)
		_, err := e.vpc.DescribeVpcs(r)
		return err
	}},
	{"vpc DescribeVpcs Limit", "InvalidParameterValue", func(e *limitEnv) error {
		r := vpc.NewDescribeVpcsRequest()
		r.Limit = common.StringPtr("101")
		_, err := e.vpc.DescribeVpcs(r)
		return err
	}},
	{"vpc CreateSubnet SubnetName", "InvalidParameterValue.TooLong", func(e *limitEnv) error {
		r := vpc.NewCreateSubnetRequest()
		r.VpcId, r.SubnetName, r.CidrBlock, r.Zone = common.StringPtr("vpc-stratus1"), cjk(21), common.StringPtr("10.0.9.0/24"), common.StringPtr("ap-guangzhou-1")
		_, err := e.vpc.CreateSubnet(r)
		return err
	}},
	{"vpc DescribeSubnets SubnetIds", "InvalidParameterValue.LimitExceeded", func(e *limitEnv) error {
		r := vpc.NewDescribeSubnetsRequest()
		r.SubnetIds = strs("subnet-", 101)
		_, err := e.vpc.DescribeSubnets(r)
		return err
	}},
	{"vpc DescribeSubnets Filters.Values", "InvalidParameterValue.LimitExceeded", func(e *limitEnv) error {
		r := vpc.NewDescribeSubnetsRequest()
		r.Filters = []*vpc.Filter{{Name: common.StringPtr("zone"), Values: strs("ap-guangzhou-", 6)}}
		_, err := e.vpc.DescribeSubnets(r)
		return err
	}},
	{"vpc CreateRouteTable RouteTableName", "InvalidParameterValue.TooLong", func(e *limitEnv) error {
		r := vpc.NewCreateRouteTableRequest()
		r.VpcId, r.RouteTableName = common.StringPtr("vpc-stratus1"), long(61)
		_, err := e.vpc.CreateRouteTable(r)
		return err
	}},
	{"vpc DescribeRouteTables RouteTableIds", "InvalidParameterValue.LimitExceeded", func(e *limitEnv) error {
		r := vpc.NewDescribeRouteTablesRequest()
		r.RouteTableIds = strs("rtb-", 101)
		_, err := e.vpc.DescribeRouteTables(r)
		return err
	}},
	{"vpc DescribeRouteTables Limit", "InvalidParameterValue", func(e *limitEnv) error {
		r := vpc.NewDescribeRouteTablesRequest()
		r.Limit = common.StringPtr("101")
		_, err := e.vpc.DescribeRouteTables(r)
		return err
	}},
	{"vpc CreateRoutes Routes.RouteDescription", "InvalidParameterValue.TooLong", func(e *limitEnv) error {
		r := vpc.NewCreateRoutesRequest()
		r.RouteTableId = common.StringPtr("rtb-stratus1")
		r.Routes = routes(1, func(rt *vpc.Route) { rt.RouteDescription = long(61) })
		_, err := e.vpc.CreateRoutes(r)
		return err
	}},
	{"vpc CreateRoutes Routes.GatewayType", "InvalidParameterValue", func(e *limitEnv) error {
		r := vpc.NewCreateRoutesRequest()
		r.RouteTableId = common.StringPtr("rtb-stratus1")
		r.Routes = routes(1, func(rt *vpc.Route) { rt.GatewayType = common.StringPtr("ROUTER") })
		_, err := e.vpc.CreateRoutes(r)
		return err
	}},
	{"vpc CreateRoutes routes-per-table quota", "LimitExceeded", func(e *limitEnv) error {
		r := vpc.NewCreateRoutesRequest()
		r.RouteTableId, r.Routes = common.StringPtr("rtb-stratus1"), routes(201, nil)
		_, err := e.vpc.CreateRoutes(r)
		return err
	}},

	// clb
	{"clb CreateLoadBalancer LoadBalancerName", "InvalidParameterValue", createLB(func(r *clb.CreateLoadBalancerRequest) { r.LoadBalancerName = long(61) })},
	{"clb CreateLoadBalancer LoadBalancerName characters", "InvalidParameterValue", createLB(func(r *clb.CreateLoadBalancerRequest) { r.LoadBalancerName = common.StringPtr("web.prod") })},
	{"clb CreateLoadBalancer LoadBalancerType", "InvalidParameterValue", createLB(func(r *clb.CreateLoadBalancerRequest) { r.LoadBalancerType = common.StringPtr("PUBLIC") })},
	{"clb CreateLoadBalancer Number", "InvalidParameterValue", createLB(func(r *clb.CreateLoadBalancerRequest) { r.Number = common.Uint64Ptr(21) })},
	{"clb CreateLoadBalancer ClientToken", "InvalidParameterValue", createLB(func(r *clb.CreateLoadBalancerRequest) { r.ClientToken = long(65) })},
	{"clb CreateLoadBalancer AddressIPVersion", "InvalidParameterValue", createLB(func(r *clb.CreateLoadBalancerRequest) { r.AddressIPVersion = common.StringPtr("ipv4") })},
	{"clb CreateLoadBalancer Tags", "InvalidParameterValue", createLB(func(r *clb.CreateLoadBalancerRequest) {
		for i := range 51 {
			r.Tags = append(r.Tags, &clb.TagInfo{TagKey: common.StringPtr(fmt.Sprintf("k%d", i)), TagValue: common.StringPtr("v")})
		}
	})},
	{"clb DescribeLoadBalancers LoadBalancerIds", "InvalidParameterValue.Length", func(e *limitEnv) error {
		r := clb.NewDescribeLoadBalancersRequest()
		r.LoadBalancerIds = strs("lb-", 101)
		_, err := e.clb.DescribeLoadBalancers(r)
		return err
	}},
	{"clb DescribeLoadBalancers Filters", "InvalidParameterValue.LimitExceeded", func(e *limitEnv) error {
		r := clb.NewDescribeLoadBalancersRequest()
		r.Filters = clbFilters(11, 1)
		_, err := e.clb.DescribeLoadBalancers(r)
		return err
	}},
	{"clb DescribeLoadBalancers Filters.Values", "InvalidParameterValue.LimitExceeded", func(e *limitEnv) error {
		r := clb.NewDescribeLoadBalancersRequest()
		r.Filters = clbFilters(1, 101)
		_, err := e.clb.DescribeLoadBalancers(r)
		return err
	}},
	{"clb DescribeLoadBalancers Limit", "InvalidParameterValue", func(e *limitEnv) error {
		r := clb.NewDescribeLoadBalancersRequest()
		r.Limit = common.Int64Ptr(101)
		_, err := e.clb.DescribeLoadBalancers(r)
		return err
	}},
	{"clb DescribeLoadBalancers OrderBy", "InvalidParameterValue", func(e *limitEnv) error {
		r := clb.NewDescribeLoadBalancersRequest()
		r.OrderBy = common.StringPtr("Name")
		_, err := e.clb.DescribeLoadBalancers(r)
		return err
	}},
	{"clb DeleteLoadBalancer LoadBalancerIds", "InvalidParameterValue.Length", func(e *limitEnv) error {
		r := clb.NewDeleteLoadBalancerRequest()
		r.LoadBalancerIds = strs("lb-", 21)
		_, err := e.clb.DeleteLoadBalancer(r)
		return err
	}},
	{"clb CreateListener Ports", "InvalidParameterValue", createListener(func(r *clb.CreateListenerRequest) { r.Ports = []*int64{common.Int64Ptr(65536)} })},
	{"clb CreateListener ListenerNames", "InvalidParameterValue", createListener(func(r *clb.CreateListenerRequest) { r.ListenerNames = []*string{long(256)} })},
	{"clb CreateListener SessionExpireTime", "InvalidParameterValue", createListener(func(r *clb.CreateListenerRequest) { r.SessionExpireTime = common.Int64Ptr(3601) })},
	{"clb CreateListener Scheduler", "InvalidParameterValue", createListener(func(r *clb.CreateListenerRequest) { r.Scheduler = common.StringPtr("IP_HASH") })},
	{"clb CreateListener HealthCheck.TimeOut", "InvalidParameterValue", createListener(func(r *clb.CreateListenerRequest) {
		r.HealthCheck = &clb.HealthCheck{TimeOut: common.Int64Ptr(61), IntervalTime: common.Int64Ptr(300)}
	})},
	{"clb CreateListener HealthCheck.IntervalTime", "InvalidParameterValue", createListener(func(r *clb.CreateListenerRequest) {
		r.HealthCheck = &clb.HealthCheck{IntervalTime: common.Int64Ptr(301)}
	})},
	{"clb CreateListener HealthCheck.HealthNum", "InvalidParameterValue", createListener(func(r *clb.CreateListenerRequest) {
		r.HealthCheck = &clb.HealthCheck{HealthNum: common.Int64Ptr(11)}
	})},
	{"clb CreateListener HealthCheck.UnHealthNum", "InvalidParameterValue", createListener(func(r *clb.CreateListenerRequest) {
		r.HealthCheck = &clb.HealthCheck{UnHealthNum: common.Int64Ptr(11)}
	})},
	{"clb CreateListener HealthCheck.SendContext", "InvalidParameterValue", createListener(func(r *clb.CreateListenerRequest) {
		r.HealthCheck = &clb.HealthCheck{CheckType: common.StringPtr("CUSTOM"), ContextType: common.StringPtr("TEXT"), SendContext: long(501), RecvContext: common.StringPtr("ok")}
	})},
	{"clb CreateListener HealthCheck.ContextType HEX", "InvalidParameterValue", createListener(func(r *clb.CreateListenerRequest) {
		r.HealthCheck = &clb.HealthCheck{CheckType: common.StringPtr("CUSTOM"), ContextType: common.StringPtr("HEX"), SendContext: common.StringPtr("0a"), RecvContext: common.StringPtr("0B")}
	})},
	{"clb CreateListener HealthCheck.HttpCode", "InvalidParameterValue", createListener(func(r *clb.CreateListenerRequest) {
		r.HealthCheck = &clb.HealthCheck{CheckType: common.StringPtr("HTTP"), HttpCode: common.Int64Ptr(32)}
	})},
	{"clb ModifyListener ListenerName", "InvalidParameterValue", func(e *limitEnv) error {
		r := clb.NewModifyListenerRequest()
		r.LoadBalancerId, r.ListenerId, r.ListenerName = common.StringPtr(e.lb), common.StringPtr(e.lbl), long(256)
		_, err := e.clb.ModifyListener(r)
		return err
	}},
	{"clb DescribeListeners Protocol", "InvalidParameterValue", func(e *limitEnv) error {
		r := clb.NewDescribeListenersRequest()
		r.LoadBalancerId, r.Protocol = common.StringPtr(e.lb), common.StringPtr("SCTP")
		_, err := e.clb.DescribeListeners(r)
		return err
	}},
	{"clb DescribeTargets Port", "InvalidParameterValue", func(e *limitEnv) error {
		r := clb.NewDescribeTargetsRequest()
		r.LoadBalancerId, r.Port = common.StringPtr(e.lb), common.Int64Ptr(65536)
		_, err := e.clb.DescribeTargets(r)
		return err
	}},
	{"clb RegisterTargets Targets", "InvalidParameterValue.Length", func(e *limitEnv) error {
		r := clb.NewRegisterTargetsRequest()
		r.LoadBalancerId, r.ListenerId, r.Targets = common.StringPtr(e.lb), common.StringPtr(e.lbl), targets(21, 10)
		_, err := e.clb.RegisterTargets(r)
		return err
	}},
	{"clb RegisterTargets Targets.Weight", "InvalidParameterValue", func(e *limitEnv) error {
		r := clb.NewRegisterTargetsRequest()
		r.LoadBalancerId, r.ListenerId, r.Targets = common.StringPtr(e.lb), common.StringPtr(e.lbl), targets(1, 101)
		_, err := e.clb.RegisterTargets(r)
		return err
	}},
	{"clb DeregisterTargets Targets", "InvalidParameterValue.Length", func(e *limitEnv) error {
		r := clb.NewDeregisterTargetsRequest()
		r.LoadBalancerId, r.ListenerId, r.Targets = common.StringPtr(e.lb), common.StringPtr(e.lbl), targets(21, 10)
		_, err := e.clb.DeregisterTargets(r)
		return err
	}},
	{"clb BatchRegisterTargets Targets", "InvalidParameterValue.Length", func(e *limitEnv) error {
		r := clb.NewBatchRegisterTargetsRequest()
		r.LoadBalancerId, r.Targets = common.StringPtr(e.lb), batchTargets(e.lbl, 501)
		_, err := e.clb.BatchRegisterTargets(r)
		return err
	}},
	{"clb BatchDeregisterTargets Targets", "InvalidParameterValue.Length", func(e *limitEnv) error {
		r := clb.NewBatchDeregisterTargetsRequest()
		r.LoadBalancerId, r.Targets = common.StringPtr(e.lb), batchTargets(e.lbl, 501)
		_, err := e.clb.BatchDeregisterTargets(r)
		return err
	}},

	// cbs
	{"cbs CreateDisks DiskName", "InvalidParameterValue", createDisks(func(r *cbs.CreateDisksRequest) { r.DiskName = cjk(21) })},
	{"cbs CreateDisks DiskCount", "InvalidParameterValue", createDisks(func(r *cbs.CreateDisksRequest) { r.DiskCount = common.Uint64Ptr(51) })},
	{"cbs CreateDisks DiskSize", "InvalidParameterValue", createDisks(func(r *cbs.CreateDisksRequest) { r.DiskSize = common.Uint64Ptr(32001) })},
	{"cbs CreateDisks DiskType", "InvalidParameterValue", createDisks(func(r *cbs.CreateDisksRequest) { r.DiskType = common.StringPtr("CLOUD_FAST") })},
	{"cbs CreateDisks ClientToken", "InvalidParameterValue", createDisks(func(r *cbs.CreateDisksRequest) { r.ClientToken = long(65) })},
	{"cbs CreateDisks Tags", "InvalidParameterValue.LimitExceeded", createDisks(func(r *cbs.CreateDisksRequest) {
		for i := range 51 {
			r.Tags = append(r.Tags, &cbs.Tag{Key: common.StringPtr(fmt.Sprintf("k%d", i)), Value: common.StringPtr("v")})
		}
	})},
	{"cbs DescribeDisks DiskIds", "InvalidParameterValue.LimitExceeded", func(e *limitEnv) error {
		r := cbs.NewDescribeDisksRequest()
		r.DiskIds = strs("disk-", 101)
		_, err := e.cbs.DescribeDisks(r)
		return err
	}},
	{"cbs DescribeDisks Filters", "InvalidParameterValue.LimitExceeded", func(e *limitEnv) error {
		r := cbs.NewDescribeDisksRequest()
		r.Filters = cbsFilters(11, 1)
		_, err := e.cbs.DescribeDisks(r)
		return err
	}},
	{"cbs DescribeDisks Filters.Values", "InvalidParameterValue.LimitExceeded", func(e *limitEnv) error {
		r := cbs.NewDescribeDisksRequest()
		r.Filters = cbsFilters(1, 6)
		_, err := e.cbs.DescribeDisks(r)
		return err
	}},
	{"cbs DescribeDisks Limit", "InvalidParameterValue", func(e *limitEnv) error {
		r := cbs.NewDescribeDisksRequest()
		r.Limit = common.Uint64Ptr(101)
		_, err := e.cbs.DescribeDisks(r)
		return err
	}},
	{"cbs DescribeDisks Order", "InvalidParameterValue", func(e *limitEnv) error {
		r := cbs.NewDescribeDisksRequest()
		r.Order = common.StringPtr("asc")
		_, err := e.cbs.DescribeDisks(r)
		return err
	}},
	{"cbs AttachDisks DiskIds", "InvalidParameterValue.LimitExceeded", func(e *limitEnv) error {
		r := cbs.NewAttachDisksRequest()
		r.DiskIds, r.InstanceId = strs("disk-", 11), common.StringPtr("ins-node0001")
		_, err := e.cbs.AttachDisks(r)
		return err
	}},
	{"cbs DetachDisks DiskIds", "InvalidParameterValue.LimitExceeded", func(e *limitEnv) error {
		r := cbs.NewDetachDisksRequest()
		r.DiskIds = strs("disk-", 11)
		_, err := e.cbs.DetachDisks(r)
		return err
	}},
	{"cbs ResizeDisk DiskSize", "InvalidParameterValue", func(e *limitEnv) error {
		r := cbs.NewResizeDiskRequest()
		r.DiskId, r.DiskSize = common.StringPtr(e.dsk), common.Uint64Ptr(32001)
		_, err := e.cbs.ResizeDisk(r)
		return err
	}},
	{"cbs TerminateDisks DiskIds", "InvalidParameterValue.LimitExceeded", func(e *limitEnv) error {
		r := cbs.NewTerminateDisksRequest()
		r.DiskIds = strs("disk-", 51)
		_, err := e.cbs.TerminateDisks(r)
		return err
	}},
	{"cbs CreateSnapshot SnapshotName", "InvalidParameterValue", func(e *limitEnv) error {
		r := cbs.NewCreateSnapshotRequest()
		r.DiskId, r.SnapshotName = common.StringPtr(e.dsk), cjk(21)
		_, err := e.cbs.CreateSnapshot(r)
		return err
	}},
	{"cbs DescribeSnapshots SnapshotIds", "InvalidParameterValue.LimitExceeded", func(e *limitEnv) error {
		r := cbs.NewDescribeSnapshotsRequest()
		r.SnapshotIds = strs("snap-", 101)
		_, err := e.cbs.DescribeSnapshots(r)
		return err
	}},
	{"cbs DescribeSnapshots Filters.Values", "InvalidParameterValue.LimitExceeded", func(e *limitEnv) error {
		r := cbs.NewDescribeSnapshotsRequest()
		r.Filters = []*cbs.Filter{{Name: common.StringPtr("disk-id"), Values: strs("disk-", 6)}}
		_, err := e.cbs.DescribeSnapshots(r)
		return err
	}},
	{"cbs DescribeSnapshots Limit", "InvalidParameterValue", func(e *limitEnv) error {
		r := cbs.NewDescribeSnapshotsRequest()
		r.Limit = common.Uint64Ptr(101)
		_, err := e.cbs.DescribeSnapshots(r)
		return err
	}},
	{"cbs DeleteSnapshots SnapshotIds", "InvalidParameterValue.LimitExceeded", func(e *limitEnv) error {
		r := cbs.NewDeleteSnapshotsRequest()
		r.SnapshotIds = strs("snap-", 101)
		_, err := e.cbs.DeleteSnapshots(r)
		return err
	}},
}

func newLimitEnv(t *testing.T) *limitEnv {
	t.Helper()
	e := newSDKEnv(t)
	l := &limitEnv{cvm: newCVM(t, e), vpc: newVPC(t, e), clb: newCLB(t, e), cbs: newCBS(t, e)}
	l.lb = clbCreateLB(t, l.clb, "limits")
	l.lbl = clbCreateListener(t, l.clb, l.lb, 8080)
	r := cbs.NewCreateDisksRequest()
	r.Placement = &cbs.Placement{Zone: common.StringPtr("ap-guangzhou-1")}
	r.DiskType, r.DiskChargeType, r.DiskSize = common.StringPtr("CLOUD_PREMIUM"), common.StringPtr("POSTPAID_BY_HOUR"), common.Uint64Ptr(10)
	out, err := l.cbs.CreateDisks(r)
	require.NoError(t, err)
	l.dsk = *out.Response.DiskIdSet[0]
	return l
}

// TestSDKOnePastEachLimit: the official SDK gets the cloud's error code one past every
// documented limit, and none of those calls changes anything.
func TestSDKOnePastEachLimit(t *testing.T) {
	e := newLimitEnv(t)
	before := describeCounts(t, e)
	for _, tc := range limitCases {
		t.Run(strings.ReplaceAll(tc.key, " ", "/"), func(t *testing.T) {
			err := tc.call(e)
			assert.Equal(t, tc.code, sdkCode(t, err))
			var se *sdkerrors.TencentCloudSDKError
			require.ErrorAs(t, err, &se)
			assert.Contains(t, se.Message, tc.mentions())
		})
	}
	assert.Equal(t, before, describeCounts(t, e), "a refused request never changes state")
}

// describeCounts is how many of each resource the world has.
func describeCounts(t *testing.T, e *limitEnv) map[string]int64 {
	t.Helper()
	ins, err := e.cvm.DescribeInstances(cvm.NewDescribeInstancesRequest())
	require.NoError(t, err)
	vpcs, err := e.vpc.DescribeVpcs(vpc.NewDescribeVpcsRequest())
	require.NoError(t, err)
	subnets, err := e.vpc.DescribeSubnets(vpc.NewDescribeSubnetsRequest())
	require.NoError(t, err)
	tables, err := e.vpc.DescribeRouteTables(vpc.NewDescribeRouteTablesRequest())
	require.NoError(t, err)
	routeCount := int64(0)
	for _, rt := range tables.Response.RouteTableSet {
		routeCount += int64(len(rt.RouteSet))
	}
	lbs, err := e.clb.DescribeLoadBalancers(clb.NewDescribeLoadBalancersRequest())
	require.NoError(t, err)
	lr := clb.NewDescribeListenersRequest()
	lr.LoadBalancerId = common.StringPtr(e.lb)
	listeners, err := e.clb.DescribeListeners(lr)
	require.NoError(t, err)
	disks, err := e.cbs.DescribeDisks(cbs.NewDescribeDisksRequest())
	require.NoError(t, err)
	snaps, err := e.cbs.DescribeSnapshots(cbs.NewDescribeSnapshotsRequest())
	require.NoError(t, err)
	return map[string]int64{
		"instances": int64(*ins.Response.TotalCount), "vpcs": int64(*vpcs.Response.TotalCount),
		"subnets": int64(*subnets.Response.TotalCount), "route tables": int64(*tables.Response.TotalCount), "routes": routeCount,
		"load balancers": int64(*lbs.Response.TotalCount), "listeners": int64(*listeners.Response.TotalCount),
		"disks": int64(*disks.Response.TotalCount), "snapshots": int64(*snaps.Response.TotalCount),
	}
}

// TestLimitsTableMatchesTheCases keeps fakecloud/LIMITS.md and the cases in step: every
// row names a case here (its key in backticks), and every case has a row.
func TestLimitsTableMatchesTheCases(t *testing.T) {
	_, file, _, _ := runtime.Caller(0)
	f, err := os.Open(filepath.Join(filepath.Dir(file), "..", "..", "fakecloud", "LIMITS.md"))
	require.NoError(t, err)
	defer f.Close()
	row := regexp.MustCompile("^\\| `([a-z]+ [A-Za-z]+ [^`]+)` \\|")
	var rows []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if m := row.FindStringSubmatch(sc.Text()); m != nil {
			rows = append(rows, m[1])
		}
	}
	require.NoError(t, sc.Err())
	var keys []string
	for _, tc := range limitCases {
		keys = append(keys, tc.key)
	}
	slices.Sort(rows)
	slices.Sort(keys)
	assert.Equal(t, keys, rows, "fakecloud/LIMITS.md rows and limitCases keys")
	assert.Len(t, slices.Compact(slices.Clone(keys)), len(keys), "keys are unique")
}
