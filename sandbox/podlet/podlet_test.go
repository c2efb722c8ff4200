package podlet_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/record"

	"github.com/stratus-cloud/stratus/sandbox/podlet"
)

// fakeNetwork hands out 10.244.1.N and remembers which namespaces exist.
type fakeNetwork struct {
	mu       sync.Mutex
	ready    error
	next     int
	exists   map[string]bool
	setups   int
	torn     []string
	failNext error
}

func newFakeNetwork() *fakeNetwork { return &fakeNetwork{exists: map[string]bool{}, next: 2} }

func (f *fakeNetwork) Ready() error { f.mu.Lock(); defer f.mu.Unlock(); return f.ready }
func (f *fakeNetwork) setReady(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ready = err
}

func (f *fakeNetwork) Setup(_ context.Context, s *podlet.Sandbox) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.setups++
	if err := f.failNext; err != nil {
		f.failNext = nil
		return err
	}
	s.IP = fmt.Sprintf("10.244.1.%d", f.next)
	s.ConfList = []byte(`{"name":"fake"}`)
	f.next++
	f.exists[s.Netns] = true
	return nil
}

func (f *fakeNetwork) Teardown(_ context.Context, s *podlet.Sandbox) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.exists, s.Netns)
	f.torn = append(f.torn, s.Name)
	return nil
}

func (f *fakeNetwork) Exists(s *podlet.Sandbox) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.exists[s.Netns]
}

func (f *fakeNetwork) tornDown() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.torn...)
}

func (f *fakeNetwork) setupCount() int { f.mu.Lock(); defer f.mu.Unlock(); return f.setups }

type fakeServers struct {
	mu      sync.Mutex
	running map[string]string // uid -> pod name
}

func (f *fakeServers) Start(s *podlet.Sandbox, name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.running[s.UID] = name
	return nil
}

func (f *fakeServers) Stop(uid string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.running, uid)
}

func (f *fakeServers) isRunning(uid string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	_, ok := f.running[uid]
	return ok
}

type env struct {
	client  *fake.Clientset
	net     *fakeNetwork
	servers *fakeServers
	events  *record.FakeRecorder
	dir     string
	cancel  context.CancelFunc
	done    chan error
}

const nodeName = "node-1"

func start(t *testing.T, e *env) {
	t.Helper()
	p, err := podlet.New(podlet.Config{
		Node:   podlet.NodeInfo{Name: nodeName, IP: "10.0.1.11"},
		Client: e.client, Recorder: e.events, Network: e.net, Servers: e.servers,
		PodsDir: e.dir, NetnsPrefix: "stratus-test-", HeartbeatInterval: 50 * time.Millisecond, GCInterval: 100 * time.Millisecond,
	})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	e.cancel = cancel
	e.done = make(chan error, 1)
	go func() { e.done <- p.Run(ctx) }()
	require.Eventually(t, func() bool { return p.Healthy() == nil }, 30*time.Second, 10*time.Millisecond)
}

func (e *env) stop(t *testing.T) {
	t.Helper()
	e.cancel()
	select {
	case err := <-e.done:
		require.NoError(t, err)
	case <-time.After(30 * time.Second):
		t.Fatal("podlet did not stop")
	}
}

func newEnv(t *testing.T) *env {
	t.Helper()
	e := &env{
		client: fake.NewClientset(), net: newFakeNetwork(), servers: &fakeServers{running: map[string]string{}},
		events: record.NewFakeRecorder(100), dir: t.TempDir(),
	}
	start(t, e)
	t.Cleanup(func() { e.cancel() })
	return e
}

func pod(name, node string, images ...string) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", UID: types.UID("uid-" + name)},
		Spec:       corev1.PodSpec{NodeName: node},
		Status: corev1.PodStatus{Phase: corev1.PodPending, Conditions: []corev1.PodCondition{
			{Type: corev1.PodScheduled, Status: corev1.ConditionTrue},
		}},
	}
	for i, img := range images {
		p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: fmt.Sprint("c", i), Image: img,
			Ports: []corev1.ContainerPort{{ContainerPort: 8080}}})
	}
	return p
}

func (e *env) get(t *testing.T, name string) *corev1.Pod {
	t.Helper()
	p, err := e.client.CoreV1().Pods("default").Get(context.Background(), name, metav1.GetOptions{})
	require.NoError(t, err)
	return p
}

func (e *env) create(t *testing.T, p *corev1.Pod) {
	t.Helper()
	_, err := e.client.CoreV1().Pods("default").Create(context.Background(), p, metav1.CreateOptions{})
	require.NoError(t, err)
}

// drain collects the events posted so far.
func (e *env) drain() []string {
	var out []string
	for {
		select {
		case ev := <-e.events.Events:
			out = append(out, ev)
		default:
			return out
		}
	}
}

func waitEvent(t *testing.T, e *env, contains string) string {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		select {
		case ev := <-e.events.Events:
			if strings.Contains(ev, contains) {
				return ev
			}
		case <-deadline:
			t.Fatalf("no event containing %q", contains)
		}
	}
}

func isReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func TestNodeRegistrationAndHeartbeat(t *testing.T) {
	e := &env{client: fake.NewClientset(), net: newFakeNetwork(), servers: &fakeServers{running: map[string]string{}},
		events: record.NewFakeRecorder(100), dir: t.TempDir()}
	e.net.setReady(errors.New("no conflist yet"))
	start(t, e)
	defer e.cancel()
	ctx := context.Background()

	node, err := e.client.CoreV1().Nodes().Get(ctx, nodeName, metav1.GetOptions{})
	require.NoError(t, err)
	assert.Contains(t, node.Spec.Taints, corev1.Taint{Key: podlet.UninitializedTaint, Value: "true", Effect: corev1.TaintEffectNoSchedule},
		"registered as a kubelet with --cloud-provider=external does")
	assert.Equal(t, "10.0.1.11", node.Annotations[podlet.ProvidedNodeIPAnnotation])
	assert.Empty(t, node.Spec.ProviderID, "the CCM sets the providerID, not the kubelet")
	assert.Contains(t, node.Status.Addresses, corev1.NodeAddress{Type: corev1.NodeInternalIP, Address: "10.0.1.11"})
	ready := func() corev1.NodeCondition {
		n, err := e.client.CoreV1().Nodes().Get(ctx, nodeName, metav1.GetOptions{})
		require.NoError(t, err)
		for _, c := range n.Status.Conditions {
			if c.Type == corev1.NodeReady {
				return c
			}
		}
		return corev1.NodeCondition{}
	}
	assert.Equal(t, corev1.ConditionFalse, ready().Status, "not Ready without a CNI config")
	assert.Contains(t, ready().Message, "NetworkPluginNotReady")

	var lease *coordinationv1.Lease
	require.Eventually(t, func() bool {
		lease, err = e.client.CoordinationV1().Leases(corev1.NamespaceNodeLease).Get(ctx, nodeName, metav1.GetOptions{})
		return err == nil
	}, 30*time.Second, 10*time.Millisecond, "the lease is created")
	require.NotNil(t, lease.Spec.RenewTime)
	assert.Equal(t, nodeName, *lease.Spec.HolderIdentity)
	first := lease.Spec.RenewTime.Time

	e.net.setReady(nil)
	assert.Eventually(t, func() bool { return ready().Status == corev1.ConditionTrue }, 30*time.Second, 10*time.Millisecond,
		"Ready as soon as the CNI config appears")
	assert.Eventually(t, func() bool {
		l, err := e.client.CoordinationV1().Leases(corev1.NamespaceNodeLease).Get(ctx, nodeName, metav1.GetOptions{})
		return err == nil && l.Spec.RenewTime.After(first)
	}, 30*time.Second, 10*time.Millisecond, "the lease is renewed")

	// A restart keeps the Node the CCM initialized: no taint comes back.
	n, err := e.client.CoreV1().Nodes().Get(ctx, nodeName, metav1.GetOptions{})
	require.NoError(t, err)
	n.Spec.Taints = nil
	n.Spec.ProviderID = "qcloud:///ap-guangzhou-1/ins-sbnode01"
	_, err = e.client.CoreV1().Nodes().Update(ctx, n, metav1.UpdateOptions{})
	require.NoError(t, err)
	e.stop(t)
	start(t, e)
	n, err = e.client.CoreV1().Nodes().Get(ctx, nodeName, metav1.GetOptions{})
	require.NoError(t, err)
	assert.Empty(t, n.Spec.Taints)
	assert.Equal(t, "qcloud:///ap-guangzhou-1/ins-sbnode01", n.Spec.ProviderID)
}

func TestPods(t *testing.T) {
	cases := []struct {
		name       string
		pod        *corev1.Pod
		wantRun    bool
		wantReason string
		wantMsg    string
	}{
		{name: "echo pod runs", pod: pod("web", nodeName, podlet.EchoImage), wantRun: true},
		{name: "a tag is fine", pod: pod("tagged", nodeName, podlet.EchoImage+":v1", podlet.EchoImage+"@sha256:abc"), wantRun: true},
		{name: "another image stays pending", pod: pod("nginx", nodeName, "nginx:1.27"),
			wantReason: podlet.ReasonUnsupported, wantMsg: "cannot run container c0 (image nginx:1.27)"},
		{name: "one foreign container is enough", pod: pod("mixed", nodeName, podlet.EchoImage, "busybox"),
			wantReason: podlet.ReasonUnsupported, wantMsg: "c1 (image busybox)"},
		{name: "a claim needs the CSI node plugin", pod: func() *corev1.Pod {
			p := pod("claim", nodeName, podlet.EchoImage)
			p.Spec.Volumes = []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "pvc-1"}}}}
			return p
		}(), wantReason: podlet.ReasonVolumes, wantMsg: "volume data (claim pvc-1) needs the CSI node plugin"},
	}
	e := newEnv(t)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e.create(t, c.pod)
			if c.wantRun {
				assert.Eventually(t, func() bool { return isReady(e.get(t, c.pod.Name)) }, 30*time.Second, 10*time.Millisecond)
				p := e.get(t, c.pod.Name)
				assert.Equal(t, corev1.PodRunning, p.Status.Phase)
				assert.Regexp(t, `^10\.244\.1\.\d+$`, p.Status.PodIP)
				assert.Equal(t, "10.0.1.11", p.Status.HostIP)
				require.Len(t, p.Status.ContainerStatuses, len(c.pod.Spec.Containers))
				for _, cs := range p.Status.ContainerStatuses {
					assert.True(t, cs.Ready)
					assert.NotNil(t, cs.State.Running)
				}
				assert.Equal(t, corev1.ConditionTrue, condition(p, corev1.PodScheduled), "the scheduler's condition is kept")
				assert.True(t, e.servers.isRunning(string(c.pod.UID)))
				waitEvent(t, e, "Started the sandbox's echo server at "+p.Status.PodIP+" on 8080/TCP")
				return
			}
			ev := waitEvent(t, e, c.wantReason)
			assert.Contains(t, ev, "Warning")
			assert.Contains(t, ev, c.wantMsg)
			p := e.get(t, c.pod.Name)
			assert.Equal(t, corev1.PodPending, p.Status.Phase)
			assert.Empty(t, p.Status.PodIP)
			assert.False(t, e.servers.isRunning(string(c.pod.UID)))
		})
	}

	t.Run("a pod of another node is not touched", func(t *testing.T) {
		before := e.net.setupCount()
		e.create(t, pod("elsewhere", "node-2", podlet.EchoImage))
		assert.Never(t, func() bool { return e.get(t, "elsewhere").Status.Phase != corev1.PodPending }, 300*time.Millisecond, 20*time.Millisecond)
		assert.Equal(t, before, e.net.setupCount())
	})

	t.Run("warnings are posted once per pod", func(t *testing.T) {
		e.drain()
		p := e.get(t, "nginx")
		p.Labels = map[string]string{"touched": "yes"}
		_, err := e.client.CoreV1().Pods("default").Update(context.Background(), p, metav1.UpdateOptions{})
		require.NoError(t, err)
		time.Sleep(200 * time.Millisecond) // an update the podlet must not answer with a second event
		for _, ev := range e.drain() {
			assert.NotContains(t, ev, "nginx:1.27")
		}
	})

	t.Run("a graceful delete tears the sandbox down and removes the pod", func(t *testing.T) {
		p := e.get(t, "web")
		now := metav1.Now()
		p.DeletionTimestamp = &now
		_, err := e.client.CoreV1().Pods("default").Update(context.Background(), p, metav1.UpdateOptions{})
		require.NoError(t, err)
		assert.Eventually(t, func() bool {
			_, err := e.client.CoreV1().Pods("default").Get(context.Background(), "web", metav1.GetOptions{})
			return err != nil
		}, 30*time.Second, 10*time.Millisecond, "the podlet finalizes the deletion")
		assert.Contains(t, e.net.tornDown(), "web")
		assert.False(t, e.servers.isRunning("uid-web"))
	})

	t.Run("a force delete tears the sandbox down too", func(t *testing.T) {
		require.NoError(t, e.client.CoreV1().Pods("default").Delete(context.Background(), "tagged", metav1.DeleteOptions{}))
		assert.Eventually(t, func() bool { return contains(e.net.tornDown(), "tagged") }, 30*time.Second, 10*time.Millisecond)
	})
}

func TestSandboxFailureIsAnEventAndRetried(t *testing.T) {
	e := newEnv(t)
	e.net.mu.Lock()
	e.net.failNext = errors.New("CNI ADD for pod default/flaky: plugin exploded")
	e.net.mu.Unlock()
	e.create(t, pod("flaky", nodeName, podlet.EchoImage))
	ev := waitEvent(t, e, podlet.ReasonSandboxFailed)
	assert.Contains(t, ev, "plugin exploded")
	assert.Eventually(t, func() bool { return isReady(e.get(t, "flaky")) }, 30*time.Second, 10*time.Millisecond, "the retry succeeds")
	assert.Equal(t, 2, e.net.setupCount())
}

// TestRestartAdoptsSandboxes: a podlet that restarts keeps the pods it ran (same IP, no
// second ADD), cleans up a sandbox whose namespace vanished, and removes the sandbox of a
// pod deleted while it was down.
func TestRestartAdoptsSandboxes(t *testing.T) {
	e := newEnv(t)
	for _, name := range []string{"keep", "gone", "deleted"} {
		e.create(t, pod(name, nodeName, podlet.EchoImage))
	}
	for _, name := range []string{"keep", "gone", "deleted"} {
		assert.Eventually(t, func() bool { return isReady(e.get(t, name)) }, 30*time.Second, 10*time.Millisecond)
	}
	ip := e.get(t, "keep").Status.PodIP
	setups := e.net.setupCount()
	e.stop(t)

	e.net.mu.Lock()
	delete(e.net.exists, "stratus-test-pod-uid-gone")
	e.net.mu.Unlock()
	require.NoError(t, e.client.CoreV1().Pods("default").Delete(context.Background(), "deleted", metav1.DeleteOptions{}))
	e.servers = &fakeServers{running: map[string]string{}}
	start(t, e)

	assert.True(t, e.servers.isRunning("uid-keep"), "the adopted sandbox's server is back")
	assert.Equal(t, ip, e.get(t, "keep").Status.PodIP)
	assert.Eventually(t, func() bool { return contains(e.net.tornDown(), "deleted") }, 30*time.Second, 10*time.Millisecond,
		"the sandbox of a pod deleted meanwhile goes")
	assert.Contains(t, e.net.tornDown(), "gone", "a record without its namespace is cleaned up")
	// The pod whose namespace vanished is set up again.
	assert.Eventually(t, func() bool { return e.net.setupCount() == setups+1 }, 30*time.Second, 10*time.Millisecond)
	assert.Eventually(t, func() bool { return e.servers.isRunning("uid-gone") }, 30*time.Second, 10*time.Millisecond)
	assert.Eventually(t, func() bool {
		entries, err := os.ReadDir(e.dir)
		if err != nil {
			return false
		}
		var names []string
		for _, en := range entries {
			names = append(names, en.Name())
		}
		return assert.ObjectsAreEqual([]string{"uid-gone.json", "uid-keep.json"}, names)
	}, 30*time.Second, 10*time.Millisecond, "one record per live sandbox, none for the deleted pod")
}

func condition(p *corev1.Pod, t corev1.PodConditionType) corev1.ConditionStatus {
	for _, c := range p.Status.Conditions {
		if c.Type == t {
			return c.Status
		}
	}
	return ""
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}
