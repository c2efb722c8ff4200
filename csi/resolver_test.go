package csi

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fakeMachine is a dev root with by-id links and a sysfs block tree, in a temp dir.
type fakeMachine struct{ devRoot, sys, dev string }

func newFakeMachine(t *testing.T) *fakeMachine {
	dir := t.TempDir()
	m := &fakeMachine{devRoot: filepath.Join(dir, "dev"), sys: filepath.Join(dir, "sys"), dev: filepath.Join(dir, "devices")}
	for _, d := range []string{filepath.Join(m.devRoot, "disk", "by-id"), m.sys, m.dev} {
		require.NoError(t, os.MkdirAll(d, 0o755))
	}
	return m
}

// device makes a device node stand-in and its sysfs entry: a loop device bound to image,
// or a virtio disk with serial.
func (m *fakeMachine) device(t *testing.T, name, image, serial string) string {
	path := filepath.Join(m.dev, name)
	require.NoError(t, os.WriteFile(path, nil, 0o600))
	if image != "" {
		require.NoError(t, os.MkdirAll(filepath.Join(m.sys, name, "loop"), 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(m.sys, name, "loop", "backing_file"), []byte(image+"\n"), 0o600))
	}
	if serial != "" {
		require.NoError(t, os.MkdirAll(filepath.Join(m.sys, name), 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(m.sys, name, "serial"), []byte(serial+"\n"), 0o600))
	}
	return path
}

func (m *fakeMachine) link(t *testing.T, diskID, target string) {
	require.NoError(t, os.Symlink(target, filepath.Join(m.devRoot, "disk", "by-id", "virtio-"+diskID)))
}

func TestByIDResolver(t *testing.T) {
	cases := []struct {
		name    string
		setup   func(t *testing.T, m *fakeMachine)
		diskID  string
		want    string // device name
		wantErr error
	}{
		{"virtio serial matches", func(t *testing.T, m *fakeMachine) {
			m.link(t, "disk-abc12345", m.device(t, "vdb", "", "disk-abc12345"))
		}, "disk-abc12345", "vdb", nil},
		{"a long id is compared as the truncated serial", func(t *testing.T, m *fakeMachine) {
			m.link(t, "disk-abcdefghijklmnopqrstuvwxyz", m.device(t, "vdc", "", "disk-abcdefghijklmno"))
		}, "disk-abcdefghijklmnopqrstuvwxyz", "vdc", nil},
		{"loop device bound to the disk's image", func(t *testing.T, m *fakeMachine) {
			m.link(t, "disk-loop0001", m.device(t, "loop7", "/var/lib/fakecloud/cbs/disk-loop0001.img", ""))
		}, "disk-loop0001", "loop7", nil},
		{"stale link to another disk's virtio device", func(t *testing.T, m *fakeMachine) {
			m.link(t, "disk-a", m.device(t, "vdb", "", "disk-b"))
		}, "disk-a", "", ErrWrongDevice},
		{"stale link to another disk's loop device", func(t *testing.T, m *fakeMachine) {
			m.link(t, "disk-a", m.device(t, "loop3", "/var/lib/fakecloud/cbs/disk-b.img", ""))
		}, "disk-a", "", ErrWrongDevice},
		{"loop image outside the configured directory", func(t *testing.T, m *fakeMachine) {
			m.link(t, "disk-a", m.device(t, "loop4", "/elsewhere/disk-a.img", ""))
		}, "disk-a", "", ErrWrongDevice},
		{"a device with no identity", func(t *testing.T, m *fakeMachine) {
			m.link(t, "disk-a", m.device(t, "sdz", "", ""))
		}, "disk-a", "", ErrWrongDevice},
		{"no link", func(t *testing.T, m *fakeMachine) {}, "disk-a", "", ErrNotFound},
		{"path tricks", func(t *testing.T, m *fakeMachine) {}, "../../etc", "", ErrNotFound},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := newFakeMachine(t)
			tc.setup(t, m)
			r := &ByIDResolver{DevRoot: m.devRoot, SysBlock: m.sys, LoopImageDir: "/var/lib/fakecloud/cbs", Timeout: 200 * time.Millisecond}
			dev, err := r.Resolve(context.Background(), tc.diskID)
			if tc.wantErr != nil {
				require.Error(t, err)
				assert.True(t, errors.Is(err, tc.wantErr), "%v", err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, filepath.Base(dev))
		})
	}
}

func TestByIDResolverWaitsForTheLink(t *testing.T) {
	m := newFakeMachine(t)
	dev := m.device(t, "vdd", "", "disk-late")
	go func() {
		time.Sleep(100 * time.Millisecond)
		m.link(t, "disk-late", dev)
	}()
	r := &ByIDResolver{DevRoot: m.devRoot, SysBlock: m.sys, Timeout: 10 * time.Second}
	got, err := r.Resolve(context.Background(), "disk-late")
	require.NoError(t, err)
	assert.Equal(t, "vdd", filepath.Base(got))
}

func TestStagedVolumes(t *testing.T) {
	mi := filepath.Join(t.TempDir(), "mountinfo")
	content := `22 1 8:1 / / rw - ext4 /dev/sda1 rw
30 22 7:3 / /var/lib/kubelet/plugins/kubernetes.io/csi/cbs.csi.stratus.io/abc/globalmount rw - ext4 /dev/loop3 rw
31 22 7:3 / /var/lib/kubelet/pods/p/volumes/kubernetes.io~csi/pvc/mount rw - ext4 /dev/loop3 rw
32 22 7:4 / /var/lib/kubelet/plugins/kubernetes.io/csi/other.csi.io/x/globalmount rw - ext4 /dev/loop4 rw
`
	require.NoError(t, os.WriteFile(mi, []byte(content), 0o600))
	got, err := StagedVolumes(mi, "/var/lib/kubelet", DriverName)
	require.NoError(t, err)
	assert.Equal(t, []string{"/var/lib/kubelet/plugins/kubernetes.io/csi/cbs.csi.stratus.io/abc/globalmount"}, got)

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	err = WaitDrained(ctx, mi, "/var/lib/kubelet", DriverName, 10*time.Millisecond)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "abc/globalmount")
	require.NoError(t, os.WriteFile(mi, []byte("22 1 8:1 / / rw - ext4 /dev/sda1 rw\n"), 0o600))
	assert.NoError(t, WaitDrained(context.Background(), mi, "/var/lib/kubelet", DriverName, 10*time.Millisecond))
}

func TestSocketPath(t *testing.T) {
	cases := map[string]string{
		"unix:///csi/csi.sock": "/csi/csi.sock",
		"unix:/csi/csi.sock":   "/csi/csi.sock",
		"/csi/csi.sock":        "/csi/csi.sock",
		"tcp://127.0.0.1:1":    "",
		"unix://":              "",
	}
	for in, want := range cases {
		got, err := socketPath(in)
		if want == "" {
			assert.Error(t, err, in)
			continue
		}
		require.NoError(t, err, in)
		assert.Equal(t, want, got, in)
	}
}
