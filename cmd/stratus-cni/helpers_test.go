package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/containernetworking/cni/libcni"
	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/stretchr/testify/require"
	"github.com/vishvananda/netlink"

	"github.com/stratus-cloud/stratus/cni/nstest"
	"github.com/stratus-cloud/stratus/internal/testcap"
)

// binDir holds the plugin built once by TestMain; skipReason is set when the
// namespace tests cannot run on this machine.
var (
	binDir     string
	skipReason string
)

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	if skipReason = nstest.Usable(); skipReason == "" {
		nstest.Sweep()
	}
	dir, err := os.MkdirTemp("", "stratus-cni-test-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	if _, err := nstest.BuildPlugin(dir); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	binDir = dir
	return m.Run()
}

func requireNS(t *testing.T) {
	t.Helper()
	if skipReason != "" {
		testcap.Missing(t, "network namespace test: %s", skipReason)
	}
}

const netName = "stratus-test"

// testNode is a node namespace with a conflist for stratus-bridge, driven through
// libcni as a runtime would.
type testNode struct {
	*nstest.NS
	RT      *nstest.Runtime
	Bridge  string
	Subnet  *net.IPNet
	Gateway net.IP
	DataDir string
	Conf    map[string]any
}

type nodeOpt func(plugin map[string]any, list map[string]any)

func withPlugin(k string, v any) nodeOpt {
	return func(p, _ map[string]any) { p[k] = v }
}

func withVersion(v string) nodeOpt {
	return func(_, l map[string]any) { l["cniVersion"] = v }
}

func conflistJSON(t *testing.T, bridge, subnet, dataDir string, opts ...nodeOpt) []byte {
	t.Helper()
	plugin := map[string]any{"type": "stratus-bridge", "bridge": bridge, "dataDir": dataDir}
	if subnet != "" {
		plugin["subnet"] = subnet
	}
	list := map[string]any{"cniVersion": "1.1.0", "name": netName}
	for _, o := range opts {
		o(plugin, list)
	}
	list["plugins"] = []any{plugin}
	b, err := json.Marshal(list)
	require.NoError(t, err)
	return b
}

func newNode(t *testing.T, subnet string, opts ...nodeOpt) *testNode {
	t.Helper()
	requireNS(t)
	n := nstest.New(t, "node")
	bridge := "sbtest" + nstest.RandHex(4)
	dataDir := t.TempDir()
	rt, err := nstest.NewRuntime(n, []string{binDir}, t.TempDir(), conflistJSON(t, bridge, subnet, dataDir, opts...))
	require.NoError(t, err)
	tn := &testNode{NS: n, RT: rt, Bridge: bridge, DataDir: dataDir}
	if subnet != "" {
		_, sn, err := net.ParseCIDR(subnet)
		require.NoError(t, err)
		tn.Subnet = sn
		gw := make(net.IP, 4)
		copy(gw, sn.IP.To4())
		gw[3]++
		tn.Gateway = gw
	}
	return tn
}

// pod is a pod sandbox: its own namespace and the runtime's view of it.
type pod struct {
	*nstest.NS
	RC *libcni.RuntimeConf
}

func newPod(t *testing.T) *pod {
	t.Helper()
	n := nstest.New(t, "pod")
	return &pod{NS: n, RC: nstest.Pod("ctr-"+nstest.RandHex(6), n.Path(), "eth0")}
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return c
}

func (n *testNode) add(t *testing.T, p *pod) *current.Result {
	t.Helper()
	res, err := n.RT.Add(ctx(t), p.RC)
	require.NoError(t, err, "ADD %s", p.RC.ContainerID)
	return res
}

func podIP(t *testing.T, res *current.Result) net.IP {
	t.Helper()
	require.Len(t, res.IPs, 1)
	return res.IPs[0].Address.IP.To4()
}

// allocations lists the IPs held in the node's IPAM dir.
func (n *testNode) allocations(t *testing.T) []string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(n.DataDir, netName))
	if os.IsNotExist(err) {
		return nil
	}
	require.NoError(t, err)
	var ips []string
	for _, e := range entries {
		if net.ParseIP(e.Name()) != nil {
			ips = append(ips, e.Name())
		}
	}
	return ips
}

// claims lists in-flight ADD claim files in the node's IPAM dir.
func (n *testNode) claims(t *testing.T) []string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(n.DataDir, netName))
	require.NoError(t, err)
	var out []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), "inflight-") {
			out = append(out, e.Name())
		}
	}
	return out
}

// veths lists the veth links in the node namespace.
func (n *testNode) veths(t *testing.T) []netlink.Link {
	t.Helper()
	var out []netlink.Link
	require.NoError(t, n.Do(func(ns.NetNS) error {
		links, err := netlink.LinkList()
		if err != nil {
			return err
		}
		for _, l := range links {
			if l.Type() == "veth" {
				out = append(out, l)
			}
		}
		return nil
	}))
	return out
}

// natRules returns the node's nat table rules that mention stratus.
func (n *testNode) natRules(t *testing.T) []string {
	t.Helper()
	out, err := n.Run("iptables", "-w", "-t", "nat", "-S")
	require.NoError(t, err)
	var rules []string
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(strings.ToUpper(l), "STRATUS") {
			rules = append(rules, l)
		}
	}
	return rules
}

// listen opens a TCP listener on ip inside netns; each accepted connection is
// answered with the remote address the server saw.
func listen(t *testing.T, in ns.NetNS, ip net.IP) string {
	t.Helper()
	var l net.Listener
	require.NoError(t, in.Do(func(ns.NetNS) error {
		var err error
		l, err = net.Listen("tcp4", net.JoinHostPort(ip.String(), "0"))
		return err
	}))
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			_, _ = io.WriteString(c, c.RemoteAddr().(*net.TCPAddr).IP.String()+"\n")
			c.Close()
		}
	}()
	return l.Addr().String()
}

// dial connects from inside netns and returns the source address the server saw.
func dial(in ns.NetNS, addr string) (string, error) {
	var seen string
	err := in.Do(func(ns.NetNS) error {
		c, err := net.DialTimeout("tcp4", addr, 5*time.Second)
		if err != nil {
			return err
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		b, err := io.ReadAll(c)
		seen = strings.TrimSpace(string(b))
		return err
	})
	return seen, err
}

func podLink(t *testing.T, p *pod, ifName string) netlink.Link {
	t.Helper()
	var l netlink.Link
	require.NoError(t, p.Do(func(ns.NetNS) error {
		var err error
		l, err = netlink.LinkByName(ifName)
		return err
	}))
	return l
}
