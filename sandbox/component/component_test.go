package component_test

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stratus-cloud/stratus/sandbox/component"
)

func TestProbes(t *testing.T) {
	ctx := context.Background()
	tls := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer t0k" {
			http.Error(w, "no", http.StatusUnauthorized)
			return
		}
		_, _ = w.Write([]byte(`{"health":"true"}`))
	}))
	defer tls.Close()
	sick := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte(`{"health":"false"}`)) }))
	defer sick.Close()
	dir := t.TempDir()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	open := ln.Addr().String()
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	closedAddr := closed.Addr().String()
	closed.Close()
	defer ln.Close()

	cases := []struct {
		name  string
		probe component.Probe
		ok    bool
	}{
		{"https with token, insecure", component.HTTP{URL: tls.URL, Token: "t0k", Insecure: true}, true},
		{"https without token", component.HTTP{URL: tls.URL, Insecure: true}, false},
		{"https with an unknown CA", component.HTTP{URL: tls.URL, Token: "t0k"}, false},
		{"etcd-style body healthy", component.HTTP{URL: tls.URL, Token: "t0k", Insecure: true, JSONHealth: true}, true},
		{"etcd-style body not healthy", component.HTTP{URL: sick.URL, JSONHealth: true}, false},
		{"file missing", component.File{Path: filepath.Join(dir, "x")}, false},
		{"tcp open", component.TCP{Addr: open}, true},
		{"tcp closed", component.TCP{Addr: closedAddr}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := c.probe.Check(ctx)
			if c.ok {
				assert.NoError(t, err)
			} else {
				assert.Error(t, err)
			}
			assert.NotEmpty(t, c.probe.String())
		})
	}
	require.NoError(t, os.WriteFile(filepath.Join(dir, "x"), nil, 0o644))
	assert.NoError(t, component.File{Path: filepath.Join(dir, "x")}.Check(ctx))
}
