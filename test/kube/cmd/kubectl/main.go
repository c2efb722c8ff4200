// Command kubectl is the upstream Kubernetes command-line client, built from
// k8s.io/kubernetes at the version pinned in test/kube/go.mod so e2e tests can run the
// commands docs/install.md gives an operator (kubectl apply -k ...) against the e2e
// API server. It adds nothing of its own.
package main

import (
	"os"

	"k8s.io/component-base/cli"
	"k8s.io/kubectl/pkg/cmd"
)

func main() {
	os.Exit(cli.Run(cmd.NewDefaultKubectlCommand()))
}
