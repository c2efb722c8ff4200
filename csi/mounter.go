package csi

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
	mountutils "k8s.io/mount-utils"
	utilexec "k8s.io/utils/exec"
)

// Mounter is what the node does to this machine's filesystems and block devices.
type Mounter interface {
	// FormatAndMount mounts device at target, formatting it first only when it holds no
	// filesystem at all (and never when options contain "ro").
	FormatAndMount(device, target, fsType string, options []string) error
	// BindMount bind-mounts source (a directory or a device node) at target.
	BindMount(source, target string, readOnly bool) error
	// Unmount unmounts target if it is a mount point and removes it; a target that is
	// already gone is fine.
	Unmount(target string) error
	// UnmountKeep unmounts target if it is a mount point and leaves the path.
	UnmountKeep(target string) error
	// IsMountPoint reports whether path is a mount point (false when it does not exist).
	IsMountPoint(path string) (bool, error)
	// MountsOf lists the mount points that show device: its filesystem mounts and the
	// bind mounts of the device node itself.
	MountsOf(device string) ([]string, error)
	// Resize grows the filesystem on device, mounted at mountPath, to fill the device.
	Resize(device, mountPath string) error
	// SetReadOnly makes the block device refuse writes (BLKROSET).
	SetReadOnly(device string) error
	// IsReadOnly reports whether the block device refuses writes.
	IsReadOnly(device string) (bool, error)
	// DeviceSize is the size of the block device in bytes.
	DeviceSize(device string) (int64, error)
	// Stats reports the usage of the filesystem mounted at path.
	Stats(path string) (*VolumeStats, error)
}

// VolumeStats is a filesystem's usage.
type VolumeStats struct {
	TotalBytes, AvailableBytes, UsedBytes int64
	TotalInodes, FreeInodes, UsedInodes   int64
}

// systemMounter is Mounter on this machine: k8s.io/mount-utils for mounts, formatting
// and resizing, ioctls and sysfs for the block devices.
type systemMounter struct {
	m       *mountutils.SafeFormatAndMount
	resizer *mountutils.ResizeFs
}

// NewMounter returns the Mounter of this machine.
func NewMounter() Mounter {
	ex := utilexec.New()
	return &systemMounter{
		m:       mountutils.NewSafeFormatAndMount(mountutils.New(""), ex),
		resizer: mountutils.NewResizeFs(ex),
	}
}

func (s *systemMounter) FormatAndMount(device, target, fsType string, options []string) error {
	return s.m.FormatAndMount(device, target, fsType, options)
}

func (s *systemMounter) BindMount(source, target string, readOnly bool) error {
	opts := []string{"bind"}
	if readOnly {
		opts = append(opts, "ro")
	}
	return s.m.Mount(source, target, "", opts)
}

func (s *systemMounter) Unmount(target string) error {
	return mountutils.CleanupMountPoint(target, s.m, true)
}

func (s *systemMounter) UnmountKeep(target string) error {
	mounted, err := s.IsMountPoint(target)
	if err != nil || !mounted {
		return err
	}
	return s.m.Unmount(target)
}

func (s *systemMounter) IsMountPoint(path string) (bool, error) {
	ok, err := s.m.IsMountPoint(path)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	return ok, err
}

func (s *systemMounter) MountsOf(device string) ([]string, error) {
	var st unix.Stat_t
	if err := unix.Stat(device, &st); err != nil {
		return nil, fmt.Errorf("stat %s: %w", device, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFBLK {
		return nil, fmt.Errorf("%s is not a block device", device)
	}
	major, minor := int(unix.Major(st.Rdev)), int(unix.Minor(st.Rdev))
	infos, err := mountutils.ParseMountInfo("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	var out []string
	for _, mi := range infos {
		if mi.Major == major && mi.Minor == minor {
			out = append(out, mi.MountPoint)
			continue
		}
		// A raw block volume is the device node bind-mounted onto a file.
		var t unix.Stat_t
		if mi.FsType == "devtmpfs" || mi.FsType == "tmpfs" {
			if unix.Stat(mi.MountPoint, &t) == nil && t.Mode&unix.S_IFMT == unix.S_IFBLK && t.Rdev == st.Rdev {
				out = append(out, mi.MountPoint)
			}
		}
	}
	return out, nil
}

func (s *systemMounter) Resize(device, mountPath string) error {
	need, err := s.resizer.NeedResize(device, mountPath)
	if err != nil {
		return fmt.Errorf("check whether %s needs resizing: %w", device, err)
	}
	if !need {
		return nil
	}
	if _, err := s.resizer.Resize(device, mountPath); err != nil {
		return fmt.Errorf("resize filesystem on %s: %w", device, err)
	}
	return nil
}

func (s *systemMounter) SetReadOnly(device string) error {
	f, err := os.OpenFile(device, os.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open %s: %w", device, err)
	}
	defer f.Close()
	if err := unix.IoctlSetPointerInt(int(f.Fd()), unix.BLKROSET, 1); err != nil {
		return fmt.Errorf("BLKROSET %s: %w", device, err)
	}
	return nil
}

func (s *systemMounter) IsReadOnly(device string) (bool, error) {
	b, err := os.ReadFile(filepath.Join("/sys/class/block", filepath.Base(device), "ro"))
	if err != nil {
		return false, fmt.Errorf("read-only flag of %s: %w", device, err)
	}
	return strings.TrimSpace(string(b)) == "1", nil
}

func (s *systemMounter) DeviceSize(device string) (int64, error) {
	b, err := os.ReadFile(filepath.Join("/sys/class/block", filepath.Base(device), "size"))
	if err != nil {
		return 0, fmt.Errorf("size of %s: %w", device, err)
	}
	sectors, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("size of %s: %w", device, err)
	}
	return sectors * 512, nil
}

func (s *systemMounter) Stats(path string) (*VolumeStats, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return nil, fmt.Errorf("statfs %s: %w", path, err)
	}
	bs := int64(st.Bsize)
	return &VolumeStats{
		TotalBytes:     int64(st.Blocks) * bs,
		AvailableBytes: int64(st.Bavail) * bs,
		UsedBytes:      int64(st.Blocks-st.Bfree) * bs,
		TotalInodes:    int64(st.Files),
		FreeInodes:     int64(st.Ffree),
		UsedInodes:     int64(st.Files - st.Ffree),
	}, nil
}
