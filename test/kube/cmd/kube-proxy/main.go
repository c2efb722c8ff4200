// Command kube-proxy is the upstream Kubernetes service proxy, built from
// k8s.io/kubernetes at the version pinned in test/kube/go.mod so e2e tests can
// program real iptables rules inside node network namespaces. It adds nothing
// of its own.
package main

import (
	"os"

	"k8s.io/component-base/cli"
	"k8s.io/kubernetes/cmd/kube-proxy/app"
)

func main() {
	os.Exit(cli.Run(app.NewProxyCommand()))
}
