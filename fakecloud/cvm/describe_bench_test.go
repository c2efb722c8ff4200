package cvm

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/stratus-cloud/stratus/cloudapi"
	"github.com/stratus-cloud/stratus/cloudapi/cvm"
	"github.com/stratus-cloud/stratus/fakecloud/api"
	"github.com/stratus-cloud/stratus/fakecloud/store"
	"github.com/stratus-cloud/stratus/fakecloud/vpc"
)

// benchWorld is 5,000 running instances in one /19 subnet, driven through the handlers
// directly: these benchmarks measure the module's own work (decode, select, render),
// without HTTP, signing or the response encoding.
func benchWorld(b *testing.B) (*Module, []string) {
	b.Helper()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	w := &api.World{Store: store.New(), Region: "ap-guangzhou", Zones: []api.Zone{{Name: "ap-guangzhou-1", ID: "100001", State: "AVAILABLE"}}, Clock: func() time.Time { return now }}
	vm, err := vpc.New(w)
	if err != nil {
		b.Fatal(err)
	}
	m, err := NewWithOptions(w, Options{})
	if err != nil {
		b.Fatal(err)
	}
	seed := &api.Seed{}
	vpc.SetSeed(seed, []vpc.SeedVPC{{VpcID: "vpc-bench001", CidrBlock: "10.0.0.0/16",
		Subnets: []vpc.SeedSubnet{{SubnetID: "subnet-bench001", CidrBlock: "10.0.0.0/19", Zone: "ap-guangzhou-1"}}}})
	if err := w.Store.Update(func(tx *store.Tx) error { return vm.Seed(tx, seed) }); err != nil {
		b.Fatal(err)
	}
	run, _ := json.Marshal(&cvm.RunInstancesRequest{
		Placement: &cvm.Placement{Zone: "ap-guangzhou-1"}, ImageId: "img-bench001", InstanceCount: cloudapi.Int64(100),
		VirtualPrivateCloud: &cvm.VirtualPrivateCloud{VpcId: "vpc-bench001", SubnetId: "subnet-bench001"},
	})
	for range 50 {
		if _, err := m.runInstances(&api.Request{Body: run, Now: now}); err != nil {
			b.Fatal(err)
		}
	}
	var ips []string
	_ = w.Store.View(func(tx *store.Tx) error {
		for i, in := range instancesT.List(tx) {
			if i%1000 == 0 {
				ips = append(ips, in.PrivateIP)
			}
		}
		return nil
	})
	return m, ips
}

func benchDescribe(b *testing.B, m *Module, req *cvm.DescribeInstancesRequest, want int64) {
	body, _ := json.Marshal(req)
	r := &api.Request{Body: body, Now: m.w.Now()}
	b.ReportAllocs()
	for b.Loop() {
		out, err := m.describeInstances(r)
		if err != nil {
			b.Fatal(err)
		}
		if got := out.(*cvm.DescribeInstancesResponse).TotalCount; got != want {
			b.Fatalf("found %d, want %d", got, want)
		}
	}
}

// BenchmarkDescribeHandler compares the indexed private-IP lookup with a filter that
// has to scan all 5,000 instances, both with the API's 5 values per filter.
func BenchmarkDescribeHandler(b *testing.B) {
	m, ips := benchWorld(b)
	b.Run("private-ip-address=5", func(b *testing.B) {
		benchDescribe(b, m, &cvm.DescribeInstancesRequest{Filters: []cloudapi.Filter{{Name: "private-ip-address", Values: ips}}, Limit: cloudapi.Int64(100)}, int64(len(ips)))
	})
	names := make([]string, maxFilterValues)
	for i := range names {
		names[i] = fmt.Sprintf("no-such-name-%d", i)
	}
	b.Run("scan/instance-name=5", func(b *testing.B) {
		benchDescribe(b, m, &cvm.DescribeInstancesRequest{Filters: []cloudapi.Filter{{Name: "instance-name", Values: names}}, Limit: cloudapi.Int64(100)}, 0)
	})
}
