package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stratus-cloud/stratus/internal/testcap"
	"github.com/stratus-cloud/stratus/sandbox/plan"
	"github.com/stratus-cloud/stratus/sandbox/state"
	"github.com/stratus-cloud/stratus/sandbox/vpcnet"
)

// stderrOf runs the command line and returns its exit code and stderr.
func stderrOf(t *testing.T, args ...string) (int, string) {
	t.Helper()
	r, w, err := os.Pipe()
	require.NoError(t, err)
	old := os.Stderr
	os.Stderr = w
	code := run(args)
	os.Stderr = old
	w.Close()
	b, _ := io.ReadAll(r)
	return code, string(b)
}

func TestNotRoot(t *testing.T) {
	geteuid = func() int { return 1000 }
	defer func() { geteuid = os.Geteuid }()
	for _, cmd := range []string{"up", "down", "status"} {
		t.Run(cmd, func(t *testing.T) {
			code, out := stderrOf(t, cmd, "--state-dir", t.TempDir())
			assert.Equal(t, 1, code)
			assert.Regexp(t, `^stratus `+cmd+`: needs root \(.+\): run it with sudo\n$`, out, "one line saying what to do")
		})
	}
}

func TestUsage(t *testing.T) {
	code, out := stderrOf(t, "frobnicate")
	assert.Equal(t, 2, code)
	assert.Contains(t, out, `unknown command "frobnicate"`)
	code, _ = stderrOf(t, "up", "--nodes", "0", "extra")
	assert.Equal(t, 1, code)
}

func allTools(string) (string, error) { return "/usr/bin/x", nil }

func newPlan(t *testing.T, opts plan.Options) *plan.Plan {
	t.Helper()
	if opts.StateDir == "" {
		opts.StateDir = filepath.Join(t.TempDir(), "sandbox")
	}
	// The address ranges of the first slot no host route uses, as `up` picks them.
	p, _, err := plan.Choose(opts, vpcnet.CheckHost)
	require.NoError(t, err)
	return p
}

// TestPreflight: every condition that would fail `up` half-way is one line saying what
// to do, before anything is made.
func TestPreflight(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer busy.Close()
	busyPort := busy.Addr().(*net.TCPAddr).Port

	cases := []struct {
		name   string
		setup  func(t *testing.T, p *plan.Plan)
		opts   plan.Options
		lookup func(string) (string, error)
		want   string
	}{
		{name: "a fresh state dir passes", lookup: allTools},
		{
			name: "a sandbox that is running",
			setup: func(t *testing.T, p *plan.Plan) {
				self, err := state.Self()
				require.NoError(t, err)
				require.NoError(t, state.WritePidFile(state.Dir(p.StateDir).SupervisorPidFile(), self))
			},
			lookup: allTools,
			want:   "a sandbox is already running in %s (supervisor pid",
		},
		{
			name: "a half-started sandbox whose supervisor is gone",
			setup: func(t *testing.T, p *plan.Plan) {
				require.NoError(t, state.WriteJSON(state.Dir(p.StateDir).ConfigFile(), map[string]any{}))
				require.NoError(t, state.WritePidFile(state.Dir(p.StateDir).SupervisorPidFile(), state.Proc{Pid: 1, Start: 1}))
			},
			lookup: allTools,
			want:   "a previous sandbox in %s did not shut down cleanly: run `stratus down --state-dir %s` first",
		},
		{
			name: "a directory of something else",
			setup: func(t *testing.T, p *plan.Plan) {
				require.NoError(t, os.MkdirAll(p.StateDir, 0o755))
				require.NoError(t, os.WriteFile(filepath.Join(p.StateDir, "notes.txt"), nil, 0o644))
			},
			lookup: allTools,
			want:   "state dir %s is not empty and holds no sandbox: pick another with --state-dir",
		},
		{
			name: "a missing Debian package",
			lookup: func(n string) (string, error) {
				if n == "iptables" {
					return "", errors.New("no")
				}
				return "/usr/bin/" + n, nil
			},
			want: "iptables is missing (needed for kube-proxy and the CNI plugin's masquerade rules): install Debian's iptables: apt-get install -y iptables",
		},
		{
			name:   "a state dir too deep for a unix socket",
			opts:   plan.Options{StateDir: filepath.Join(os.TempDir(), strings.Repeat("d", 100))},
			lookup: allTools,
			want:   "is too deep: the CSI socket",
		},
		{
			name:   "a port in use",
			opts:   plan.Options{FakecloudPort: busyPort},
			lookup: allTools,
			want:   fmt.Sprintf("port %d is in use: pick another with --fakecloud-port, or free it", busyPort),
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := newPlan(t, c.opts)
			if c.setup != nil {
				c.setup(t, p)
			}
			err := preflight(p, c.lookup)
			if c.want == "" {
				assert.NoError(t, err)
				return
			}
			require.Error(t, err)
			want := c.want
			if bytes.Count([]byte(want), []byte("%s")) == 2 {
				want = fmt.Sprintf(want, p.StateDir, p.StateDir)
			} else if bytes.Contains([]byte(want), []byte("%s")) {
				want = fmt.Sprintf(want, p.StateDir)
			}
			assert.Contains(t, err.Error(), want)
			assert.NotContains(t, err.Error(), "\n")
		})
	}
}

// TestPreflightFindsLeftoversAndOverlaps needs root: a namespace a crashed sandbox left
// (no state dir at all) and a host address inside the VPC range.
func TestPreflightFindsLeftoversAndOverlaps(t *testing.T) {
	testcap.Root(t, "network namespaces and host links")
	testcap.Tool(t, "ip", "iproute2")
	p := newPlan(t, plan.Options{})
	require.NoError(t, vpcnet.AddNetns(nil, p.NetnsPrefix+"node-1"))
	err := preflight(p, allTools)
	require.NoError(t, vpcnet.DeleteNetns(p.NetnsPrefix+"node-1"))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "a previous sandbox of "+p.StateDir+" left network namespace "+p.NetnsPrefix+"node-1 behind: run `stratus down --state-dir "+p.StateDir+"` first")

	// A host address in the VPC range (another program's link).
	link := "stpf" + p.ID
	out, err := exec.Command("ip", "link", "add", link, "type", "veth", "peer", "name", link+"p").CombinedOutput()
	require.NoError(t, err, "%s", out)
	defer exec.Command("ip", "link", "del", link).Run()
	inVPC := p.VPCCIDR.Addr().Next().String()
	out, err = exec.Command("ip", "addr", "add", inVPC+"/24", "dev", link).CombinedOutput()
	require.NoError(t, err, "%s", out)
	require.NoError(t, exec.Command("ip", "link", "set", link, "up").Run())
	err = preflight(p, allTools)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "--vpc-cidr "+p.VPCCIDR.String()+" overlaps the host route "+p.VPCCIDR.Addr().String())
	assert.Contains(t, err.Error(), "pick a free range with --vpc-cidr")
}

func TestPathHint(t *testing.T) {
	kube, bin := t.TempDir(), t.TempDir()
	t.Setenv("PATH", t.TempDir()) // neither stratus nor kubectl on PATH
	assert.Equal(t, "\n  export PATH="+bin+":$PATH", pathHint(bin, kube), "no kubectl in the kube dir")

	require.NoError(t, os.WriteFile(filepath.Join(kube, "kubectl"), []byte("#!/bin/sh\n"), 0o755))
	assert.Equal(t, "\n  export PATH="+bin+":"+kube+":$PATH", pathHint(bin, kube), "kubectl in the kube dir")

	require.NoError(t, os.WriteFile(filepath.Join(bin, "stratus"), []byte("#!/bin/sh\n"), 0o755))
	t.Setenv("PATH", bin+":"+kube)
	assert.Empty(t, pathHint(bin, kube), "both on PATH: no line")
}
