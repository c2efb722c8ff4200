// Package csibench measures what a pod waits for when it gets a new volume: 20 volumes
// through CreateVolume -> ControllerPublish -> NodeStage -> NodePublish on the Stratus CSI
// driver (over its unix socket, fakecloud in process with the data plane and no
// simulated latency), next to the bare path a person would type for the same result:
// losetup + mkfs.ext4 + mount of a sparse file of the same size, in the same run,
// alternating the two.
//
//	go test -run '^$' -bench BenchmarkVolumeLifecycle -benchtime 1x ./test/bench/csi/
//
// Needs root and loop devices; plain `go test ./...` runs no benchmark.
package csibench

import (
	"context"
	"fmt"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	csipb "github.com/container-storage-interface/spec/lib/go/csi"
	"golang.org/x/sys/unix"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/stratus-cloud/stratus/cloudapi"
	"github.com/stratus-cloud/stratus/cloudprovider/cbsdisks"
	"github.com/stratus-cloud/stratus/csi"
	"github.com/stratus-cloud/stratus/fakecloud"
	"github.com/stratus-cloud/stratus/fakecloud/cbs/dataplane/dataplanetest"
	fccvm "github.com/stratus-cloud/stratus/fakecloud/cvm"
	fcvpc "github.com/stratus-cloud/stratus/fakecloud/vpc"
	"github.com/stratus-cloud/stratus/internal/testcap"
)

const (
	volumes  = 20
	sizeGiB  = 10
	instance = "ins-bench001"
	zone     = "ap-guangzhou-1"
)

func BenchmarkVolumeLifecycle(b *testing.B) {
	dataplanetest.RequireLoopDevices(b)
	for _, tool := range []string{"losetup", "mkfs.ext4", "mount", "umount"} {
		testcap.Tool(b, tool, "util-linux e2fsprogs mount")
	}
	dir := b.TempDir()
	dataDir := filepath.Join(dir, "fakecloud")
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		b.Fatal(err)
	}
	dataplanetest.CleanupLoops(b, dir)
	b.Cleanup(func() { unmountUnder(b, dir) })

	node := startDriver(b, dir, dataDir)
	ctx := context.Background()
	rwo := &csipb.VolumeCapability{
		AccessType: &csipb.VolumeCapability_Mount{Mount: &csipb.VolumeCapability_MountVolume{FsType: "ext4"}},
		AccessMode: &csipb.VolumeCapability_AccessMode{Mode: csipb.VolumeCapability_AccessMode_SINGLE_NODE_MULTI_WRITER},
	}
	b.ResetTimer()
	for range b.N {
		var driverTimes, bareTimes []time.Duration
		steps := map[string][]time.Duration{}
		for i := range volumes {
			start := time.Now()
			mark := start
			step := func(name string) {
				now := time.Now()
				steps[name] = append(steps[name], now.Sub(mark))
				mark = now
			}
			vol, err := node.CreateVolume(ctx, &csipb.CreateVolumeRequest{Name: fmt.Sprintf("bench-%d-%d", i, time.Now().UnixNano()),
				CapacityRange: &csipb.CapacityRange{RequiredBytes: sizeGiB * csi.GiB}, VolumeCapabilities: []*csipb.VolumeCapability{rwo}})
			if err != nil {
				b.Fatal(err)
			}
			step("1 CreateVolume")
			id := vol.GetVolume().GetVolumeId()
			pub, err := node.ControllerPublishVolume(ctx, &csipb.ControllerPublishVolumeRequest{VolumeId: id, NodeId: instance, VolumeCapability: rwo})
			if err != nil {
				b.Fatal(err)
			}
			step("2 ControllerPublishVolume")
			staging := filepath.Join(dir, "staging", id)
			if _, err := node.NodeStageVolume(ctx, &csipb.NodeStageVolumeRequest{VolumeId: id, StagingTargetPath: staging,
				VolumeCapability: rwo, PublishContext: pub.GetPublishContext()}); err != nil {
				b.Fatal(err)
			}
			step("3 NodeStageVolume")
			if _, err := node.NodePublishVolume(ctx, &csipb.NodePublishVolumeRequest{VolumeId: id, StagingTargetPath: staging,
				TargetPath: filepath.Join(dir, "pods", id), VolumeCapability: rwo, PublishContext: pub.GetPublishContext()}); err != nil {
				b.Fatal(err)
			}
			step("4 NodePublishVolume")
			driverTimes = append(driverTimes, time.Since(start))

			bareTimes = append(bareTimes, bare(b, filepath.Join(dir, "bare", fmt.Sprint(i))))
		}
		b.StopTimer()
		dp50, dp90 := percentiles(driverTimes)
		bp50, bp90 := percentiles(bareTimes)
		fmt.Printf("\n%d volumes of %d GiB, fakecloud latency 0 (same run, alternating)\n", volumes, sizeGiB)
		fmt.Printf("%-58s %10s %10s\n", "path", "p50", "p90")
		fmt.Printf("%-58s %10s %10s\n", "CreateVolume+ControllerPublish+NodeStage+NodePublish", ms(dp50), ms(dp90))
		fmt.Printf("%-58s %10s %10s\n", "bare truncate+losetup+mkfs.ext4+mount", ms(bp50), ms(bp90))
		var names []string
		for n := range steps {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			p50, p90 := percentiles(steps[n])
			fmt.Printf("  %-56s %10s %10s\n", n[2:], ms(p50), ms(p90))
		}
		fmt.Printf("p50 ratio driver/bare: %.2f (target <= 1.50)\n", float64(dp50)/float64(bp50))
		b.ReportMetric(float64(dp50)/1e6, "driver-p50-ms")
		b.ReportMetric(float64(dp90)/1e6, "driver-p90-ms")
		b.ReportMetric(float64(bp50)/1e6, "bare-p50-ms")
		b.ReportMetric(float64(bp90)/1e6, "bare-p90-ms")
		b.ReportMetric(float64(dp50)/float64(bp50), "p50-ratio")
		b.StartTimer()
	}
}

// bare is the same result by hand: a sparse image, a loop device, ext4 as mount-utils
// makes it (-F -m0), mounted. The device stays until the cleanup.
func bare(b *testing.B, dir string) time.Duration {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		b.Fatal(err)
	}
	img, mnt := filepath.Join(dir, "disk.img"), filepath.Join(dir, "mnt")
	if err := os.Mkdir(mnt, 0o700); err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	f, err := os.Create(img)
	if err == nil {
		err = f.Truncate(sizeGiB * csi.GiB)
		f.Close()
	}
	if err != nil {
		b.Fatal(err)
	}
	out, err := exec.Command("losetup", "-f", "--show", img).Output()
	if err != nil {
		b.Fatalf("losetup: %v", err)
	}
	dev := strings.TrimSpace(string(out))
	run(b, "mkfs.ext4", "-q", "-F", "-m0", dev)
	run(b, "mount", "-t", "ext4", dev, mnt)
	return time.Since(start)
}

func run(b *testing.B, name string, args ...string) {
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		b.Fatalf("%s %v: %v: %s", name, args, err, out)
	}
}

func percentiles(d []time.Duration) (p50, p90 time.Duration) {
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	at := func(q float64) time.Duration { return s[min(len(s)-1, int(q*float64(len(s))))] }
	return at(0.50), at(0.90)
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1fms", float64(d)/1e6) }

type clients struct {
	csipb.ControllerClient
	csipb.NodeClient
}

// startDriver serves the driver (mode all) on a unix socket, backed by an in-process
// fakecloud whose one instance is this machine.
func startDriver(b *testing.B, dir, dataDir string) clients {
	seed := fakecloud.DefaultSeed()
	fcvpc.SetSeed(seed, []fcvpc.SeedVPC{{VpcID: "vpc-bench001", CidrBlock: "10.0.0.0/16",
		Subnets: []fcvpc.SeedSubnet{{SubnetID: "subnet-bench1", CidrBlock: "10.0.1.0/24", Zone: zone}}}})
	fccvm.SetSeed(seed, []fccvm.SeedInstance{{InstanceID: instance, Zone: zone, SubnetID: "subnet-bench1", InstanceType: "S5.MEDIUM2", Local: true}})
	seed.Limits = map[string]int{"cbs-disks-per-instance": volumes + 1}
	devRoot := filepath.Join(dir, "dev")
	cloud, err := fakecloud.New(fakecloud.Config{DataDir: dataDir, Seed: seed, Delays: &fakecloud.Delays{}, RateLimit: -1,
		DataPlane: &fakecloud.DataPlane{DiskDevRoot: devRoot}})
	if err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewServer(cloud)
	b.Cleanup(func() { srv.Close(); _ = cloud.Close() })
	id, key := cloud.Credentials()
	client, err := cloudapi.New(cloudapi.Config{Endpoint: srv.URL, Region: cloud.Region(),
		Credentials: cloudapi.Credentials{SecretID: id, SecretKey: key}, RateLimit: -1})
	if err != nil {
		b.Fatal(err)
	}
	disks, err := cbsdisks.New(client, cbsdisks.Config{ClusterID: "bench",
		Wait: cloudapi.WaitOptions{MinDelay: 10 * time.Millisecond, MaxDelay: 100 * time.Millisecond, Timeout: time.Minute}})
	if err != nil {
		b.Fatal(err)
	}
	d, err := csi.New(csi.Options{Mode: csi.ModeAll, Disks: disks, DefaultZone: zone, MaxVolumesPerNode: volumes + 1,
		NodeID: instance, NodeZone: zone, Mounter: csi.NewMounter(),
		Resolver: &csi.ByIDResolver{DevRoot: devRoot, LoopImageDir: filepath.Join(dataDir, "cbs")}})
	if err != nil {
		b.Fatal(err)
	}
	sock := filepath.Join(dir, "csi.sock")
	l, err := csi.Listen("unix://" + sock)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Serve(ctx, l) }()
	conn, err := grpc.NewClient("unix://"+sock, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { conn.Close(); cancel(); <-done })
	return clients{csipb.NewControllerClient(conn), csipb.NewNodeClient(conn)}
}

// unmountUnder unmounts every mount below dir, deepest first.
func unmountUnder(b *testing.B, dir string) {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		b.Errorf("read mountinfo: %v", err)
		return
	}
	var mounts []string
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) > 4 && strings.HasPrefix(f[4], dir+"/") {
			mounts = append(mounts, f[4])
		}
	}
	for i := len(mounts) - 1; i >= 0; i-- {
		if err := unix.Unmount(mounts[i], unix.MNT_DETACH); err != nil {
			b.Errorf("unmount %s: %v", mounts[i], err)
		}
	}
}
