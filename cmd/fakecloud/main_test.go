package main

import (
	"context"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stratus-cloud/stratus/fakecloud"
)

func seedPath(t *testing.T) string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "examples", "fakecloud", "seed.yaml")
}

// startServe runs `fakecloud serve` in-process and returns its address and a stop func
// that waits for the graceful shutdown to finish.
func startServe(t *testing.T, args ...string) (string, func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	addrc := make(chan string, 1)
	errc := make(chan error, 1)
	go func() { errc <- serve(ctx, args, func(a string) { addrc <- a }) }()
	select {
	case a := <-addrc:
		return a, func() error { cancel(); return <-errc }
	case err := <-errc:
		cancel()
		t.Fatalf("serve exited: %v", err)
	case <-time.After(30 * time.Second):
		cancel()
		t.Fatal("serve did not start")
	}
	return "", nil
}

func TestServeWithSeedRestartsWithState(t *testing.T) {
	dir := t.TempDir()
	addr, stop := startServe(t, "--listen", "127.0.0.1:0", "--data-dir", dir, "--seed", seedPath(t))
	admin := &fakecloud.AdminClient{BaseURL: "http://" + addr}
	ctx := context.Background()
	state, err := admin.State(ctx)
	require.NoError(t, err)
	rows := 0
	for _, tbl := range state {
		rows += len(tbl)
	}
	require.NotZero(t, rows, "the example seed imports VPCs, subnets and instances")
	require.NoError(t, stop(), "graceful shutdown")

	// Restart without the seed: the state comes from the data dir, not from a re-import.
	addr2, stop2 := startServe(t, "--listen", "127.0.0.1:0", "--data-dir", dir)
	defer func() { assert.NoError(t, stop2()) }()
	state2, err := (&fakecloud.AdminClient{BaseURL: "http://" + addr2}).State(ctx)
	require.NoError(t, err)
	rows2 := 0
	for _, tbl := range state2 {
		rows2 += len(tbl)
	}
	assert.Equal(t, rows, rows2)
}

func TestServeRejectsBadFlags(t *testing.T) {
	ctx := context.Background()
	assert.ErrorContains(t, serve(ctx, []string{"--listen", "127.0.0.1:0"}, nil), "--data-dir")
	assert.ErrorContains(t, serve(ctx, []string{"--data-dir", t.TempDir(), "--seed", "/nonexistent.yaml"}, nil), "seed")
	assert.ErrorContains(t, serve(ctx, []string{"--data-dir", t.TempDir(), "--vpc-router", "vpc-a1=rtr"}, nil), "--vpc-router needs --dataplane")
	assert.ErrorContains(t, serve(ctx, []string{"--data-dir", t.TempDir(), "--dataplane", "--vpc-router", "vpc-a1"}, nil), "is not VPC=NETNS")
	assert.ErrorContains(t, serve(ctx, []string{"--data-dir", t.TempDir(), "--dataplane", "--vpc-router", "vpc-a1=x", "--vpc-router", "vpc-a1=y"}, nil), "VPC vpc-a1 is given twice")
	t.Setenv("FAKECLOUD_SECRET_ID", "AKIDonly")
	t.Setenv("FAKECLOUD_SECRET_KEY", "")
	assert.ErrorContains(t, serve(ctx, []string{"--data-dir", t.TempDir()}, nil), "FAKECLOUD_SECRET_KEY")
}
