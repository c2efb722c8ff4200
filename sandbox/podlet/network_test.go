package podlet_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"

	"github.com/stratus-cloud/stratus/cni/agent"
	"github.com/stratus-cloud/stratus/cni/nstest"
	"github.com/stratus-cloud/stratus/internal/testcap"
	"github.com/stratus-cloud/stratus/sandbox/podlet"
	"github.com/stratus-cloud/stratus/sandbox/vpcnet"
)

// TestCNIAndEchoServer runs the podlet's real Network and Servers the way the podlet does
// on a node: a pod namespace wired by the stratus-bridge plugin through libcni from inside
// the node's namespace, a server that answers the pod's name on TCP and UDP, and a
// teardown that leaves nothing of the pod behind.
func TestCNIAndEchoServer(t *testing.T) {
	nstest.Require(t)
	testcap.Tool(t, "iptables", "iptables")
	node := nstest.New(t, "podlet")
	dir := t.TempDir()
	binDir := filepath.Join(dir, "bin")
	require.NoError(t, os.MkdirAll(binDir, 0o755))
	_, err := nstest.BuildPlugin(binDir)
	require.NoError(t, err)

	c := &podlet.CNI{ConfDir: filepath.Join(dir, "net.d"), BinDirs: []string{binDir}, CacheDir: filepath.Join(dir, "cache")}
	require.Error(t, c.Ready(), "no conflist yet")
	conf, err := agent.Render(agent.Options{NodeName: "node-1", DataDir: filepath.Join(dir, "ipam"), IPMasq: true,
		NonMasqueradeCIDRs: []string{"10.244.0.0/16", "10.0.0.0/16"}}, "10.244.7.0/24")
	require.NoError(t, err)
	require.NoError(t, os.MkdirAll(c.ConfDir, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(c.ConfDir, agent.DefaultConfName), conf, 0o644))
	require.NoError(t, c.Ready())

	sb := &podlet.Sandbox{
		UID: "1234-abcd", Namespace: "default", Name: "web", Netns: nstest.NamePrefix + "podlet-pod-" + nstest.RandHex(3), ContainerID: "podlet-1234-abcd",
		Ports: []podlet.Port{{Protocol: corev1.ProtocolTCP, Port: 8080}, {Protocol: corev1.ProtocolUDP, Port: 5353}},
	}
	t.Cleanup(func() { _ = vpcnet.DeleteNetns(sb.Netns) })
	ctx := context.Background()
	inNode := func(fn func() error) error { return node.Do(func(ns.NetNS) error { return fn() }) }

	require.NoError(t, inNode(func() error { return c.Setup(ctx, sb) }))
	assert.True(t, strings.HasPrefix(sb.IP, "10.244.7."), "the pod address %s is from the node's podCIDR", sb.IP)
	assert.True(t, c.Exists(sb))
	assert.NotEmpty(t, sb.ConfList)

	servers := podlet.NewEchoServers()
	require.NoError(t, servers.Start(sb, "web"))
	defer servers.Stop(sb.UID)

	// From the node: HTTP on the pod IP answers the name, and the pod sees the node's
	// bridge address (no NAT inside the node).
	// The request is written on the thread that is in the node's namespace: an
	// http.Client would dial from another goroutine, in the host's namespace.
	var body, client string
	require.NoError(t, inNode(func() (err error) {
		if body, err = httpGet(net.JoinHostPort(sb.IP, "8080"), "/"); err != nil {
			return err
		}
		client, err = httpGet(net.JoinHostPort(sb.IP, "8080"), "/clientip")
		return err
	}))
	assert.Equal(t, "web", body)
	assert.Equal(t, "10.244.7.1", client, "the node reaches its pod from the bridge's address")

	var udp string
	require.NoError(t, inNode(func() error {
		conn, err := net.Dial("udp", net.JoinHostPort(sb.IP, "5353"))
		if err != nil {
			return err
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := conn.Write([]byte("who?")); err != nil {
			return err
		}
		b := make([]byte, 64)
		n, err := conn.Read(b)
		udp = strings.TrimSpace(string(b[:n]))
		return err
	}))
	assert.Equal(t, "web", udp)

	servers.Stop(sb.UID)
	require.NoError(t, inNode(func() error { return c.Teardown(ctx, sb) }))
	assert.False(t, c.Exists(sb), "the pod namespace is gone")
	require.NoError(t, inNode(func() error { return c.Teardown(ctx, sb) }), "a second teardown finds nothing to do")

	// The address went back to the pool: the next pod can have it.
	again := *sb
	again.UID, again.ContainerID, again.Netns = "5678", "podlet-5678", nstest.NamePrefix+"podlet-pod-"+nstest.RandHex(3)
	t.Cleanup(func() { _ = vpcnet.DeleteNetns(again.Netns) })
	require.NoError(t, inNode(func() error { return c.Setup(ctx, &again) }))
	require.NoError(t, inNode(func() error { return c.Teardown(ctx, &again) }))
}

// httpGet sends one GET over a connection dialled on the calling thread, so it runs in
// whatever network namespace that thread is in.
func httpGet(addr, path string) (string, error) {
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(conn, "GET "+path+" HTTP/1.0\r\nHost: "+addr+"\r\n\r\n"); err != nil {
		return "", err
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET %s%s: %s", addr, path, resp.Status)
	}
	return strings.TrimSpace(string(b)), nil
}
