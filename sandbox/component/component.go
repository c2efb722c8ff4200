// Package component is how the sandbox describes a long-running process: a small spec
// (binary, arguments, the network namespace it runs in, what must be healthy before it
// starts, and how to tell that it is healthy). The control plane and every node are lists
// of such specs, so adding a component (stage 2's CSI controller and node plugin) is
// adding an entry, not changing the supervisor.
//
// It only describes and probes; starting and stopping processes is the supervisor's job.
package component

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"time"
)

// Spec is one process of the sandbox.
type Spec struct {
	// Name is unique in the sandbox: "kube-apiserver", "node-1/kube-proxy".
	Name string
	// Node is the node the component belongs to; empty for the control plane.
	Node   string
	Binary string
	Args   []string
	// Env is added to the supervisor's environment.
	Env []string
	// Netns is the network namespace (a name under /run/netns) it runs in; empty: the
	// host's.
	Netns string
	// After names the components that must be healthy before this one starts.
	After []string
	// AfterServing names components that need only be serving (their Serving probe
	// passes) before this one starts: a client that retries, such as a controller
	// waiting for kube-apiserver's /healthz, can start while the server finishes its
	// own start-up. An exit before healthy while one of them is not healthy yet is a
	// restart, not a failure.
	AfterServing []string
	// Health tells whether it is healthy; nil means running is healthy.
	Health Probe
	// Serving tells whether it accepts connections yet; nil means: once healthy.
	Serving Probe
}

// Probe checks a component's health.
type Probe interface {
	Check(ctx context.Context) error
	String() string
}

// HTTP is healthy when GET URL answers 200. TLS is verified against CA when given;
// Insecure skips verification (loopback servers with self-signed certificates).
type HTTP struct {
	URL      string
	Token    string
	CA       []byte
	Insecure bool
	// JSONHealth additionally requires a body {"health":"true"} (etcd's /health).
	JSONHealth bool
}

func (h HTTP) String() string { return "GET " + h.URL }

// Check performs the request. It never uses a proxy from the environment: every
// component is on loopback or inside the sandbox's namespaces.
func (h HTTP) Check(ctx context.Context) error {
	tr := &http.Transport{Proxy: nil, DisableKeepAlives: true}
	switch {
	case len(h.CA) > 0:
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(h.CA) {
			return errors.New("no CA certificate to verify with")
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	case h.Insecure:
		tr.TLSClientConfig = &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS12} //nolint:gosec // loopback health check of a self-signed server
	}
	client := &http.Client{Timeout: 3 * time.Second, Transport: tr}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, h.URL, nil)
	if err != nil {
		return err
	}
	if h.Token != "" {
		req.Header.Set("Authorization", "Bearer "+h.Token)
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", h.URL, resp.Status)
	}
	if h.JSONHealth {
		var v struct {
			Health string `json:"health"`
		}
		if err := json.Unmarshal(body, &v); err != nil || v.Health != "true" {
			return fmt.Errorf("GET %s: not healthy: %s", h.URL, body)
		}
	}
	return nil
}

// File is healthy once Path exists (the CNI agent's conflist).
type File struct{ Path string }

func (f File) String() string { return "file " + f.Path }

// Check stats the file.
func (f File) Check(context.Context) error {
	if _, err := os.Stat(f.Path); err != nil {
		return fmt.Errorf("%s not written yet", f.Path)
	}
	return nil
}

// TCP is healthy once Addr accepts a connection.
type TCP struct{ Addr string }

func (t TCP) String() string { return "connect " + t.Addr }

// Check dials Addr.
func (t TCP) Check(ctx context.Context) error {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", t.Addr)
	if err != nil {
		return err
	}
	return c.Close()
}
