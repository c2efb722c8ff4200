package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// apiStub answers GET /api/v1/nodes for one bearer token and records what it was
// sent. It stands in for kube-apiserver only to show which credential client-go
// put on the wire for a kubeconfig; the agent itself runs against a real
// kube-apiserver in test/e2e/cni_agent_test.go.
type apiStub struct {
	token string

	mu     sync.Mutex
	agents []string
	auths  []string
}

func (s *apiStub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.agents = append(s.agents, r.UserAgent())
	s.auths = append(s.auths, r.Header.Get("Authorization"))
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	if r.Header.Get("Authorization") != "Bearer "+s.token {
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = fmt.Fprint(w, `{"kind":"Status","apiVersion":"v1","status":"Failure","reason":"Unauthorized","code":401}`)
		return
	}
	if r.URL.Path != "/api/v1/nodes" {
		http.NotFound(w, r)
		return
	}
	_, _ = fmt.Fprint(w, `{"kind":"NodeList","apiVersion":"v1","metadata":{"resourceVersion":"7"},"items":[{"metadata":{"name":"node-1"},"spec":{"podCIDR":"10.244.1.0/24"}}]}`)
}

// kubeconfig writes a kubeconfig for srv whose user entry is userYAML (indented
// under "user:").
func kubeconfig(t *testing.T, dir string, srv *httptest.Server, userYAML string) string {
	t.Helper()
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	kc := fmt.Sprintf(`apiVersion: v1
kind: Config
current-context: node
clusters:
- name: test
  cluster:
    server: %s
    certificate-authority-data: %s
users:
- name: agent
  user:
%s
contexts:
- name: node
  context:
    cluster: test
    user: agent
`, srv.URL, base64.StdEncoding.EncodeToString(ca), userYAML)
	path := filepath.Join(dir, "kubeconfig")
	require.NoError(t, os.WriteFile(path, []byte(kc), 0o600))
	return path
}

// unsignedJWT is an ID token as an OIDC provider issues one; the client only reads
// its expiry, the server (here: the stub) decides whether it is accepted.
func unsignedJWT(t *testing.T, exp time.Time) string {
	t.Helper()
	enc := func(v any) string {
		b, err := json.Marshal(v)
		require.NoError(t, err)
		return base64.RawURLEncoding.EncodeToString(b)
	}
	return enc(map[string]string{"alg": "none"}) + "." + enc(map[string]any{"iss": "https://issuer.invalid", "sub": "agent", "exp": exp.Unix()}) + ".sig"
}

func TestKubeconfigCredentialsReachTheAPI(t *testing.T) {
	t.Parallel()
	idToken := unsignedJWT(t, time.Now().Add(time.Hour))
	for _, tc := range []struct {
		name string
		// token is what the stub accepts; user builds the kubeconfig's user entry.
		token string
		user  func(dir string) string
		// refused: the stub must answer 401 (and the client report it as such).
		refused bool
		// ran is a file the credential plugin creates, when it must have run.
		ran string
	}{
		{
			name:  "token file",
			token: "file-token",
			user: func(dir string) string {
				require.NoError(t, os.WriteFile(filepath.Join(dir, "token"), []byte("file-token\n"), 0o600))
				return "    tokenFile: " + filepath.Join(dir, "token")
			},
		},
		{
			name:  "exec credential plugin",
			token: "exec-token",
			ran:   "exec-ran",
			user: func(dir string) string {
				script := filepath.Join(dir, "credential-helper")
				require.NoError(t, os.WriteFile(script, []byte(`#!/bin/sh
touch "$(dirname "$0")/exec-ran"
printf '{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","status":{"token":"%s"}}\n' "$STRATUS_TEST_TOKEN"
`), 0o755))
				return `    exec:
      apiVersion: client.authentication.k8s.io/v1
      command: ` + script + `
      env:
      - name: STRATUS_TEST_TOKEN
        value: exec-token
      interactiveMode: Never`
			},
		},
		{
			name:  "oidc auth-provider",
			token: idToken,
			user: func(string) string {
				return `    auth-provider:
      name: oidc
      config:
        idp-issuer-url: https://issuer.invalid
        client-id: stratus-cni-agent
        id-token: ` + idToken
			},
		},
		{
			name:    "wrong token is refused",
			token:   "right-token",
			refused: true,
			user:    func(string) string { return "    token: wrong-token" },
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			stub := &apiStub{token: tc.token}
			srv := httptest.NewTLSServer(stub)
			t.Cleanup(srv.Close)
			dir := t.TempDir()
			cfg, err := restConfig(kubeconfig(t, dir, srv, tc.user(dir)), "")
			require.NoError(t, err)
			client, err := kubernetes.NewForConfig(cfg)
			require.NoError(t, err)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			list, err := client.CoreV1().Nodes().List(ctx, metav1.ListOptions{FieldSelector: "metadata.name=node-1"})
			if tc.refused {
				require.Error(t, err)
				assert.True(t, apierrors.IsUnauthorized(err), "want 401, got %v", err)
				return
			}
			require.NoError(t, err)
			require.Len(t, list.Items, 1)
			assert.Equal(t, "10.244.1.0/24", list.Items[0].Spec.PodCIDR)
			if tc.ran != "" {
				assert.FileExists(t, filepath.Join(dir, tc.ran), "the credential plugin ran")
			}
			stub.mu.Lock()
			defer stub.mu.Unlock()
			require.NotEmpty(t, stub.agents)
			assert.True(t, strings.HasSuffix(stub.agents[0], "/"+userAgent), "user agent %q names the agent", stub.agents[0])
		})
	}
}

func TestInClusterConfigOutsideAPodSaysWhatToDo(t *testing.T) {
	t.Setenv("KUBERNETES_SERVICE_HOST", "")
	t.Setenv("KUBERNETES_SERVICE_PORT", "")
	_, err := restConfig("", "")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "--kubeconfig")
}

func TestRunFailsBeforeWatching(t *testing.T) {
	t.Parallel()
	missing := filepath.Join(t.TempDir(), "missing-kubeconfig")
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"unknown flag", []string{"--frobnicate"}, "flag provided but not defined"},
		{"stray argument", []string{"--node-name=n", "agent"}, "unexpected arguments"},
		{"missing kubeconfig", []string{"--node-name=n", "--kubeconfig=" + missing}, "missing-kubeconfig"},
		{"bad option", []string{"--node-name=n", "--master=https://127.0.0.1:1", "--mtu=1"}, "mtu"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			err := run(ctx, tc.args, &bytes.Buffer{})
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}
