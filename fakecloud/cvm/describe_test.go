package cvm_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stratus-cloud/stratus/cloudapi"
	cvmapi "github.com/stratus-cloud/stratus/cloudapi/cvm"
)

func ids(out *cvmapi.DescribeInstancesResponse) []string {
	var s []string
	for _, in := range out.InstanceSet {
		s = append(s, in.InstanceId)
	}
	return s
}

func TestDescribeFilters(t *testing.T) {
	e := newEnv(t, envOpts{})
	ctx := context.Background()
	req := runReq(1)
	req.InstanceName = "tagged"
	req.TagSpecification = []cvmapi.TagSpecification{{ResourceType: "instance", Tags: []cloudapi.Tag{{Key: "stratus.io/cluster", Value: "c1"}}}}
	run, err := e.cvm.RunInstances(ctx, req)
	require.NoError(t, err)
	tagged := run.InstanceIdSet[0]
	_, err = e.cvm.StopInstances(ctx, &cvmapi.StopInstancesRequest{InstanceIds: []string{"ins-node0004"}})
	require.NoError(t, err)

	cases := []struct {
		filters []cloudapi.Filter
		want    []string
	}{
		{[]cloudapi.Filter{{Name: "zone", Values: []string{"ap-guangzhou-2", "ap-guangzhou-3"}}}, []string{"ins-node0003", "ins-node0004"}},
		{[]cloudapi.Filter{{Name: "vpc-id", Values: []string{"vpc-stratus1"}}, {Name: "zone", Values: []string{"ap-guangzhou-1"}}}, []string{"ins-node0001", "ins-node0002", tagged}},
		{[]cloudapi.Filter{{Name: "vpc-id", Values: []string{"vpc-other"}}}, nil},
		{[]cloudapi.Filter{{Name: "instance-id", Values: []string{"ins-node0002", "ins-node0001", "ins-nothere1"}}}, []string{"ins-node0001", "ins-node0002"}},
		{[]cloudapi.Filter{{Name: "instance-name", Values: []string{"node-3", "tagged"}}}, []string{"ins-node0003", tagged}},
		{[]cloudapi.Filter{{Name: "instance-state", Values: []string{"STOPPED"}}}, []string{"ins-node0004"}},
		{[]cloudapi.Filter{{Name: "private-ip-address", Values: []string{"10.0.3.11", "10.0.1.12", "10.9.9.9"}}}, []string{"ins-node0002", "ins-node0004"}},
		{[]cloudapi.Filter{{Name: "private-ip-address", Values: []string{"10.0.3.11", "10.0.1.12"}}, {Name: "instance-state", Values: []string{"RUNNING"}}}, []string{"ins-node0002"}},
		{[]cloudapi.Filter{{Name: "tag:stratus.io/cluster", Values: []string{"c1"}}}, []string{tagged}},
		{[]cloudapi.Filter{{Name: "tag:stratus.io/cluster", Values: []string{"c2"}}}, nil},
		{[]cloudapi.Filter{{Name: "tag-key", Values: []string{"stratus.io/cluster"}}}, []string{tagged}},
		{[]cloudapi.Filter{{Name: "subnet-id", Values: []string{"subnet-gz3"}}}, []string{"ins-node0004"}},
		{[]cloudapi.Filter{{Name: "instance-type", Values: []string{"S5.LARGE8"}}}, []string{"ins-node0003", "ins-node0004"}},
		{[]cloudapi.Filter{{Name: "public-ip-address", Values: []string{"203.0.113.10"}}}, []string{"ins-node0003"}},
		{[]cloudapi.Filter{{Name: "image-id", Values: []string{"img-abcd1234"}}}, []string{tagged}},
		{[]cloudapi.Filter{{Name: "instance-charge-type", Values: []string{"PREPAID"}}}, nil},
	}
	for _, tc := range cases {
		t.Run(fmt.Sprint(tc.filters), func(t *testing.T) {
			out, err := e.cvm.DescribeInstances(ctx, &cvmapi.DescribeInstancesRequest{Filters: tc.filters})
			require.NoError(t, err)
			assert.Equal(t, tc.want, ids(out))
			assert.EqualValues(t, len(tc.want), out.TotalCount)
		})
	}
}

func TestDescribeErrors(t *testing.T) {
	e := newEnv(t, envOpts{})
	ctx := context.Background()
	many := make([]string, 101)
	for i := range many {
		many[i] = fmt.Sprintf("10.0.1.%d", i)
	}
	cases := []struct {
		name string
		req  *cvmapi.DescribeInstancesRequest
		code string
	}{
		{"ids and filters", &cvmapi.DescribeInstancesRequest{InstanceIds: []string{"ins-node0001"}, Filters: []cloudapi.Filter{{Name: "zone", Values: []string{"ap-guangzhou-1"}}}}, "InvalidParameter.AtMostOne"},
		{"unknown filter", &cvmapi.DescribeInstancesRequest{Filters: []cloudapi.Filter{{Name: "color", Values: []string{"red"}}}}, "InvalidFilter"},
		{"empty values", &cvmapi.DescribeInstancesRequest{Filters: []cloudapi.Filter{{Name: "zone"}}}, "InvalidParameterValue"},
		{"too many values", &cvmapi.DescribeInstancesRequest{Filters: []cloudapi.Filter{{Name: "private-ip-address", Values: many}}}, "InvalidFilterValue.LimitExceeded"},
		{"bad state", &cvmapi.DescribeInstancesRequest{Filters: []cloudapi.Filter{{Name: "instance-state", Values: []string{"NAPPING"}}}}, "InvalidParameterValue"},
		{"malformed id", &cvmapi.DescribeInstancesRequest{InstanceIds: []string{"node-1"}}, "InvalidInstanceId.Malformed"},
		{"limit 101", &cvmapi.DescribeInstancesRequest{Limit: cloudapi.Int64(101)}, "InvalidParameterValue"},
		{"negative offset", &cvmapi.DescribeInstancesRequest{Offset: cloudapi.Int64(-1)}, "InvalidParameterValue"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.cvm.DescribeInstances(ctx, tc.req)
			assert.Equal(t, tc.code, cloudapi.ErrorCode(err), "%v", err)
		})
	}
}

func TestDescribePagination(t *testing.T) {
	e := newEnv(t, envOpts{})
	ctx := context.Background()
	run, err := e.cvm.RunInstances(ctx, runReq(45))
	require.NoError(t, err)
	want := append([]string{"ins-node0001", "ins-node0002", "ins-node0003", "ins-node0004"}, run.InstanceIdSet...)

	var got []string
	for off := int64(0); ; off += 20 {
		out, err := e.cvm.DescribeInstances(ctx, &cvmapi.DescribeInstancesRequest{Offset: cloudapi.Int64(off)})
		require.NoError(t, err)
		assert.EqualValues(t, 49, out.TotalCount)
		if len(out.InstanceSet) == 0 {
			break
		}
		assert.LessOrEqual(t, len(out.InstanceSet), 20, "default page size")
		got = append(got, ids(out)...)
	}
	assert.Equal(t, want, got, "pages cover every instance once, in creation order")

	// A filtered listing pages over the matches only.
	zf := []cloudapi.Filter{{Name: "zone", Values: []string{"ap-guangzhou-1"}}}
	out, err := e.cvm.DescribeInstances(ctx, &cvmapi.DescribeInstancesRequest{Filters: zf, Offset: cloudapi.Int64(40), Limit: cloudapi.Int64(100)})
	require.NoError(t, err)
	assert.EqualValues(t, 47, out.TotalCount)
	assert.Equal(t, want[42:], ids(out))
}
