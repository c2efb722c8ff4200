package vpc_test

import (
	"context"
	"net/http/httptest"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/stratus-cloud/stratus/cloudapi"
	vpcapi "github.com/stratus-cloud/stratus/cloudapi/vpc"
	"github.com/stratus-cloud/stratus/fakecloud"
	"github.com/stratus-cloud/stratus/fakecloud/api"
)

type env struct {
	cloud *fakecloud.Cloud
	srv   *httptest.Server
	vpc   *vpcapi.Client
	raw   *cloudapi.Client
}

func seedFile(t *testing.T) *api.Seed {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	s, err := fakecloud.LoadSeed(filepath.Join(filepath.Dir(file), "..", "..", "examples", "fakecloud", "seed.yaml"))
	require.NoError(t, err)
	return s
}

func newEnv(t *testing.T, seed *api.Seed, dataDir string) *env {
	t.Helper()
	if seed == nil {
		seed = seedFile(t)
	}
	c, err := fakecloud.New(fakecloud.Config{Seed: seed, DataDir: dataDir, RateLimit: -1})
	require.NoError(t, err)
	srv := httptest.NewServer(c)
	t.Cleanup(func() { srv.Close(); _ = c.Close() })
	id, key := c.Credentials()
	cl, err := cloudapi.New(cloudapi.Config{Endpoint: srv.URL, Region: c.Region(), Credentials: cloudapi.Credentials{SecretID: id, SecretKey: key}, RateLimit: -1, MaxAttempts: 1})
	require.NoError(t, err)
	return &env{cloud: c, srv: srv, vpc: vpcapi.New(cl), raw: cl}
}

func code(err error) string { return cloudapi.ErrorCode(err) }

func (e *env) table(t *testing.T, id string) vpcapi.RouteTable {
	t.Helper()
	out, err := e.vpc.DescribeRouteTables(context.Background(), &vpcapi.DescribeRouteTablesRequest{RouteTableIds: []string{id}})
	require.NoError(t, err)
	require.Len(t, out.RouteTableSet, 1)
	return out.RouteTableSet[0]
}
