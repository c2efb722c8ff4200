//go:build images

package images

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stratus-cloud/stratus/cloudapi"
	"github.com/stratus-cloud/stratus/cloudapi/cvm"
	"github.com/stratus-cloud/stratus/fakecloud"
	"github.com/stratus-cloud/stratus/internal/testcap"
)

// imageSpec is what one listed image must be. Every image in build/images/images.list
// needs an entry here, so a new image cannot ship untested.
type imageSpec struct {
	// user is the image's USER; entrypoint the binary the image starts (empty: a base).
	user       string
	entrypoint string
	// check runs the image-specific behaviour (the image is already unpacked and its
	// entrypoint answered --version).
	check func(t *testing.T, u *unpacked)
}

var specs = map[string]imageSpec{
	"stratus-cloud-controller-manager": {
		user: "65532:65532", entrypoint: "/usr/local/bin/stratus-cloud-controller-manager",
		check: checkCCM,
	},
	"fakecloud": {
		user: "65532:65532", entrypoint: "/usr/local/bin/fakecloud",
		check: checkFakecloud,
	},
	"stratus-cni": {
		user: "0:0", entrypoint: "/usr/local/bin/stratus-cni",
		check: checkCNI,
	},
	"stratus-csi-node-base": {
		user:  "0:0",
		check: checkNodeFilesystemTools,
	},
	"stratus-csi-driver-controller": {
		user: "65532:65532", entrypoint: "/usr/local/bin/stratus-csi-driver",
	},
	"stratus-csi-driver-node": {
		user: "0:0", entrypoint: "/usr/local/bin/stratus-csi-driver",
		check: checkNodeFilesystemTools,
	},
}

// TestImages unpacks every archive `make images` wrote and runs each image's entrypoint
// from the image's own root filesystem.
func TestImages(t *testing.T) {
	testcap.Root(t, "chroot into unpacked images, mount and mkfs")
	root := repoRoot(t)
	version := projectVersion(t, root)
	for _, e := range readList(t, root) {
		t.Run(e.name, func(t *testing.T) {
			spec, ok := specs[e.name]
			require.True(t, ok, "images.list has %s but test/images has no spec for it: add one", e.name)
			u := unpackImage(t, root, e.name)

			wantRef := registry() + "/" + e.name + ":" + version
			assert.Equal(t, wantRef, u.Ref, "archive is tagged with the project version")
			assert.Equal(t, "linux", u.Config.OS)
			assert.Equal(t, runtime.GOARCH, u.Config.Architecture)
			labels := u.Config.Config.Labels
			assert.Equal(t, version, labels["org.opencontainers.image.version"])
			assert.Equal(t, e.name, labels["org.opencontainers.image.title"])
			assert.NotEmpty(t, labels["org.opencontainers.image.revision"])
			assert.NotEqual(t, "unknown", labels["org.opencontainers.image.revision"])
			assert.Equal(t, spec.user, u.Config.Config.User, "image USER")
			u.assertCABundle(t)
			t.Logf("%s: archive %.1f MiB, layers %.1f MiB compressed", wantRef,
				float64(u.ArchiveSize)/(1<<20), float64(u.LayersSize)/(1<<20))

			for _, b := range e.binaries {
				u.assertStaticExecutable(t, "/usr/local/bin/"+b)
			}
			if spec.entrypoint != "" {
				require.NotEmpty(t, u.Config.Config.Entrypoint)
				assert.Equal(t, spec.entrypoint, u.Config.Config.Entrypoint[0])
				u.mountProc(t)
				out, _ := u.run(t, nil, spec.entrypoint, "--version")
				// The binary carries the same version and revision as the image.
				wantLine := filepath.Base(spec.entrypoint) + " " + version + " (commit " + labels["org.opencontainers.image.revision"] + ","
				assert.True(t, strings.HasPrefix(out, wantLine), "--version of %s: got %q, want prefix %q", e.name, out, wantLine)
			}
			if spec.check != nil {
				spec.check(t, u)
			}
		})
	}
}

func checkCCM(t *testing.T, u *unpacked) {
	stdout, stderr := u.run(t, nil, "/usr/local/bin/stratus-cloud-controller-manager", "--help")
	out := stdout + stderr
	for _, flag := range []string{"--cloud-provider", "--cloud-config", "--leader-elect"} {
		assert.Contains(t, out, flag)
	}
	// The Deployment mounts its Secret at /etc/stratus and runs read-only as 65532: the
	// image's passwd names that user.
	passwd, err := os.ReadFile(u.path("/etc/passwd"))
	require.NoError(t, err)
	assert.Contains(t, string(passwd), ":65532:65532:")
}

var servingAddr = regexp.MustCompile(`"fakecloud serving".* address="([^"]+)"`)

// checkFakecloud starts the image's default command (with the listen address moved to a
// free loopback port) from inside the image's root as the image's user, and makes signed
// API calls to it.
func checkFakecloud(t *testing.T, u *unpacked) {
	cmdline := append(slices.Clone(u.Config.Config.Entrypoint), u.Config.Config.Cmd...)
	require.Contains(t, cmdline, "--data-dir=/var/lib/fakecloud")
	for i, a := range cmdline {
		if strings.HasPrefix(a, "--listen=") {
			cmdline[i] = "--listen=127.0.0.1:0"
		}
	}
	require.Contains(t, cmdline, "--listen=127.0.0.1:0", "the image's default command sets --listen")
	// The state of a previous run in this unpacked tree would not be a fresh start.
	dataDir := u.path("/var/lib/fakecloud")
	entries, err := os.ReadDir(dataDir)
	require.NoError(t, err, "the image has its data dir")
	require.Empty(t, entries, "the image ships an empty data dir")
	st, err := os.Stat(dataDir)
	require.NoError(t, err)
	assert.Equal(t, uint32(65532), st.Sys().(*syscall.Stat_t).Uid, "the data dir belongs to the image's user")

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := u.command(t, context.Background(), cmdline...)
	stderrR, stderrW, err := os.Pipe()
	require.NoError(t, err)
	cmd.Stderr = stderrW
	require.NoError(t, cmd.Start())
	stderrW.Close()
	logs := newLineReader(stderrR)
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-exited
		}
	})

	addr, err := logs.waitFor(ctx, func(l string) (string, bool) {
		m := servingAddr.FindStringSubmatch(l)
		if m == nil {
			return "", false
		}
		return m[1], true
	})
	require.NoError(t, err, "fakecloud from the image never said where it serves; log:\n%s", logs)

	client := func(key string) *cvm.Client {
		c, err := cloudapi.New(cloudapi.Config{
			Endpoint: "http://" + addr, Region: fakecloud.DefaultRegion, RateLimit: -1, MaxAttempts: 1,
			Credentials: cloudapi.Credentials{SecretID: fakecloud.DefaultSecretID, SecretKey: key},
		})
		require.NoError(t, err)
		return cvm.New(c)
	}
	zones, err := client(fakecloud.DefaultSecretKey).DescribeZones(ctx, &cvm.DescribeZonesRequest{})
	require.NoError(t, err, "signed DescribeZones against fakecloud from the image; log:\n%s", logs)
	var names []string
	for _, z := range zones.ZoneSet {
		names = append(names, z.Zone)
	}
	assert.ElementsMatch(t, []string{"ap-guangzhou-1", "ap-guangzhou-2", "ap-guangzhou-3"}, names)
	assert.NotEmpty(t, zones.RequestId)

	_, err = client("not-the-key").DescribeZones(ctx, &cvm.DescribeZonesRequest{})
	assert.True(t, cloudapi.HasCode(err, cloudapi.CodeSignatureFailure), "a wrong signature is refused: %v", err)

	require.NoError(t, syscall.Kill(cmd.Process.Pid, syscall.SIGTERM))
	select {
	case err := <-exited:
		stopped = true
		require.NoError(t, err, "fakecloud exits cleanly on SIGTERM; log:\n%s", logs)
	case <-ctx.Done():
		t.Fatalf("fakecloud did not stop on SIGTERM; log:\n%s", logs)
	}
	// The state it kept lives inside the image's data dir, written as the image's user.
	entries, err = os.ReadDir(dataDir)
	require.NoError(t, err)
	require.NotEmpty(t, entries, "fakecloud wrote its state into /var/lib/fakecloud")
	for _, e := range entries {
		info, err := e.Info()
		require.NoError(t, err)
		assert.Equal(t, uint32(65532), info.Sys().(*syscall.Stat_t).Uid, "%s belongs to the image's user", e.Name())
	}
}

// checkCNI drives the binary the way the DaemonSet and a container runtime do: the init
// container's install into a host directory, then the installed plugin answering VERSION.
func checkCNI(t *testing.T, u *unpacked) {
	out, _ := u.run(t, []string{"CNI_COMMAND=VERSION"}, "/usr/local/bin/stratus-cni")
	var v struct {
		CNIVersion        string   `json:"cniVersion"`
		SupportedVersions []string `json:"supportedVersions"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &v), "CNI VERSION answer: %s", out)
	assert.Contains(t, v.SupportedVersions, "1.0.0")

	// The DaemonSet's init container: stratus-cni install --dst /host/opt/cni/bin, with
	// the host's /opt/cni/bin mounted there.
	host := t.TempDir()
	mnt := u.path("/host/opt/cni/bin")
	require.NoError(t, os.MkdirAll(mnt, 0o755))
	bindMount(t, host, mnt)
	u.run(t, nil, "/usr/local/bin/stratus-cni", "install", "--dst", "/host/opt/cni/bin")
	installed, err := os.ReadFile(filepath.Join(host, "stratus-bridge"))
	require.NoError(t, err, "install put stratus-bridge into the host directory")
	self, err := os.ReadFile(u.path("/usr/local/bin/stratus-cni"))
	require.NoError(t, err)
	assert.Equal(t, len(self), len(installed))
	assert.True(t, string(self) == string(installed), "the installed plugin is the image's binary")
	st, err := os.Stat(filepath.Join(host, "stratus-bridge"))
	require.NoError(t, err)
	assert.NotZero(t, st.Mode().Perm()&0o111, "installed plugin is executable")
}

// TestManifestCommandsExistInImages closes the loop between the manifests and the
// archives: every container of examples/manifests runs an image `make images` built, and
// the command it names (or the image's entrypoint) is an executable in that image.
func TestManifestCommandsExistInImages(t *testing.T) {
	testcap.Root(t, "unpack images with their owners and modes")
	root := repoRoot(t)
	_, containers := manifestContainers(t, root)
	for _, c := range containers {
		if strings.HasPrefix(c.resolved, upstreamSidecars) {
			continue // the Kubernetes project's images, not built here
		}
		t.Run(c.file+"/"+c.workload+"/"+c.name, func(t *testing.T) {
			name, _, _ := strings.Cut(c.resolved, ":")
			short := name[strings.LastIndex(name, "/")+1:]
			u := unpackImage(t, root, short)
			require.Equal(t, c.resolved, u.Ref, "the manifest runs the archive's image")
			argv0 := ""
			if len(c.command) > 0 {
				argv0 = c.command[0]
			} else {
				require.NotEmpty(t, u.Config.Config.Entrypoint, "no command and no entrypoint")
				argv0 = u.Config.Config.Entrypoint[0]
			}
			require.True(t, filepath.IsAbs(argv0), "command %q: an empty image has no PATH lookup to rely on", argv0)
			u.assertStaticExecutable(t, argv0)
		})
	}
}
