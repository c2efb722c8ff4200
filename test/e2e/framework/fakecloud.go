package framework

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/stratus-cloud/stratus/cloudapi"
	"github.com/stratus-cloud/stratus/cloudapi/cvm"
	"github.com/stratus-cloud/stratus/fakecloud"
)

// FakecloudStartTimeout bounds how long StartFakecloud waits for the admin endpoint.
const FakecloudStartTimeout = time.Minute

// Fakecloud is a `fakecloud serve` process on a loopback port.
type Fakecloud struct {
	// URL is the API endpoint (also the base of the admin endpoint).
	URL string
	// Region is the seed's region.
	Region string
	// DataDir holds the state; SeedPath is the seed it was started with.
	DataDir, SeedPath string
	// Admin drives faults, call counts and state dumps.
	Admin *fakecloud.AdminClient
	// Credentials are the default key pair the example seed declares.
	Credentials cloudapi.Credentials
	Process     *Process
}

// FakecloudOption changes how StartFakecloud runs fakecloud.
type FakecloudOption func(*fakecloudConfig)

type fakecloudConfig struct {
	seed string
	args []string
}

// WithSeed starts from seed (a path) instead of examples/fakecloud/seed.yaml.
func WithSeed(path string) FakecloudOption { return func(c *fakecloudConfig) { c.seed = path } }

// WithFakecloudArgs appends flags to `fakecloud serve`.
func WithFakecloudArgs(args ...string) FakecloudOption {
	return func(c *fakecloudConfig) { c.args = append(c.args, args...) }
}

// StartFakecloud builds cmd/fakecloud, serves the example seed (or WithSeed's) from a fresh
// data directory on a free loopback port, and waits until its admin endpoint answers.
// t.Cleanup stops it.
func StartFakecloud(t testing.TB, opts ...FakecloudOption) *Fakecloud {
	t.Helper()
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	cfg := fakecloudConfig{seed: filepath.Join(root, "examples", "fakecloud", "seed.yaml")}
	for _, o := range opts {
		o(&cfg)
	}
	seed, err := fakecloud.LoadSeed(cfg.seed)
	if err != nil {
		t.Fatalf("start fakecloud: %v", err)
	}
	creds := cloudapi.Credentials{SecretID: fakecloud.DefaultSecretID, SecretKey: fakecloud.DefaultSecretKey}
	if len(seed.Credentials) > 0 {
		creds = cloudapi.Credentials{SecretID: seed.Credentials[0].SecretID, SecretKey: seed.Credentials[0].SecretKey}
	}
	region := seed.Region
	if region == "" {
		region = fakecloud.DefaultRegion
	}

	bin := BuildBinary(t, "./cmd/fakecloud")
	dataDir := t.TempDir()
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(FreePort(t)))
	args := append([]string{"serve", "--listen=" + addr, "--data-dir=" + dataDir, "--seed=" + cfg.seed}, cfg.args...)
	p := StartProcess(t, "fakecloud", bin, args...)
	f := &Fakecloud{
		URL: "http://" + addr, Region: region, DataDir: dataDir, SeedPath: cfg.seed,
		Admin: &fakecloud.AdminClient{BaseURL: "http://" + addr}, Credentials: creds, Process: p,
	}
	if err := WaitFor(context.Background(), FakecloudStartTimeout, PollInterval, "fakecloud at "+f.URL+" to answer",
		func(ctx context.Context) error {
			_, err := f.Admin.Calls(ctx)
			return whileRunning(p, err)
		},
	); err != nil {
		t.Fatalf("start fakecloud: %v (log %s)", err, p.LogPath)
	}
	return f
}

// Client returns a cloud API client for the test to act as the cloud's user (stop an
// instance, create one). It has no client-side rate limit.
func (f *Fakecloud) Client(t testing.TB) *cloudapi.Client {
	t.Helper()
	c, err := cloudapi.New(cloudapi.Config{Endpoint: f.URL, Region: f.Region, Credentials: f.Credentials, RateLimit: -1})
	if err != nil {
		t.Fatalf("fakecloud client: %v", err)
	}
	return c
}

// CVM returns a typed CVM client on Client.
func (f *Fakecloud) CVM(t testing.TB) *cvm.Client { return cvm.New(f.Client(t)) }

// WriteCredentials writes the key pair as a credentials file (YAML secretId/secretKey,
// mode 0600) into dir and returns its path.
func (f *Fakecloud) WriteCredentials(t testing.TB, dir string) string {
	t.Helper()
	path := filepath.Join(dir, "credentials.yaml")
	content := fmt.Sprintf("secretId: %s\nsecretKey: %s\n", f.Credentials.SecretID, f.Credentials.SecretKey)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatalf("write credentials: %v", err)
	}
	return path
}

// DescribeInstancesCalls returns how many DescribeInstances calls fakecloud has answered.
func (f *Fakecloud) DescribeInstancesCalls(ctx context.Context) (int, error) {
	calls, err := f.Admin.Calls(ctx)
	if err != nil {
		return 0, err
	}
	return calls["DescribeInstances"], nil
}
