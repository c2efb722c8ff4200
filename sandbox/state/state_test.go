package state_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stratus-cloud/stratus/sandbox/state"
)

func TestJournalSurvivesAReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "journal.json")
	j, err := state.OpenJournal(path)
	require.NoError(t, err)
	assert.Empty(t, j.Resources())
	ns := state.Resource{Kind: state.KindNetns, Name: "stratus-abc123-vpc"}
	link := state.Resource{Kind: state.KindHostLink, Name: "stratusabc123"}
	require.NoError(t, j.Record(ns))
	require.NoError(t, j.Record(link))
	require.NoError(t, j.Record(ns), "recording twice is a no-op")

	again, err := state.OpenJournal(path)
	require.NoError(t, err)
	assert.Equal(t, []state.Resource{ns, link}, again.Resources(), "the journal on disk has every record, in order")

	require.NoError(t, again.Forget(ns))
	third, err := state.OpenJournal(path)
	require.NoError(t, err)
	assert.Equal(t, []state.Resource{link}, third.Resources())
}

func TestOpenJournalRejectsGarbage(t *testing.T) {
	path := filepath.Join(t.TempDir(), "journal.json")
	require.NoError(t, os.WriteFile(path, []byte("{not json"), 0o600))
	_, err := state.OpenJournal(path)
	require.Error(t, err)
	assert.Contains(t, err.Error(), path)
}

func TestProcIdentity(t *testing.T) {
	self, err := state.Self()
	require.NoError(t, err)
	assert.True(t, self.Alive())
	assert.False(t, state.Proc{Pid: self.Pid, Start: self.Start + 1}.Alive(), "another start time is another process")
	assert.False(t, state.Proc{}.Alive())

	cmd := exec.Command("sleep", "60")
	require.NoError(t, cmd.Start())
	child, err := state.ProcOf(cmd.Process.Pid)
	require.NoError(t, err)
	assert.True(t, child.Alive())
	require.NoError(t, cmd.Process.Kill())
	// Before it is reaped the child is a zombie: not alive either.
	assert.Eventually(t, func() bool { return !child.Alive() }, 10*time.Second, 10*time.Millisecond)
	_ = cmd.Wait()
	assert.False(t, child.Alive())

	pidfile := filepath.Join(t.TempDir(), "x.pid")
	require.NoError(t, state.WritePidFile(pidfile, self))
	back, err := state.ReadPidFile(pidfile)
	require.NoError(t, err)
	assert.Equal(t, self, back)
}

func TestDirLayout(t *testing.T) {
	d := state.Dir(t.TempDir())
	assert.False(t, d.Exists())
	assert.Equal(t, filepath.Join(string(d), "logs", "node-1_kube-proxy.log"), d.LogFile("node-1/kube-proxy"))
	require.NoError(t, state.WritePidFile(d.PidFile("etcd"), state.Proc{Pid: 1, Start: 2}))
	files, err := d.PidFiles()
	require.NoError(t, err)
	assert.Equal(t, []string{d.PidFile("etcd")}, files)
	require.NoError(t, state.WriteJSON(d.ConfigFile(), map[string]int{"nodes": 3}))
	assert.True(t, d.Exists())
}
