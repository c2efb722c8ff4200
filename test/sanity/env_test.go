package sanity_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	csipb "github.com/container-storage-interface/spec/lib/go/csi"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/stratus-cloud/stratus/cloudapi"
	"github.com/stratus-cloud/stratus/cloudprovider/cbsdisks"
	"github.com/stratus-cloud/stratus/csi"
	"github.com/stratus-cloud/stratus/fakecloud"
	fccbs "github.com/stratus-cloud/stratus/fakecloud/cbs"
	"github.com/stratus-cloud/stratus/fakecloud/cbs/dataplane"
	"github.com/stratus-cloud/stratus/fakecloud/cbs/dataplane/dataplanetest"
	fccvm "github.com/stratus-cloud/stratus/fakecloud/cvm"
	fcvpc "github.com/stratus-cloud/stratus/fakecloud/vpc"
	"github.com/stratus-cloud/stratus/internal/testcap"
)

const (
	zone      = "ap-guangzhou-1"
	otherZone = "ap-guangzhou-2"
	clusterID = "sanity"
)

// env is an in-process fakecloud with the CBS data plane (loop devices) and instances
// that are "this machine", each with its own device tree, so that several driver nodes
// can run side by side on one kernel.
type env struct {
	t       testing.TB
	cloud   *fakecloud.Cloud
	client  *cloudapi.Client
	disks   *cbsdisks.Disks
	dataDir string
	devRoot string // with {instanceId}
	dir     string
}

type envOptions struct {
	instances []string // local instances in zone (default one: ins-node0001)
	delays    fccbs.Delays
}

// requireNodeTools fails (CI) or skips loudly when the machine cannot run the real node
// path: root, loop devices, mkfs.ext4 and resize2fs.
func requireNodeTools(t testing.TB) {
	t.Helper()
	dataplanetest.RequireLoopDevices(t)
	testcap.Tool(t, "mkfs.ext4", "e2fsprogs")
	testcap.Tool(t, "resize2fs", "e2fsprogs")
	testcap.Tool(t, "blkid", "util-linux")
	testcap.Tool(t, "mount", "mount")
}

func newEnv(t testing.TB, o envOptions) *env {
	t.Helper()
	requireNodeTools(t)
	if len(o.instances) == 0 {
		o.instances = []string{"ins-node0001"}
	}
	dir := t.TempDir()
	dataDir := filepath.Join(dir, "fakecloud")
	require.NoError(t, os.MkdirAll(dataDir, 0o700))
	// Cleanups run last-in first-out: unmount what the driver left, then detach loops.
	dataplanetest.CleanupLoops(t, dataDir)
	t.Cleanup(func() { unmountUnder(t, dir) })

	seed := fakecloud.DefaultSeed()
	fcvpc.SetSeed(seed, []fcvpc.SeedVPC{{VpcID: "vpc-sanity01", CidrBlock: "10.0.0.0/16", Subnets: []fcvpc.SeedSubnet{
		{SubnetID: "subnet-sanity1", CidrBlock: "10.0.1.0/24", Zone: zone},
		{SubnetID: "subnet-sanity2", CidrBlock: "10.0.2.0/24", Zone: otherZone},
	}}})
	var instances []fccvm.SeedInstance
	for _, id := range o.instances {
		instances = append(instances, fccvm.SeedInstance{InstanceID: id, Zone: zone, SubnetID: "subnet-sanity1", InstanceType: "S5.MEDIUM2", Local: true})
	}
	fccvm.SetSeed(seed, append(instances, fccvm.SeedInstance{InstanceID: "ins-far00001", Zone: otherZone, SubnetID: "subnet-sanity2", InstanceType: "S5.MEDIUM2"}))
	devRoot := filepath.Join(dir, "nodes", dataplane.InstancePlaceholder, "dev")
	cloud, err := fakecloud.New(fakecloud.Config{
		DataDir: dataDir, Seed: seed, Delays: &fakecloud.Delays{CBS: o.delays}, RateLimit: -1,
		DataPlane: &fakecloud.DataPlane{DiskDevRoot: devRoot},
	})
	require.NoError(t, err)
	srv := httptest.NewServer(cloud)
	t.Cleanup(func() {
		srv.Close()
		_ = cloud.Close()
	})
	id, key := cloud.Credentials()
	client, err := cloudapi.New(cloudapi.Config{Endpoint: srv.URL, Region: cloud.Region(),
		Credentials: cloudapi.Credentials{SecretID: id, SecretKey: key}, RateLimit: -1})
	require.NoError(t, err)
	disks, err := cbsdisks.New(client, cbsdisks.Config{ClusterID: clusterID,
		Wait: cloudapi.WaitOptions{MinDelay: 10 * time.Millisecond, MaxDelay: 200 * time.Millisecond, Timeout: time.Minute}})
	require.NoError(t, err)
	return &env{t: t, cloud: cloud, client: client, disks: disks, dataDir: dataDir, devRoot: devRoot, dir: dir}
}

// nodeDevRoot is the device tree the data plane gives an instance.
func (e *env) nodeDevRoot(instance string) string {
	return strings.ReplaceAll(e.devRoot, dataplane.InstancePlaceholder, instance)
}

// driver is one driver process's worth of services on a real unix socket.
type driver struct {
	endpoint string
	conn     *grpc.ClientConn
	csipb.IdentityClient
	csipb.ControllerClient
	csipb.NodeClient
}

// startDriver serves a driver for instance in the given mode on a
// unix socket and connects to it. maxVolumes is the per-node limit (0: 20).
func (e *env) startDriver(instance string, mode csi.Mode, maxVolumes int64) *driver {
	t := e.t
	t.Helper()
	if maxVolumes == 0 {
		maxVolumes = 20
	}
	opts := csi.Options{Mode: mode, Version: "sanity", DefaultZone: zone, MaxVolumesPerNode: maxVolumes,
		NodeID: instance, NodeZone: zone}
	if mode != csi.ModeNode {
		opts.Disks = e.disks
	}
	if mode != csi.ModeController {
		opts.Mounter = csi.NewMounter()
		opts.Resolver = &csi.ByIDResolver{DevRoot: e.nodeDevRoot(instance), LoopImageDir: filepath.Join(e.dataDir, "cbs"), Timeout: 10 * time.Second}
	}
	d, err := csi.New(opts)
	require.NoError(t, err)
	sock := filepath.Join(e.dir, fmt.Sprintf("csi-%s-%s.sock", instance, mode))
	l, err := csi.Listen("unix://" + sock)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Serve(ctx, l) }()
	conn, err := grpc.NewClient("unix://"+sock, grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	t.Cleanup(func() {
		conn.Close()
		cancel()
		if err := <-done; err != nil {
			t.Errorf("driver %s: %v", instance, err)
		}
	})
	return &driver{endpoint: "unix://" + sock, conn: conn,
		IdentityClient: csipb.NewIdentityClient(conn), ControllerClient: csipb.NewControllerClient(conn), NodeClient: csipb.NewNodeClient(conn)}
}

// unmountUnder unmounts every mount below dir (deepest first), whatever a failed test
// left, so that the temporary directory can go.
func unmountUnder(t testing.TB, dir string) {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Errorf("read mountinfo: %v", err)
		return
	}
	var mounts []string
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) > 4 && (f[4] == dir || strings.HasPrefix(f[4], dir+"/")) {
			mounts = append(mounts, f[4])
		}
	}
	for i := len(mounts) - 1; i >= 0; i-- {
		if err := unix.Unmount(mounts[i], unix.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", mounts[i], err)
		}
	}
}
