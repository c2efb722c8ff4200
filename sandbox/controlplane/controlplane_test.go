package controlplane_test

import (
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/stratus-cloud/stratus/sandbox/binaries"
	"github.com/stratus-cloud/stratus/sandbox/controlplane"
	"github.com/stratus-cloud/stratus/sandbox/plan"
)

func config(t *testing.T) controlplane.Config {
	t.Helper()
	vpc, cluster, pool := plan.Slot(0)
	p, err := plan.New(plan.Options{StateDir: filepath.Join(t.TempDir(), "sbx"), Nodes: 2, VPCCIDR: vpc, ClusterCIDR: cluster, PublicPool: pool})
	require.NoError(t, err)
	cni := filepath.Join(t.TempDir(), "stratus-cni")
	require.NoError(t, os.WriteFile(cni, []byte("#!/bin/sh\n"), 0o755))
	return controlplane.Config{
		Plan: p, Stratus: "/opt/stratus",
		Bins: binaries.Set{KubeDir: "/opt/kube", Etcd: "/usr/bin/etcd", Stratus: map[string]string{
			"fakecloud": "/opt/fakecloud", "stratus-cloud-controller-manager": "/opt/ccm", "stratus-cni": cni, "stratus-csi-driver": "/opt/csi",
		}},
		Ports: controlplane.Ports{Fakecloud: 1001, EtcdClient: 1002, EtcdPeer: 1003, APIServer: 1004, Scheduler: 1005, ControllerManager: 1006, CCM: 1007, CSIController: 1008, CSIProvisioner: 1009, CSIAttacher: 1010},
	}
}

// TestPrepare: the kubeconfig points at the apiserver on the host's transit address and
// trusts a CA that signed a serving certificate valid for that address and for the
// kubernetes Service's cluster IP (what a pod would dial).
func TestPrepare(t *testing.T) {
	c := config(t)
	f, err := controlplane.Prepare(c)
	require.NoError(t, err)

	kc, err := clientcmd.LoadFromFile(f.Kubeconfig)
	require.NoError(t, err)
	cluster := kc.Clusters[kc.Contexts[kc.CurrentContext].Cluster]
	assert.Equal(t, "https://10.0.255.253:1004", cluster.Server)
	assert.Equal(t, f.Token, kc.AuthInfos[kc.Contexts[kc.CurrentContext].AuthInfo].Token)

	pool := x509.NewCertPool()
	require.True(t, pool.AppendCertsFromPEM(cluster.CertificateAuthorityData))
	certPEM, err := os.ReadFile(filepath.Join(c.Plan.StateDir, "pki", "apiserver.crt"))
	require.NoError(t, err)
	block, _ := pem.Decode(certPEM)
	cert, err := x509.ParseCertificate(block.Bytes)
	require.NoError(t, err)
	for _, name := range []string{"10.0.255.253", "10.96.0.1", "kubernetes.default.svc"} {
		_, err := cert.Verify(x509.VerifyOptions{Roots: pool, DNSName: name})
		assert.NoError(t, err, "the serving certificate is valid for %s", name)
	}
	tokens, err := os.ReadFile(filepath.Join(c.Plan.StateDir, "pki", "tokens.csv"))
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(string(tokens), f.Token+","))
	st, err := os.Stat(filepath.Join(c.Plan.StateDir, "pki", "sa.key"))
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), st.Mode().Perm(), "keys are private")

	cc, err := os.ReadFile(f.CloudConfig)
	require.NoError(t, err)
	assert.Contains(t, string(cc), "endpoint: http://10.0.255.253:1001", "the nodes' CSI plugins reach the cloud through the router")
	plugin, err := os.Readlink(filepath.Join(c.Plan.StateDir, "bin", "cni", "stratus-bridge"))
	require.NoError(t, err)
	assert.Equal(t, c.Bins.Stratus["stratus-cni"], plugin, "the plugin is installed under its type name")
	for _, n := range c.Plan.Nodes {
		assert.DirExists(t, n.CNIConfDir())
		assert.DirExists(t, n.PodsDir())
	}
}

func TestSpecs(t *testing.T) {
	c := config(t)
	f, err := controlplane.Prepare(c)
	require.NoError(t, err)
	specs := controlplane.All(c, f)
	names := map[string]bool{}
	for _, s := range specs {
		assert.False(t, names[s.Name], "%s listed once", s.Name)
		names[s.Name] = true
		assert.NotNil(t, s.Health, "%s has a health probe", s.Name)
	}
	assert.Len(t, specs, 9+4*len(c.Plan.Nodes), "control plane with the CSI controller and sidecars; per node podlet, CNI agent, kube-proxy, CSI node plugin")
	for _, s := range specs {
		for _, d := range append(slices.Clone(s.After), s.AfterServing...) {
			assert.True(t, names[d], "%s comes after %s, which exists", s.Name, d)
		}
		if s.Node != "" {
			n, ok := c.Plan.Node(s.Node)
			require.True(t, ok)
			assert.Equal(t, n.Netns, s.Netns, "%s runs in its node's namespace", s.Name)
		} else {
			assert.Empty(t, s.Netns, "%s runs on the host", s.Name)
		}
	}
	byName := map[string][]string{}
	for _, s := range specs {
		byName[s.Name] = s.Args
	}
	assert.Contains(t, byName[controlplane.APIServer], "--bind-address=10.0.255.253")
	assert.Contains(t, byName[controlplane.Fakecloud], "--vpc-router=vpc-sandbox="+c.Plan.RouterNetns)
	assert.Contains(t, byName[controlplane.ControllerManager], "--allocate-node-cidrs=true")
	assert.Contains(t, byName[controlplane.ControllerManager], "--cluster-cidr=10.244.0.0/16")
	assert.Contains(t, byName[controlplane.CCM], "--controllers=cloud-node,cloud-node-lifecycle,service,route")
	assert.Contains(t, byName[controlplane.CCM], "--configure-cloud-routes=true")
	assert.Contains(t, byName["node-2/"+controlplane.KubeProxy], "--hostname-override=node-2")
	assert.Contains(t, byName["node-2/"+controlplane.CNIAgent], "--non-masquerade-cidrs=10.244.0.0/16,10.0.0.0/16")
	pool := c.LBLoopbackPool()
	assert.True(t, pool.Addr().IsLoopback())
	assert.NotEqual(t, "127.240.0.0/16", pool.String(), "never the default pool of a `make run` fakecloud")
}

// TestPrepareRefusesAStateDirTooDeepForItsSockets: a unix socket's path is at most 107
// bytes; a state dir that leaves no room for the CSI sockets is one clear error, before
// anything starts.
func TestPrepareRefusesAStateDirTooDeepForItsSockets(t *testing.T) {
	c := config(t)
	deep := filepath.Join(t.TempDir(), strings.Repeat("d", 90))
	p, err := plan.New(plan.Options{StateDir: deep, Nodes: 2, VPCCIDR: c.Plan.VPCCIDR.String(), ClusterCIDR: c.Plan.ClusterCIDR.String(), PublicPool: c.Plan.PublicPool.String()})
	require.NoError(t, err)
	c.Plan = p
	_, err = controlplane.Prepare(c)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "is too deep: the CSI socket")
	assert.Contains(t, err.Error(), "pick a shorter --state-dir")
	assert.NoDirExists(t, deep, "nothing made")
}
