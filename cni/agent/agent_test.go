package agent

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/containernetworking/cni/libcni"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stratus-cloud/stratus/cni"
)

// fakeAPI is a kube-apiserver as far as list and watch of Nodes go: it serves
// /api/v1/nodes with a field selector, streams watch events, and can end a watch
// with 410 Gone.
type fakeAPI struct {
	t     *testing.T
	token string

	mu       sync.Mutex
	nodes    map[string]map[string]any
	rv       int
	watchers map[chan []byte]string // channel -> watched node name
	history  []histEvent
	lists    int
	watches  int
}

type histEvent struct {
	rv   int
	name string
	ev   map[string]any
}

func newFakeAPI(t *testing.T, token string) (*fakeAPI, *httptest.Server) {
	f := &fakeAPI{t: t, token: token, nodes: map[string]map[string]any{}, watchers: map[chan []byte]string{}}
	srv := httptest.NewTLSServer(f)
	t.Cleanup(srv.Close)
	return f, srv
}

func (f *fakeAPI) setNode(name string, podCIDRs ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rv++
	spec := map[string]any{}
	if len(podCIDRs) > 0 {
		spec["podCIDR"] = podCIDRs[0]
		spec["podCIDRs"] = podCIDRs
	}
	_, existed := f.nodes[name]
	obj := map[string]any{
		"kind": "Node", "apiVersion": "v1",
		"metadata": map[string]any{"name": name, "resourceVersion": strconv.Itoa(f.rv)},
		"spec":     spec,
	}
	f.nodes[name] = obj
	typ := "MODIFIED"
	if !existed {
		typ = "ADDED"
	}
	ev := map[string]any{"type": typ, "object": obj}
	f.history = append(f.history, histEvent{rv: f.rv, name: name, ev: ev})
	f.broadcast(name, ev)
}

// expireWatches ends every open watch with 410 Gone, as an apiserver does when
// the watch cache no longer holds the requested version.
func (f *fakeAPI) expireWatches() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for ch := range f.watchers {
		f.send(ch, map[string]any{"type": "ERROR", "object": map[string]any{"kind": "Status", "code": 410, "message": "too old resource version"}})
		close(ch)
		delete(f.watchers, ch)
	}
}

func (f *fakeAPI) broadcast(name string, ev map[string]any) {
	for ch, n := range f.watchers {
		if n == name {
			f.send(ch, ev)
		}
	}
}

func (f *fakeAPI) send(ch chan []byte, ev map[string]any) {
	b, err := json.Marshal(ev)
	assert.NoError(f.t, err)
	select {
	case ch <- b:
	default:
		f.t.Errorf("watcher too slow")
	}
}

func (f *fakeAPI) counts() (lists, watches int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.lists, f.watches
}

func (f *fakeAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Authorization") != "Bearer "+f.token {
		http.Error(w, `{"kind":"Status","code":401}`, http.StatusUnauthorized)
		return
	}
	if r.URL.Path != "/api/v1/nodes" {
		http.NotFound(w, r)
		return
	}
	sel := r.URL.Query().Get("fieldSelector")
	var name string
	if _, err := fmt.Sscanf(sel, "metadata.name=%s", &name); err != nil {
		http.Error(w, "agent must select its node by name", http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	if r.URL.Query().Get("watch") != "true" {
		f.mu.Lock()
		f.lists++
		items := []any{}
		if n, ok := f.nodes[name]; ok {
			items = append(items, n)
		}
		list := map[string]any{"kind": "NodeList", "metadata": map[string]any{"resourceVersion": strconv.Itoa(f.rv)}, "items": items}
		f.mu.Unlock()
		_ = json.NewEncoder(w).Encode(list)
		return
	}
	// Like the apiserver, a watch replays what happened after the version the
	// client last saw, so nothing between its list and its watch is lost.
	from, err := strconv.Atoi(r.URL.Query().Get("resourceVersion"))
	if err != nil {
		http.Error(w, "watch needs the resourceVersion of the list", http.StatusBadRequest)
		return
	}
	ch := make(chan []byte, 64)
	f.mu.Lock()
	f.watches++
	for _, h := range f.history {
		if h.rv > from && h.name == name {
			f.send(ch, h.ev)
		}
	}
	f.watchers[ch] = name
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		delete(f.watchers, ch)
		f.mu.Unlock()
	}()
	w.WriteHeader(http.StatusOK)
	w.(http.Flusher).Flush()
	for {
		select {
		case <-r.Context().Done():
			return
		case b, ok := <-ch:
			if !ok {
				return
			}
			_, _ = w.Write(append(b, '\n'))
			w.(http.Flusher).Flush()
		}
	}
}

func writeKubeconfig(t *testing.T, srv *httptest.Server, token string) string {
	t.Helper()
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "token"), []byte(token+"\n"), 0o600))
	kc := fmt.Sprintf(`apiVersion: v1
kind: Config
current-context: node
clusters:
- name: test
  cluster:
    server: %s
    certificate-authority-data: %s
users:
- name: agent
  user:
    tokenFile: token
contexts:
- name: node
  context:
    cluster: test
    user: agent
`, srv.URL, base64.StdEncoding.EncodeToString(ca))
	path := filepath.Join(dir, "kubeconfig")
	require.NoError(t, os.WriteFile(path, []byte(kc), 0o600))
	return path
}

type harness struct {
	api     *fakeAPI
	opts    Options
	confDir string
}

func startAgent(t *testing.T, node string, mutate func(*Options)) *harness {
	t.Helper()
	api, srv := newFakeAPI(t, "s3cret")
	cfg, err := LoadKubeconfig(writeKubeconfig(t, srv, "s3cret"))
	require.NoError(t, err)
	confDir := filepath.Join(t.TempDir(), "net.d")
	opts := Options{
		NodeName: node, ConfDir: confDir, DataDir: "/var/lib/cni/stratus-test",
		IPMasq: true, HairpinMode: true, NonMasqueradeCIDRs: []string{"10.244.0.0/16", "172.16.0.0/16"},
		RetryInterval: 50 * time.Millisecond,
	}
	if mutate != nil {
		mutate(&opts)
	}
	w := NewNodeWatcher(cfg)
	w.Backoff = 50 * time.Millisecond
	a, err := New(w, opts)
	require.NoError(t, err)
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
	return &harness{api: api, opts: a.opts, confDir: confDir}
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
	h := startAgent(t, "node-a", nil)
	h.api.setNode("node-b", "10.244.9.0/24") // another node: never ours
	h.api.setNode("node-a", "10.244.3.0/24")
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

	h.api.setNode("node-a", "10.244.4.0/24")
	eventually(t, "conflist rewritten for the new podCIDR", func() bool { return h.subnet(t) == "10.244.4.0/24" })

	// Only the conflist is in the directory: no temp files from the atomic writes.
	entries, err := os.ReadDir(h.confDir)
	require.NoError(t, err)
	require.Len(t, entries, 1)
	assert.Equal(t, DefaultConfName, entries[0].Name())
}

func TestAgentWritesNothingUntilTheNodeHasAPodCIDR(t *testing.T) {
	t.Parallel()
	h := startAgent(t, "node-a", nil)
	h.api.setNode("node-a")
	eventually(t, "agent listed and is watching", func() bool { l, w := h.api.counts(); return l >= 1 && w >= 1 })
	// The agent has seen the Node without a podCIDR (list done, watch open).
	_, err := os.Stat(h.opts.ConfPath())
	assert.True(t, os.IsNotExist(err), "no conflist before the node has a podCIDR")

	// Dual-stack: the IPv4 entry is the one used.
	h.api.setNode("node-a", "fd00:10:244::/64", "10.244.5.0/24")
	eventually(t, "conflist once the podCIDR is set", func() bool { return h.subnet(t) == "10.244.5.0/24" })
}

func TestAgentRelistsAfterTheWatchExpires(t *testing.T) {
	t.Parallel()
	h := startAgent(t, "node-a", nil)
	h.api.setNode("node-a", "10.244.6.0/24")
	eventually(t, "first conflist", func() bool { return h.subnet(t) == "10.244.6.0/24" })
	eventually(t, "watching", func() bool { _, w := h.api.counts(); return w >= 1 })

	lists, _ := h.api.counts()
	h.api.expireWatches()
	h.api.setNode("node-a", "10.244.7.0/24") // lands while no watch is open
	eventually(t, "relist picks up the change", func() bool { return h.subnet(t) == "10.244.7.0/24" })
	l, _ := h.api.counts()
	assert.Greater(t, l, lists, "410 Gone must cause a fresh list")
}

func TestAgentRepairsADeletedConflist(t *testing.T) {
	t.Parallel()
	h := startAgent(t, "node-a", func(o *Options) { o.Resync = 50 * time.Millisecond })
	h.api.setNode("node-a", "10.244.8.0/24")
	eventually(t, "conflist", func() bool { return h.subnet(t) == "10.244.8.0/24" })
	require.NoError(t, os.Remove(h.opts.ConfPath()))
	eventually(t, "conflist rewritten after deletion", func() bool { return h.subnet(t) == "10.244.8.0/24" })
}

func TestNewRejectsBadOptions(t *testing.T) {
	_, err := New(nil, Options{NodeName: "n", NonMasqueradeCIDRs: []string{"vpc"}})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "nonMasqueradeCIDRs[0]")
	_, err = New(nil, Options{})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "node name")
}

func TestLoadKubeconfigRejectsExecCredentials(t *testing.T) {
	path := filepath.Join(t.TempDir(), "kc")
	require.NoError(t, os.WriteFile(path, []byte(`
current-context: c
clusters: [{name: k, cluster: {server: "https://127.0.0.1:1"}}]
users: [{name: u, user: {exec: {command: aws}}}]
contexts: [{name: c, context: {cluster: k, user: u}}]
`), 0o600))
	_, err := LoadKubeconfig(path)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "exec")
}

func TestLoadKubeconfigWrongTokenIsRefused(t *testing.T) {
	api, srv := newFakeAPI(t, "right")
	api.setNode("n", "10.244.1.0/24")
	cfg, err := LoadKubeconfig(writeKubeconfig(t, srv, "wrong"))
	require.NoError(t, err)
	w := NewNodeWatcher(cfg)
	_, err = w.list(context.Background(), "n", func(*Node) {})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "401")
}
