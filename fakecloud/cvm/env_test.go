package cvm_test

import (
	"net/http/httptest"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/stratus-cloud/stratus/cloudapi"
	cvmapi "github.com/stratus-cloud/stratus/cloudapi/cvm"
	vpcapi "github.com/stratus-cloud/stratus/cloudapi/vpc"
	"github.com/stratus-cloud/stratus/fakecloud"
	"github.com/stratus-cloud/stratus/fakecloud/api"
	"github.com/stratus-cloud/stratus/fakecloud/cvm"
	"github.com/stratus-cloud/stratus/fakecloud/fakecloudtest"
)

// clock is a settable fake clock shared by fakecloud and the client's signer.
type clock = fakecloudtest.Clock

func newClock() *clock { return fakecloudtest.NewClock() }

type env struct {
	cloud *fakecloud.Cloud
	srv   *httptest.Server
	cvm   *cvmapi.Client
	vpc   *vpcapi.Client
	clock *clock
}

type envOpts struct {
	seed    *api.Seed
	delays  *cvm.Delays
	dataDir string
	clock   *clock
}

func seedFile(t *testing.T) *api.Seed {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	s, err := fakecloud.LoadSeed(filepath.Join(filepath.Dir(file), "..", "..", "examples", "fakecloud", "seed.yaml"))
	require.NoError(t, err)
	return s
}

func newEnv(t *testing.T, o envOpts) *env {
	t.Helper()
	if o.clock == nil {
		o.clock = newClock()
	}
	if o.seed == nil {
		o.seed = seedFile(t)
	}
	var delays *fakecloud.Delays
	if o.delays != nil {
		delays = &fakecloud.Delays{CVM: *o.delays}
	}
	c, err := fakecloud.New(fakecloud.Config{Seed: o.seed, Delays: delays, DataDir: o.dataDir, Clock: o.clock.Now, RateLimit: -1})
	require.NoError(t, err)
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
	return &env{cloud: c, srv: srv, cvm: cvmapi.New(cl), vpc: vpcapi.New(cl), clock: o.clock}
}

func newCloud(s *api.Seed) (*fakecloud.Cloud, error) {
	c, err := fakecloud.New(fakecloud.Config{Seed: s})
	if err == nil {
		_ = c.Close()
	}
	return c, err
}
