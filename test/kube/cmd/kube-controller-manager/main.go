// Command kube-controller-manager is the upstream Kubernetes controller manager,
// built from k8s.io/kubernetes at the version pinned in test/kube/go.mod so the
// local sandbox runs node IPAM, EndpointSlices and garbage collection for real.
// It adds nothing of its own.
package main

import (
	"os"

	"k8s.io/component-base/cli"
	"k8s.io/kubernetes/cmd/kube-controller-manager/app"
)

func main() {
	os.Exit(cli.Run(app.NewControllerManagerCommand()))
}
