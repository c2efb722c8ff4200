package qcloud

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stratus-cloud/stratus/cloudapi"
)

const secretKey = "super-secret-key-0123456789"

func credsFile(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "credentials.yaml")
	require.NoError(t, os.WriteFile(p, []byte("secretId: AKIDtest\nsecretKey: "+secretKey+"\n"), 0o600))
	return p
}

func load(t *testing.T, yaml string) (*Config, error) {
	t.Helper()
	return LoadConfig(strings.NewReader(yaml))
}

func TestLoadConfigFull(t *testing.T) {
	cfg, err := load(t, fmt.Sprintf(`
region: ap-guangzhou
vpcId: vpc-stratus1
clusterId: cls-e2e
endpoint: http://127.0.0.1:8090
credentialsFile: %s
routeTableId: rtb-stratus1
loadBalancer:
  defaultMode: vip
  internalSubnetId: subnet-gz1
  internetChargeType: TRAFFIC_POSTPAID_BY_HOUR
  internetMaxBandwidthOut: 10
instances:
  batching: false
  cacheTTL: 3s
  metadataMaxAge: 1m
  batchWindow: 20ms
routes:
  batching: false
  batchWindow: 80ms
api:
  rateLimit: 50
`, credsFile(t)))
	require.NoError(t, err)
	assert.Equal(t, "ap-guangzhou", cfg.Region)
	assert.Equal(t, "vpc-stratus1", cfg.VpcID)
	assert.Equal(t, "cls-e2e", cfg.ClusterID)
	assert.Equal(t, "rtb-stratus1", cfg.RouteTableID)
	assert.Equal(t, ModeVIP, cfg.LoadBalancer.DefaultMode)
	assert.Equal(t, int64(10), *cfg.LoadBalancer.InternetMaxBandwidthOut)
	assert.False(t, cfg.Batching())
	assert.Equal(t, 3*time.Second, cfg.CacheTTL())
	assert.Equal(t, 20*time.Millisecond, cfg.BatchWindow())
	assert.Equal(t, time.Minute, cfg.MetadataMaxAge())
	assert.Equal(t, 50.0, cfg.RateLimit())
	assert.False(t, cfg.RoutesBatching())
	assert.Equal(t, 80*time.Millisecond, cfg.RoutesBatchWindow())
	assert.Equal(t, cloudapi.Credentials{SecretID: "AKIDtest", SecretKey: secretKey}, cfg.Credentials())
}

func TestLoadConfigDefaultsAndEnvCredentials(t *testing.T) {
	t.Setenv(cloudapi.EnvSecretID, "AKIDenv")
	t.Setenv(cloudapi.EnvSecretKey, secretKey)
	cfg, err := load(t, "region: ap-guangzhou\nvpcId: vpc-1\nclusterId: c1\n")
	require.NoError(t, err)
	assert.True(t, cfg.Batching())
	assert.True(t, cfg.RoutesBatching())
	assert.Zero(t, cfg.RoutesBatchWindow())
	assert.Equal(t, DefaultCacheTTL, cfg.CacheTTL())
	assert.Equal(t, DefaultBatchWindow, cfg.BatchWindow())
	assert.Equal(t, DefaultMetadataMaxAge, cfg.MetadataMaxAge())
	assert.Equal(t, 0.0, cfg.RateLimit())
	assert.Equal(t, "AKIDenv", cfg.Credentials().SecretID)
}

func TestLoadConfigErrorsNameTheKey(t *testing.T) {
	t.Setenv(cloudapi.EnvSecretID, "AKIDenv")
	t.Setenv(cloudapi.EnvSecretKey, secretKey)
	base := "region: ap-guangzhou\nvpcId: vpc-1\nclusterId: c1\n"
	for name, tc := range map[string]struct{ yaml, want string }{
		"unknown key":            {base + "vpcID: vpc-2\n", `unknown field "vpcID"`},
		"unknown nested key":     {base + "instances: {batchng: false}\n", `unknown field "instances.batchng"`},
		"missing region":         {"vpcId: vpc-1\nclusterId: c1\n", "region: Required value"},
		"bad region":             {"region: Guangzhou\nvpcId: vpc-1\nclusterId: c1\n", `region: Invalid value: "Guangzhou"`},
		"missing vpc":            {"region: ap-guangzhou\nclusterId: c1\n", "vpcId: Required value"},
		"bad vpc":                {"region: ap-guangzhou\nvpcId: subnet-1\nclusterId: c1\n", `vpcId: Invalid value: "subnet-1"`},
		"missing cluster":        {"region: ap-guangzhou\nvpcId: vpc-1\n", "clusterId: Required value"},
		"bad cluster":            {base[:len(base)-3] + "-bad-\n", `clusterId: Invalid value`},
		"bad endpoint":           {base + "endpoint: 127.0.0.1:8090\n", `endpoint: Invalid value: "127.0.0.1:8090"`},
		"bad route table":        {base + "routeTableId: rt-1\n", `routeTableId: Invalid value: "rt-1"`},
		"bad lb mode":            {base + "loadBalancer: {defaultMode: l7}\n", `loadBalancer.defaultMode: Unsupported value: "l7"`},
		"bad lb subnet":          {base + "loadBalancer: {internalSubnetId: vpc-1}\n", `loadBalancer.internalSubnetId: Invalid value`},
		"negative bandwidth":     {base + "loadBalancer: {internetMaxBandwidthOut: -1}\n", `loadBalancer.internetMaxBandwidthOut: Invalid value: -1`},
		"bad ttl":                {base + "instances: {cacheTTL: 10}\n", "cacheTTL"},
		"zero ttl":               {base + "instances: {cacheTTL: 0s}\n", "instances.cacheTTL: Invalid value"},
		"max age below ttl":      {base + "instances: {cacheTTL: 30s, metadataMaxAge: 10s}\n", "instances.metadataMaxAge: Invalid value: \"10s\": must be at least cacheTTL (30s)"},
		"huge window":            {base + "instances: {batchWindow: 1m}\n", "instances.batchWindow: Invalid value"},
		"zero rate":              {base + "api: {rateLimit: 0}\n", "api.rateLimit: Invalid value"},
		"huge routes window":     {base + "routes: {batchWindow: 2s}\n", "routes.batchWindow: Invalid value"},
		"wrong type":             {base + "instances: {batching: maybe}\n", "batching"},
		"missing credentials fl": {base + "credentialsFile: /nonexistent/creds.yaml\n", "credentialsFile"},
		"not yaml":               {"region: [", "cloud-config: not YAML"},
		"duplicate key":          {base + "region: ap-shanghai\n", `"region" already set`},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := load(t, tc.yaml)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
			assert.True(t, strings.HasPrefix(err.Error(), "cloud-config: "), err.Error())
		})
	}
}

func TestLoadConfigReportsEveryBadKeyAtOnce(t *testing.T) {
	_, err := load(t, "region: X\nvpcId: v\nclusterId: c1\nrouteTableId: r\n")
	require.Error(t, err)
	for _, key := range []string{"region", "vpcId", "routeTableId"} {
		assert.Contains(t, err.Error(), key+": Invalid value")
	}
}

func TestLoadConfigWithoutCredentials(t *testing.T) {
	t.Setenv(cloudapi.EnvSecretID, "")
	t.Setenv(cloudapi.EnvSecretKey, "")
	_, err := load(t, "region: ap-guangzhou\nvpcId: vpc-1\nclusterId: c1\n")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "credentialsFile: not set")
	assert.Contains(t, err.Error(), cloudapi.EnvSecretID)

	t.Setenv(cloudapi.EnvSecretID, "AKIDonly")
	_, err = load(t, "region: ap-guangzhou\nvpcId: vpc-1\nclusterId: c1\n")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "secretKey is empty")
}

func TestLoadConfigNilReader(t *testing.T) {
	_, err := LoadConfig(nil)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "--cloud-config")
}

func TestConfigNeverPrintsTheKey(t *testing.T) {
	cfg, err := load(t, fmt.Sprintf("region: ap-guangzhou\nvpcId: vpc-1\nclusterId: c1\ncredentialsFile: %s\n", credsFile(t)))
	require.NoError(t, err)
	for _, verb := range []string{"%v", "%+v", "%#v", "%s"} {
		assert.NotContains(t, fmt.Sprintf(verb, cfg), secretKey, verb)
		assert.NotContains(t, fmt.Sprintf(verb, *cfg), secretKey, verb)
	}
	assert.Contains(t, fmt.Sprint(cfg), "AKIDte", "the id prefix says which key is used")

	// A malformed credentials file must not echo its content in the error either.
	p := filepath.Join(t.TempDir(), "bad.yaml")
	require.NoError(t, os.WriteFile(p, []byte("secretId: AKIDx\nsecretKey: "+secretKey+"\nextra: 1\n"), 0o600))
	_, err = load(t, fmt.Sprintf("region: ap-guangzhou\nvpcId: vpc-1\nclusterId: c1\ncredentialsFile: %s\n", p))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "credentialsFile")
	assert.NotContains(t, err.Error(), secretKey)
}
