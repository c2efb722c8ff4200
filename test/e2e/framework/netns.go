package framework

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"math/big"
	"os/exec"
	"strings"
	"testing"

	"github.com/stratus-cloud/stratus/internal/testcap"
)

// Netns is a network namespace created for one test, joined to the host by a veth pair on
// a /30: HostIP on the host side, IP inside. It stands in for a node's network stack.
type Netns struct {
	Name   string
	HostIP string
	IP     string
}

// RequireNetworkAdmin skips t, loudly, unless it runs as root with ip and iptables
// available; creating namespaces and programming iptables in them needs both.
func RequireNetworkAdmin(t testing.TB) {
	t.Helper()
	testcap.Root(t, "network namespaces and iptables")
	testcap.Tool(t, "ip", "iproute2")
	testcap.Tool(t, "iptables", "iptables")
}

// NewNetns creates a namespace and its veth link; t.Cleanup deletes both. The /30 is
// drawn at random from 10.250.0.0/16 so parallel tests (and other packages' tests on the
// same machine) rarely collide; a collision fails the address assignment loudly.
func NewNetns(t testing.TB) *Netns {
	t.Helper()
	suffix := randomSuffix(t)
	n, err := rand.Int(rand.Reader, big.NewInt(1<<14))
	if err != nil {
		t.Fatalf("pick a subnet: %v", err)
	}
	base := n.Int64() * 4 // a /30 inside 10.250.0.0/16
	octets := fmt.Sprintf("10.250.%d.", base/256)
	ns := &Netns{
		Name:   "stratus-e2e-" + suffix,
		HostIP: octets + fmt.Sprint(base%256+1),
		IP:     octets + fmt.Sprint(base%256+2),
	}
	hostIf, nsIf := "se2e"+suffix+"h", "se2e"+suffix+"n"

	mustIP(t, "netns", "add", ns.Name)
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "del", ns.Name).CombinedOutput(); err != nil {
			t.Errorf("delete netns %s: %v: %s", ns.Name, err, out)
		}
	})
	mustIP(t, "link", "add", hostIf, "type", "veth", "peer", "name", nsIf, "netns", ns.Name)
	// Deleting the namespace deletes nsIf and with it the peer; this covers a failure
	// between creating the pair and moving one end.
	t.Cleanup(func() { _ = exec.Command("ip", "link", "del", hostIf).Run() })
	mustIP(t, "addr", "add", ns.HostIP+"/30", "dev", hostIf)
	mustIP(t, "link", "set", hostIf, "up")
	mustIP(t, "-n", ns.Name, "link", "set", "lo", "up")
	mustIP(t, "-n", ns.Name, "addr", "add", ns.IP+"/30", "dev", nsIf)
	mustIP(t, "-n", ns.Name, "link", "set", nsIf, "up")
	return ns
}

// StartProcess is StartProcess with the binary running inside the namespace. `ip netns
// exec` execs the binary in place, so stopping the Process stops the binary.
func (n *Netns) StartProcess(t testing.TB, name, binary string, args ...string) *Process {
	t.Helper()
	return StartProcess(t, name, "ip", append([]string{"netns", "exec", n.Name, binary}, args...)...)
}

func mustIP(t testing.TB, args ...string) {
	t.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
	}
}

func randomSuffix(t testing.TB) string {
	t.Helper()
	b := make([]byte, 3)
	if _, err := rand.Read(b); err != nil {
		t.Fatalf("random name: %v", err)
	}
	return hex.EncodeToString(b)
}
