// Package controlplane says what the sandbox runs: it writes the files the components
// need (the sandbox's CA and serving certificate, the admin token and kubeconfig, the
// service-account keys, fakecloud's seed and credentials, the CCM's cloud-config, each
// node's directories) and returns the component specs of the control plane (fakecloud
// with its data plane, etcd, kube-apiserver, kube-scheduler, kube-controller-manager, the
// CCM, the CSI controller with the csi-provisioner and csi-attacher sidecars) and of
// every node (the podlet, the CNI agent, kube-proxy, the CSI node plugin), with their
// flags, namespaces, order and health probes, and the cluster objects the sandbox
// creates once the apiserver serves (the CSIDriver and the default StorageClass).
//
// The supervisor runs whatever the lists hold. The package writes only under the state
// dir and starts nothing.
package controlplane

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/stratus-cloud/stratus/fakecloud"
	"github.com/stratus-cloud/stratus/sandbox/binaries"
	"github.com/stratus-cloud/stratus/sandbox/component"
	"github.com/stratus-cloud/stratus/sandbox/plan"
	"github.com/stratus-cloud/stratus/sandbox/state"
)

// Component names.
const (
	Fakecloud         = "fakecloud"
	Etcd              = "etcd"
	APIServer         = "kube-apiserver"
	Scheduler         = "kube-scheduler"
	ControllerManager = "kube-controller-manager"
	CCM               = "stratus-cloud-controller-manager"
	CSIController     = "csi-controller"
	CSIProvisioner    = "csi-provisioner"
	CSIAttacher       = "csi-attacher"
	Podlet            = "podlet"
	CNIAgent          = "stratus-cni-agent"
	KubeProxy         = "kube-proxy"
	CSINode           = "csi-node"
)

// Fixed ports inside each node's own namespace (no other process shares it).
const (
	PodletHealthPort    = 10248
	KubeProxyHealthPort = 10256
	CSINodeHealthPort   = 9809
)

// RouteReconciliationPeriod is how often the CCM's route controller compares the route
// table with the nodes' podCIDRs (its default is 10s): a route deleted behind its back
// comes back within this.
const RouteReconciliationPeriod = 3 * time.Second

// ServiceAccountIssuer is the apiserver's --service-account-issuer.
const ServiceAccountIssuer = "https://kubernetes.default.svc.cluster.local"

// Ports are the host ports the control plane listens on, chosen at start.
type Ports struct {
	Fakecloud         int `json:"fakecloud"`
	EtcdClient        int `json:"etcdClient"`
	EtcdPeer          int `json:"etcdPeer"`
	APIServer         int `json:"apiserver"`
	Scheduler         int `json:"scheduler"`
	ControllerManager int `json:"controllerManager"`
	CCM               int `json:"ccm"`
	// The CSI controller's and its sidecars' /metrics and /healthz (loopback).
	CSIController  int `json:"csiController"`
	CSIProvisioner int `json:"csiProvisioner"`
	CSIAttacher    int `json:"csiAttacher"`
}

// Config is everything the specs are made from.
type Config struct {
	Plan *plan.Plan
	Bins binaries.Set
	// Stratus is the stratus binary itself (the podlet is one of its subcommands).
	Stratus string
	Ports   Ports
}

// Files are what Prepare wrote, for the specs and for clients of the sandbox.
type Files struct {
	Kubeconfig      string
	CredentialsFile string
	CloudConfig     string
	Seed            string
	Token           string
	CA              []byte
	pki             *pki
}

// APIServerURL is where kube-apiserver serves: the host's end of the transit link, which
// the nodes reach through the router.
func (c Config) APIServerURL() string {
	return "https://" + net.JoinHostPort(c.Plan.HostIP.String(), strconv.Itoa(c.Ports.APIServer))
}

// FakecloudURL is fakecloud's endpoint (API and admin). Like the apiserver it serves on
// the host's end of the transit link: the host reaches it there, and so do the nodes
// (their CSI node plugins ask the cloud about their instance), through the router.
func (c Config) FakecloudURL() string {
	return "http://" + net.JoinHostPort(c.Plan.HostIP.String(), strconv.Itoa(c.Ports.Fakecloud))
}

// CSIControllerSocket is the CSI controller's endpoint, shared with its sidecars.
func (c Config) CSIControllerSocket() string {
	return state.Dir(c.Plan.StateDir).Path("csi", "controller", "csi.sock")
}

// CheckSockets reports whether the state dir leaves room for the sandbox's unix sockets
// (the CSI controller's and every node plugin's): the kernel takes at most 107 bytes.
func CheckSockets(p *plan.Plan) error {
	socks := []string{Config{Plan: p}.CSIControllerSocket()}
	for _, n := range p.Nodes {
		socks = append(socks, n.CSISocket())
	}
	for _, s := range socks {
		if len(s) > 107 {
			return fmt.Errorf("state dir %s is too deep: the CSI socket %s is longer than a unix socket may be (107 bytes); pick a shorter --state-dir", p.StateDir, s)
		}
	}
	return nil
}

// DiskDevRoot is where fakecloud links instance X's attached disks: X's own device tree.
func (c Config) DiskDevRoot(instanceID string) string {
	return filepath.Join(c.Plan.StateDir, "nodes", instanceID, "dev")
}

// DiskImageDir is where fakecloud keeps the disk images (its data dir's cbs/): the only
// place a node plugin accepts a loop device's backing file from.
func (c Config) DiskImageDir() string {
	return state.Dir(c.Plan.StateDir).Path("fakecloud", "data", "cbs")
}

// LBLoopbackPool is where this sandbox's fakecloud binds listeners: a /16 of 127/8
// derived from the sandbox ID, so two sandboxes rarely share one (and the default
// 127.240.0.0/16 of a `make run` fakecloud is never used).
func (c Config) LBLoopbackPool() netip.Prefix {
	n, _ := strconv.ParseUint(c.Plan.ID[:4], 16, 32)
	return netip.PrefixFrom(netip.AddrFrom4([4]byte{127, byte(64 + n%128), 0, 0}), 16)
}

// Prepare writes every file the components need.
func Prepare(c Config) (*Files, error) {
	p := c.Plan
	if err := CheckSockets(p); err != nil {
		return nil, err
	}
	dir := state.Dir(p.StateDir)
	firstService := p.ServiceCIDR.Addr().Next()
	k, err := writePKI(dir.PKIDir(),
		[]net.IP{p.HostIP.AsSlice(), firstService.AsSlice(), net.ParseIP("127.0.0.1")},
		[]string{"kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local", "localhost"})
	if err != nil {
		return nil, fmt.Errorf("pki: %w", err)
	}
	f := &Files{
		Kubeconfig: dir.Kubeconfig(), CredentialsFile: dir.CredentialsFile(),
		CloudConfig: dir.Path("cloud-config.yaml"), Seed: dir.Path("seed.yaml"),
		Token: k.Token, CA: k.CA, pki: k,
	}
	if err := writeKubeconfig(f.Kubeconfig, c.APIServerURL(), k); err != nil {
		return nil, err
	}
	seed, err := p.Seed()
	if err != nil {
		return nil, err
	}
	if err := state.WriteFile(f.Seed, seed, 0o644); err != nil {
		return nil, err
	}
	creds := fmt.Appendf(nil, "secretId: %s\nsecretKey: %s\n", fakecloud.DefaultSecretID, fakecloud.DefaultSecretKey)
	if err := state.WriteFile(f.CredentialsFile, creds, 0o600); err != nil {
		return nil, err
	}
	if err := state.WriteFile(f.CloudConfig, p.CloudConfig(c.FakecloudURL(), f.CredentialsFile), 0o600); err != nil {
		return nil, err
	}
	for _, d := range []string{dir.Path("fakecloud", "data"), dir.Path("etcd"), dir.Path("pki", "ccm"), dir.Path("pki", "scheduler"), dir.Path("pki", "controller-manager")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, err
		}
	}
	if err := os.MkdirAll(filepath.Dir(c.CSIControllerSocket()), 0o700); err != nil {
		return nil, err
	}
	for _, n := range p.Nodes {
		for _, d := range []string{n.CNIConfDir(), n.CNIDataDir(), n.CNICacheDir(), n.PodsDir(), n.KubeletDir(), filepath.Dir(n.CSISocket()), c.DiskDevRoot(n.InstanceID)} {
			if err := os.MkdirAll(d, 0o755); err != nil {
				return nil, err
			}
		}
	}
	// A runtime finds a CNI plugin by its type, so the plugin is installed under that name.
	if err := binaries.Link(c.Bins.Stratus["stratus-cni"], filepath.Join(dir.CNIBinDir(), "stratus-bridge")); err != nil {
		return nil, fmt.Errorf("install the CNI plugin: %w", err)
	}
	return f, nil
}

func writeKubeconfig(path, server string, k *pki) error {
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["stratus-sandbox"] = &clientcmdapi.Cluster{Server: server, CertificateAuthorityData: k.CA}
	cfg.AuthInfos[AdminUser] = &clientcmdapi.AuthInfo{Token: k.Token}
	cfg.Contexts["stratus-sandbox"] = &clientcmdapi.Context{Cluster: "stratus-sandbox", AuthInfo: AdminUser}
	cfg.CurrentContext = "stratus-sandbox"
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		return fmt.Errorf("write kubeconfig %s: %w", path, err)
	}
	return nil
}

func loopback(port int) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) }

// ControlPlane lists the control plane's components, in start order.
func ControlPlane(c Config, f *Files) []component.Spec {
	p := c.Plan
	dir := state.Dir(p.StateDir)
	kc := f.Kubeconfig
	etcdClient := "http://" + loopback(c.Ports.EtcdClient)
	etcdPeer := "http://" + loopback(c.Ports.EtcdPeer)
	clientKubeconfigs := []string{"--kubeconfig=" + kc, "--authentication-kubeconfig=" + kc, "--authorization-kubeconfig=" + kc}
	return []component.Spec{
		{
			Name:   Fakecloud,
			Binary: c.Bins.Stratus["fakecloud"],
			Args: []string{
				"serve", "--listen=" + net.JoinHostPort(p.HostIP.String(), strconv.Itoa(c.Ports.Fakecloud)),
				"--data-dir=" + dir.Path("fakecloud", "data"), "--seed=" + f.Seed,
				// The VPC's router namespace: route tables become its kernel routes, and the
				// load balancers of the VPC are served there (an L4 listener's proxy at its
				// VIP, an L3 VIP as an ECMP route across its healthy target nodes).
				"--dataplane", "--vpc-router=" + plan.VPCID + "=" + p.RouterNetns,
				"--lb-loopback-pool=" + c.LBLoopbackPool().String(),
				"--lb-public-pool=" + p.PublicPool.String(),
				// Disks of instance X appear under its node's own device tree, never in /dev.
				"--disk-dev-root=" + c.DiskDevRoot("{instanceId}"),
			},
			Health: component.HTTP{URL: c.FakecloudURL() + "/_fakecloud/calls"},
		},
		{
			Name:   Etcd,
			Binary: c.Bins.Etcd,
			Args: []string{
				"--name=sandbox", "--data-dir=" + dir.Path("etcd", "data"),
				"--listen-client-urls=" + etcdClient, "--advertise-client-urls=" + etcdClient,
				"--listen-peer-urls=" + etcdPeer, "--initial-advertise-peer-urls=" + etcdPeer,
				"--initial-cluster=sandbox=" + etcdPeer, "--initial-cluster-state=new",
				"--logger=zap", "--log-outputs=stderr",
			},
			Health: component.HTTP{URL: etcdClient + "/health", JSONHealth: true},
		},
		{
			Name:   APIServer,
			Binary: c.Bins.Kube(APIServer),
			After:  []string{Etcd},
			Args: []string{
				"--etcd-servers=" + etcdClient,
				"--bind-address=" + p.HostIP.String(), "--advertise-address=" + p.HostIP.String(),
				"--secure-port=" + strconv.Itoa(c.Ports.APIServer),
				"--tls-cert-file=" + f.pki.CertFile, "--tls-private-key-file=" + f.pki.KeyFile,
				"--token-auth-file=" + f.pki.TokenFile,
				// No client certificates are issued, but with these CAs the apiserver
				// publishes kube-system/extension-apiserver-authentication complete, which
				// the delegated authentication of the scheduler and the controller
				// managers reads (logging an error every few seconds while it is not).
				"--client-ca-file=" + f.pki.CAFile,
				"--requestheader-client-ca-file=" + f.pki.CAFile,
				"--requestheader-allowed-names=front-proxy-client",
				"--requestheader-username-headers=X-Remote-User",
				"--requestheader-group-headers=X-Remote-Group",
				"--requestheader-extra-headers-prefix=X-Remote-Extra-",
				"--service-account-key-file=" + f.pki.SAPubFile, "--service-account-signing-key-file=" + f.pki.SAKeyFile,
				"--service-account-issuer=" + ServiceAccountIssuer,
				"--service-cluster-ip-range=" + p.ServiceCIDR.String(),
				"--authorization-mode=Node,RBAC", "--allow-privileged=true", "--profiling=false", "--v=1",
			},
			Health: component.HTTP{URL: c.APIServerURL() + "/readyz", Token: f.Token, CA: f.CA},
			// Its clients retry until it is ready, so they start once it accepts
			// connections and their own start-up overlaps its post-start hooks.
			Serving: component.TCP{Addr: net.JoinHostPort(p.HostIP.String(), strconv.Itoa(c.Ports.APIServer))},
		},
		{
			Name:         Scheduler,
			Binary:       c.Bins.Kube(Scheduler),
			AfterServing: []string{APIServer},
			Args: append(clientKubeconfigs,
				"--leader-elect=false", "--bind-address=127.0.0.1", "--secure-port="+strconv.Itoa(c.Ports.Scheduler),
				"--cert-dir="+dir.Path("pki", "scheduler"), "--v=1"),
			Health: component.HTTP{URL: "https://" + loopback(c.Ports.Scheduler) + "/healthz", Insecure: true},
		},
		{
			Name:         ControllerManager,
			Binary:       c.Bins.Kube(ControllerManager),
			AfterServing: []string{APIServer},
			Args: append(clientKubeconfigs,
				"--leader-elect=false", "--bind-address=127.0.0.1", "--secure-port="+strconv.Itoa(c.Ports.ControllerManager),
				"--cert-dir="+dir.Path("pki", "controller-manager"),
				// Node IPAM: a podCIDR per node, which the CNI agent turns into the
				// node's conflist and the CCM's route controller into a VPC route.
				"--allocate-node-cidrs=true", "--cluster-cidr="+p.ClusterCIDR.String(),
				"--node-cidr-mask-size="+strconv.Itoa(plan.NodeCIDRMaskSize),
				"--service-cluster-ip-range="+p.ServiceCIDR.String(),
				// Routes are the CCM's: kube-controller-manager has no cloud here.
				"--configure-cloud-routes=false",
				// Every default controller, the node lifecycle and taint eviction ones
				// included: the podlets renew their Leases, so nodes stay Ready while
				// their podlet runs and turn NotReady (and get tainted) when it stops,
				// as real nodes do.
				"--controllers=*",
				// The not-ready taints a node gets while its CNI config is not written
				// yet go at the next monitor pass: every 2s rather than 5s.
				"--node-monitor-period=2s",
				"--service-account-private-key-file="+f.pki.SAKeyFile, "--root-ca-file="+f.pki.CAFile,
				"--use-service-account-credentials=false", "--v=1"),
			Health: component.HTTP{URL: "https://" + loopback(c.Ports.ControllerManager) + "/healthz", Insecure: true},
		},
		{
			Name:         CCM,
			Binary:       c.Bins.Stratus["stratus-cloud-controller-manager"],
			After:        []string{Fakecloud},
			AfterServing: []string{APIServer},
			Args: append(clientKubeconfigs,
				"--cloud-provider=qcloud", "--cloud-config="+f.CloudConfig,
				"--controllers=cloud-node,cloud-node-lifecycle,service,route",
				"--allocate-node-cidrs=true", "--configure-cloud-routes=true", "--cluster-cidr="+p.ClusterCIDR.String(),
				"--leader-elect=false", "--use-service-account-credentials=false",
				"--bind-address=127.0.0.1", "--secure-port="+strconv.Itoa(c.Ports.CCM), "--webhook-secure-port=0",
				"--cert-dir="+dir.Path("pki", "ccm"),
				"--route-reconciliation-period="+RouteReconciliationPeriod.String(),
				"--node-monitor-period=5s", "--v=2"),
			Health: component.HTTP{URL: "https://" + loopback(c.Ports.CCM) + "/healthz", Token: f.Token, Insecure: true},
		},
		{
			// The CSI driver's controller service: CreateVolume, ControllerPublish on
			// fakecloud's CBS. Volumes without topology go to the first zone.
			Name:   CSIController,
			Binary: c.Bins.Stratus["stratus-csi-driver"],
			After:  []string{Fakecloud},
			Args: []string{
				"--mode=controller", "--endpoint=unix://" + c.CSIControllerSocket(), "--cloud-config=" + f.CloudConfig,
				"--default-zone=" + plan.Zones[0], "--http-endpoint=" + loopback(c.Ports.CSIController), "--v=2",
			},
			Health: component.HTTP{URL: "http://" + loopback(c.Ports.CSIController) + "/healthz"},
		},
		{
			Name:         CSIProvisioner,
			Binary:       c.Bins.Sidecar(CSIProvisioner),
			After:        []string{CSIController},
			AfterServing: []string{APIServer},
			Args: []string{
				"--csi-address=" + c.CSIControllerSocket(), "--kubeconfig=" + kc, "--leader-election=false",
				// The zone of the node the first pod lands on (WaitForFirstConsumer).
				"--feature-gates=Topology=true", "--extra-create-metadata", "--controller-publish-readonly",
				"--default-fstype=ext4", "--timeout=60s", "--retry-interval-start=500ms", "--retry-interval-max=5s",
				"--http-endpoint=" + loopback(c.Ports.CSIProvisioner), "--v=2",
			},
			Health: component.HTTP{URL: "http://" + loopback(c.Ports.CSIProvisioner) + "/metrics"},
		},
		{
			Name:         CSIAttacher,
			Binary:       c.Bins.Sidecar(CSIAttacher),
			After:        []string{CSIController},
			AfterServing: []string{APIServer},
			Args: []string{
				"--csi-address=" + c.CSIControllerSocket(), "--kubeconfig=" + kc, "--leader-election=false",
				"--timeout=60s", "--retry-interval-start=500ms", "--retry-interval-max=5s",
				"--http-endpoint=" + loopback(c.Ports.CSIAttacher), "--v=2",
			},
			Health: component.HTTP{URL: "http://" + loopback(c.Ports.CSIAttacher) + "/metrics"},
		},
	}
}

// NodeComponents lists the components of node n: the podlet (the node's kubelet), the
// CNI agent, kube-proxy and the CSI node plugin, all in the node's namespace and talking
// to the apiserver and the cloud through the router (they share the host's mount
// namespace, so the node plugin's mounts are the podlet's).
func NodeComponents(c Config, f *Files, n plan.Node) []component.Spec {
	p := c.Plan
	dir := state.Dir(p.StateDir)
	ip := n.IP.String()
	conflist := filepath.Join(n.CNIConfDir(), "10-stratus.conflist")
	return []component.Spec{
		{
			Name: n.Name + "/" + Podlet, Node: n.Name, Netns: n.Netns, Binary: c.Stratus, AfterServing: []string{APIServer},
			Args: []string{
				"podlet", "--node-name=" + n.Name, "--node-ip=" + ip, "--kubeconfig=" + f.Kubeconfig,
				"--cni-conf-dir=" + n.CNIConfDir(), "--cni-bin-dir=" + dir.CNIBinDir(), "--cni-cache-dir=" + n.CNICacheDir(),
				"--pods-dir=" + n.PodsDir(), "--netns-prefix=" + p.NetnsPrefix,
				"--healthz-address=" + net.JoinHostPort(ip, strconv.Itoa(PodletHealthPort)),
				"--csi-driver=" + CSIDriverName, "--csi-socket=" + n.CSISocket(), "--kubelet-dir=" + n.KubeletDir(),
			},
			Health: component.HTTP{URL: "http://" + net.JoinHostPort(ip, strconv.Itoa(PodletHealthPort)) + "/healthz"},
		},
		{
			Name: n.Name + "/" + CNIAgent, Node: n.Name, Netns: n.Netns, Binary: c.Bins.Stratus["stratus-cni-agent"], AfterServing: []string{APIServer},
			Args: []string{
				"--kubeconfig=" + f.Kubeconfig, "--node-name=" + n.Name,
				"--cni-conf-dir=" + n.CNIConfDir(), "--data-dir=" + n.CNIDataDir(),
				"--non-masquerade-cidrs=" + strings.Join([]string{p.ClusterCIDR.String(), p.VPCCIDR.String()}, ","),
			},
			// Healthy once it wrote the conflist, which needs the podCIDR node IPAM gives.
			Health: component.File{Path: conflist},
		},
		{
			Name: n.Name + "/" + KubeProxy, Node: n.Name, Netns: n.Netns, Binary: c.Bins.Kube(KubeProxy), AfterServing: []string{APIServer},
			Args: []string{
				"--kubeconfig=" + f.Kubeconfig, "--proxy-mode=iptables", "--hostname-override=" + n.Name,
				"--nodeport-addresses=" + ip + "/32", "--cluster-cidr=" + p.ClusterCIDR.String(),
				"--healthz-bind-address=" + net.JoinHostPort(ip, strconv.Itoa(KubeProxyHealthPort)),
				"--metrics-bind-address=127.0.0.1:10249",
				// conntrack limits and timeouts are partly host-wide sysctls: leave them alone.
				"--conntrack-max-per-core=0", "--conntrack-tcp-timeout-established=0", "--conntrack-tcp-timeout-close-wait=0",
				"--v=2",
			},
			Health: component.HTTP{URL: "http://" + net.JoinHostPort(ip, strconv.Itoa(KubeProxyHealthPort)) + "/healthz"},
		},
		{
			// The CSI driver's node service on the node's own device tree; the podlet
			// stages and publishes through its socket as the kubelet would.
			Name: n.Name + "/" + CSINode, Node: n.Name, Netns: n.Netns, Binary: c.Bins.Stratus["stratus-csi-driver"], After: []string{Fakecloud},
			Args: []string{
				"--mode=node", "--endpoint=unix://" + n.CSISocket(), "--cloud-config=" + f.CloudConfig,
				"--node-id=" + n.InstanceID, "--dev-root=" + c.DiskDevRoot(n.InstanceID), "--loop-image-dir=" + c.DiskImageDir(),
				"--http-endpoint=" + net.JoinHostPort(ip, strconv.Itoa(CSINodeHealthPort)), "--v=2",
			},
			Health: component.HTTP{URL: "http://" + net.JoinHostPort(ip, strconv.Itoa(CSINodeHealthPort)) + "/healthz"},
		},
	}
}

// All is the control plane followed by every node's components.
func All(c Config, f *Files) []component.Spec {
	specs := ControlPlane(c, f)
	for _, n := range c.Plan.Nodes {
		specs = append(specs, NodeComponents(c, f, n)...)
	}
	return specs
}
