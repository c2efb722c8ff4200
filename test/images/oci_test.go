package images

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// entry is one tar member of a hand-made layer.
type entry struct {
	name, body, link string
	typ              byte
	mode             int64
}

func layerTar(t *testing.T, entries ...entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	mtime := time.Unix(1700000000, 0)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Typeflag: e.typ, Mode: e.mode, Linkname: e.link, ModTime: mtime}
		if h.Typeflag == 0 {
			h.Typeflag = tar.TypeReg
		}
		if h.Mode == 0 {
			h.Mode = 0o644
			if h.Typeflag == tar.TypeDir {
				h.Mode = 0o755
			}
		}
		if h.Typeflag == tar.TypeReg {
			h.Size = int64(len(e.body))
		}
		require.NoError(t, tw.WriteHeader(h))
		if h.Typeflag == tar.TypeReg {
			_, err := tw.Write([]byte(e.body))
			require.NoError(t, err)
		}
	}
	require.NoError(t, tw.Close())
	return buf.Bytes()
}

func gz(t *testing.T, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	_, err := zw.Write(b)
	require.NoError(t, err)
	require.NoError(t, zw.Close())
	return buf.Bytes()
}

func digest(b []byte) string {
	s := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(s[:])
}

// layer is a layer blob and the uncompressed tar its diff_id names.
type layer struct {
	blob, diff []byte
	mediaType  string
}

// archive writes an OCI archive holding one image of the given layers; mutate may
// corrupt the blobs map (digest -> content) before it is written.
func archive(t *testing.T, layers []layer, mutate func(blobs map[string][]byte, m *Manifest)) string {
	t.Helper()
	blobs := map[string][]byte{}
	var cfg Config
	cfg.Architecture, cfg.OS = "amd64", "linux"
	cfg.Config.Entrypoint = []string{"/bin/app"}
	cfg.RootFS.Type = "layers"
	m := Manifest{SchemaVersion: 2, MediaType: MediaTypeManifest}
	for _, l := range layers {
		blobs[digest(l.blob)] = l.blob
		m.Layers = append(m.Layers, Descriptor{MediaType: l.mediaType, Digest: digest(l.blob), Size: int64(len(l.blob))})
		cfg.RootFS.DiffIDs = append(cfg.RootFS.DiffIDs, digest(l.diff))
	}
	cb, err := json.Marshal(cfg)
	require.NoError(t, err)
	blobs[digest(cb)] = cb
	m.Config = Descriptor{MediaType: MediaTypeConfig, Digest: digest(cb), Size: int64(len(cb))}
	if mutate != nil {
		mutate(blobs, &m)
	}
	mb, err := json.Marshal(m)
	require.NoError(t, err)
	blobs[digest(mb)] = mb
	idx, err := json.Marshal(Index{SchemaVersion: 2, Manifests: []Descriptor{{
		MediaType: MediaTypeManifest, Digest: digest(mb), Size: int64(len(mb)),
		Annotations: map[string]string{AnnotationRefName: "example/app:v1"},
	}}})
	require.NoError(t, err)

	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	add := func(name string, b []byte) {
		require.NoError(t, tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(b)), Typeflag: tar.TypeReg}))
		_, err := tw.Write(b)
		require.NoError(t, err)
	}
	add("oci-layout", []byte(`{"imageLayoutVersion":"1.0.0"}`))
	add("index.json", idx)
	for d, b := range blobs {
		add("blobs/sha256/"+d[len("sha256:"):], b)
	}
	require.NoError(t, tw.Close())
	p := filepath.Join(t.TempDir(), "image.oci.tar")
	require.NoError(t, os.WriteFile(p, buf.Bytes(), 0o644))
	return p
}

func plain(t *testing.T, entries ...entry) layer {
	b := layerTar(t, entries...)
	return layer{blob: b, diff: b, mediaType: MediaTypeLayer}
}

func gzipped(t *testing.T, entries ...entry) layer {
	b := layerTar(t, entries...)
	return layer{blob: gz(t, b), diff: b, mediaType: MediaTypeLayerGzip}
}

func TestUnpackAppliesLayersAndWhiteouts(t *testing.T) {
	base := plain(t,
		entry{name: "bin/", typ: tar.TypeDir},
		entry{name: "bin/app", body: "v1", mode: 0o755},
		entry{name: "etc/", typ: tar.TypeDir},
		entry{name: "etc/gone", body: "x"},
		entry{name: "etc/kept", body: "k"},
		entry{name: "var/lib/", typ: tar.TypeDir},
		entry{name: "var/lib/old", body: "o"},
		entry{name: "tmp/", typ: tar.TypeDir, mode: 0o1777},
	)
	top := gzipped(t,
		entry{name: "bin/app", body: "v2", mode: 0o755},
		entry{name: "etc/.wh.gone"},
		entry{name: "var/lib/.wh..wh..opq"},
		entry{name: "var/lib/new", body: "n"},
		entry{name: "usr/local/bin/app", typ: tar.TypeSymlink, link: "/bin/app"},
		entry{name: "bin/app-hardlink", typ: tar.TypeLink, link: "bin/app"},
	)
	work := t.TempDir()
	im, err := OpenArchive(archive(t, []layer{base, top}, nil), work)
	require.NoError(t, err)
	assert.Equal(t, "example/app:v1", im.Ref)
	assert.Equal(t, []string{"/bin/app"}, im.Config.Config.Entrypoint)
	assert.Equal(t, int64(len(base.blob)+len(top.blob)), im.LayersSize)

	dst := filepath.Join(work, "rootfs")
	require.NoError(t, im.Unpack(dst))
	read := func(p string) string {
		b, err := os.ReadFile(filepath.Join(dst, p))
		require.NoError(t, err, p)
		return string(b)
	}
	assert.Equal(t, "v2", read("bin/app"), "a later layer replaces the file")
	assert.Equal(t, "k", read("etc/kept"))
	assert.NoFileExists(t, filepath.Join(dst, "etc/gone"), "whiteout removes the file")
	assert.NoFileExists(t, filepath.Join(dst, "etc/.wh.gone"), "whiteout markers are not files")
	assert.NoFileExists(t, filepath.Join(dst, "var/lib/old"), "opaque whiteout hides the lower directory's children")
	assert.Equal(t, "n", read("var/lib/new"))
	link, err := os.Readlink(filepath.Join(dst, "usr/local/bin/app"))
	require.NoError(t, err)
	assert.Equal(t, "/bin/app", link, "symlinks are kept as written, absolute ones too")
	a, err := os.Stat(filepath.Join(dst, "bin/app"))
	require.NoError(t, err)
	b, err := os.Stat(filepath.Join(dst, "bin/app-hardlink"))
	require.NoError(t, err)
	assert.True(t, os.SameFile(a, b), "hard link shares the inode")
	assert.Equal(t, os.FileMode(0o755), a.Mode().Perm())
	tmp, err := os.Stat(filepath.Join(dst, "tmp"))
	require.NoError(t, err)
	assert.Equal(t, os.ModeSticky, tmp.Mode()&os.ModeSticky, "/tmp keeps its sticky bit")
	assert.True(t, a.ModTime().Equal(time.Unix(1700000000, 0)), "file times come from the layer: %s", a.ModTime())
}

func TestRejectsBadArchives(t *testing.T) {
	good := plain(t, entry{name: "bin/app", body: "app", mode: 0o755})
	for _, tc := range []struct {
		name    string
		layers  []layer
		mutate  func(blobs map[string][]byte, m *Manifest)
		wantErr string
		// atUnpack: the archive opens and the error comes from Unpack.
		atUnpack bool
	}{
		{
			name:   "layer blob corrupted",
			layers: []layer{good},
			mutate: func(blobs map[string][]byte, m *Manifest) {
				b := bytes.Clone(blobs[m.Layers[0].Digest])
				b[len(b)-1] ^= 1
				blobs[m.Layers[0].Digest] = b
			},
			wantErr: "digest mismatch", atUnpack: true,
		},
		{
			name:    "blob size differs from descriptor",
			layers:  []layer{good},
			mutate:  func(_ map[string][]byte, m *Manifest) { m.Layers[0].Size++ },
			wantErr: "descriptor says", atUnpack: true,
		},
		{
			name:    "diff_id does not match the layer",
			layers:  []layer{{blob: gz(t, good.diff), diff: []byte("other"), mediaType: MediaTypeLayerGzip}},
			wantErr: "diff_id", atUnpack: true,
		},
		{
			name:    "entry climbs out of the root",
			layers:  []layer{plain(t, entry{name: "../../etc/evil", body: "x"})},
			wantErr: "path leaves the root", atUnpack: true,
		},
		{
			name: "entry written through a symlink to outside",
			layers: []layer{plain(t,
				entry{name: "escape", typ: tar.TypeSymlink, link: "/"},
				entry{name: "escape/evil", body: "x"},
			)},
			wantErr: "not a directory", atUnpack: true,
		},
		{
			name:    "hard link to outside",
			layers:  []layer{plain(t, entry{name: "passwd", typ: tar.TypeLink, link: "../../../etc/passwd"})},
			wantErr: "leaves the root", atUnpack: true,
		},
		{
			name:   "unknown layer media type",
			layers: []layer{good},
			mutate: func(_ map[string][]byte, m *Manifest) {
				m.Layers[0].MediaType = "application/vnd.oci.image.layer.v1.tar+zstd"
			},
			wantErr: "unsupported layer media type", atUnpack: true,
		},
		{
			name:    "config lists fewer diff_ids than layers",
			layers:  []layer{good},
			mutate:  func(_ map[string][]byte, m *Manifest) { m.Layers = append(m.Layers, m.Layers[0]) },
			wantErr: "diff_ids",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			work := t.TempDir()
			im, err := OpenArchive(archive(t, tc.layers, tc.mutate), work)
			if !tc.atUnpack {
				require.ErrorContains(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			dst := filepath.Join(work, "rootfs")
			require.ErrorContains(t, im.Unpack(dst), tc.wantErr)
			assert.NoFileExists(t, filepath.Join(filepath.Dir(work), "etc", "evil"))
		})
	}
}
