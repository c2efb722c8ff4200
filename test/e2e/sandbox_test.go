//go:build e2e

package e2e

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vishvananda/netlink"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"

	"github.com/stratus-cloud/stratus/cloudapi"
	vpcapi "github.com/stratus-cloud/stratus/cloudapi/vpc"
	"github.com/stratus-cloud/stratus/fakecloud"
	"github.com/stratus-cloud/stratus/internal/testcap"
	"github.com/stratus-cloud/stratus/sandbox/plan"
	"github.com/stratus-cloud/stratus/sandbox/podlet"
	"github.com/stratus-cloud/stratus/sandbox/state"
	"github.com/stratus-cloud/stratus/sandbox/supervisor"
	"github.com/stratus-cloud/stratus/sandbox/vpcnet"
	"github.com/stratus-cloud/stratus/test/e2e/framework"
)

// sandbox is one `stratus up` of a test: its own state dir and address ranges, so it
// runs beside other tests and a user's sandbox.
type sandbox struct {
	t    *testing.T
	bin  string
	plan *plan.Plan
	args []string
}

func (s *sandbox) flags() []string { return []string{"--state-dir", s.plan.StateDir} }

// stratus runs the CLI and returns its combined output and exit code.
func (s *sandbox) stratus(args ...string) (string, int) {
	s.t.Helper()
	root, err := framework.RepoRoot()
	require.NoError(s.t, err)
	cmd := exec.Command(s.bin, args...)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "STRATUS_SOURCE_DIR="+root)
	out, err := cmd.CombinedOutput()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		s.t.Fatalf("run stratus %s: %v", strings.Join(args, " "), err)
	}
	return string(out), code
}

// newSandbox picks a state dir under the test's artifacts and a VPC and cluster range
// no host route uses. Cleanup always runs `stratus down` (keeping the logs if the test
// failed).
func newSandbox(t *testing.T, nodes int) *sandbox {
	t.Helper()
	framework.RequireNetworkAdmin(t)
	testcap.Tool(t, "iptables-restore", "iptables")
	s := &sandbox{t: t, bin: framework.BuildBinary(t, "./cmd/stratus")}
	dir := filepath.Join(framework.ArtifactsDir(t), "state")
	// The address slot `up` would pick, passed explicitly so the test knows the plan.
	p, opts, err := plan.Choose(plan.Options{StateDir: dir, Nodes: nodes}, vpcnet.CheckHost)
	require.NoError(t, err, "a free address range for the sandbox")
	s.plan = p
	s.args = []string{"--nodes", fmt.Sprint(nodes), "--vpc-cidr", opts.VPCCIDR, "--cluster-cidr", opts.ClusterCIDR, "--lb-public-pool", opts.PublicPool}
	// A run of this test killed outright (go test -timeout) left its namespaces under the
	// same prefix, and ArtifactsDir has removed its journal since: down sweeps by prefix.
	if out, code := s.stratus(append([]string{"down"}, s.flags()...)...); code != 0 {
		t.Fatalf("sweep what an earlier run left: stratus down: exit %d: %s", code, out)
	}
	t.Cleanup(func() {
		args := append([]string{"down"}, s.flags()...)
		if t.Failed() {
			args = append(args, "--keep-logs")
		}
		out, code := s.stratus(args...)
		if code != 0 {
			t.Errorf("cleanup: stratus down: exit %d: %s", code, out)
		}
		if t.Failed() {
			t.Logf("sandbox logs kept in %s", state.Dir(dir).LogDir())
		}
	})
	return s
}

func (s *sandbox) up() (string, time.Duration) {
	s.t.Helper()
	start := time.Now()
	out, code := s.stratus(append(append([]string{"up"}, s.flags()...), s.args...)...)
	took := time.Since(start)
	s.t.Logf("stratus up %s took %v:\n%s", strings.Join(s.args, " "), took, out)
	require.Equal(s.t, 0, code, "stratus up failed:\n%s", out)
	return out, took
}

func (s *sandbox) status() *state.Status {
	s.t.Helper()
	var st state.Status
	require.NoError(s.t, state.ReadJSON(state.Dir(s.plan.StateDir).StatusFile(), &st))
	return &st
}

// snapshot is what of the machine a sandbox could leave behind, as sets of strings.
type snapshot map[string]map[string]bool

func takeSnapshot(t *testing.T, stateDir string) snapshot {
	t.Helper()
	s := snapshot{"netns": {}, "links": {}, "routes": {}, "loops": {}, "mounts": {}, "chains": {}, "processes": {}}
	if entries, err := os.ReadDir(vpcnet.NetnsDir); err == nil {
		for _, e := range entries {
			s["netns"][e.Name()] = true
		}
	}
	links, err := netlink.LinkList()
	require.NoError(t, err)
	for _, l := range links {
		s["links"][l.Attrs().Name] = true
	}
	routes, err := netlink.RouteList(nil, netlink.FAMILY_V4)
	require.NoError(t, err)
	for _, r := range routes {
		if r.Dst != nil {
			s["routes"][r.Dst.String()] = true
		}
	}
	files, _ := filepath.Glob("/sys/block/loop*/loop/backing_file")
	for _, f := range files {
		if b, err := os.ReadFile(f); err == nil {
			s["loops"][filepath.Base(filepath.Dir(filepath.Dir(f)))+"="+strings.TrimSpace(string(b))] = true
		}
	}
	if f, err := os.Open("/proc/self/mountinfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if fields := strings.Fields(sc.Text()); len(fields) > 4 {
				s["mounts"][fields[4]] = true
			}
		}
		f.Close()
	}
	if out, err := exec.Command("iptables-save").Output(); err == nil {
		table := ""
		for _, line := range strings.Split(string(out), "\n") {
			switch {
			case strings.HasPrefix(line, "*"):
				table = line[1:]
			case strings.HasPrefix(line, ":"):
				s["chains"][table+"/"+strings.Fields(line[1:])[0]] = true
			case strings.HasPrefix(line, "-A"):
				s["chains"][table+" "+line] = true
			}
		}
	}
	procs, _ := os.ReadDir("/proc")
	for _, p := range procs {
		b, err := os.ReadFile(filepath.Join("/proc", p.Name(), "cmdline"))
		if err != nil || len(b) == 0 {
			continue
		}
		cmdline := strings.ReplaceAll(string(b), "\x00", " ")
		if strings.Contains(cmdline, stateDir) {
			s["processes"][p.Name()+" "+cmdline] = true
		}
	}
	return s
}

// leaked is what appeared while the sandbox ran (in during, not in before) and is still
// there after down. Other sessions on the machine create and remove namespaces, links
// and mounts all the time, so for those an item must also carry one of the sandbox's
// marks (prefix, state dir, address ranges); host iptables chains and rules, which the
// sandbox must never touch, and processes naming the state dir count whatever they are.
func leaked(before, during, after snapshot, marks []string) map[string][]string {
	out := map[string][]string{}
	for kind, items := range after {
		for item := range items {
			if before[kind][item] || !during[kind][item] {
				continue
			}
			ours := kind == "processes" || kind == "chains"
			for _, m := range marks {
				if strings.Contains(item, m) {
					ours = true
				}
			}
			if ours {
				out[kind] = append(out[kind], item)
			}
		}
	}
	return out
}

func (s *sandbox) marks() []string {
	p := s.plan
	return []string{p.NetnsPrefix, p.LinkPrefix, p.StateDir, p.VPCCIDR.String(), p.ClusterCIDR.String(), p.PublicPool.String()}
}

// requireNothingLeft waits until nothing that appeared while the sandbox ran is left and
// nothing on the machine carries its marks: what `down` must leave, also after a crash.
func (s *sandbox) requireNothingLeft(before, during snapshot) {
	t := s.t
	t.Helper()
	framework.Eventually(t, 30*time.Second, "nothing of the sandbox left", func(context.Context) error {
		after := takeSnapshot(t, s.plan.StateDir)
		if l := leaked(before, during, after, s.marks()); len(l) > 0 {
			return fmt.Errorf("left behind: %v", l)
		}
		if n := ours(after, s.marks()); len(n) > 0 {
			return fmt.Errorf("still carrying the sandbox's marks: %v", n)
		}
		return nil
	})
}

// ours reports, per kind, how many items of the snapshot carry the sandbox's marks.
func ours(snap snapshot, marks []string) map[string]int {
	out := map[string]int{}
	for kind, items := range snap {
		for item := range items {
			for _, m := range marks {
				if strings.Contains(item, m) {
					out[kind]++
					break
				}
			}
		}
	}
	return out
}

func client(t *testing.T, kubeconfig string) kubernetes.Interface {
	t.Helper()
	c, err := supervisor.ClientFor(kubeconfig)
	require.NoError(t, err)
	return c
}

func echoPod(name, node string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", Labels: map[string]string{"app": "echo"}},
		Spec: corev1.PodSpec{
			NodeSelector: map[string]string{corev1.LabelHostname: node},
			Containers: []corev1.Container{{Name: "echo", Image: podlet.EchoImage,
				Ports: []corev1.ContainerPort{{ContainerPort: 8080}}}},
		},
	}
}

// get sends one GET on a connection dialled on the calling goroutine's thread, so that
// inside ns.Do it leaves from that namespace (an http.Client dials elsewhere).
func get(addr, path string) (string, error) {
	conn, err := net.DialTimeout("tcp", addr, 3*time.Second)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := fmt.Fprintf(conn, "GET %s HTTP/1.0\r\nHost: %s\r\n\r\n", path, addr); err != nil {
		return "", err
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET %s%s: %s", addr, path, resp.Status)
	}
	return strings.TrimSpace(string(b)), err
}

func getFromNetns(netnsName, addr, path string) (string, error) {
	var body string
	err := ns.WithNetNSPath(vpcnet.NetnsPath(netnsName), func(ns.NetNS) (err error) {
		body, err = get(addr, path)
		return err
	})
	return body, err
}

func fakecloudVPC(t *testing.T, endpoint string) *vpcapi.Client {
	t.Helper()
	c, err := cloudapi.New(cloudapi.Config{Endpoint: endpoint, Region: plan.Region, RateLimit: -1,
		Credentials: cloudapi.Credentials{SecretID: fakecloud.DefaultSecretID, SecretKey: fakecloud.DefaultSecretKey}})
	require.NoError(t, err)
	return vpcapi.New(c)
}

// TestSandbox is `stratus up` end to end: a ready 3-node cluster initialized by the CCM,
// echo pods with IPs from their nodes' podCIDRs, the route controller's VPC routes that
// carry pod traffic from the host and across nodes without NAT, a ClusterIP Service
// through kube-proxy, a restarted component, and a `down` that leaves nothing. (The
// route deleted and put back is `stratus demo`'s, TestDemo.)
func TestSandbox(t *testing.T) {
	s := newSandbox(t, 3)
	p := s.plan
	before := takeSnapshot(t, p.StateDir)
	out, upTook := s.up()
	st := s.status()
	for _, want := range []string{"Stratus sandbox ready", "kubeconfig:  " + st.Endpoints.Kubeconfig, "fakecloud:   " + st.Endpoints.Fakecloud, "Try:"} {
		assert.Contains(t, out, want)
	}
	statusOut, code := s.stratus(append([]string{"status"}, s.flags()...)...)
	assert.Equal(t, 0, code, statusOut)
	assert.True(t, strings.HasSuffix(strings.TrimSpace(statusOut), "\nready"), "status says ready:\n%s", statusOut)

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	kc := client(t, st.Endpoints.Kubeconfig)

	// The Nodes: initialized by the CCM, with podCIDRs from the cluster range.
	nodes := map[string]*corev1.Node{}
	list, err := kc.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	require.NoError(t, err)
	require.Len(t, list.Items, 3)
	for i := range list.Items {
		n := &list.Items[i]
		nodes[n.Name] = n
		pn, ok := p.Node(n.Name)
		require.True(t, ok, "node %s is planned", n.Name)
		assert.Equal(t, "qcloud:///"+pn.Zone+"/"+pn.InstanceID, n.Spec.ProviderID, "node %s", n.Name)
		assert.Equal(t, pn.Zone, n.Labels[corev1.LabelTopologyZone], "node %s", n.Name)
		assert.Equal(t, plan.InstanceType, n.Labels[corev1.LabelInstanceTypeStable], "node %s", n.Name)
		for _, taint := range n.Spec.Taints {
			assert.NotEqual(t, podlet.UninitializedTaint, taint.Key, "node %s is initialized", n.Name)
		}
		cidr, err := netip.ParsePrefix(n.Spec.PodCIDR)
		require.NoError(t, err, "node %s has a podCIDR", n.Name)
		assert.True(t, p.ClusterCIDR.Contains(cidr.Addr()), "node %s podCIDR %s is in %s", n.Name, cidr, p.ClusterCIDR)
	}

	// Echo pods on node-1 and node-2 (placed by the scheduler), and a pod the sandbox
	// cannot run.
	for _, pod := range []*corev1.Pod{echoPod("pod-a", "node-1"), echoPod("pod-b", "node-2")} {
		_, err := kc.CoreV1().Pods("default").Create(ctx, pod, metav1.CreateOptions{})
		require.NoError(t, err)
	}
	other := echoPod("nginx", "node-3")
	other.Labels = nil
	other.Spec.Containers[0].Image = "nginx:1.27"
	_, err = kc.CoreV1().Pods("default").Create(ctx, other, metav1.CreateOptions{})
	require.NoError(t, err)

	podIP := map[string]string{}
	for name, node := range map[string]string{"pod-a": "node-1", "pod-b": "node-2"} {
		framework.Eventually(t, 2*time.Minute, name+" Ready", func(ctx context.Context) error {
			pod, err := kc.CoreV1().Pods("default").Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return err
			}
			for _, c := range pod.Status.Conditions {
				if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
					podIP[name] = pod.Status.PodIP
					return nil
				}
			}
			return fmt.Errorf("phase %s, conditions %v", pod.Status.Phase, pod.Status.Conditions)
		})
		cidr := netip.MustParsePrefix(nodes[node].Spec.PodCIDR)
		ip := netip.MustParseAddr(podIP[name])
		assert.True(t, cidr.Contains(ip), "%s's IP %s is from %s's podCIDR %s", name, ip, node, cidr)
	}
	framework.Eventually(t, time.Minute, "a Warning on the pod the sandbox cannot run", func(ctx context.Context) error {
		evs, err := kc.CoreV1().Events("default").List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.name=nginx"})
		if err != nil {
			return err
		}
		for _, e := range evs.Items {
			if e.Reason == podlet.ReasonUnsupported && e.Type == corev1.EventTypeWarning && strings.Contains(e.Message, "image nginx:1.27") {
				return nil
			}
		}
		return fmt.Errorf("%d events, none %s", len(evs.Items), podlet.ReasonUnsupported)
	})
	pending, err := kc.CoreV1().Pods("default").Get(ctx, "nginx", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, corev1.PodPending, pending.Status.Phase)

	// The CCM's route controller wrote one route per node into the cloud's route table:
	// the node's podCIDR via the node's private IP.
	vpc := fakecloudVPC(t, st.Endpoints.Fakecloud)
	framework.Eventually(t, time.Minute, "a VPC route per node", func(ctx context.Context) error {
		tables, err := vpc.DescribeRouteTables(ctx, &vpcapi.DescribeRouteTablesRequest{RouteTableIds: []string{plan.RouteTableID}})
		if err != nil {
			return err
		}
		if len(tables.RouteTableSet) != 1 {
			return fmt.Errorf("%d route tables", len(tables.RouteTableSet))
		}
		got := map[string]string{}
		for _, r := range tables.RouteTableSet[0].RouteSet {
			if r.GatewayType == vpcapi.GatewayTypeNormalCVM {
				got[r.DestinationCidrBlock] = r.GatewayId
			}
		}
		for name, n := range nodes {
			pn, _ := p.Node(name)
			if got[n.Spec.PodCIDR] != pn.IP.String() {
				return fmt.Errorf("node %s: podCIDR %s routed via %q, want %s (routes %v)", name, n.Spec.PodCIDR, got[n.Spec.PodCIDR], pn.IP, got)
			}
		}
		return nil
	})

	// Through those routes: pod-b answers from the host and from pod-a on another node,
	// and sees each caller's own address (no NAT inside the VPC).
	podB := net.JoinHostPort(podIP["pod-b"], "8080")
	framework.Eventually(t, 30*time.Second, "pod-b answers from the host", func(context.Context) error {
		body, err := get(podB, "/")
		if err == nil && body != "pod-b" {
			err = fmt.Errorf("answered %q", body)
		}
		return err
	})
	from, err := get(podB, "/clientip")
	require.NoError(t, err)
	assert.Equal(t, p.HostIP.String(), from, "no NAT between the host and a pod inside the VPC")
	podA, err := kc.CoreV1().Pods("default").Get(ctx, "pod-a", metav1.GetOptions{})
	require.NoError(t, err)
	framework.Eventually(t, 30*time.Second, "pod-b answers pod-a", func(context.Context) error {
		from, err := getFromNetns(p.PodNetns(string(podA.UID)), podB, "/clientip")
		if err == nil && from != podIP["pod-a"] {
			err = fmt.Errorf("pod-b saw %s, not pod-a's %s", from, podIP["pod-a"])
		}
		return err
	})

	// A ClusterIP Service over both pods answers from node-3 through its kube-proxy, from
	// both endpoints.
	svc, err := kc.CoreV1().Services("default").Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "echo", Namespace: "default"},
		Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "echo"},
			Ports: []corev1.ServicePort{{Port: 80, TargetPort: intstr.FromInt32(8080)}}},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	node3, _ := p.Node("node-3")
	seen := map[string]bool{}
	framework.Eventually(t, time.Minute, "the ClusterIP answers from both pods", func(context.Context) error {
		body, err := getFromNetns(node3.Netns, net.JoinHostPort(svc.Spec.ClusterIP, "80"), "/")
		if err != nil {
			return err
		}
		seen[body] = true
		if !seen["pod-a"] || !seen["pod-b"] {
			return fmt.Errorf("answered by %v so far", slices.Sorted(maps.Keys(seen)))
		}
		return nil
	})
	for k := range seen {
		assert.Contains(t, []string{"pod-a", "pod-b"}, k, "only the Service's pods answer")
	}

	// Deleting a pod runs CNI DEL and removes its namespace.
	a, err := kc.CoreV1().Pods("default").Get(ctx, "pod-a", metav1.GetOptions{})
	require.NoError(t, err)
	require.NoError(t, kc.CoreV1().Pods("default").Delete(ctx, "pod-a", metav1.DeleteOptions{}))
	framework.Eventually(t, time.Minute, "pod-a gone", func(ctx context.Context) error {
		if _, err := kc.CoreV1().Pods("default").Get(ctx, "pod-a", metav1.GetOptions{}); err == nil {
			return fmt.Errorf("still there")
		}
		if _, err := os.Stat(vpcnet.NetnsPath(p.PodNetns(string(a.UID)))); err == nil {
			return fmt.Errorf("its namespace is still there")
		}
		return nil
	})

	// The sandbox keeps running: a component killed outright comes back.
	var proxy state.ComponentStatus
	for _, c := range s.status().Components {
		if c.Name == "node-3/kube-proxy" {
			proxy = c
		}
	}
	require.True(t, proxy.Proc.Alive())
	require.NoError(t, syscall.Kill(proxy.Proc.Pid, syscall.SIGKILL))
	framework.Eventually(t, time.Minute, "kube-proxy restarted by the supervisor", func(context.Context) error {
		for _, c := range s.status().Components {
			if c.Name == proxy.Name && c.Restarts >= 1 && c.State == state.StateRunning && c.Proc.Alive() {
				return nil
			}
		}
		return fmt.Errorf("not back yet")
	})

	during := takeSnapshot(t, p.StateDir)
	mine := ours(during, s.marks())
	assert.GreaterOrEqual(t, mine["netns"], 1+3+1, "the probes see the router, the nodes and pod-b's namespace")
	assert.GreaterOrEqual(t, mine["links"], 1, "the host link")
	assert.GreaterOrEqual(t, mine["routes"], 2, "the host routes")
	assert.GreaterOrEqual(t, len(during["processes"]), 15, "every component")

	start := time.Now()
	downOut, code := s.stratus(append([]string{"down"}, s.flags()...)...)
	downTook := time.Since(start)
	require.Equal(t, 0, code, downOut)
	t.Logf("stratus down took %v: %s", downTook, downOut)
	t.Logf("TIMING up=%.1fs down=%.1fs (3 nodes; progress lines above)", upTook.Seconds(), downTook.Seconds())

	s.requireNothingLeft(before, during)
	_, err = os.Stat(p.StateDir)
	assert.ErrorIs(t, err, os.ErrNotExist, "the state dir is removed")
}

// TestSandboxDownAfterSupervisorCrash: kill -9 of the supervisor leaves a half-started
// sandbox that `up` refuses in one line and `down` removes completely.
func TestSandboxDownAfterSupervisorCrash(t *testing.T) {
	s := newSandbox(t, 1)
	p := s.plan
	before := takeSnapshot(t, p.StateDir)
	s.up()
	st := s.status()
	require.True(t, st.Supervisor.Alive())
	during := takeSnapshot(t, p.StateDir)

	require.NoError(t, syscall.Kill(st.Supervisor.Pid, syscall.SIGKILL))
	framework.Eventually(t, 30*time.Second, "the supervisor and its children gone", func(context.Context) error {
		for _, c := range st.Components {
			if c.Proc.Alive() {
				return fmt.Errorf("%s (pid %d) still runs", c.Name, c.Proc.Pid)
			}
		}
		if st.Supervisor.Alive() {
			return fmt.Errorf("supervisor still runs")
		}
		return nil
	})

	out, code := s.stratus(append(append([]string{"up"}, s.flags()...), s.args...)...)
	assert.Equal(t, 1, code)
	assert.Equal(t, fmt.Sprintf("stratus up: a previous sandbox in %s did not shut down cleanly: run `stratus down --state-dir %s` first\n", p.StateDir, p.StateDir), out)

	statusOut, code := s.stratus(append([]string{"status"}, s.flags()...)...)
	assert.Equal(t, 1, code)
	assert.Contains(t, statusOut, "supervisor NOT RUNNING")

	downOut, code := s.stratus(append([]string{"down"}, s.flags()...)...)
	require.Equal(t, 0, code, downOut)
	assert.Contains(t, downOut, "network namespaces")
	s.requireNothingLeft(before, during)
	again, code := s.stratus(append([]string{"down"}, s.flags()...)...)
	assert.Equal(t, 0, code)
	assert.Contains(t, again, "nothing to clean up")
}

// TestSandboxFailedUpCleansUp: a start-up that fails (kube-apiserver's port taken) says
// why in one line, removes everything it made and keeps the logs; the next `up` is not
// blocked by them.
func TestSandboxFailedUpCleansUp(t *testing.T) {
	s := newSandbox(t, 1)
	p := s.plan
	busy, err := net.Listen("tcp", ":0")
	require.NoError(t, err)
	defer busy.Close()
	port := busy.Addr().(*net.TCPAddr).Port
	before := takeSnapshot(t, p.StateDir)

	out, code := s.stratus(append(append([]string{"up"}, s.flags()...), append(s.args, "--apiserver-port", fmt.Sprint(port))...)...)
	assert.Equal(t, 1, code, out)
	assert.Contains(t, out, fmt.Sprintf("stratus up: port %d on %s is in use: pick another with --apiserver-port, or free it\n", port, p.HostIP))
	assert.Contains(t, out, "stratus up: cleaned up (")
	after := takeSnapshot(t, p.StateDir)
	assert.Empty(t, ours(after, s.marks())["netns"], "no namespace left")
	assert.Empty(t, ours(after, s.marks())["links"], "no host link left")
	assert.Empty(t, ours(after, s.marks())["routes"], "no host route left")
	assert.Empty(t, after["processes"], "no process left")
	for kind := range before {
		for item := range after[kind] {
			if !before[kind][item] && (kind == "chains") {
				t.Errorf("a host iptables %s appeared: %s", kind, item)
			}
		}
	}
	assert.FileExists(t, state.Dir(p.StateDir).LogFile("supervisor"), "the logs are kept")

	busy.Close()
	out, _ = s.up()
	assert.Contains(t, out, "Stratus sandbox ready", "the kept logs do not block the next up")
}
