package framework

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"testing"
	"time"
)

// KubeProxyStartTimeout bounds how long StartKubeProxy waits for the first sync of rules.
const KubeProxyStartTimeout = 2 * time.Minute

// kubeProxyHealthzPort is fixed: each kube-proxy runs in a namespace of its own.
const kubeProxyHealthzPort = 10256

// StartKubeProxy runs kube-proxy in iptables mode inside ns as the proxy of Node nodeName,
// and waits until it reports healthy, which it does only after programming its first set
// of rules. The apiserver must be reachable from the namespace: start it with
// WithBindAddress(ns.HostIP). Its iptables rules live and die with the namespace; the
// host's tables are never touched.
func StartKubeProxy(t testing.TB, api *APIServer, ns *Netns, nodeName string, extraArgs ...string) *Process {
	t.Helper()
	if u, err := url.Parse(api.URL); err != nil || net.ParseIP(u.Hostname()).IsLoopback() {
		t.Fatalf("start kube-proxy in %s: apiserver %s is not reachable from a network namespace; start it WithBindAddress(%q)", ns.Name, api.URL, ns.HostIP)
	}
	healthz := net.JoinHostPort(ns.IP, fmt.Sprint(kubeProxyHealthzPort))
	args := []string{
		"--kubeconfig=" + api.KubeconfigPath,
		"--proxy-mode=iptables",
		"--hostname-override=" + nodeName,
		"--nodeport-addresses=" + ns.IP + "/32",
		"--healthz-bind-address=" + healthz,
		"--metrics-bind-address=127.0.0.1:10249",
		// conntrack limits and timeouts are partly host-wide sysctls: leave them alone.
		"--conntrack-max-per-core=0",
		"--conntrack-tcp-timeout-established=0",
		"--conntrack-tcp-timeout-close-wait=0",
		"--v=2",
	}
	p := ns.StartProcess(t, "kube-proxy-"+nodeName, KubeBinary(t, "kube-proxy"), append(args, extraArgs...)...)
	err := WaitFor(context.Background(), KubeProxyStartTimeout, PollInterval, "kube-proxy for "+nodeName+" to be healthy",
		func(ctx context.Context) error { return whileRunning(p, httpOK(ctx, "http://"+healthz+"/healthz")) },
	)
	if err != nil {
		t.Fatalf("start kube-proxy in %s: %v (log %s)", ns.Name, err, p.LogPath)
	}
	return p
}

// directClient never uses an HTTP proxy from the environment: everything the harness
// polls is on loopback or in a namespace the test created.
var directClient = &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{Proxy: nil}}

func httpOK(ctx context.Context, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := directClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return nil
}
