package framework

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"testing"
	"time"
)

// EtcdBinEnv overrides which etcd binary StartEtcd runs; by default it is Debian's
// (package etcd-server) at /usr/bin/etcd, else the first etcd on PATH.
const EtcdBinEnv = "STRATUS_ETCD_BIN"

// EtcdStartTimeout bounds how long StartEtcd waits for etcd to report healthy.
const EtcdStartTimeout = 30 * time.Second

// Etcd is a single-member etcd serving plain HTTP on loopback.
type Etcd struct {
	// ClientURL is what kube-apiserver's --etcd-servers takes.
	ClientURL string
	DataDir   string
	Process   *Process
}

// StartEtcd starts a throwaway etcd with its data in a temporary directory, on free
// loopback ports, and waits until it is healthy. t.Cleanup stops it.
func StartEtcd(t testing.TB) *Etcd {
	t.Helper()
	bin := etcdBinary(t)
	dataDir := etcdDataDir(t)
	ports := FreePorts(t, 2)
	clientURL := fmt.Sprintf("http://127.0.0.1:%d", ports[0])
	peerURL := fmt.Sprintf("http://127.0.0.1:%d", ports[1])
	p := StartProcess(t, "etcd", bin,
		"--name=e2e",
		"--data-dir="+dataDir,
		"--listen-client-urls="+clientURL,
		"--advertise-client-urls="+clientURL,
		"--listen-peer-urls="+peerURL,
		"--initial-advertise-peer-urls="+peerURL,
		"--initial-cluster=e2e="+peerURL,
		"--initial-cluster-state=new",
		"--logger=zap",
		"--log-outputs=stderr",
	)
	e := &Etcd{ClientURL: clientURL, DataDir: dataDir, Process: p}
	if err := WaitFor(context.Background(), EtcdStartTimeout, PollInterval, "etcd at "+clientURL+" to be healthy",
		func(ctx context.Context) error { return whileRunning(p, etcdHealthy(ctx, clientURL)) },
	); err != nil {
		t.Fatalf("start etcd: %v (log %s)", err, p.LogPath)
	}
	return e
}

// etcdDataDir prefers tmpfs: a test cluster is thrown away, and etcd's fsync per write
// (Debian's etcd 3.4 has no --unsafe-no-fsync) would otherwise slow every API call.
func etcdDataDir(t testing.TB) string {
	t.Helper()
	if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
		if dir, err := os.MkdirTemp("/dev/shm", "stratus-e2e-etcd-"); err == nil {
			t.Cleanup(func() { _ = os.RemoveAll(dir) })
			return dir
		}
	}
	return t.TempDir()
}

func etcdBinary(t testing.TB) string {
	t.Helper()
	if bin := os.Getenv(EtcdBinEnv); bin != "" {
		return bin
	}
	const debian = "/usr/bin/etcd"
	if _, err := os.Stat(debian); err == nil {
		return debian
	}
	bin, err := exec.LookPath("etcd")
	if err != nil {
		t.Fatalf("no etcd binary: install Debian's etcd-server (apt-get install -y etcd-server) or set %s", EtcdBinEnv)
	}
	return bin
}

func etcdHealthy(ctx context.Context, clientURL string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, clientURL+"/health", nil)
	if err != nil {
		return err
	}
	resp, err := directClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var health struct {
		Health string `json:"health"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&health); err != nil {
		return fmt.Errorf("GET /health: status %s: %w", resp.Status, err)
	}
	if health.Health != "true" {
		return fmt.Errorf("GET /health: status %s, health %q", resp.Status, health.Health)
	}
	return nil
}

// whileRunning turns a readiness error into a Permanent one when the process has already
// exited, so the caller sees "exited" at once instead of a timeout's worth of "connection
// refused".
func whileRunning(p *Process, err error) error {
	if exited, exitErr := p.Exited(); exited {
		return Permanent(fmt.Errorf("%s exited (%v) before it was ready; log tail:\n%s", p.Name, exitErr, p.LogTail(logTailLines)))
	}
	return err
}
