package cvm_test

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stratus-cloud/stratus/cloudapi"
	cvmapi "github.com/stratus-cloud/stratus/cloudapi/cvm"
	vpcapi "github.com/stratus-cloud/stratus/cloudapi/vpc"
	"github.com/stratus-cloud/stratus/fakecloud/api"
	"github.com/stratus-cloud/stratus/fakecloud/cvm"
	"github.com/stratus-cloud/stratus/fakecloud/vpc"
)

func (e *env) count(t *testing.T) int64 {
	t.Helper()
	out, err := e.cvm.DescribeInstances(context.Background(), &cvmapi.DescribeInstancesRequest{Limit: cloudapi.Int64(0)})
	require.NoError(t, err)
	return out.TotalCount
}

func (e *env) freeIPs(t *testing.T, subnet string) int64 {
	t.Helper()
	out, err := e.vpc.DescribeSubnets(context.Background(), &vpcapi.DescribeSubnetsRequest{SubnetIds: []string{subnet}})
	require.NoError(t, err)
	require.Len(t, out.SubnetSet, 1)
	return out.SubnetSet[0].AvailableIpAddressCount
}

func TestRunInstancesErrors(t *testing.T) {
	e := newEnv(t, envOpts{})
	ctx := context.Background()
	before, free := e.count(t), e.freeIPs(t, "subnet-gz1")
	require.EqualValues(t, 256-3-2, free, "two seeded instances hold addresses of subnet-gz1")

	cases := []struct {
		name string
		mut  func(r *cvmapi.RunInstancesRequest)
		code string
		msg  string
	}{
		{"no placement", func(r *cvmapi.RunInstancesRequest) { r.Placement = nil }, "MissingParameter", "Placement.Zone"},
		{"unknown zone", func(r *cvmapi.RunInstancesRequest) { r.Placement.Zone = "ap-mars-1" }, "InvalidZone.MismatchRegion", "Placement.Zone"},
		{"unknown type", func(r *cvmapi.RunInstancesRequest) { r.InstanceType = "S5.HUGE9000" }, "InvalidParameterValue.InstanceTypeNotFound", "InstanceType"},
		{"malformed type", func(r *cvmapi.RunInstancesRequest) { r.InstanceType = "big" }, "InvalidInstanceType.Malformed", "InstanceType"},
		{"no image", func(r *cvmapi.RunInstancesRequest) { r.ImageId = "" }, "MissingParameter", "ImageId"},
		{"malformed image", func(r *cvmapi.RunInstancesRequest) { r.ImageId = "img-ABC" }, "InvalidImageId.Malformed", "ImageId"},
		{"count 0", func(r *cvmapi.RunInstancesRequest) { r.InstanceCount = cloudapi.Int64(0) }, "InvalidParameterValue.Range", "InstanceCount"},
		{"count 101", func(r *cvmapi.RunInstancesRequest) { r.InstanceCount = cloudapi.Int64(101) }, "InvalidParameterValue.Range", "InstanceCount"},
		{"long name", func(r *cvmapi.RunInstancesRequest) { r.InstanceName = strings.Repeat("n", 61) }, "InvalidInstanceName.TooLong", "InstanceName"},
		{"long token", func(r *cvmapi.RunInstancesRequest) { r.ClientToken = strings.Repeat("t", 65) }, "InvalidClientToken.TooLong", "ClientToken"},
		{"no vpc", func(r *cvmapi.RunInstancesRequest) { r.VirtualPrivateCloud = nil }, "MissingParameter", "VirtualPrivateCloud.VpcId"},
		{"no subnet", func(r *cvmapi.RunInstancesRequest) { r.VirtualPrivateCloud.SubnetId = "" }, "MissingParameter", "VirtualPrivateCloud.SubnetId"},
		{"malformed vpc", func(r *cvmapi.RunInstancesRequest) { r.VirtualPrivateCloud.VpcId = "net-1" }, "InvalidParameterValue.VpcIdMalformed", "VpcId"},
		{"malformed subnet", func(r *cvmapi.RunInstancesRequest) { r.VirtualPrivateCloud.SubnetId = "sn-1" }, "InvalidParameterValue.SubnetIdMalformed", "SubnetId"},
		{"unknown vpc", func(r *cvmapi.RunInstancesRequest) { r.VirtualPrivateCloud.VpcId = "vpc-nothere1" }, "InvalidParameterValue.VpcIdNotExist", "VpcId"},
		{"unknown subnet", func(r *cvmapi.RunInstancesRequest) { r.VirtualPrivateCloud.SubnetId = "subnet-nothere1" }, "InvalidParameterValue.SubnetNotExist", "SubnetId"},
		{"subnet in other zone", func(r *cvmapi.RunInstancesRequest) { r.VirtualPrivateCloud.SubnetId = "subnet-gz2" }, "InvalidParameterValue.VpcIdZoneIdNotMatch", "SubnetId"},
		{"taken IP", func(r *cvmapi.RunInstancesRequest) {
			r.InstanceCount = cloudapi.Int64(2)
			r.VirtualPrivateCloud.PrivateIpAddresses = []string{"10.0.1.40", "10.0.1.11"}
		}, "ResourceInUse.Address", "10.0.1.11"},
		{"IP outside subnet", func(r *cvmapi.RunInstancesRequest) {
			r.VirtualPrivateCloud.PrivateIpAddresses = []string{"10.0.2.40"}
		}, "InvalidParameterValue.Range", "10.0.2.40"},
		{"reserved IP", func(r *cvmapi.RunInstancesRequest) {
			r.VirtualPrivateCloud.PrivateIpAddresses = []string{"10.0.1.1"}
		}, "InvalidParameterValue.Reserved", "10.0.1.1"},
		{"malformed IP", func(r *cvmapi.RunInstancesRequest) {
			r.VirtualPrivateCloud.PrivateIpAddresses = []string{"10.0.1"}
		}, "InvalidParameterValue.IPAddressMalformed", "PrivateIpAddresses"},
		{"IP count mismatch", func(r *cvmapi.RunInstancesRequest) {
			r.VirtualPrivateCloud.PrivateIpAddresses = []string{"10.0.1.40", "10.0.1.41"}
		}, "InvalidParameterValue.AmountNotEqual", "PrivateIpAddresses"},
		{"duplicate tags", func(r *cvmapi.RunInstancesRequest) {
			r.TagSpecification = []cvmapi.TagSpecification{{ResourceType: "instance", Tags: []cloudapi.Tag{{Key: "a", Value: "1"}, {Key: "a", Value: "2"}}}}
		}, "InvalidParameterValue.DuplicateTags", "TagSpecification"},
		{"bad charge type", func(r *cvmapi.RunInstancesRequest) { r.InstanceChargeType = "FREE" }, "InvalidParameterValue", "InstanceChargeType"},
		{"dry run", func(r *cvmapi.RunInstancesRequest) { r.DryRun = cloudapi.Bool(true) }, "DryRunOperation", "DryRun"},
		{"prepaid without term", func(r *cvmapi.RunInstancesRequest) { r.InstanceChargeType = "PREPAID" }, "MissingParameter", "InstanceChargePrepaid.Period"},
		{"prepaid bad term", func(r *cvmapi.RunInstancesRequest) {
			r.InstanceChargeType = "PREPAID"
			r.InstanceChargePrepaid = &cvmapi.InstanceChargePrepaid{Period: cloudapi.Int64(13)}
		}, "InvalidPeriod", "InstanceChargePrepaid.Period"},
		{"term for postpaid", func(r *cvmapi.RunInstancesRequest) {
			r.InstanceChargePrepaid = &cvmapi.InstanceChargePrepaid{Period: cloudapi.Int64(1)}
		}, "InvalidParameterCombination", "InstanceChargePrepaid"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req := runReq(1)
			tc.mut(req)
			_, err := e.cvm.RunInstances(ctx, req)
			require.Error(t, err)
			assert.Equal(t, tc.code, cloudapi.ErrorCode(err), "%v", err)
			assert.Contains(t, err.Error(), tc.msg, "the message names the field or value")
		})
	}
	assert.Equal(t, before, e.count(t), "no failed call created an instance")
	assert.Equal(t, free, e.freeIPs(t, "subnet-gz1"), "no failed call leaked an address")
}

func TestRunInstancesUnknownField(t *testing.T) {
	e := newEnv(t, envOpts{})
	id, key := e.cloud.Credentials()
	cl, err := cloudapi.New(cloudapi.Config{Endpoint: e.srv.URL, Region: e.cloud.Region(), Credentials: cloudapi.Credentials{SecretID: id, SecretKey: key}, RateLimit: -1, MaxAttempts: 1, Now: e.clock.Now})
	require.NoError(t, err)
	err = cl.Invoke(context.Background(), cloudapi.Operation{Service: "cvm", Version: cvmapi.Version, Action: "RunInstances"},
		map[string]any{"ImageId": "img-abcd1234", "Bogus": 1}, nil)
	assert.Equal(t, cloudapi.CodeUnknownParameter, cloudapi.ErrorCode(err), "%v", err)
}

func TestClientTokenIsIdempotent(t *testing.T) {
	e := newEnv(t, envOpts{})
	ctx := context.Background()
	req := runReq(2)
	req.ClientToken = "deploy-42"
	first, err := e.cvm.RunInstances(ctx, req)
	require.NoError(t, err)
	n := e.count(t)
	again := runReq(2)
	again.ClientToken = "deploy-42"
	second, err := e.cvm.RunInstances(ctx, again)
	require.NoError(t, err)
	assert.Equal(t, first.InstanceIdSet, second.InstanceIdSet)
	assert.Equal(t, n, e.count(t), "the retry created nothing")

	// The client fills a token when the caller leaves it empty, per call.
	third, err := e.cvm.RunInstances(ctx, runReq(1))
	require.NoError(t, err)
	assert.NotContains(t, first.InstanceIdSet, third.InstanceIdSet[0])
}

func TestInstanceQuota(t *testing.T) {
	seed := seedFile(t)
	seed.Limits = map[string]int{"instances-per-region": 6}
	e := newEnv(t, envOpts{seed: seed})
	ctx := context.Background()
	_, err := e.cvm.RunInstances(ctx, runReq(3))
	require.Error(t, err)
	assert.Equal(t, "LimitExceeded.InstanceQuota", cloudapi.ErrorCode(err))
	assert.True(t, cloudapi.IsLimitExceeded(err))
	_, err = e.cvm.RunInstances(ctx, runReq(2))
	require.NoError(t, err)
	assert.EqualValues(t, 6, e.count(t))
}

func TestSubnetExhaustion(t *testing.T) {
	e := newEnv(t, envOpts{})
	ctx := context.Background()
	sn, err := e.vpc.CreateSubnet(ctx, &vpcapi.CreateSubnetRequest{VpcId: "vpc-stratus1", SubnetName: "tiny", CidrBlock: "10.0.9.0/29", Zone: "ap-guangzhou-1"})
	require.NoError(t, err)
	require.EqualValues(t, 5, sn.Subnet.AvailableIpAddressCount)
	req := runReq(6)
	req.VirtualPrivateCloud.SubnetId = sn.Subnet.SubnetId
	_, err = e.cvm.RunInstances(ctx, req)
	assert.Equal(t, "FailedOperation.NoAvailableIpAddressCountInSubnet", cloudapi.ErrorCode(err), "%v", err)
	assert.EqualValues(t, 5, e.freeIPs(t, sn.Subnet.SubnetId), "a failed batch leases nothing")
	req.InstanceCount = cloudapi.Int64(5)
	run, err := e.cvm.RunInstances(ctx, req)
	require.NoError(t, err)
	out, err := e.cvm.DescribeInstances(ctx, &cvmapi.DescribeInstancesRequest{InstanceIds: run.InstanceIdSet})
	require.NoError(t, err)
	var got []string
	for _, in := range out.InstanceSet {
		got = append(got, in.PrivateIpAddresses[0])
	}
	assert.ElementsMatch(t, []string{"10.0.9.2", "10.0.9.3", "10.0.9.4", "10.0.9.5", "10.0.9.6"}, got)
	assert.Zero(t, e.freeIPs(t, sn.Subnet.SubnetId))
}

func TestZonesAndTypes(t *testing.T) {
	e := newEnv(t, envOpts{})
	ctx := context.Background()
	z, err := e.cvm.DescribeZones(ctx, nil)
	require.NoError(t, err)
	require.EqualValues(t, 3, z.TotalCount)
	assert.Equal(t, cvmapi.ZoneInfo{Zone: "ap-guangzhou-1", ZoneName: "ap-guangzhou-1", ZoneId: "100001", ZoneState: "AVAILABLE"}, z.ZoneSet[0])

	// One value per filter, as the API documents: the family and the zone narrow it down.
	types, err := e.cvm.DescribeInstanceTypeConfigs(ctx, &cvmapi.DescribeInstanceTypeConfigsRequest{Filters: []cloudapi.Filter{
		{Name: "instance-family", Values: []string{"SA2"}}, {Name: "zone", Values: []string{"ap-guangzhou-2"}},
	}})
	require.NoError(t, err)
	assert.ElementsMatch(t, []cvmapi.InstanceTypeConfig{
		{Zone: "ap-guangzhou-2", InstanceType: "SA2.MEDIUM4", InstanceFamily: "SA2", CPU: 2, Memory: 4},
		{Zone: "ap-guangzhou-2", InstanceType: "SA2.LARGE8", InstanceFamily: "SA2", CPU: 4, Memory: 8},
		{Zone: "ap-guangzhou-2", InstanceType: "SA2.2XLARGE16", InstanceFamily: "SA2", CPU: 8, Memory: 16},
	}, types.InstanceTypeConfigSet)
	_, err = e.cvm.DescribeInstanceTypeConfigs(ctx, &cvmapi.DescribeInstanceTypeConfigsRequest{Filters: []cloudapi.Filter{
		{Name: "instance-type", Values: []string{"S5.LARGE8", "S5.MEDIUM2"}},
	}})
	assert.Equal(t, "InvalidFilterValue.LimitExceeded", cloudapi.ErrorCode(err), "one value per filter")
	_, err = e.cvm.DescribeInstanceTypeConfigs(ctx, &cvmapi.DescribeInstanceTypeConfigsRequest{Filters: []cloudapi.Filter{{Name: "gpu", Values: []string{"1"}}}})
	assert.Equal(t, "InvalidFilter", cloudapi.ErrorCode(err))
}

func TestSeedErrors(t *testing.T) {
	ins := func(s *api.Seed) []cvm.SeedInstance { v, _ := cvm.SeedInstances(s); return v }
	vpcs := func(s *api.Seed) []vpc.SeedVPC { v, _ := vpc.SeedVPCs(s); return v }
	cases := map[string]func(s *api.Seed){
		"unknown subnet":  func(s *api.Seed) { ins(s)[0].SubnetID = "subnet-nothere" },
		"zone mismatch":   func(s *api.Seed) { ins(s)[0].Zone = "ap-guangzhou-2" },
		"duplicate IP":    func(s *api.Seed) { ins(s)[1].PrivateIP = ins(s)[0].PrivateIP },
		"bad state":       func(s *api.Seed) { ins(s)[0].State = "PENDING" },
		"bad type":        func(s *api.Seed) { ins(s)[0].InstanceType = "X9.HUGE" },
		"duplicate id":    func(s *api.Seed) { ins(s)[1].InstanceID = ins(s)[0].InstanceID },
		"overlap subnet":  func(s *api.Seed) { vpcs(s)[0].Subnets[1].CidrBlock = "10.0.1.128/25" },
		"unknown section": func(s *api.Seed) { s.Set("instance", ins(s)) },
		"unknown field": func(s *api.Seed) {
			s.Set(cvm.SeedKey, []map[string]any{{"instanceId": "ins-x", "zone": "ap-guangzhou-1", "subnetId": "subnet-gz1", "colour": "red"}})
		},
	}
	for name, mut := range cases {
		t.Run(name, func(t *testing.T) {
			s := seedFile(t)
			mut(s)
			_, err := newCloud(s)
			require.Error(t, err)
		})
	}
}
