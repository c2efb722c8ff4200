package dataplane

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// createSparse creates path as a sparse file of size bytes; it fails if path exists, so
// a disk id is never silently reused over old bytes.
func createSparse(path string, size int64) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("create image %s: %w", path, err)
	}
	if err := f.Truncate(size); err != nil {
		f.Close()
		_ = os.Remove(path)
		return fmt.Errorf("size image %s: %w", path, err)
	}
	return f.Close()
}

// grow extends path to size bytes; it never shrinks.
func grow(path string, size int64) error {
	st, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("stat image: %w", err)
	}
	if st.Size() >= size {
		return nil
	}
	if err := os.Truncate(path, size); err != nil {
		return fmt.Errorf("grow image %s: %w", path, err)
	}
	return nil
}

// copySparse copies src to dst (which must not exist), then sizes dst to size bytes
// (0 = src's size). It asks the filesystem for a clone first (reflink: instant, shares
// blocks), and otherwise copies only the data extents, so holes stay holes. dst appears
// atomically: it is written under a temporary name and renamed.
func copySparse(src, dst string, size int64) (err error) {
	in, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("open %s: %w", src, err)
	}
	defer in.Close()
	st, err := in.Stat()
	if err != nil {
		return fmt.Errorf("stat %s: %w", src, err)
	}
	if size == 0 {
		size = st.Size()
	}
	if _, err := os.Lstat(dst); err == nil {
		return fmt.Errorf("create %s: %w", dst, os.ErrExist)
	}
	tmp := dst + ".tmp"
	out, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("create %s: %w", tmp, err)
	}
	defer func() {
		if cerr := out.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("close %s: %w", tmp, cerr)
		}
		if err != nil {
			_ = os.Remove(tmp)
		}
	}()
	if unix.IoctlFileClone(int(out.Fd()), int(in.Fd())) != nil {
		if err := copyExtents(in, out, st.Size()); err != nil {
			return fmt.Errorf("copy %s to %s: %w", src, dst, err)
		}
	}
	if err := out.Truncate(max(size, st.Size())); err != nil {
		return fmt.Errorf("size %s: %w", tmp, err)
	}
	if err := out.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, dst); err != nil {
		return fmt.Errorf("rename %s: %w", tmp, err)
	}
	return syncDir(filepath.Dir(dst))
}

// copyExtents copies the data regions of in (found with SEEK_DATA / SEEK_HOLE) to the
// same offsets of out.
func copyExtents(in, out *os.File, size int64) error {
	ifd := int(in.Fd())
	for off := int64(0); off < size; {
		data, err := unix.Seek(ifd, off, unix.SEEK_DATA)
		if errors.Is(err, unix.ENXIO) {
			break // no data after off: the rest is a hole
		}
		if err != nil {
			return fmt.Errorf("SEEK_DATA: %w", err)
		}
		hole, err := unix.Seek(ifd, data, unix.SEEK_HOLE)
		if err != nil {
			return fmt.Errorf("SEEK_HOLE: %w", err)
		}
		if err := copyRange(in, out, data, hole-data); err != nil {
			return err
		}
		off = hole
	}
	return nil
}

func copyRange(in, out *os.File, off, n int64) error {
	roff, woff := off, off
	for n > 0 {
		c, err := unix.CopyFileRange(int(in.Fd()), &roff, int(out.Fd()), &woff, int(min(n, 1<<30)), 0)
		if err != nil {
			// Cross-filesystem or unsupported: fall back to read/write.
			return copyRangeRW(in, out, roff, woff, n)
		}
		if c == 0 {
			return io.ErrUnexpectedEOF
		}
		n -= int64(c)
	}
	return nil
}

func copyRangeRW(in, out *os.File, roff, woff, n int64) error {
	buf := make([]byte, 1<<20)
	for n > 0 {
		c, err := in.ReadAt(buf[:min(int64(len(buf)), n)], roff)
		if c > 0 {
			if _, werr := out.WriteAt(buf[:c], woff); werr != nil {
				return werr
			}
			roff, woff, n = roff+int64(c), woff+int64(c), n-int64(c)
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
