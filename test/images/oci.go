// Package images reads the OCI image archives `make images` writes and unpacks their root
// filesystems, so tests can run an image's entrypoint from the image's own root (chroot)
// without a container runtime. It checks every blob against its digest and every layer
// against the config's diff_ids, applies layers in order with OCI whiteouts, and refuses
// entries that would land outside the destination.
//
// It only reads archives and writes inside the destination it is given; it never talks to
// a registry or a container runtime, and it knows nothing of Stratus's images (the tests
// in this folder do).
package images

import (
	"archive/tar"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Media types this reader understands.
const (
	MediaTypeIndex      = "application/vnd.oci.image.index.v1+json"
	MediaTypeManifest   = "application/vnd.oci.image.manifest.v1+json"
	MediaTypeConfig     = "application/vnd.oci.image.config.v1+json"
	MediaTypeLayer      = "application/vnd.oci.image.layer.v1.tar"
	MediaTypeLayerGzip  = "application/vnd.oci.image.layer.v1.tar+gzip"
	AnnotationRefName   = "org.opencontainers.image.ref.name"
	whiteoutPrefix      = ".wh."
	whiteoutOpaqueEntry = ".wh..wh..opq"
)

// Descriptor points at a blob.
type Descriptor struct {
	MediaType   string            `json:"mediaType"`
	Digest      string            `json:"digest"`
	Size        int64             `json:"size"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

// Index is index.json of an OCI layout.
type Index struct {
	SchemaVersion int          `json:"schemaVersion"`
	Manifests     []Descriptor `json:"manifests"`
}

// Manifest is an image manifest.
type Manifest struct {
	SchemaVersion int          `json:"schemaVersion"`
	MediaType     string       `json:"mediaType,omitempty"`
	Config        Descriptor   `json:"config"`
	Layers        []Descriptor `json:"layers"`
}

// Config is the part of an image configuration the tests look at.
type Config struct {
	Architecture string `json:"architecture"`
	OS           string `json:"os"`
	Created      string `json:"created,omitempty"`
	Config       struct {
		User         string              `json:"User,omitempty"`
		Env          []string            `json:"Env,omitempty"`
		Entrypoint   []string            `json:"Entrypoint,omitempty"`
		Cmd          []string            `json:"Cmd,omitempty"`
		WorkingDir   string              `json:"WorkingDir,omitempty"`
		Labels       map[string]string   `json:"Labels,omitempty"`
		ExposedPorts map[string]struct{} `json:"ExposedPorts,omitempty"`
	} `json:"config"`
	RootFS struct {
		Type    string   `json:"type"`
		DiffIDs []string `json:"diff_ids"`
	} `json:"rootfs"`
}

// Image is one image of an archive.
type Image struct {
	Ref      string // the index's org.opencontainers.image.ref.name
	Manifest Manifest
	Config   Config
	// ArchiveSize is the archive's size in bytes; LayersSize the compressed layers'.
	ArchiveSize, LayersSize int64
	blobs                   string
}

// OpenArchive unpacks the OCI archive (a tar of an OCI image layout) into work, a
// directory the caller owns, and reads its single image.
func OpenArchive(archive, work string) (*Image, error) {
	f, err := os.Open(archive)
	if err != nil {
		return nil, fmt.Errorf("open archive: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("archive %s: %w", archive, err)
	}
	layout := filepath.Join(work, "layout")
	if err := extractLayout(f, layout); err != nil {
		return nil, fmt.Errorf("archive %s: %w", archive, err)
	}
	im, err := readLayout(layout)
	if err != nil {
		return nil, fmt.Errorf("archive %s: %w", archive, err)
	}
	im.ArchiveSize = st.Size()
	return im, nil
}

// extractLayout writes the plain files of the layout tar (oci-layout, index.json,
// blobs/<alg>/<hex>) below dst; anything else is an error.
func extractLayout(r io.Reader, dst string) error {
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read layout tar: %w", err)
		}
		name := path.Clean(strings.TrimPrefix(h.Name, "./"))
		if name == "." {
			continue
		}
		if !fs.ValidPath(name) {
			return fmt.Errorf("layout entry %q: not a relative path inside the layout", h.Name)
		}
		target := filepath.Join(dst, filepath.FromSlash(name))
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(target, 0o755); err != nil {
				return err
			}
		case tar.TypeReg:
			if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
				return err
			}
			out, err := os.OpenFile(target, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
			if err != nil {
				return fmt.Errorf("layout entry %s: %w", name, err)
			}
			_, err = io.Copy(out, tr)
			if cerr := out.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return fmt.Errorf("layout entry %s: %w", name, err)
			}
		default:
			return fmt.Errorf("layout entry %s: unexpected tar type %q", name, h.Typeflag)
		}
	}
}

func readLayout(dir string) (*Image, error) {
	var layout struct {
		Version string `json:"imageLayoutVersion"`
	}
	if err := readJSON(filepath.Join(dir, "oci-layout"), &layout); err != nil {
		return nil, err
	}
	if layout.Version != "1.0.0" {
		return nil, fmt.Errorf("oci-layout: imageLayoutVersion %q, want 1.0.0", layout.Version)
	}
	var idx Index
	if err := readJSON(filepath.Join(dir, "index.json"), &idx); err != nil {
		return nil, err
	}
	if len(idx.Manifests) != 1 {
		return nil, fmt.Errorf("index.json: %d manifests, want exactly one image", len(idx.Manifests))
	}
	im := &Image{blobs: filepath.Join(dir, "blobs"), Ref: idx.Manifests[0].Annotations[AnnotationRefName]}
	if err := im.readBlobJSON(idx.Manifests[0], MediaTypeManifest, &im.Manifest); err != nil {
		return nil, fmt.Errorf("manifest: %w", err)
	}
	if err := im.readBlobJSON(im.Manifest.Config, MediaTypeConfig, &im.Config); err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	if n, m := len(im.Manifest.Layers), len(im.Config.RootFS.DiffIDs); n != m {
		return nil, fmt.Errorf("manifest has %d layers, config %d diff_ids", n, m)
	}
	for _, l := range im.Manifest.Layers {
		im.LayersSize += l.Size
	}
	return im, nil
}

func readJSON(file string, v any) error {
	b, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%s: %w", filepath.Base(file), err)
	}
	return nil
}

// blobPath validates a digest and returns where its blob lives.
func (im *Image) blobPath(d Descriptor) (string, error) {
	alg, hexDigest, ok := strings.Cut(d.Digest, ":")
	if !ok || alg != "sha256" || len(hexDigest) != 64 {
		return "", fmt.Errorf("digest %q: want sha256:<64 hex>", d.Digest)
	}
	if _, err := hex.DecodeString(hexDigest); err != nil {
		return "", fmt.Errorf("digest %q: %w", d.Digest, err)
	}
	return filepath.Join(im.blobs, alg, hexDigest), nil
}

// openBlob opens a blob after checking its size and digest, so nothing unverified is ever
// parsed.
func (im *Image) openBlob(d Descriptor) (*os.File, error) {
	p, err := im.blobPath(d)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(p)
	if err != nil {
		return nil, fmt.Errorf("blob %s: %w", d.Digest, err)
	}
	st, err := f.Stat()
	if err == nil && st.Size() != d.Size {
		err = fmt.Errorf("blob %s: %d bytes, descriptor says %d", d.Digest, st.Size(), d.Size)
	}
	if err == nil {
		err = newDigestVerifier(f, d.Digest).Verify()
	}
	if err == nil {
		_, err = f.Seek(0, io.SeekStart)
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("blob %s: %w", d.Digest, err)
	}
	return f, nil
}

func (im *Image) readBlobJSON(d Descriptor, mediaType string, v any) error {
	if d.MediaType != mediaType {
		return fmt.Errorf("blob %s: media type %q, want %q", d.Digest, d.MediaType, mediaType)
	}
	f, err := im.openBlob(d)
	if err != nil {
		return err
	}
	defer f.Close()
	b, err := io.ReadAll(f)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

type digestVerifier struct {
	r    io.Reader
	h    hashWriter
	want string
}

type hashWriter interface {
	io.Writer
	Sum([]byte) []byte
}

func newDigestVerifier(r io.Reader, want string) *digestVerifier {
	h := sha256.New()
	return &digestVerifier{r: io.TeeReader(r, h), h: h, want: want}
}

func (d *digestVerifier) Read(p []byte) (int, error) { return d.r.Read(p) }

// Verify drains what is left and compares the digest.
func (d *digestVerifier) Verify() error {
	if _, err := io.Copy(io.Discard, d.r); err != nil {
		return err
	}
	if got := "sha256:" + hex.EncodeToString(d.h.Sum(nil)); got != d.want {
		return fmt.Errorf("digest mismatch: content is %s, descriptor says %s", got, d.want)
	}
	return nil
}

// Unpack applies every layer in order into dst (created if missing), honouring whiteouts,
// ownership (when running as root) and modes. dst should be empty.
func (im *Image) Unpack(dst string) error {
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return fmt.Errorf("unpack: %w", err)
	}
	root, err := os.OpenRoot(dst)
	if err != nil {
		return fmt.Errorf("unpack: %w", err)
	}
	defer root.Close()
	for i, l := range im.Manifest.Layers {
		if err := im.applyLayer(root, dst, l, im.Config.RootFS.DiffIDs[i]); err != nil {
			return fmt.Errorf("layer %d (%s): %w", i, l.Digest, err)
		}
	}
	return nil
}

func (im *Image) applyLayer(root *os.Root, dst string, l Descriptor, diffID string) error {
	f, err := im.openBlob(l)
	if err != nil {
		return err
	}
	defer f.Close()
	var r io.Reader = f
	switch l.MediaType {
	case MediaTypeLayer:
	case MediaTypeLayerGzip:
		zr, err := gzip.NewReader(f)
		if err != nil {
			return fmt.Errorf("gunzip: %w", err)
		}
		defer zr.Close()
		r = zr
	default:
		return fmt.Errorf("unsupported layer media type %q", l.MediaType)
	}
	diff := newDigestVerifier(r, diffID)
	if err := applyTar(root, dst, diff); err != nil {
		return err
	}
	if err := diff.Verify(); err != nil {
		return fmt.Errorf("diff_id: %w", err)
	}
	return nil
}

type dirTimes struct {
	name  string
	mtime time.Time
}

func applyTar(root *os.Root, dst string, r io.Reader) error {
	asRoot := os.Geteuid() == 0
	tr := tar.NewReader(r)
	var dirs []dirTimes
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("read layer: %w", err)
		}
		name := path.Clean(strings.TrimPrefix(strings.TrimPrefix(h.Name, "./"), "/"))
		if name == "." {
			continue
		}
		if !fs.ValidPath(name) {
			return fmt.Errorf("entry %q: path leaves the root", h.Name)
		}
		dir, base := path.Split(name)
		dir = strings.TrimSuffix(dir, "/")
		if dir == "" {
			dir = "."
		}
		if err := realDir(root, dir); err != nil {
			return fmt.Errorf("entry %s: %w", name, err)
		}
		if base == whiteoutOpaqueEntry {
			if err := clearDir(root, dir); err != nil {
				return fmt.Errorf("entry %s: %w", name, err)
			}
			continue
		}
		if victim, ok := strings.CutPrefix(base, whiteoutPrefix); ok {
			if err := root.RemoveAll(path.Join(dir, victim)); err != nil {
				return fmt.Errorf("entry %s: %w", name, err)
			}
			continue
		}
		// A later layer replaces what an earlier one had, except that a directory stays
		// a directory (its other children survive).
		if st, err := root.Lstat(name); err == nil && !(st.IsDir() && h.Typeflag == tar.TypeDir) {
			if err := root.RemoveAll(name); err != nil {
				return fmt.Errorf("entry %s: replace: %w", name, err)
			}
		}
		mode := fs.FileMode(h.Mode).Perm() | modeBits(h.Mode)
		switch h.Typeflag {
		case tar.TypeDir:
			if err := root.Mkdir(name, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
				return fmt.Errorf("entry %s: %w", name, err)
			}
			dirs = append(dirs, dirTimes{name, h.ModTime})
		case tar.TypeReg:
			out, err := root.OpenFile(name, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
			if err != nil {
				return fmt.Errorf("entry %s: %w", name, err)
			}
			_, err = io.Copy(out, tr)
			if cerr := out.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return fmt.Errorf("entry %s: %w", name, err)
			}
		case tar.TypeSymlink:
			if err := root.Symlink(h.Linkname, name); err != nil {
				return fmt.Errorf("entry %s: %w", name, err)
			}
		case tar.TypeLink:
			target := path.Clean(strings.TrimPrefix(strings.TrimPrefix(h.Linkname, "./"), "/"))
			if !fs.ValidPath(target) {
				return fmt.Errorf("entry %s: hard link target %q leaves the root", name, h.Linkname)
			}
			if err := root.Link(target, name); err != nil {
				return fmt.Errorf("entry %s: %w", name, err)
			}
			continue // shares the target's inode, owner and mode
		case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
			if !asRoot {
				continue // only root may create device nodes; nothing here needs them
			}
			kind := map[byte]uint32{tar.TypeChar: unix.S_IFCHR, tar.TypeBlock: unix.S_IFBLK, tar.TypeFifo: unix.S_IFIFO}[h.Typeflag]
			dev := unix.Mkdev(uint32(h.Devmajor), uint32(h.Devminor))
			// realDir checked every parent, so this path cannot leave dst.
			if err := unix.Mknod(filepath.Join(dst, filepath.FromSlash(name)), kind|uint32(h.Mode&0o7777), int(dev)); err != nil {
				return fmt.Errorf("entry %s: mknod: %w", name, err)
			}
		default:
			return fmt.Errorf("entry %s: unsupported tar type %q", name, h.Typeflag)
		}
		if asRoot {
			if err := root.Lchown(name, h.Uid, h.Gid); err != nil {
				return fmt.Errorf("entry %s: chown: %w", name, err)
			}
		}
		if h.Typeflag != tar.TypeSymlink {
			// After chown, which clears set-id bits.
			if err := root.Chmod(name, mode); err != nil {
				return fmt.Errorf("entry %s: chmod: %w", name, err)
			}
			if h.Typeflag != tar.TypeDir {
				if err := root.Chtimes(name, h.ModTime, h.ModTime); err != nil {
					return fmt.Errorf("entry %s: %w", name, err)
				}
			}
		}
	}
	// Directory times last: creating their children moved them.
	for i := len(dirs) - 1; i >= 0; i-- {
		if err := root.Chtimes(dirs[i].name, dirs[i].mtime, dirs[i].mtime); err != nil {
			return fmt.Errorf("entry %s: %w", dirs[i].name, err)
		}
	}
	return nil
}

func modeBits(m int64) fs.FileMode {
	var out fs.FileMode
	if m&0o4000 != 0 {
		out |= fs.ModeSetuid
	}
	if m&0o2000 != 0 {
		out |= fs.ModeSetgid
	}
	if m&0o1000 != 0 {
		out |= fs.ModeSticky
	}
	return out
}

// realDir requires dir and each of its parents to be a directory in root, never a
// symlink, creating missing ones (0755, as tar does): an image could otherwise aim a link
// outside and have a later entry written through it (os.Root refuses that too; this also
// covers mknod, which it lacks).
func realDir(root *os.Root, dir string) error {
	if dir == "." {
		return nil
	}
	p := ""
	for _, part := range strings.Split(dir, "/") {
		p = path.Join(p, part)
		st, err := root.Lstat(p)
		if errors.Is(err, fs.ErrNotExist) {
			if err := root.Mkdir(p, 0o755); err != nil {
				return fmt.Errorf("parent %s: %w", p, err)
			}
			continue
		}
		if err != nil {
			return fmt.Errorf("parent %s: %w", p, err)
		}
		if !st.IsDir() {
			return fmt.Errorf("parent %s is not a directory (%s)", p, st.Mode().Type())
		}
	}
	return nil
}

// clearDir removes the children of dir that earlier layers created (an opaque whiteout).
func clearDir(root *os.Root, dir string) error {
	d, err := root.Open(dir)
	if err != nil {
		return err
	}
	names, err := d.Readdirnames(-1)
	d.Close()
	if err != nil {
		return err
	}
	for _, n := range names {
		if err := root.RemoveAll(path.Join(dir, n)); err != nil {
			return err
		}
	}
	return nil
}
