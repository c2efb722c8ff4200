package framework

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"testing"
	"time"
)

// CSIStartTimeout bounds how long StartCSIDriver waits for the socket to answer.
const CSIStartTimeout = time.Minute

// CSIDriver is a stratus-csi-driver process serving a unix socket.
type CSIDriver struct {
	// Endpoint is unix://<socket>; Socket the path.
	Endpoint, Socket string
	Process          *Process
}

// StartCSIDriver builds and runs cmd/stratus-csi-driver with --cloud-config=cloudConfig
// on a socket in a fresh directory, plus args (--mode, --node-id, ...), and waits until
// the socket accepts connections. t.Cleanup stops it.
func StartCSIDriver(t testing.TB, name, cloudConfig string, args ...string) *CSIDriver {
	t.Helper()
	bin := BuildBinary(t, "./cmd/stratus-csi-driver")
	sock := filepath.Join(t.TempDir(), "csi.sock")
	d := &CSIDriver{Endpoint: "unix://" + sock, Socket: sock}
	all := append([]string{"--endpoint=" + d.Endpoint, "--cloud-config=" + cloudConfig, "--v=4"}, args...)
	d.Process = StartProcess(t, name, bin, all...)
	if err := WaitFor(context.Background(), CSIStartTimeout, PollInterval, name+" socket "+sock, func(ctx context.Context) error {
		c, err := net.DialTimeout("unix", sock, time.Second)
		if err == nil {
			c.Close()
		}
		return whileRunning(d.Process, err)
	}); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	return d
}

// StartCSIProvisioner runs the real external-provisioner sidecar against the driver and
// the apiserver (admin kubeconfig, no leader election), plus args. t.Cleanup stops it.
func StartCSIProvisioner(t testing.TB, api *APIServer, d *CSIDriver, args ...string) *Process {
	t.Helper()
	bin := CSISidecar(t, "csi-provisioner")
	all := append([]string{
		"--csi-address=" + d.Socket,
		"--kubeconfig=" + api.KubeconfigPath,
		"--leader-election=false",
		"--extra-create-metadata",
		"--controller-publish-readonly",
		"--timeout=60s",
		"--retry-interval-start=500ms",
		"--retry-interval-max=5s",
		"--http-endpoint=" + fmt.Sprintf("127.0.0.1:%d", FreePort(t)),
		"--v=4",
	}, args...)
	return StartProcess(t, "csi-provisioner", bin, all...)
}

// StartCSIAttacher runs the real external-attacher sidecar against the driver and the
// apiserver (admin kubeconfig, no leader election), plus args. t.Cleanup stops it.
func StartCSIAttacher(t testing.TB, api *APIServer, d *CSIDriver, args ...string) *Process {
	t.Helper()
	bin := CSISidecar(t, "csi-attacher")
	all := append([]string{
		"--csi-address=" + d.Socket,
		"--kubeconfig=" + api.KubeconfigPath,
		"--leader-election=false",
		"--timeout=60s",
		"--retry-interval-start=500ms",
		"--retry-interval-max=5s",
		"--http-endpoint=" + fmt.Sprintf("127.0.0.1:%d", FreePort(t)),
		"--v=4",
	}, args...)
	return StartProcess(t, "csi-attacher", bin, all...)
}
