package dataplane

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// The kernel interface of loop devices: /dev/loop-control hands out free device numbers,
// LOOP_CONFIGURE binds a backing file in one call, LOOP_CLR_FD unbinds it, and sysfs tells
// what each device is bound to. Everything goes through ioctls, so the data plane needs no
// losetup binary.

const (
	loopControl = "/dev/loop-control"
	sysBlock    = "/sys/block"
)

// loopDevice is one bound loop device as sysfs reports it.
type loopDevice struct {
	Path     string // /dev/loopN
	Backing  string // backing file path; " (deleted)" suffix stripped
	Deleted  bool   // the backing file was unlinked
	ReadOnly bool
}

// Available reports whether this machine can create loop devices, and why not.
func Available() error {
	f, err := os.OpenFile(loopControl, os.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open %s: %w", loopControl, err)
	}
	return f.Close()
}

// attachLoop binds file to a free loop device and returns its path.
func attachLoop(file string, readOnly bool) (string, error) {
	ctl, err := os.OpenFile(loopControl, os.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return "", fmt.Errorf("open %s: %w", loopControl, err)
	}
	defer ctl.Close()
	flags := os.O_RDWR
	if readOnly {
		flags = os.O_RDONLY
	}
	back, err := os.OpenFile(file, flags|unix.O_CLOEXEC, 0)
	if err != nil {
		return "", fmt.Errorf("open backing file: %w", err)
	}
	defer back.Close()
	cfg := unix.LoopConfig{Fd: uint32(back.Fd())}
	if readOnly {
		cfg.Info.Flags = unix.LO_FLAGS_READ_ONLY
	}
	copy(cfg.Info.File_name[:len(cfg.Info.File_name)-1], file)

	// Another process (a CSI test, losetup) may take the free device between GET_FREE and
	// CONFIGURE; the kernel then answers EBUSY and we ask for another one.
	var lastErr error
	for range 20 {
		n, err := unix.IoctlRetInt(int(ctl.Fd()), unix.LOOP_CTL_GET_FREE)
		if err != nil {
			return "", fmt.Errorf("LOOP_CTL_GET_FREE: %w", err)
		}
		dev := "/dev/loop" + strconv.Itoa(n)
		lf, err := openLoop(dev, n)
		if err != nil {
			return "", err
		}
		err = unix.IoctlLoopConfigure(int(lf.Fd()), &cfg)
		if err == nil && !readOnly {
			// The block layer's read-only flag (BLKROSET, as a node sets for a reader)
			// outlives the binding: a fresh read-write disk must not inherit it.
			err = unix.IoctlSetPointerInt(int(lf.Fd()), unix.BLKROSET, 0)
			if err != nil {
				_ = unix.IoctlSetInt(int(lf.Fd()), unix.LOOP_CLR_FD, 0)
				lf.Close()
				return "", fmt.Errorf("BLKROSET 0 %s: %w", dev, err)
			}
		}
		lf.Close()
		if err == nil {
			return dev, nil
		}
		lastErr = err
		if !errors.Is(err, unix.EBUSY) {
			return "", fmt.Errorf("LOOP_CONFIGURE %s: %w", dev, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return "", fmt.Errorf("no free loop device after 20 tries: %w", lastErr)
}

// openLoop opens /dev/loopN, creating the node when /dev is not a devtmpfs that does it
// for us (a container's private /dev).
func openLoop(dev string, n int) (*os.File, error) {
	for i := 0; ; i++ {
		f, err := os.OpenFile(dev, os.O_RDWR|unix.O_CLOEXEC, 0)
		if err == nil {
			return f, nil
		}
		if !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("open %s: %w", dev, err)
		}
		if i == 0 {
			// devtmpfs creates the node asynchronously right after LOOP_CTL_GET_FREE adds it.
			time.Sleep(10 * time.Millisecond)
			continue
		}
		if err := unix.Mknod(dev, unix.S_IFBLK|0o660, int(unix.Mkdev(7, uint32(n)))); err != nil && !errors.Is(err, os.ErrExist) {
			return nil, fmt.Errorf("create %s: %w", dev, err)
		}
		if i > 2 {
			return nil, fmt.Errorf("open %s: %w", dev, err)
		}
	}
}

// detachLoop unbinds dev if it is still bound to file. A device bound to something else
// (the number was reused after a crash) is left alone. A device still in use (mounted)
// is detached lazily by the kernel when its last user closes it.
func detachLoop(dev, file string) error {
	cur, err := readLoop(filepath.Base(dev))
	if err != nil {
		return err
	}
	if cur == nil || cur.Backing != file {
		return nil
	}
	f, err := os.OpenFile(dev, os.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		return fmt.Errorf("open %s: %w", dev, err)
	}
	defer f.Close()
	if err := unix.IoctlSetInt(int(f.Fd()), unix.LOOP_CLR_FD, 0); err != nil && !errors.Is(err, unix.ENXIO) {
		return fmt.Errorf("LOOP_CLR_FD %s: %w", dev, err)
	}
	return nil
}

// setCapacity makes dev pick up its backing file's new size.
func setCapacity(dev string) error {
	f, err := os.OpenFile(dev, os.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open %s: %w", dev, err)
	}
	defer f.Close()
	if err := unix.IoctlSetInt(int(f.Fd()), unix.LOOP_SET_CAPACITY, 0); err != nil {
		return fmt.Errorf("LOOP_SET_CAPACITY %s: %w", dev, err)
	}
	return nil
}

// flushLoop writes the device's dirty buffers through to the backing file, so a copy of
// the file taken next holds everything written to the device so far.
func flushLoop(dev string) error {
	f, err := os.OpenFile(dev, os.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open %s: %w", dev, err)
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return fmt.Errorf("flush %s: %w", dev, err)
	}
	return nil
}

// readLoop reads one loop device from sysfs; nil when it is not bound.
func readLoop(name string) (*loopDevice, error) {
	b, err := os.ReadFile(filepath.Join(sysBlock, name, "loop", "backing_file"))
	if err != nil {
		// Not bound (ENXIO), or removed since it was listed (ENOENT, ENODEV: another
		// program's loop device going away between the glob and the read).
		if errors.Is(err, os.ErrNotExist) || errors.Is(err, unix.ENXIO) || errors.Is(err, unix.ENODEV) {
			return nil, nil
		}
		return nil, fmt.Errorf("read %s backing file: %w", name, err)
	}
	d := &loopDevice{Path: "/dev/" + name, Backing: strings.TrimSpace(string(b))}
	if s, ok := strings.CutSuffix(d.Backing, " (deleted)"); ok {
		d.Backing, d.Deleted = s, true
	}
	d.ReadOnly = bindingReadOnly(d.Path, name)
	return d, nil
}

// listLoops returns every bound loop device.
func listLoops() ([]loopDevice, error) {
	names, err := filepath.Glob(filepath.Join(sysBlock, "loop*"))
	if err != nil {
		return nil, err
	}
	var out []loopDevice
	for _, p := range names {
		d, err := readLoop(filepath.Base(p))
		if err != nil {
			return nil, err
		}
		if d != nil {
			out = append(out, *d)
		}
	}
	return out, nil
}

// deviceSize returns the size in bytes of the block device dev.
func deviceSize(dev string) (int64, error) {
	b, err := os.ReadFile(filepath.Join(sysBlock, filepath.Base(dev), "size"))
	if err != nil {
		return 0, fmt.Errorf("read size of %s: %w", dev, err)
	}
	sectors, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("parse size of %s: %w", dev, err)
	}
	return sectors * 512, nil
}

// bindingReadOnly reports whether the loop device was bound read-only (LO_FLAGS_READ_ONLY).
// sysfs' ro flag is not that: it also reflects a guest's BLKROSET (a CSI node making a
// reader's device read-only), which does not change how the disk is attached.
func bindingReadOnly(dev, name string) bool {
	if f, err := os.OpenFile(dev, os.O_RDONLY|unix.O_CLOEXEC, 0); err == nil {
		info, err := unix.IoctlLoopGetStatus64(int(f.Fd()))
		f.Close()
		if err == nil {
			return info.Flags&unix.LO_FLAGS_READ_ONLY != 0
		}
	}
	ro, err := os.ReadFile(filepath.Join(sysBlock, name, "ro"))
	return err == nil && strings.TrimSpace(string(ro)) == "1"
}
