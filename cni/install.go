package cni

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// InstallPlugin copies the binary at src into dstDir as PluginType, atomically: a
// runtime that execs the plugin while the DaemonSet upgrades it sees either the old
// file or the new one, never a partial copy (and no "text file busy").
func InstallPlugin(src, dstDir string) (string, error) {
	in, err := os.Open(src)
	if err != nil {
		return "", fmt.Errorf("install %s: %w", src, err)
	}
	defer in.Close()
	dst := filepath.Join(dstDir, PluginType)
	if err := writeAtomic(dst, 0o755, func(w io.Writer) error {
		_, err := io.Copy(w, in)
		return err
	}); err != nil {
		return "", fmt.Errorf("install %s as %s: %w", src, dst, err)
	}
	return dst, nil
}

// WriteFileAtomic replaces path with data: temp file in the same directory, fsync,
// rename, fsync of the directory. The temp name starts with a dot and has no
// .conf/.conflist/.json suffix, so a runtime scanning the directory never loads it.
func WriteFileAtomic(path string, data []byte, mode os.FileMode) error {
	return writeAtomic(path, mode, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}

func writeAtomic(path string, mode os.FileMode, fill func(io.Writer) error) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-")
	if err != nil {
		return err
	}
	done := false
	defer func() {
		if !done {
			_ = tmp.Close()
			_ = os.Remove(tmp.Name())
		}
	}()
	if err := fill(tmp); err != nil {
		return err
	}
	if err := tmp.Chmod(mode); err != nil {
		return err
	}
	if err := tmp.Sync(); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	done = true
	return syncDir(dir)
}
