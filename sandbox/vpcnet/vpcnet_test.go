package vpcnet_test

import (
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vishvananda/netlink"

	"github.com/stratus-cloud/stratus/internal/testcap"
	"github.com/stratus-cloud/stratus/sandbox/plan"
	"github.com/stratus-cloud/stratus/sandbox/state"
	"github.com/stratus-cloud/stratus/sandbox/teardown"
	"github.com/stratus-cloud/stratus/sandbox/vpcnet"
)

func TestCheckOverlap(t *testing.T) {
	routes := []vpcnet.HostRoute{
		{Dst: netip.MustParsePrefix("0.0.0.0/0"), Device: "eth0"},
		{Dst: netip.MustParsePrefix("192.0.2.0/24"), Device: "eth0", Table: 254},
		{Dst: netip.MustParsePrefix("10.250.3.4/30"), Device: "se2eabch"},
		{Dst: netip.MustParsePrefix("172.17.0.1/32"), Device: "docker0", Table: 255},
	}
	cases := []struct {
		name string
		want map[string]netip.Prefix
		err  string
	}{
		{"disjoint", map[string]netip.Prefix{"--vpc-cidr": netip.MustParsePrefix("10.0.0.0/16"), "--cluster-cidr": netip.MustParsePrefix("10.244.0.0/16")}, ""},
		{"a route inside the range", map[string]netip.Prefix{"--vpc-cidr": netip.MustParsePrefix("10.250.0.0/16")},
			"--vpc-cidr 10.250.0.0/16 overlaps the host route 10.250.3.4/30 dev se2eabch: pick a free range with --vpc-cidr"},
		{"an address of the host", map[string]netip.Prefix{"--cluster-cidr": netip.MustParsePrefix("172.16.0.0/12")},
			"--cluster-cidr 172.16.0.0/12 overlaps the host route 172.17.0.1/32 dev docker0 table 255"},
		{"the range inside a route", map[string]netip.Prefix{"--vpc-cidr": netip.MustParsePrefix("192.0.2.0/25")}, "overlaps the host route 192.0.2.0/24 dev eth0:"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := vpcnet.CheckOverlap(c.want, routes)
			if c.err == "" {
				assert.NoError(t, err)
				return
			}
			require.Error(t, err)
			assert.Contains(t, err.Error(), c.err)
		})
	}
}

func requireNet(t *testing.T) {
	t.Helper()
	testcap.Root(t, "network namespaces, veth pairs and host routes")
	testcap.Tool(t, "ip", "iproute2")
}

// freePlan lays out a sandbox in a fresh state dir whose VPC and cluster ranges no host
// route uses, so the test runs beside other sandboxes and tests on the machine.
func freePlan(t *testing.T, nodes int) *plan.Plan {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "sandbox")
	p, _, err := plan.Choose(plan.Options{StateDir: dir, Nodes: nodes}, vpcnet.CheckHost)
	require.NoError(t, err, "a free address slot for the sandbox")
	return p
}

func nsExists(name string) bool {
	_, err := os.Stat(vpcnet.NetnsPath(name))
	return err == nil
}

// TestBuildAndTeardown builds the whole network, proves it carries traffic (host to a
// node, node to node across subnets), then tears it down, leftovers included, and
// checks that nothing of it remains.
func TestBuildAndTeardown(t *testing.T) {
	requireNet(t)
	p := freePlan(t, 3)
	dir := state.Dir(p.StateDir)
	j, err := state.OpenJournal(dir.JournalFile())
	require.NoError(t, err)
	down := func() teardown.Report {
		rep, err := teardown.Down(teardown.Options{Plan: p})
		require.NoError(t, err)
		return rep
	}
	t.Cleanup(func() { _, _ = teardown.Down(teardown.Options{Plan: p}) })

	start := time.Now()
	require.NoError(t, vpcnet.Build(p, j))
	t.Logf("built router, host link and %d nodes in %v", len(p.Nodes), time.Since(start))

	assert.True(t, nsExists(p.RouterNetns))
	for _, n := range p.Nodes {
		assert.True(t, nsExists(n.Netns), n.Netns)
	}
	_, err = netlink.LinkByName(p.HostLink)
	require.NoError(t, err)
	assert.Error(t, vpcnet.CheckHost(p), "the sandbox's own host routes now occupy its ranges")

	// Host -> node-2 and node-1 -> node-3 (another subnet, through the router).
	serve := func(n plan.Node) string {
		var ln net.Listener
		require.NoError(t, ns.WithNetNSPath(vpcnet.NetnsPath(n.Netns), func(ns.NetNS) (err error) {
			ln, err = net.Listen("tcp", net.JoinHostPort(n.IP.String(), "0"))
			return err
		}))
		t.Cleanup(func() { ln.Close() })
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				_, _ = c.Write([]byte(n.Name))
				c.Close()
			}
		}()
		return ln.Addr().String()
	}
	read := func(addr string) (string, error) {
		c, err := net.DialTimeout("tcp", addr, 3*time.Second)
		if err != nil {
			return "", err
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(3 * time.Second))
		b := make([]byte, 32)
		n, err := c.Read(b)
		return string(b[:n]), err
	}
	got, err := read(serve(p.Nodes[1]))
	require.NoError(t, err, "the host reaches a node through the router")
	assert.Equal(t, "node-2", got)
	addr3 := serve(p.Nodes[2])
	require.NoError(t, ns.WithNetNSPath(vpcnet.NetnsPath(p.Nodes[0].Netns), func(ns.NetNS) error {
		got, err = read(addr3)
		return err
	}), "a node reaches a node of another subnet through the router")
	assert.Equal(t, "node-3", got)

	// Leftovers a crash would leave: a process in a node namespace that no pidfile names,
	// a mount and a loop device under the state dir.
	sleeper := exec.Command("ip", "netns", "exec", p.Nodes[0].Netns, "sleep", "300")
	require.NoError(t, sleeper.Start())
	sleeperDone := waitIn(sleeper)
	// A process on the host running a binary of the state dir, its pidfile lost.
	sleepBin := dir.Path("bin", "sleep")
	require.NoError(t, os.MkdirAll(filepath.Dir(sleepBin), 0o755))
	sleepSrc, err := exec.LookPath("sleep")
	require.NoError(t, err)
	b, err := os.ReadFile(sleepSrc)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(sleepBin, b, 0o755))
	hostSleeper := exec.Command(sleepBin, "300")
	require.NoError(t, hostSleeper.Start())
	hostSleeperDone := waitIn(hostSleeper)
	// And one that only mentions the state dir: not the sandbox's, it stays.
	bystander := exec.Command("sh", "-c", "sleep 300", p.StateDir+"/logs/x.log")
	require.NoError(t, bystander.Start())
	bystanderDone := waitIn(bystander)
	defer func() { _ = bystander.Process.Kill(); <-bystanderDone }()
	mnt := dir.Path("nodes", "node-1", "volume")
	require.NoError(t, os.MkdirAll(mnt, 0o755))
	require.NoError(t, exec.Command("mount", "-t", "tmpfs", "tmpfs", mnt).Run())
	var loop string
	if _, err := exec.LookPath("losetup"); err == nil {
		img := dir.Path("fakecloud", "disk.img")
		require.NoError(t, os.MkdirAll(filepath.Dir(img), 0o755))
		require.NoError(t, os.WriteFile(img, make([]byte, 1<<20), 0o600))
		out, err := exec.Command("losetup", "--find", "--show", img).CombinedOutput()
		if err == nil {
			loop = strings.TrimSpace(string(out))
		} else {
			t.Logf("no loop device for the leftover check: %v: %s", err, out)
		}
	}

	start = time.Now()
	rep := down()
	t.Logf("teardown: %s in %v", rep, time.Since(start))
	assert.Equal(t, 1+len(p.Nodes), rep.Namespaces)
	assert.GreaterOrEqual(t, rep.Processes, 1, "the stray process was stopped")
	assert.Equal(t, 1, rep.Mounts)
	if loop != "" {
		assert.Equal(t, 1, rep.Loops)
		loops, err := teardown.LoopsUnder(p.StateDir)
		require.NoError(t, err)
		assert.Empty(t, loops)
	}
	assert.False(t, nsExists(p.RouterNetns))
	for _, n := range p.Nodes {
		assert.False(t, nsExists(n.Netns))
	}
	_, err = netlink.LinkByName(p.HostLink)
	assert.Error(t, err, "the host link went with the router")
	assert.NoError(t, vpcnet.CheckHost(p), "no host route of the sandbox is left")
	assert.Eventually(t, func() bool { return closed(sleeperDone) }, 10*time.Second, 20*time.Millisecond)
	assert.Eventually(t, func() bool { return closed(hostSleeperDone) }, 10*time.Second, 20*time.Millisecond,
		"a process running the state dir's binary is stopped")
	assert.False(t, closed(bystanderDone), "a process that only names the state dir is left alone")
	assert.GreaterOrEqual(t, rep.Processes, 2)
	_, err = os.Stat(p.StateDir)
	assert.ErrorIs(t, err, os.ErrNotExist)

	again := down()
	assert.Equal(t, teardown.Report{}, again, "a second down finds nothing")
}

// TestTeardownLeavesOtherFilesAlone points a sandbox at a directory holding a file the
// sandbox did not write: down removes only its own entries.
func TestTeardownLeavesOtherFilesAlone(t *testing.T) {
	dir := t.TempDir()
	p, err := plan.New(plan.Options{StateDir: dir})
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "precious.txt"), []byte("mine"), 0o600))
	require.NoError(t, state.WriteJSON(state.Dir(dir).ConfigFile(), map[string]int{}))
	require.NoError(t, os.MkdirAll(state.Dir(dir).LogDir(), 0o755))
	_, err = teardown.Down(teardown.Options{Plan: p})
	require.Error(t, err, "the state dir is not removed and down says why")
	assert.Contains(t, err.Error(), "holds files stratus did not write")
	b, err := os.ReadFile(filepath.Join(dir, "precious.txt"))
	require.NoError(t, err)
	assert.Equal(t, "mine", string(b))
	_, err = os.Stat(state.Dir(dir).ConfigFile())
	assert.ErrorIs(t, err, os.ErrNotExist)
}

func waitIn(cmd *exec.Cmd) chan struct{} {
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	return done
}

func closed(c chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}
