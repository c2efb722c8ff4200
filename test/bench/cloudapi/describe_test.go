// Package cloudapibench measures the cloud API path end to end: the cloudapi client
// (serialize, sign, send, decode) against fakecloud served on a real loopback listener.
//
// Run: go test -run '^$' -bench DescribeInstances -benchmem ./test/bench/cloudapi/
package cloudapibench

import (
	"context"
	"errors"
	"net"
	"net/http"
	"syscall"
	"testing"
	"time"

	"github.com/stratus-cloud/stratus/cloudapi"
	"github.com/stratus-cloud/stratus/cloudapi/cvm"
	"github.com/stratus-cloud/stratus/fakecloud"
	"github.com/stratus-cloud/stratus/fakecloud/api"
	"github.com/stratus-cloud/stratus/fakecloud/vpc"
)

const (
	instances = 5000
	// lookedUp is the cloud's limit of values in one DescribeInstances filter.
	lookedUp = 5
)

// world is one VPC with a /19 subnet, room for the 5,000 instances.
func world() *api.Seed {
	s := &api.Seed{Region: "ap-guangzhou", Zones: []string{"ap-guangzhou-1"}}
	vpc.SetSeed(s, []vpc.SeedVPC{{
		VpcID: "vpc-bench001", CidrBlock: "10.0.0.0/16",
		Subnets: []vpc.SeedSubnet{{SubnetID: "subnet-bench001", CidrBlock: "10.0.0.0/19", Zone: "ap-guangzhou-1"}},
	}})
	return s
}

// serve runs cloud on 127.0.0.1 (a real TCP listener, not httptest's in-memory pipe).
func serve(b *testing.B, cloud *fakecloud.Cloud) string {
	b.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatalf("listen on loopback: %v", err)
	}
	srv := &http.Server{Handler: cloud, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			b.Errorf("serve: %v", err)
		}
	}()
	b.Cleanup(func() { _ = srv.Close() })
	return "http://" + ln.Addr().String()
}

// BenchmarkDescribeInstancesByPrivateIP is the cloud provider's node lookup: one
// DescribeInstances call filtering 5,000 instances by 5 private IPs (the most one filter may carry).
func BenchmarkDescribeInstancesByPrivateIP(b *testing.B) {
	cloud, err := fakecloud.New(fakecloud.Config{Seed: world(), RateLimit: -1})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = cloud.Close() })
	id, key := cloud.Credentials()
	var attempts cloudapi.CallCounter
	c, err := cloudapi.New(cloudapi.Config{
		Endpoint:    serve(b, cloud),
		Region:      cloud.Region(),
		Credentials: cloudapi.Credentials{SecretID: id, SecretKey: key},
		RateLimit:   -1,
		// Retries stay on (as in production) but back off briefly, so a retried
		// transport error costs a reconnect, not a sleep; attempts/op shows how often.
		BackoffBase: time.Microsecond,
		BackoffMax:  time.Millisecond,
		Hooks:       []cloudapi.CallHook{attempts.Hook},
	})
	if err != nil {
		b.Fatal(err)
	}
	client := cvm.New(c)
	ctx := context.Background()

	var ips []string
	for range instances / 100 {
		run, err := client.RunInstances(ctx, &cvm.RunInstancesRequest{
			Placement:           &cvm.Placement{Zone: "ap-guangzhou-1"},
			InstanceType:        "S5.MEDIUM2",
			ImageId:             "img-bench001",
			InstanceCount:       cloudapi.Int64(100),
			VirtualPrivateCloud: &cvm.VirtualPrivateCloud{VpcId: "vpc-bench001", SubnetId: "subnet-bench001"},
		})
		if err != nil {
			b.Fatalf("RunInstances: %v", err)
		}
		if len(run.InstanceIdSet) != 100 {
			b.Fatalf("RunInstances made %d instances, want 100", len(run.InstanceIdSet))
		}
	}
	// lookedUp addresses spread evenly over the whole table.
	var all []string
	for off := int64(0); off < instances; off += 100 {
		page, err := client.DescribeInstances(ctx, &cvm.DescribeInstancesRequest{Offset: cloudapi.Int64(off), Limit: cloudapi.Int64(100)})
		if err != nil {
			b.Fatal(err)
		}
		if page.TotalCount != instances {
			b.Fatalf("TotalCount %d, want %d", page.TotalCount, instances)
		}
		for _, in := range page.InstanceSet {
			all = append(all, in.PrivateIpAddresses[0])
		}
	}
	for i := 0; i < len(all); i += instances / lookedUp {
		ips = append(ips, all[i])
	}
	if len(ips) != lookedUp {
		b.Fatalf("picked %d addresses, want %d", len(ips), lookedUp)
	}
	req := &cvm.DescribeInstancesRequest{
		Filters: []cloudapi.Filter{{Name: "private-ip-address", Values: ips}},
		Limit:   cloudapi.Int64(100),
	}

	attempts.Reset()
	cpu0 := cpuTime(b)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		out, err := client.DescribeInstances(ctx, req)
		if err != nil {
			b.Fatal(err)
		}
		if out.TotalCount != lookedUp || len(out.InstanceSet) != lookedUp {
			b.Fatalf("found %d (page %d), want %d", out.TotalCount, len(out.InstanceSet), lookedUp)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(attempts.Count("DescribeInstances"))/float64(b.N), "attempts/op")
	b.ReportMetric(float64(cpuTime(b)-cpu0)/float64(b.N), "cpu-ns/op")
}

// cpuTime is the process's user+system CPU time. Client and server share the process,
// so cpu-ns/op is the whole call's CPU cost; unlike ns/op it barely moves when other
// work competes for the machine's cores.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatalf("getrusage: %v", err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
