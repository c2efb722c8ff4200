package framework

import (
	"testing"
)

// StartKubeControllerManager runs kube-controller-manager against api with only the given
// controllers (for example "persistentvolume-binder-controller", which binds claims and
// asks an external provisioner for volumes), no leader election and no serving port.
// t.Cleanup stops it.
func StartKubeControllerManager(t testing.TB, api *APIServer, controllers string, args ...string) *Process {
	t.Helper()
	bin := KubeBinary(t, "kube-controller-manager")
	all := append([]string{
		"--kubeconfig=" + api.KubeconfigPath,
		"--authentication-kubeconfig=" + api.KubeconfigPath,
		"--authorization-kubeconfig=" + api.KubeconfigPath,
		"--controllers=" + controllers,
		"--leader-elect=false",
		"--secure-port=0",
		"--use-service-account-credentials=false",
		"--service-account-private-key-file=" + api.ServiceAccountKeyPath,
		"--v=2",
	}, args...)
	return StartProcess(t, "kube-controller-manager", bin, all...)
}
