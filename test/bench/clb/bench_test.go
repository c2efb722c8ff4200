// Package clbbench measures what fakecloud's CLB data plane costs: TCP throughput over one
// connection, round-trip latency on an established connection, and connect latency
// (handshake plus first byte), each through a listener's VIP and directly to the same
// backend, in the same run, interleaved round by round so both see the same machine.
//
//	go test -run '^$' -bench BenchmarkCLBDataPlane -benchtime 1x ./test/bench/clb/
//
// STRATUS_BENCH_MB (default 512) sets the bytes per throughput round, STRATUS_BENCH_ROUNDS
// (default 5) the rounds. Plain `go test ./...` runs no benchmark.
package clbbench

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http/httptest"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/stratus-cloud/stratus/cloudapi"
	clbapi "github.com/stratus-cloud/stratus/cloudapi/clb"
	"github.com/stratus-cloud/stratus/fakecloud"
	"github.com/stratus-cloud/stratus/fakecloud/api"
	"github.com/stratus-cloud/stratus/fakecloud/clb"
	"github.com/stratus-cloud/stratus/fakecloud/cvm"
	"github.com/stratus-cloud/stratus/fakecloud/vpc"
)

const (
	pingSize   = 64
	pings      = 20000
	connects   = 2000
	chunk      = 1 << 20
	modeStream = 'T'
	modePing   = 'P'
	modeHello  = 'C'
)

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// serve is the backend: the first byte of a connection picks the test.
//   - 'T' + 8-byte length: read that many bytes, answer one byte (throughput).
//   - 'P': echo pingSize-byte messages until EOF (round trips).
//   - 'C': answer one byte and close (connect latency).
func serve(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			var mode [1]byte
			if _, err := io.ReadFull(c, mode[:]); err != nil {
				return
			}
			switch mode[0] {
			case modeStream:
				var hdr [8]byte
				if _, err := io.ReadFull(c, hdr[:]); err != nil {
					return
				}
				left := int64(binary.BigEndian.Uint64(hdr[:]))
				buf := make([]byte, chunk)
				for left > 0 {
					n, err := c.Read(buf[:min(int64(len(buf)), left)])
					left -= int64(n)
					if err != nil {
						return
					}
				}
				_, _ = c.Write([]byte{1})
			case modePing:
				buf := make([]byte, pingSize)
				for {
					if _, err := io.ReadFull(c, buf); err != nil {
						return
					}
					if _, err := c.Write(buf); err != nil {
						return
					}
				}
			case modeHello:
				_, _ = c.Write([]byte{1})
			}
		}()
	}
}

// throughput sends size bytes over one connection and returns MB/s (1 MB = 2^20 bytes),
// counting until the backend confirmed it read everything.
func throughput(addr netip.AddrPort, size int64) (float64, error) {
	c, err := net.Dial("tcp", addr.String())
	if err != nil {
		return 0, err
	}
	defer c.Close()
	buf := make([]byte, chunk)
	start := time.Now()
	hdr := make([]byte, 9)
	hdr[0] = modeStream
	binary.BigEndian.PutUint64(hdr[1:], uint64(size))
	if _, err := c.Write(hdr); err != nil {
		return 0, err
	}
	for left := size; left > 0; {
		n, err := c.Write(buf[:min(int64(len(buf)), left)])
		left -= int64(n)
		if err != nil {
			return 0, err
		}
	}
	if _, err := io.ReadFull(c, hdr[:1]); err != nil {
		return 0, err
	}
	return float64(size) / (1 << 20) / time.Since(start).Seconds(), nil
}

// roundTrips times n pingSize-byte echoes on one established connection.
func roundTrips(addr netip.AddrPort, n int) ([]time.Duration, error) {
	c, err := net.Dial("tcp", addr.String())
	if err != nil {
		return nil, err
	}
	defer c.Close()
	if _, err := c.Write([]byte{modePing}); err != nil {
		return nil, err
	}
	msg := make([]byte, pingSize)
	out := make([]time.Duration, 0, n)
	for range n {
		start := time.Now()
		if _, err := c.Write(msg); err != nil {
			return nil, err
		}
		if _, err := io.ReadFull(c, msg); err != nil {
			return nil, err
		}
		out = append(out, time.Since(start))
	}
	return out, nil
}

// connectLatency times n fresh connections up to the backend's first byte (through the
// data plane that includes its own connection to the target).
func connectLatency(addr netip.AddrPort, n int) ([]time.Duration, error) {
	out := make([]time.Duration, 0, n)
	var b [1]byte
	for range n {
		start := time.Now()
		c, err := net.Dial("tcp", addr.String())
		if err != nil {
			return nil, err
		}
		if _, err := c.Write([]byte{modeHello}); err != nil {
			c.Close()
			return nil, err
		}
		if _, err := io.ReadFull(c, b[:]); err != nil {
			c.Close()
			return nil, err
		}
		out = append(out, time.Since(start))
		_ = c.Close()
	}
	return out, nil
}

func pct(d []time.Duration, p float64) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[min(len(s)-1, int(float64(len(s))*p))]
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}

// setup starts fakecloud with the data plane, one instance (10.0.1.11, mapped onto
// 127.77.1.11) running the backend, and an OPEN load balancer with a TCP listener on
// port 8080 whose only target is that instance. It returns the VIP's loopback address and
// the backend's address.
func setup(b *testing.B) (vipAddr, direct netip.AddrPort) {
	b.Helper()
	backendIP := netip.MustParseAddr("127.77.1.11")
	ln, err := net.Listen("tcp", netip.AddrPortFrom(backendIP, 0).String())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = ln.Close() })
	go serve(ln)
	direct = netip.MustParseAddrPort(ln.Addr().String())

	opts := clb.Options{
		DataPlane:    true,
		LoopbackPool: netip.MustParsePrefix("127.242.0.0/24"),
		TargetMap:    []clb.PrefixMap{{From: netip.MustParsePrefix("10.0.0.0/16"), To: netip.MustParsePrefix("127.77.0.0/16")}},
	}
	if err := opts.Validate(); err != nil {
		b.Fatal(err)
	}
	seed := &api.Seed{Region: "ap-guangzhou", Zones: []string{"ap-guangzhou-1"}}
	vpc.SetSeed(seed, []vpc.SeedVPC{{VpcID: "vpc-bench001", CidrBlock: "10.0.0.0/16", Subnets: []vpc.SeedSubnet{
		{SubnetID: "subnet-bench1", CidrBlock: "10.0.1.0/24", Zone: "ap-guangzhou-1"}}}})
	cvm.SetSeed(seed, []cvm.SeedInstance{{InstanceID: "ins-bench001", Zone: "ap-guangzhou-1", SubnetID: "subnet-bench1", PrivateIP: "10.0.1.11"}})
	cloud, err := fakecloud.New(fakecloud.Config{Seed: seed, RateLimit: -1,
		Modules: []api.NewModule{vpc.New, cvm.New, clb.WithOptions(opts)}})
	if err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewServer(cloud)
	b.Cleanup(func() { srv.Close(); _ = cloud.Close() })
	id, key := cloud.Credentials()
	cl, err := cloudapi.New(cloudapi.Config{Endpoint: srv.URL, Region: cloud.Region(),
		Credentials: cloudapi.Credentials{SecretID: id, SecretKey: key}, RateLimit: -1})
	if err != nil {
		b.Fatal(err)
	}
	c := clbapi.New(cl)
	ctx := context.Background()
	lb, err := c.CreateLoadBalancer(ctx, &clbapi.CreateLoadBalancerRequest{LoadBalancerType: clbapi.TypeOpen, VpcId: "vpc-bench001"})
	if err != nil {
		b.Fatal(err)
	}
	lbID := lb.LoadBalancerIds[0]
	l, err := c.CreateListener(ctx, &clbapi.CreateListenerRequest{LoadBalancerId: lbID, Protocol: clbapi.ProtocolTCP, Ports: []int64{8080}})
	if err != nil {
		b.Fatal(err)
	}
	port := int64(direct.Port())
	_, err = c.RegisterTargets(ctx, &clbapi.RegisterTargetsRequest{LoadBalancerId: lbID, ListenerId: l.ListenerIds[0],
		Targets: []clbapi.Target{{InstanceId: cloudapi.String("ins-bench001"), Port: &port}}})
	if err != nil {
		b.Fatal(err)
	}
	vip, ok := clb.LoopbackVIP(cloud.World(), lbID)
	if !ok {
		b.Fatal("no loopback VIP")
	}
	return netip.AddrPortFrom(vip, 8080), direct
}

func BenchmarkCLBDataPlane(b *testing.B) {
	size := int64(envInt("STRATUS_BENCH_MB", 512)) << 20
	rounds := envInt("STRATUS_BENCH_ROUNDS", 5)
	vip, direct := setup(b)
	paths := []struct {
		name string
		addr netip.AddrPort
	}{{"direct", direct}, {"via CLB", vip}}

	mbps := map[string][]float64{}
	rtt := map[string][]time.Duration{}
	conn := map[string][]time.Duration{}
	b.ResetTimer()
	for range b.N {
		for r := range rounds {
			for _, p := range paths {
				v, err := throughput(p.addr, size)
				if err != nil {
					b.Fatalf("%s throughput round %d: %v", p.name, r, err)
				}
				mbps[p.name] = append(mbps[p.name], v)
				d, err := roundTrips(p.addr, pings/rounds)
				if err != nil {
					b.Fatalf("%s round trips round %d: %v", p.name, r, err)
				}
				rtt[p.name] = append(rtt[p.name], d...)
				d, err = connectLatency(p.addr, connects/rounds)
				if err != nil {
					b.Fatalf("%s connects round %d: %v", p.name, r, err)
				}
				conn[p.name] = append(conn[p.name], d...)
			}
		}
	}
	b.StopTimer()

	fmt.Printf("\nCLB data plane vs direct loopback TCP (%d rounds, %d MiB per throughput round, %d round trips of %d B, %d connects)\n",
		rounds, size>>20, pings, pingSize, connects)
	fmt.Printf("%-10s %14s %14s %14s %14s %14s\n", "path", "MB/s (median)", "RTT p50", "RTT p99", "connect p50", "connect p99")
	for _, p := range paths {
		fmt.Printf("%-10s %14.0f %14s %14s %14s %14s\n", p.name, median(mbps[p.name]),
			pct(rtt[p.name], 0.50), pct(rtt[p.name], 0.99), pct(conn[p.name], 0.50), pct(conn[p.name], 0.99))
	}
	d, v := "direct", "via CLB"
	fmt.Printf("added by the CLB: RTT p50 +%s, connect p50 +%s; throughput %.0f%% of direct\n\n",
		pct(rtt[v], 0.5)-pct(rtt[d], 0.5), pct(conn[v], 0.5)-pct(conn[d], 0.5), 100*median(mbps[v])/median(mbps[d]))
	b.ReportMetric(median(mbps[d]), "MB/s-direct")
	b.ReportMetric(median(mbps[v]), "MB/s-clb")
	b.ReportMetric(float64((pct(rtt[v], 0.5) - pct(rtt[d], 0.5)).Nanoseconds()), "ns-added-rtt-p50")
	b.ReportMetric(float64((pct(conn[v], 0.5) - pct(conn[d], 0.5)).Nanoseconds()), "ns-added-connect-p50")
}
