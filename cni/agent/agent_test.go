package agent

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/containernetworking/cni/libcni"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/stratus-cloud/stratus/cni"
)

// The agent's behaviour against client-go's fake clientset. What only a real
// kube-apiserver can show (field selectors honoured by the server, RBAC, exec
// credentials) is in test/e2e/cni_agent_test.go.

type harness struct {
	client  *fake.Clientset
	opts    Options
	confDir string

	mu     sync.Mutex
	events []string
}

type setup struct {
	opts   func(*Options)
	client func(*fake.Clientset) // reactors, objects present before the agent starts
}

func startAgent(t *testing.T, node string, s setup) *harness {
	t.Helper()
	client := fake.NewClientset()
	if s.client != nil {
		s.client(client)
	}
	confDir := filepath.Join(t.TempDir(), "net.d")
	opts := Options{
		NodeName: node, ConfDir: confDir, DataDir: "/var/lib/cni/stratus-test",
		IPMasq: true, HairpinMode: true, NonMasqueradeCIDRs: []string{"10.244.0.0/16", "172.16.0.0/16"},
		RetryInterval: 50 * time.Millisecond,
	}
	if s.opts != nil {
		s.opts(&opts)
	}
	a, err := New(client, opts)
	require.NoError(t, err)
	h := &harness{client: client, opts: a.opts, confDir: confDir}
	a.handled = func(ev string) {
		h.mu.Lock()
		h.events = append(h.events, ev)
		h.mu.Unlock()
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			assert.NoError(t, err)
		case <-time.After(10 * time.Second):
			t.Errorf("agent did not stop")
		}
	})
	return h
}

func node(name string, podCIDRs ...string) *corev1.Node {
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if len(podCIDRs) > 0 {
		n.Spec.PodCIDR, n.Spec.PodCIDRs = podCIDRs[0], podCIDRs
	}
	return n
}

// setNode creates or updates the Node through the API, as kube-controller-manager's
// IPAM (or a test) does.
func setNode(t *testing.T, c *fake.Clientset, name string, podCIDRs ...string) {
	t.Helper()
	ctx := context.Background()
	n := node(name, podCIDRs...)
	_, err := c.CoreV1().Nodes().Update(ctx, n, metav1.UpdateOptions{})
	if apierrors.IsNotFound(err) {
		_, err = c.CoreV1().Nodes().Create(ctx, n, metav1.CreateOptions{})
	}
	require.NoError(t, err)
}

func (h *harness) saw(event string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, e := range h.events {
		if e == event {
			return true
		}
	}
	return false
}

func (h *harness) count(verb string) int {
	n := 0
	for _, a := range h.client.Actions() {
		if a.GetVerb() == verb && a.GetResource().Resource == "nodes" {
			n++
		}
	}
	return n
}

// subnet reads the conflist the way a runtime does and returns the plugin's
// subnet, or "" when there is no (valid) file yet. It runs inside Eventually's
// goroutine, so it reports problems with assert, never require.
func (h *harness) subnet(t *testing.T) string {
	b, err := os.ReadFile(h.opts.ConfPath())
	if err != nil {
		assert.True(t, os.IsNotExist(err), "read conflist: %v", err)
		return ""
	}
	list, err := libcni.ConfListFromBytes(b)
	if !assert.NoError(t, err, string(b)) || !assert.Len(t, list.Plugins, 1) {
		return ""
	}
	assert.Equal(t, cni.PluginType, list.Plugins[0].Network.Type)
	assert.Equal(t, "1.1.0", list.CNIVersion, "a current runtime picks 1.1.0 from cniVersions")
	conf, err := cni.ParseConfig(injectVersion(t, list.Plugins[0].Bytes, list.CNIVersion, list.Name))
	if !assert.NoError(t, err) {
		return ""
	}
	return conf.Subnet
}

func injectVersion(t *testing.T, plugin []byte, version, name string) []byte {
	var m map[string]any
	assert.NoError(t, json.Unmarshal(plugin, &m))
	m["cniVersion"], m["name"] = version, name
	b, err := json.Marshal(m)
	assert.NoError(t, err)
	return b
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	require.Eventually(t, cond, 10*time.Second, 20*time.Millisecond, what)
}

func TestAgentWritesConflistAndRewritesItWhenPodCIDRChanges(t *testing.T) {
	t.Parallel()
	h := startAgent(t, "node-a", setup{})
	setNode(t, h.client, "node-b", "10.244.9.0/24") // another node: never ours
	setNode(t, h.client, "node-a", "10.244.3.0/24")
	eventually(t, "conflist with the first podCIDR", func() bool { return h.subnet(t) == "10.244.3.0/24" })

	b, err := os.ReadFile(h.opts.ConfPath())
	require.NoError(t, err)
	var raw struct {
		CNIVersion string           `json:"cniVersion"`
		Plugins    []map[string]any `json:"plugins"`
	}
	require.NoError(t, json.Unmarshal(b, &raw))
	assert.Equal(t, "1.0.0", raw.CNIVersion, "an older runtime reads 1.0.0")
	p := raw.Plugins[0]
	assert.Equal(t, true, p["ipMasq"])
	assert.Equal(t, true, p["hairpinMode"])
	assert.Equal(t, "cbr0", p["bridge"])
	assert.Equal(t, "/var/lib/cni/stratus-test", p["dataDir"])
	assert.Equal(t, []any{"10.244.0.0/16", "172.16.0.0/16"}, p["nonMasqueradeCIDRs"])

	setNode(t, h.client, "node-a", "10.244.4.0/24")
	eventually(t, "conflist rewritten for the new podCIDR", func() bool { return h.subnet(t) == "10.244.4.0/24" })

	// Only the conflist is in the directory: no temp files from the atomic writes.
	entries, err := os.ReadDir(h.confDir)
	require.NoError(t, err)
	require.Len(t, entries, 1)
	assert.Equal(t, DefaultConfName, entries[0].Name())
}

func TestAgentListsAndWatchesOnlyItsOwnNode(t *testing.T) {
	t.Parallel()
	type seen struct{ verb, fields string }
	var mu sync.Mutex
	var got []seen
	record := func(a k8stesting.Action) {
		var f string
		switch a := a.(type) {
		case k8stesting.ListAction:
			f = a.GetListRestrictions().Fields.String()
		case k8stesting.WatchAction:
			f = a.GetWatchRestrictions().Fields.String()
		}
		mu.Lock()
		got = append(got, seen{a.GetVerb(), f})
		mu.Unlock()
	}
	h := startAgent(t, "node-a", setup{client: func(c *fake.Clientset) {
		c.PrependReactor("list", "nodes", func(a k8stesting.Action) (bool, runtime.Object, error) {
			record(a)
			return false, nil, nil
		})
		c.PrependWatchReactor("nodes", func(a k8stesting.Action) (bool, watch.Interface, error) {
			record(a)
			return false, nil, nil
		})
	}})
	setNode(t, h.client, "node-a", "10.244.3.0/24")
	eventually(t, "conflist", func() bool { return h.subnet(t) == "10.244.3.0/24" })

	mu.Lock()
	defer mu.Unlock()
	assert.Contains(t, got, seen{"list", "metadata.name=node-a"})
	assert.Contains(t, got, seen{"watch", "metadata.name=node-a"})
	for _, s := range got {
		assert.Equal(t, "metadata.name=node-a", s.fields, "every %s must select the agent's own node", s.verb)
	}
}

func TestAgentWritesNothingUntilTheNodeHasAPodCIDR(t *testing.T) {
	t.Parallel()
	h := startAgent(t, "node-a", setup{})
	setNode(t, h.client, "node-a")
	eventually(t, "agent saw the node", func() bool { return h.saw("add") })
	_, err := os.Stat(h.opts.ConfPath())
	assert.True(t, os.IsNotExist(err), "no conflist before the node has a podCIDR")

	// Dual-stack: the IPv4 entry is the one used.
	setNode(t, h.client, "node-a", "fd00:10:244::/64", "10.244.5.0/24")
	eventually(t, "conflist once the podCIDR is set", func() bool { return h.subnet(t) == "10.244.5.0/24" })
}

// An expired watch (410 Gone) makes the informer relist; a change that only the
// relist can see reaches the conflist.
func TestAgentRelistsAfterTheWatchExpires(t *testing.T) {
	t.Parallel()
	stale := watch.NewFakeWithChanSize(1, false)
	var first atomic.Bool
	h := startAgent(t, "node-a", setup{client: func(c *fake.Clientset) {
		require.NoError(t, c.Tracker().Add(node("node-a", "10.244.6.0/24")))
		// The first watch is one the test controls: it never delivers what the
		// tracker does, like a watch whose server lost its place.
		c.PrependWatchReactor("nodes", func(k8stesting.Action) (bool, watch.Interface, error) {
			if first.CompareAndSwap(false, true) {
				return true, stale, nil
			}
			return false, nil, nil
		})
	}})
	eventually(t, "first conflist", func() bool { return h.subnet(t) == "10.244.6.0/24" })
	eventually(t, "watching", func() bool { return first.Load() })

	lists := h.count("list")
	setNode(t, h.client, "node-a", "10.244.7.0/24") // the stale watch never tells
	stale.Error(&metav1.Status{Status: metav1.StatusFailure, Code: 410, Reason: metav1.StatusReasonExpired, Message: "too old resource version"})
	eventually(t, "relist picks up the change", func() bool { return h.subnet(t) == "10.244.7.0/24" })
	assert.Greater(t, h.count("list"), lists, "410 Gone must cause a fresh list")
}

func TestAgentRepairsADeletedConflist(t *testing.T) {
	t.Parallel()
	h := startAgent(t, "node-a", setup{opts: func(o *Options) { o.Resync = 50 * time.Millisecond }})
	setNode(t, h.client, "node-a", "10.244.8.0/24")
	eventually(t, "conflist", func() bool { return h.subnet(t) == "10.244.8.0/24" })
	require.NoError(t, os.Remove(h.opts.ConfPath()))
	eventually(t, "conflist rewritten after deletion", func() bool { return h.subnet(t) == "10.244.8.0/24" })
}

// Pods still on a node whose Node object went away need the conflist for their
// DEL; a Node registered again brings its new podCIDR.
func TestAgentKeepsTheConflistWhenTheNodeIsDeleted(t *testing.T) {
	t.Parallel()
	h := startAgent(t, "node-a", setup{})
	setNode(t, h.client, "node-a", "10.244.10.0/24")
	eventually(t, "conflist", func() bool { return h.subnet(t) == "10.244.10.0/24" })

	require.NoError(t, h.client.CoreV1().Nodes().Delete(context.Background(), "node-a", metav1.DeleteOptions{}))
	eventually(t, "agent saw the deletion", func() bool { return h.saw("delete") })
	assert.Equal(t, "10.244.10.0/24", h.subnet(t), "the conflist outlives the Node")

	setNode(t, h.client, "node-a", "10.244.11.0/24")
	eventually(t, "conflist for the re-registered node", func() bool { return h.subnet(t) == "10.244.11.0/24" })
}

func TestAgentRetriesAFailedWrite(t *testing.T) {
	t.Parallel()
	// The conf dir's parent is a file: every write fails until it is a directory.
	blocker := filepath.Join(t.TempDir(), "etc-cni")
	require.NoError(t, os.WriteFile(blocker, []byte("not a directory"), 0o644))
	h := startAgent(t, "node-a", setup{opts: func(o *Options) {
		o.ConfDir = filepath.Join(blocker, "net.d")
		o.Resync = time.Hour // only the retry can repair it
	}})
	setNode(t, h.client, "node-a", "10.244.12.0/24")
	eventually(t, "agent saw the node", func() bool { return h.saw("add") })
	_, err := os.Stat(h.opts.ConfPath())
	require.Error(t, err)

	require.NoError(t, os.Remove(blocker))
	require.NoError(t, os.Mkdir(blocker, 0o755))
	eventually(t, "conflist written on a retry", func() bool { return h.subnet(t) == "10.244.12.0/24" })
}

func TestNewRejectsBadOptions(t *testing.T) {
	t.Parallel()
	client := fake.NewClientset()
	for _, tc := range []struct {
		name   string
		client kubernetes.Interface
		opts   Options
		want   string
	}{
		{"bad non-masquerade CIDR", client, Options{NodeName: "n", NonMasqueradeCIDRs: []string{"vpc"}}, "nonMasqueradeCIDRs[0]"},
		{"bad MTU", client, Options{NodeName: "n", MTU: -1}, "mtu"},
		{"no node name", client, Options{}, "node name"},
		{"no client", nil, Options{NodeName: "n"}, "client"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(tc.client, tc.opts)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}

func TestCacheKeepsOnlyWhatTheAgentReads(t *testing.T) {
	t.Parallel()
	n := node("node-a", "fd00:10:244::/64", "10.244.13.0/24")
	n.ResourceVersion, n.UID = "42", "uid-1"
	n.ManagedFields = []metav1.ManagedFieldsEntry{{Manager: "kubelet"}}
	n.Status.Images = []corev1.ContainerImage{{Names: []string{"registry.example/big:1"}, SizeBytes: 1 << 30}}
	n.Labels = map[string]string{"kubernetes.io/hostname": "node-a"}
	got, err := podCIDROnly(n)
	require.NoError(t, err)
	kept := got.(*corev1.Node)
	assert.Equal(t, "node-a", kept.Name)
	assert.Equal(t, "42", kept.ResourceVersion)
	assert.Equal(t, "10.244.13.0/24", PodCIDR(kept))
	assert.Equal(t, n.Spec.PodCIDRs, kept.Spec.PodCIDRs)
	assert.Empty(t, kept.ManagedFields)
	assert.Empty(t, kept.Status.Images)
	assert.Empty(t, kept.Labels)
	assert.Len(t, n.Status.Images, 1, "the informer's input is not modified")

	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Labels: map[string]string{"a": "b"}}}
	other, err := podCIDROnly(pod)
	require.NoError(t, err)
	assert.Same(t, pod, other, "anything but a Node passes through")
}
