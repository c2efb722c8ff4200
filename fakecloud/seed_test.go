package fakecloud

import (
	"context"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stratus-cloud/stratus/cloudapi"
	cvmapi "github.com/stratus-cloud/stratus/cloudapi/cvm"
	"github.com/stratus-cloud/stratus/fakecloud/api"
	"github.com/stratus-cloud/stratus/fakecloud/cbs"
	"github.com/stratus-cloud/stratus/fakecloud/clb"
	"github.com/stratus-cloud/stratus/fakecloud/cvm"
	"github.com/stratus-cloud/stratus/fakecloud/fakecloudtest"
	"github.com/stratus-cloud/stratus/fakecloud/vpc"
)

const seedWithDelays = `
region: ap-guangzhou
zones: [ap-guangzhou-1]
vpcs:
  - {vpcId: vpc-seed0001, cidrBlock: 10.0.0.0/16, subnets: [{subnetId: subnet-seed01, cidrBlock: 10.0.1.0/24, zone: ap-guangzhou-1}]}
instanceDelays: {instanceBoot: 30s}
diskDelays: {attach: 2s}
loadBalancerDelays: {task: 1s}
`

func writeSeed(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "seed.yaml")
	require.NoError(t, os.WriteFile(p, []byte(text), 0o600))
	return p
}

// bootState launches one instance and reports its state right after the call.
func bootState(t *testing.T, cfg Config) string {
	t.Helper()
	clk := fakecloudtest.NewClock()
	cfg.Clock, cfg.RateLimit = clk.Now, -1
	c, err := New(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	srvCl := newSignedClient(t, c, clk.Now)
	out, err := cvmapi.New(srvCl).RunInstances(context.Background(), &cvmapi.RunInstancesRequest{
		Placement: &cvmapi.Placement{Zone: "ap-guangzhou-1"}, ImageId: "img-seed0001",
		VirtualPrivateCloud: &cvmapi.VirtualPrivateCloud{VpcId: "vpc-seed0001", SubnetId: "subnet-seed01"},
	})
	require.NoError(t, err)
	desc, err := cvmapi.New(srvCl).DescribeInstances(context.Background(), &cvmapi.DescribeInstancesRequest{InstanceIds: out.InstanceIdSet})
	require.NoError(t, err)
	require.Len(t, desc.InstanceSet, 1)
	return desc.InstanceSet[0].InstanceState
}

func TestSeedDelaysReachTheirServices(t *testing.T) {
	seed, err := LoadSeed(writeSeed(t, seedWithDelays))
	require.NoError(t, err)
	assert.Equal(t, "PENDING", bootState(t, Config{Seed: seed}), "the seed's instanceDelays.instanceBoot applies")

	seed, err = LoadSeed(writeSeed(t, seedWithDelays))
	require.NoError(t, err)
	assert.Equal(t, "RUNNING", bootState(t, Config{Seed: seed, Delays: &Delays{}}), "Config.Delays overrides the seed")
}

func TestSeedSectionsNoServiceReads(t *testing.T) {
	cases := map[string]string{
		"typo in a section name": "region: ap-guangzhou\nzones: [ap-guangzhou-1]\ninstance: []\n",
		"unknown delay":          "region: ap-guangzhou\nzones: [ap-guangzhou-1]\ninstanceDelays: {boot: 1s}\n",
		"bad duration":           "region: ap-guangzhou\nzones: [ap-guangzhou-1]\ndiskDelays: {attach: soon}\n",
	}
	for name, text := range cases {
		t.Run(name, func(t *testing.T) {
			seed, err := LoadSeed(writeSeed(t, text))
			require.NoError(t, err, "sections are checked by the services that own them")
			_, err = New(Config{Seed: seed})
			assert.Error(t, err)
		})
	}
}

func newSignedClient(t *testing.T, c *Cloud, now func() time.Time) *cloudapi.Client {
	t.Helper()
	srv := httptest.NewServer(c)
	t.Cleanup(srv.Close)
	id, key := c.Credentials()
	cl, err := cloudapi.New(cloudapi.Config{Endpoint: srv.URL, Region: c.Region(), Credentials: cloudapi.Credentials{SecretID: id, SecretKey: key}, RateLimit: -1, MaxAttempts: 1, Now: now})
	require.NoError(t, err)
	return cl
}

func TestBadModuleOptionsAreErrors(t *testing.T) {
	cases := map[string]api.NewModule{
		"loopback pool outside 127/8": clb.WithOptions(clb.Options{LoopbackPool: netip.MustParsePrefix("10.0.0.0/8")}),
		"negative clb delay":          clb.WithOptions(clb.Options{Delays: clb.Delays{Task: -time.Second}}),
		"negative cvm delay":          cvm.WithOptions(cvm.Options{Delays: cvm.Delays{InstanceBoot: -time.Second}}),
		"negative cbs delay":          cbs.WithOptions(cbs.Options{Delays: cbs.Delays{Attach: -time.Second}}),
	}
	for name, mod := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := New(Config{Modules: []api.NewModule{vpc.New, cvm.New, mod}})
			assert.ErrorContains(t, err, "build service module")
		})
	}
	_, err := New(Config{DataPlane: &DataPlane{}})
	assert.ErrorContains(t, err, "data dir", "a data plane without a data dir is refused, not a panic")
}
