//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/containernetworking/cni/libcni"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/restmapper"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/stratus-cloud/stratus/cni"
	"github.com/stratus-cloud/stratus/test/e2e/framework"
)

// cniAgentTimeout bounds each wait for the agent: it reacts within a second on an
// idle machine; CI runs it next to compilers.
const cniAgentTimeout = 90 * time.Second

// cniManifests decodes every object of examples/manifests/cni.
func cniManifests(t *testing.T) []*unstructured.Unstructured {
	t.Helper()
	root, err := framework.RepoRoot()
	require.NoError(t, err)
	files, err := filepath.Glob(filepath.Join(root, "examples", "manifests", "cni", "*.yaml"))
	require.NoError(t, err)
	require.NotEmpty(t, files)
	var objs []*unstructured.Unstructured
	for _, f := range files {
		if filepath.Base(f) == "kustomization.yaml" {
			continue // kustomize's input, not an object (images_manifests_test.go applies it)
		}
		data, err := os.ReadFile(f)
		require.NoError(t, err)
		dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
		for {
			var m map[string]any
			err := dec.Decode(&m)
			if errors.Is(err, io.EOF) {
				break
			}
			require.NoError(t, err, f)
			if len(m) > 0 {
				objs = append(objs, &unstructured.Unstructured{Object: m})
			}
		}
	}
	return objs
}

// cniAgentArgs are the agent container's args from the DaemonSet, for nodeName and
// with the host's CNI config dir replaced by confDir.
func cniAgentArgs(t *testing.T, nodeName, confDir string) []string {
	t.Helper()
	for _, o := range cniManifests(t) {
		if o.GetKind() != "DaemonSet" {
			continue
		}
		ds := &appsv1.DaemonSet{}
		require.NoError(t, runtime.DefaultUnstructuredConverter.FromUnstructured(o.Object, ds))
		var args []string
		for _, a := range ds.Spec.Template.Spec.Containers[0].Args {
			a = strings.ReplaceAll(a, "$(NODE_NAME)", nodeName)
			if strings.HasPrefix(a, "--cni-conf-dir=") {
				a = "--cni-conf-dir=" + confDir
			}
			args = append(args, a)
		}
		require.Contains(t, args, "--cni-conf-dir="+confDir)
		return args
	}
	t.Fatal("no DaemonSet in examples/manifests/cni")
	return nil
}

// applyCNIManifests sends every object to the apiserver, as a dry run (what
// `kubectl apply --dry-run=server` does: schema, defaulting, admission) or for real.
func applyCNIManifests(ctx context.Context, t *testing.T, api *framework.APIServer, dryRun bool, kinds ...string) []string {
	t.Helper()
	dyn, err := dynamic.NewForConfig(api.Config)
	require.NoError(t, err)
	groups, err := restmapper.GetAPIGroupResources(api.Client.Discovery())
	require.NoError(t, err)
	mapper := restmapper.NewDiscoveryRESTMapper(groups)
	opts := metav1.CreateOptions{FieldValidation: "Strict"}
	if dryRun {
		opts.DryRun = []string{metav1.DryRunAll}
	}
	var applied []string
	for _, o := range cniManifests(t) {
		gvk := o.GroupVersionKind()
		if len(kinds) > 0 && !contains(kinds, gvk.Kind) {
			continue
		}
		mapping, err := mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
		require.NoError(t, err, "%s %s", gvk, o.GetName())
		var ri dynamic.ResourceInterface = dyn.Resource(mapping.Resource)
		if o.GetNamespace() != "" {
			ri = dyn.Resource(mapping.Resource).Namespace(o.GetNamespace())
		}
		created, err := ri.Create(ctx, o, opts)
		require.NoError(t, err, "create (dry run %t) %s %s/%s", dryRun, gvk.Kind, o.GetNamespace(), o.GetName())
		assert.Equal(t, o.GetName(), created.GetName())
		if dryRun {
			_, err = ri.Get(ctx, o.GetName(), metav1.GetOptions{})
			assert.True(t, apierrors.IsNotFound(err), "dry run stored %s %s: %v", gvk.Kind, o.GetName(), err)
		}
		applied = append(applied, gvk.Kind)
	}
	return applied
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// conflistSubnet reads the conflist the way a runtime does and returns the plugin's
// subnet; an error says what is there instead.
func conflistSubnet(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	list, err := libcni.ConfListFromBytes(b)
	if err != nil {
		return "", fmt.Errorf("conflist %s: %w", path, err)
	}
	if len(list.Plugins) != 1 || list.Plugins[0].Network.Type != cni.PluginType {
		return "", fmt.Errorf("conflist %s: want one %s plugin: %s", path, cni.PluginType, b)
	}
	var m map[string]any
	if err := json.Unmarshal(list.Plugins[0].Bytes, &m); err != nil {
		return "", err
	}
	m["cniVersion"], m["name"] = list.CNIVersion, list.Name
	single, err := json.Marshal(m)
	if err != nil {
		return "", err
	}
	conf, err := cni.ParseConfig(single)
	if err != nil {
		return "", fmt.Errorf("conflist %s: the plugin rejects it: %w", path, err)
	}
	return conf.Subnet, nil
}

func waitForSubnet(t *testing.T, path, want string) {
	t.Helper()
	framework.Eventually(t, cniAgentTimeout, "conflist "+path+" with subnet "+want, func(context.Context) error {
		got, err := conflistSubnet(path)
		if err != nil {
			return err
		}
		if got != want {
			return fmt.Errorf("subnet %s", got)
		}
		return nil
	})
}

func waitForLog(t *testing.T, p *framework.Process, line string) {
	t.Helper()
	framework.Eventually(t, cniAgentTimeout, p.Name+" to log "+line, func(context.Context) error {
		b, err := os.ReadFile(p.LogPath)
		if err != nil {
			return err
		}
		if !bytes.Contains(b, []byte(line)) {
			if ok, err := p.Exited(); ok {
				return framework.Permanent(fmt.Errorf("%s exited: %v", p.Name, err))
			}
			return errors.New("not yet")
		}
		return nil
	})
}

// writeAgentKubeconfig writes a kubeconfig for the apiserver whose user is user.
func writeAgentKubeconfig(t *testing.T, api *framework.APIServer, path string, user *clientcmdapi.AuthInfo) {
	t.Helper()
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["e2e"] = &clientcmdapi.Cluster{Server: api.URL, CertificateAuthorityData: api.CAData}
	cfg.AuthInfos["agent"] = user
	cfg.Contexts["e2e"] = &clientcmdapi.Context{Cluster: "e2e", AuthInfo: "agent"}
	cfg.CurrentContext = "e2e"
	require.NoError(t, clientcmd.WriteToFile(*cfg, path))
}

func reportRSS(t *testing.T, p *framework.Process) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.Pid()))
	if err != nil {
		return
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "VmRSS:") || strings.HasPrefix(l, "VmHWM:") {
			t.Logf("%s %s", p.Name, strings.Join(strings.Fields(l), " "))
		}
	}
}

// TestCNIAgent runs cmd/stratus-cni-agent against a real kube-apiserver with the
// DaemonSet's own flags: with the service account and RBAC of the manifests it
// follows its Node's podCIDR, keeps the conflist when the Node goes away and
// rewrites it when the Node comes back with another podCIDR (the API never lets a
// podCIDR change in place); with an exec credential plugin it works the same.
func TestCNIAgent(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	etcd := framework.StartEtcd(t)
	api := framework.StartAPIServer(t, etcd)
	agentBin := framework.BuildBinary(t, "./cmd/stratus-cni-agent")

	t.Run("ManifestsServerDryRun", func(t *testing.T) {
		kinds := applyCNIManifests(ctx, t, api, true)
		for _, want := range []string{"ServiceAccount", "ClusterRole", "ClusterRoleBinding", "DaemonSet"} {
			assert.Contains(t, kinds, want)
		}
	})

	t.Run("ServiceAccountOfTheManifests", func(t *testing.T) {
		applyCNIManifests(ctx, t, api, false, "ServiceAccount", "ClusterRole", "ClusterRoleBinding")
		expiry := int64(3600)
		tok, err := api.Client.CoreV1().ServiceAccounts("kube-system").CreateToken(ctx, "stratus-cni",
			&authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: &expiry}}, metav1.CreateOptions{})
		require.NoError(t, err)
		dir := t.TempDir()
		tokenFile := filepath.Join(dir, "token")
		require.NoError(t, os.WriteFile(tokenFile, []byte(tok.Status.Token), 0o600))
		kubeconfig := filepath.Join(dir, "kubeconfig")
		writeAgentKubeconfig(t, api, kubeconfig, &clientcmdapi.AuthInfo{TokenFile: tokenFile})

		const node = "cni-node-a"
		_, err = framework.RegisterNode(ctx, api.Client, node, "10.0.1.5")
		require.NoError(t, err)
		confDir := filepath.Join(dir, "net.d")
		conflist := filepath.Join(confDir, "10-stratus.conflist")
		agent := framework.StartProcess(t, "stratus-cni-agent-a", agentBin,
			append(cniAgentArgs(t, node, confDir), "--kubeconfig="+kubeconfig)...)
		waitForLog(t, agent, `"Node informer synced" node="cni-node-a" nodeFound=true`)
		_, err = os.Stat(conflist)
		assert.True(t, os.IsNotExist(err), "no conflist before the Node has a podCIDR: %v", err)

		// kube-controller-manager's node IPAM sets the podCIDR once.
		patch := []byte(`{"spec":{"podCIDR":"10.244.3.0/24","podCIDRs":["10.244.3.0/24"]}}`)
		_, err = api.Client.CoreV1().Nodes().Patch(ctx, node, types.StrategicMergePatchType, patch, metav1.PatchOptions{})
		require.NoError(t, err)
		waitForSubnet(t, conflist, "10.244.3.0/24")

		require.NoError(t, api.Client.CoreV1().Nodes().Delete(ctx, node, metav1.DeleteOptions{}))
		waitForLog(t, agent, "Node deleted; keeping the CNI conflist")
		got, err := conflistSubnet(conflist)
		require.NoError(t, err)
		assert.Equal(t, "10.244.3.0/24", got, "pods still on the node need the conflist for DEL")

		again := framework.NewNode(node, "10.0.1.5")
		again.Spec.PodCIDR, again.Spec.PodCIDRs = "10.244.4.0/24", []string{"10.244.4.0/24"}
		_, err = api.Client.CoreV1().Nodes().Create(ctx, again, metav1.CreateOptions{})
		require.NoError(t, err)
		waitForSubnet(t, conflist, "10.244.4.0/24")

		entries, err := os.ReadDir(confDir)
		require.NoError(t, err)
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		assert.Equal(t, []string{"10-stratus.conflist"}, names, "atomic writes leave no temp files")
		reportRSS(t, agent)
	})

	t.Run("ExecCredentialPlugin", func(t *testing.T) {
		dir := t.TempDir()
		// The helper reads the token from a file (a process's command line is
		// logged) and leaves a mark each time client-go runs it.
		tokenFile := filepath.Join(dir, "admin-token")
		require.NoError(t, os.WriteFile(tokenFile, []byte(api.Token), 0o600))
		helper := filepath.Join(dir, "credential-helper")
		require.NoError(t, os.WriteFile(helper, []byte(`#!/bin/sh
echo run >> "$(dirname "$0")/runs"
printf '{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","status":{"token":"%s"}}\n' "$(cat "$(dirname "$0")/admin-token")"
`), 0o755))
		kubeconfig := filepath.Join(dir, "kubeconfig")
		// No token, no certificate: without the helper the agent is anonymous, and
		// anonymous may not list nodes.
		writeAgentKubeconfig(t, api, kubeconfig, &clientcmdapi.AuthInfo{Exec: &clientcmdapi.ExecConfig{
			APIVersion:      "client.authentication.k8s.io/v1",
			Command:         helper,
			InteractiveMode: clientcmdapi.NeverExecInteractiveMode,
		}})

		const node = "cni-node-b"
		n := framework.NewNode(node, "10.0.1.6")
		n.Spec.PodCIDR, n.Spec.PodCIDRs = "10.244.5.0/24", []string{"10.244.5.0/24"}
		_, err := api.Client.CoreV1().Nodes().Create(ctx, n, metav1.CreateOptions{})
		require.NoError(t, err)
		confDir := filepath.Join(dir, "net.d")
		agent := framework.StartProcess(t, "stratus-cni-agent-b", agentBin,
			append(cniAgentArgs(t, node, confDir), "--kubeconfig="+kubeconfig)...)
		waitForSubnet(t, filepath.Join(confDir, "10-stratus.conflist"), "10.244.5.0/24")
		runs, err := os.ReadFile(filepath.Join(dir, "runs"))
		require.NoError(t, err, "the exec credential helper never ran")
		assert.NotEmpty(t, bytes.TrimSpace(runs))
		reportRSS(t, agent)
	})

	// What anonymous gets, so the exec case above cannot pass without its helper.
	t.Run("AnonymousIsRefused", func(t *testing.T) {
		dir := t.TempDir()
		kubeconfig := filepath.Join(dir, "kubeconfig")
		writeAgentKubeconfig(t, api, kubeconfig, &clientcmdapi.AuthInfo{})
		cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
		require.NoError(t, err)
		dyn, err := dynamic.NewForConfig(cfg)
		require.NoError(t, err)
		_, err = dyn.Resource(corev1.SchemeGroupVersion.WithResource("nodes")).List(ctx, metav1.ListOptions{})
		require.Error(t, err)
		assert.True(t, apierrors.IsForbidden(err) || apierrors.IsUnauthorized(err), "anonymous list of nodes: %v", err)
	})
}
