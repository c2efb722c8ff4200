// Package compat proves fakecloud is wire-compatible with the official Tencent Cloud SDK
// for Go (github.com/tencentcloud/tencentcloud-sdk-go v1.0.162, a test-only dependency):
// every action Stratus uses is driven through the SDK's own client, signer and decoder,
// with its happy path and at least one error the SDK must surface as a
// *errors.TencentCloudSDKError with the real error code. One file per service.
package compat

import (
	"net/http/httptest"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/common"
	sdkerrors "github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/common/errors"
	"github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/common/profile"

	"github.com/stratus-cloud/stratus/fakecloud"
	"github.com/stratus-cloud/stratus/fakecloud/api"
)

// sdkEnv is a fakecloud on an httptest server plus what an SDK client needs to reach it
// exactly as a user would: HttpProfile.Endpoint = host:port, Scheme HTTP, a credential
// and the cloud's region.
type sdkEnv struct {
	cloud   *fakecloud.Cloud
	cred    *common.Credential
	profile *profile.ClientProfile
	region  string
}

// newSDKEnv starts fakecloud with examples/fakecloud/seed.yaml.
func newSDKEnv(t *testing.T) *sdkEnv {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	seed, err := fakecloud.LoadSeed(filepath.Join(filepath.Dir(file), "..", "..", "examples", "fakecloud", "seed.yaml"))
	require.NoError(t, err)
	return newSDKEnvWithSeed(t, seed)
}

func newSDKEnvWithSeed(t *testing.T, seed *api.Seed) *sdkEnv {
	t.Helper()
	c, err := fakecloud.New(fakecloud.Config{Seed: seed, RateLimit: -1})
	require.NoError(t, err)
	srv := httptest.NewServer(c)
	t.Cleanup(func() { srv.Close(); _ = c.Close() })
	cpf := profile.NewClientProfile()
	cpf.HttpProfile.Endpoint = strings.TrimPrefix(srv.URL, "http://")
	cpf.HttpProfile.Scheme = "HTTP"
	cpf.HttpProfile.ReqTimeout = 10
	cpf.Language = "en-US"
	id, key := c.Credentials()
	return &sdkEnv{cloud: c, cred: common.NewCredential(id, key), profile: cpf, region: c.Region()}
}

// sdkCode asserts err is the SDK's API error type and returns its code.
func sdkCode(t *testing.T, err error) string {
	t.Helper()
	require.Error(t, err)
	var e *sdkerrors.TencentCloudSDKError
	require.ErrorAs(t, err, &e)
	require.NotEmpty(t, e.RequestId, "fakecloud answers a RequestId with every error")
	return e.Code
}

// ptrs turns strings into the []*string the SDK wants.
func ptrs(s ...string) []*string {
	out := make([]*string, len(s))
	for i := range s {
		out[i] = &s[i]
	}
	return out
}
