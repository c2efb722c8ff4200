package framework

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// CCMStartTimeout bounds how long StartCCM waits for /healthz when the CCM serves.
const CCMStartTimeout = 2 * time.Minute

// CCM is a stratus-cloud-controller-manager process.
type CCM struct {
	Name            string
	CloudConfigPath string
	// URL is https://127.0.0.1:<port> when started WithServing, else "".
	URL     string
	Process *Process

	token string
}

// CCMOption changes how StartCCM runs the CCM.
type CCMOption func(*ccmConfig)

type ccmConfig struct {
	name        string
	leaderElect bool
	serve       bool
	controllers string
	args        []string
}

// WithCCMName names the process (and its log file); the default is "ccm".
func WithCCMName(name string) CCMOption { return func(c *ccmConfig) { c.name = name } }

// WithLeaderElection runs with --leader-elect=true on the Lease kube-system/
// cloud-controller-manager, with short durations (lease 4s, renew 3s, retry 1s) so that a
// takeover happens within seconds.
func WithLeaderElection() CCMOption { return func(c *ccmConfig) { c.leaderElect = true } }

// WithServing serves /healthz and /metrics on a free loopback port (HTTPS, self-signed,
// delegated authn/authz) instead of --secure-port=0, and makes StartCCM wait for /healthz.
func WithServing() CCMOption { return func(c *ccmConfig) { c.serve = true } }

// WithControllers replaces --controllers (default cloud-node,cloud-node-lifecycle).
func WithControllers(list string) CCMOption { return func(c *ccmConfig) { c.controllers = list } }

// WithCCMArgs appends flags; a flag given twice takes the later value.
func WithCCMArgs(args ...string) CCMOption {
	return func(c *ccmConfig) { c.args = append(c.args, args...) }
}

// WriteCloudConfig writes a cloud-config for fc into dir: the example seed's VPC
// (vpc-stratus1) and route table, cluster id "e2e", fc's endpoint and a credentials file.
// extraYAML (top-level keys) is appended as is.
func WriteCloudConfig(t testing.TB, dir string, fc *Fakecloud, extraYAML string) string {
	t.Helper()
	creds := fc.WriteCredentials(t, dir)
	content := fmt.Sprintf("region: %s\nvpcId: vpc-stratus1\nclusterId: e2e\nendpoint: %s\ncredentialsFile: %s\nrouteTableId: rtb-stratus1\n%s",
		fc.Region, fc.URL, creds, extraYAML)
	path := filepath.Join(dir, "cloud-config.yaml")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatalf("write cloud-config: %v", err)
	}
	return path
}

// StartCCM builds and runs cmd/stratus-cloud-controller-manager against api with the flag
// set of DESIGN.md section 4: --cloud-provider=qcloud --cloud-config=cloudConfig
// --leader-elect=false --secure-port=0 --webhook-secure-port=0
// --use-service-account-credentials=false --controllers=cloud-node,cloud-node-lifecycle
// --node-monitor-period=2s and the admin kubeconfig. t.Cleanup stops it.
func StartCCM(t testing.TB, api *APIServer, cloudConfig string, opts ...CCMOption) *CCM {
	t.Helper()
	cfg := ccmConfig{name: "ccm", controllers: "cloud-node,cloud-node-lifecycle"}
	for _, o := range opts {
		o(&cfg)
	}
	bin := BuildBinary(t, "./cmd/stratus-cloud-controller-manager")
	args := []string{
		"--kubeconfig=" + api.KubeconfigPath,
		"--authentication-kubeconfig=" + api.KubeconfigPath,
		"--authorization-kubeconfig=" + api.KubeconfigPath,
		"--cloud-provider=qcloud",
		"--cloud-config=" + cloudConfig,
		"--webhook-secure-port=0",
		"--use-service-account-credentials=false",
		"--controllers=" + cfg.controllers,
		"--node-monitor-period=2s",
		"--v=2",
	}
	if cfg.leaderElect {
		args = append(args,
			"--leader-elect=true",
			"--leader-elect-resource-namespace=kube-system",
			"--leader-elect-resource-name=cloud-controller-manager",
			"--leader-elect-lease-duration=4s",
			"--leader-elect-renew-deadline=3s",
			"--leader-elect-retry-period=1s",
		)
	} else {
		args = append(args, "--leader-elect=false")
	}
	c := &CCM{Name: cfg.name, CloudConfigPath: cloudConfig, token: api.Token}
	if cfg.serve {
		port := FreePort(t)
		c.URL = "https://127.0.0.1:" + strconv.Itoa(port)
		args = append(args, "--secure-port="+strconv.Itoa(port), "--bind-address=127.0.0.1", "--cert-dir="+t.TempDir())
	} else {
		args = append(args, "--secure-port=0")
	}
	args = append(args, cfg.args...)
	c.Process = StartProcess(t, cfg.name, bin, args...)
	if cfg.serve {
		if err := WaitFor(context.Background(), CCMStartTimeout, PollInterval, cfg.name+" /healthz",
			func(ctx context.Context) error {
				code, body, err := c.Get(ctx, "/healthz")
				if err == nil && code != http.StatusOK {
					err = fmt.Errorf("GET /healthz: %d %s", code, body)
				}
				return whileRunning(c.Process, err)
			},
		); err != nil {
			t.Fatalf("start %s: %v", cfg.name, err)
		}
	}
	return c
}

// Get requests path from the CCM's secure port with the admin token, trusting its
// self-signed loopback certificate.
func (c *CCM) Get(ctx context.Context, path string) (int, string, error) {
	if c.URL == "" {
		return 0, "", fmt.Errorf("%s does not serve (start it WithServing)", c.Name)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.URL+path, nil)
	if err != nil {
		return 0, "", err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		// The CCM generates a self-signed certificate for 127.0.0.1 in its --cert-dir.
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS12}, //nolint:gosec // loopback test server
	}}
	defer client.CloseIdleConnections()
	resp, err := client.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// LogContains reports whether the CCM's log has a line containing s.
func (c *CCM) LogContains(s string) bool {
	data, err := os.ReadFile(c.Process.LogPath)
	return err == nil && strings.Contains(string(data), s)
}
