package compat

import (
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	cbs "github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/cbs/v20170312"
	clb "github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/clb/v20180317"
	"github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/common"
	cvm "github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/cvm/v20170312"
	vpc "github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/vpc/v20170312"

	wcbs "github.com/stratus-cloud/stratus/cloudapi/cbs"
	wclb "github.com/stratus-cloud/stratus/cloudapi/clb"
	wcvm "github.com/stratus-cloud/stratus/cloudapi/cvm"
	wvpc "github.com/stratus-cloud/stratus/cloudapi/vpc"
)

// wireActions pairs every action fakecloud serves with the official SDK's request type
// and the wire type fakecloud decodes it into (strictly: a name the wire type lacks is
// UnknownParameter).
var wireActions = []struct {
	action    string
	sdk, wire any
}{
	{"cvm RunInstances", cvm.RunInstancesRequest{}, wcvm.RunInstancesRequest{}},
	{"cvm DescribeInstances", cvm.DescribeInstancesRequest{}, wcvm.DescribeInstancesRequest{}},
	{"cvm StopInstances", cvm.StopInstancesRequest{}, wcvm.StopInstancesRequest{}},
	{"cvm StartInstances", cvm.StartInstancesRequest{}, wcvm.StartInstancesRequest{}},
	{"cvm TerminateInstances", cvm.TerminateInstancesRequest{}, wcvm.TerminateInstancesRequest{}},
	{"cvm DescribeZones", cvm.DescribeZonesRequest{}, wcvm.DescribeZonesRequest{}},
	{"cvm DescribeInstanceTypeConfigs", cvm.DescribeInstanceTypeConfigsRequest{}, wcvm.DescribeInstanceTypeConfigsRequest{}},
	{"vpc CreateVpc", vpc.CreateVpcRequest{}, wvpc.CreateVpcRequest{}},
	{"vpc DescribeVpcs", vpc.DescribeVpcsRequest{}, wvpc.DescribeVpcsRequest{}},
	{"vpc CreateSubnet", vpc.CreateSubnetRequest{}, wvpc.CreateSubnetRequest{}},
	{"vpc DescribeSubnets", vpc.DescribeSubnetsRequest{}, wvpc.DescribeSubnetsRequest{}},
	{"vpc CreateRouteTable", vpc.CreateRouteTableRequest{}, wvpc.CreateRouteTableRequest{}},
	{"vpc DescribeRouteTables", vpc.DescribeRouteTablesRequest{}, wvpc.DescribeRouteTablesRequest{}},
	{"vpc CreateRoutes", vpc.CreateRoutesRequest{}, wvpc.CreateRoutesRequest{}},
	{"vpc DeleteRoutes", vpc.DeleteRoutesRequest{}, wvpc.DeleteRoutesRequest{}},
	{"vpc CreateSecurityGroup", vpc.CreateSecurityGroupRequest{}, wvpc.CreateSecurityGroupRequest{}},
	{"vpc DescribeSecurityGroups", vpc.DescribeSecurityGroupsRequest{}, wvpc.DescribeSecurityGroupsRequest{}},
	{"vpc DeleteSecurityGroup", vpc.DeleteSecurityGroupRequest{}, wvpc.DeleteSecurityGroupRequest{}},
	{"vpc DescribeSecurityGroupPolicies", vpc.DescribeSecurityGroupPoliciesRequest{}, wvpc.DescribeSecurityGroupPoliciesRequest{}},
	{"vpc ModifySecurityGroupPolicies", vpc.ModifySecurityGroupPoliciesRequest{}, wvpc.ModifySecurityGroupPoliciesRequest{}},
	{"clb CreateLoadBalancer", clb.CreateLoadBalancerRequest{}, wclb.CreateLoadBalancerRequest{}},
	{"clb DescribeLoadBalancers", clb.DescribeLoadBalancersRequest{}, wclb.DescribeLoadBalancersRequest{}},
	{"clb DeleteLoadBalancer", clb.DeleteLoadBalancerRequest{}, wclb.DeleteLoadBalancerRequest{}},
	{"clb CreateListener", clb.CreateListenerRequest{}, wclb.CreateListenerRequest{}},
	{"clb DescribeListeners", clb.DescribeListenersRequest{}, wclb.DescribeListenersRequest{}},
	{"clb ModifyListener", clb.ModifyListenerRequest{}, wclb.ModifyListenerRequest{}},
	{"clb DeleteListener", clb.DeleteListenerRequest{}, wclb.DeleteListenerRequest{}},
	{"clb RegisterTargets", clb.RegisterTargetsRequest{}, wclb.RegisterTargetsRequest{}},
	{"clb DeregisterTargets", clb.DeregisterTargetsRequest{}, wclb.DeregisterTargetsRequest{}},
	{"clb BatchRegisterTargets", clb.BatchRegisterTargetsRequest{}, wclb.BatchRegisterTargetsRequest{}},
	{"clb BatchDeregisterTargets", clb.BatchDeregisterTargetsRequest{}, wclb.BatchDeregisterTargetsRequest{}},
	{"clb DescribeTargets", clb.DescribeTargetsRequest{}, wclb.DescribeTargetsRequest{}},
	{"clb DescribeTaskStatus", clb.DescribeTaskStatusRequest{}, wclb.DescribeTaskStatusRequest{}},
	{"clb SetLoadBalancerSecurityGroups", clb.SetLoadBalancerSecurityGroupsRequest{}, wclb.SetLoadBalancerSecurityGroupsRequest{}},
	{"clb DeleteLoadBalancerListeners", clb.DeleteLoadBalancerListenersRequest{}, wclb.DeleteLoadBalancerListenersRequest{}},
	{"clb BatchModifyTargetWeight", clb.BatchModifyTargetWeightRequest{}, wclb.BatchModifyTargetWeightRequest{}},
	{"cbs CreateDisks", cbs.CreateDisksRequest{}, wcbs.CreateDisksRequest{}},
	{"cbs DescribeDisks", cbs.DescribeDisksRequest{}, wcbs.DescribeDisksRequest{}},
	{"cbs AttachDisks", cbs.AttachDisksRequest{}, wcbs.AttachDisksRequest{}},
	{"cbs DetachDisks", cbs.DetachDisksRequest{}, wcbs.DetachDisksRequest{}},
	{"cbs ResizeDisk", cbs.ResizeDiskRequest{}, wcbs.ResizeDiskRequest{}},
	{"cbs TerminateDisks", cbs.TerminateDisksRequest{}, wcbs.TerminateDisksRequest{}},
	{"cbs CreateSnapshot", cbs.CreateSnapshotRequest{}, wcbs.CreateSnapshotRequest{}},
	{"cbs DescribeSnapshots", cbs.DescribeSnapshotsRequest{}, wcbs.DescribeSnapshotsRequest{}},
	{"cbs DeleteSnapshots", cbs.DeleteSnapshotsRequest{}, wcbs.DeleteSnapshotsRequest{}},
}

// knownWireGaps are the SDK v1.0.162 request parameters fakecloud does not know, so an
// SDK caller sending one gets UnknownParameter (stricter than the cloud, never looser).
// Each is a feature fakecloud does not model and Stratus does not use; closing a gap means
// adding the field to the wire type with its validation, and removing it here.
var knownWireGaps = map[string]string{
	"clb CreateListener.Certificate":                        "HTTPS / TCP_SSL listeners: layer 4 TCP and UDP only",
	"clb CreateListener.SniSwitch":                          "HTTPS listeners",
	"clb CreateListener.KeepaliveEnable":                    "HTTP / HTTPS listeners",
	"clb ModifyListener.Certificate":                        "HTTPS / TCP_SSL listeners",
	"clb ModifyListener.SniSwitch":                          "HTTPS listeners",
	"clb ModifyListener.KeepaliveEnable":                    "HTTP / HTTPS listeners",
	"clb CreateLoadBalancer.SlaveZoneId":                    "cross-zone disaster recovery",
	"clb CreateLoadBalancer.EipAddressId":                   "EIPs on internal load balancers",
	"clb CreateLoadBalancer.SnatPro":                        "cross-region / cross-VPC targets",
	"clb CreateLoadBalancer.SnatIps":                        "cross-region / cross-VPC targets",
	"clb CreateLoadBalancer.ExclusiveCluster":               "exclusive clusters",
	"clb CreateLoadBalancer.ClusterTag":                     "exclusive clusters",
	"clb DescribeLoadBalancers.Domain":                      "classic load balancers' domains",
	"cvm RunInstances.ActionTimer":                          "scheduled actions",
	"cvm RunInstances.CamRoleName":                          "CAM roles",
	"cvm RunInstances.DisasterRecoverGroupIds":              "placement groups",
	"cvm RunInstances.HpcClusterId":                         "HPC clusters",
	"cvm RunInstances.InstanceMarketOptions":                "spot market options",
	"cvm RunInstances.Placement.HostId":                     "dedicated hosts",
	"cvm RunInstances.Placement.HostIds":                    "dedicated hosts",
	"cvm RunInstances.Placement.HostIps":                    "dedicated hosts",
	"cvm RunInstances.SystemDisk.CdcId":                     "dedicated clusters",
	"cvm RunInstances.DataDisks.CdcId":                      "dedicated clusters",
	"cvm RunInstances.DataDisks.KmsKeyId":                   "customer KMS keys",
	"cvm RunInstances.DataDisks.ThroughputPerformance":      "extra disk throughput",
	"cvm RunInstances.VirtualPrivateCloud.Ipv6AddressCount": "IPv6",
	"vpc CreateSubnet.CdcId":                                "dedicated clusters",
}

// TestWireTypesTakeEveryDocumentedParameter: every parameter the official SDK can send to
// an action fakecloud serves is one fakecloud knows (and validates), or a listed gap.
func TestWireTypesTakeEveryDocumentedParameter(t *testing.T) {
	var missing []string
	for _, a := range wireActions {
		missing = append(missing, unknownParams(a.action, reflect.TypeOf(a.sdk), reflect.TypeOf(a.wire))...)
	}
	slices.Sort(missing)
	var gaps []string
	for k := range knownWireGaps {
		gaps = append(gaps, k)
	}
	slices.Sort(gaps)
	assert.Equal(t, gaps, missing, "knownWireGaps (expected) vs the SDK parameters fakecloud answers with UnknownParameter (actual)")
}

// TestAWireGapIsUnknownParameter: what the reflection above calls a gap is what the SDK
// gets on the wire, and a parameter the wire type has is accepted.
func TestAWireGapIsUnknownParameter(t *testing.T) {
	c := newCLB(t, newSDKEnv(t))
	r := clb.NewCreateLoadBalancerRequest()
	r.LoadBalancerType, r.VpcId = common.StringPtr("OPEN"), common.StringPtr("vpc-stratus1")
	r.SlaveZoneId = common.StringPtr("ap-guangzhou-2")
	_, err := c.CreateLoadBalancer(r)
	assert.Equal(t, "UnknownParameter", sdkCode(t, err))
	r.SlaveZoneId = nil
	r.InternetAccessible = &clb.InternetAccessible{InternetMaxBandwidthOut: common.Int64Ptr(20)}
	_, err = c.CreateLoadBalancer(r)
	assert.NoError(t, err)
}

// unknownParams lists the JSON names of sdk's fields (recursively, through structs and
// lists of structs) that wire does not have, as "service Action.Field.Sub".
func unknownParams(path string, sdk, wire reflect.Type) []string {
	sf, wf := jsonFields(sdk), jsonFields(wire)
	var out []string
	for name, st := range sf {
		wt, ok := wf[name]
		if !ok {
			out = append(out, path+"."+name)
			continue
		}
		if structOf(st) != nil && structOf(wt) != nil {
			out = append(out, unknownParams(path+"."+name, st, wt)...)
		}
	}
	return out
}

// structOf is the struct behind pointers and slices, nil for anything else.
func structOf(t reflect.Type) reflect.Type {
	for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct {
		return nil
	}
	return t
}

// jsonFields maps the JSON names of a struct's exported, non-embedded fields to their
// types (the SDK's requests embed their transport base, which is not a parameter).
func jsonFields(t reflect.Type) map[string]reflect.Type {
	t = structOf(t)
	out := map[string]reflect.Type{}
	if t == nil {
		return out
	}
	for i := range t.NumField() {
		f := t.Field(i)
		if f.Anonymous || !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" {
			continue
		}
		if name == "" {
			name = f.Name
		}
		out[name] = f.Type
	}
	return out
}
