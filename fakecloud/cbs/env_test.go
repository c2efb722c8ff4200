package cbs_test

import (
	"context"
	"net/http/httptest"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stratus-cloud/stratus/cloudapi"
	cbsapi "github.com/stratus-cloud/stratus/cloudapi/cbs"
	cvmapi "github.com/stratus-cloud/stratus/cloudapi/cvm"
	"github.com/stratus-cloud/stratus/fakecloud"
	"github.com/stratus-cloud/stratus/fakecloud/api"
	"github.com/stratus-cloud/stratus/fakecloud/cbs"
	"github.com/stratus-cloud/stratus/fakecloud/cbs/dataplane"
	"github.com/stratus-cloud/stratus/fakecloud/cvm"
	"github.com/stratus-cloud/stratus/fakecloud/fakecloudtest"
	"github.com/stratus-cloud/stratus/fakecloud/vpc"
)

// The example seed's instances: two in zone 1, one each in zones 2 and 3.
const (
	zone1, zone2 = "ap-guangzhou-1", "ap-guangzhou-2"
	ins1, ins2   = "ins-node0001", "ins-node0002" // zone 1
	ins3         = "ins-node0003"                 // zone 2
)

// clock is a settable fake clock shared by fakecloud and the client's signer.
type clock = fakecloudtest.Clock

func newClock() *clock { return fakecloudtest.NewClock() }

type envOpts struct {
	seed      *api.Seed
	delays    *cbs.Delays
	limits    map[string]int
	dataDir   string
	dataPlane *dataplane.Options
	clock     *clock
}

type env struct {
	t     testing.TB
	cloud *fakecloud.Cloud
	mod   *cbs.Module
	cbs   *cbsapi.Client
	cvm   *cvmapi.Client
	raw   *cloudapi.Client
	clock *clock
	ctx   context.Context
}

func exampleSeed(t testing.TB) *api.Seed {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	s, err := fakecloud.LoadSeed(filepath.Join(filepath.Dir(file), "..", "..", "examples", "fakecloud", "seed.yaml"))
	require.NoError(t, err)
	return s
}

// seedInstances and seedVPCs are the seed's sections, shared with it (changes stick).
func seedInstances(t testing.TB, s *api.Seed) []cvm.SeedInstance {
	t.Helper()
	v, err := cvm.SeedInstances(s)
	require.NoError(t, err)
	return v
}

func seedVPCs(t testing.TB, s *api.Seed) []vpc.SeedVPC {
	t.Helper()
	v, err := vpc.SeedVPCs(s)
	require.NoError(t, err)
	return v
}

func newEnv(t testing.TB, o envOpts) *env {
	t.Helper()
	return newEnvWith(t, o, cbs.Options{})
}

// newEnvWith builds the env with module options (o.dataPlane overrides opts.DataPlane).
func newEnvWith(t testing.TB, o envOpts, opts cbs.Options) *env {
	t.Helper()
	if o.dataPlane != nil {
		opts.DataPlane = o.dataPlane
	}
	if o.clock == nil {
		o.clock = newClock()
	}
	if o.seed == nil {
		o.seed = exampleSeed(t)
	}
	if o.limits != nil {
		o.seed.Limits = o.limits
	}
	if o.delays != nil {
		opts.Delays = *o.delays
	}
	e := &env{t: t, clock: o.clock, ctx: context.Background()}
	c, err := fakecloud.New(fakecloud.Config{
		Seed: o.seed, DataDir: o.dataDir, Clock: o.clock.Now, RateLimit: -1,
		Modules: []api.NewModule{vpc.New, cvm.New, func(w *api.World) (api.Module, error) {
			m, err := cbs.NewWithOptions(w, opts)
			e.mod = m
			return m, err
		}},
	})
	require.NoError(t, err) // fakecloud.New starts the data plane
	srv := httptest.NewServer(c)
	t.Cleanup(func() { srv.Close(); _ = c.Close() })
	id, key := c.Credentials()
	cl, err := cloudapi.New(cloudapi.Config{
		Endpoint:    srv.URL,
		Region:      c.Region(),
		Credentials: cloudapi.Credentials{SecretID: id, SecretKey: key},
		RateLimit:   -1,
		MaxAttempts: 1,
		Now:         o.clock.Now,
	})
	require.NoError(t, err)
	e.cloud, e.cbs, e.cvm, e.raw = c, cbsapi.New(cl), cvmapi.New(cl), cl
	return e
}

// invoke sends a hand-built body, for what the typed client cannot express.
func (e *env) invoke(action string, in any) error {
	return e.raw.Invoke(e.ctx, cloudapi.Operation{Service: cbsapi.Service, Version: cbsapi.Version, Action: action}, in, nil)
}

// close shuts the cloud down early (to restart on the same data dir).
func (e *env) close() { require.NoError(e.t, e.cloud.Close()) }

func (e *env) createDisks(in *cbsapi.CreateDisksRequest) []string {
	e.t.Helper()
	out, err := e.cbs.CreateDisks(e.ctx, in)
	require.NoError(e.t, err)
	return out.DiskIdSet
}

// disk creates one disk in zone of type CLOUD_PREMIUM and size GiB.
func (e *env) disk(zone string, size int64, shareable bool) string {
	e.t.Helper()
	ids := e.createDisks(&cbsapi.CreateDisksRequest{
		DiskType: cbsapi.DiskTypePremium, Placement: &cbsapi.Placement{Zone: zone},
		DiskSize: cloudapi.Int64(size), Shareable: cloudapi.Bool(shareable),
	})
	require.Len(e.t, ids, 1)
	return ids[0]
}

func (e *env) get(id string) *cbsapi.Disk {
	e.t.Helper()
	d, err := e.cbs.GetDisk(e.ctx, id)
	require.NoError(e.t, err)
	return d
}

func (e *env) attach(instanceID string, diskIDs ...string) error {
	_, err := e.cbs.AttachDisks(e.ctx, &cbsapi.AttachDisksRequest{DiskIds: diskIDs, InstanceId: instanceID})
	return err
}

func (e *env) detach(instanceID string, diskIDs ...string) error {
	_, err := e.cbs.DetachDisks(e.ctx, &cbsapi.DetachDisksRequest{DiskIds: diskIDs, InstanceId: instanceID})
	return err
}

func (e *env) describe(in *cbsapi.DescribeDisksRequest) *cbsapi.DescribeDisksResponse {
	e.t.Helper()
	out, err := e.cbs.DescribeDisks(e.ctx, in)
	require.NoError(e.t, err)
	return out
}

func (e *env) allDisks() []cbsapi.Disk {
	return e.describe(&cbsapi.DescribeDisksRequest{Limit: cloudapi.Int64(100)}).DiskSet
}

func requireCode(t *testing.T, err error, code string) {
	t.Helper()
	require.Error(t, err, "expected %s", code)
	assert.Equal(t, code, cloudapi.ErrorCode(err), "error: %v", err)
}
