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
	// GrowUnmounted grows an unmounted ext2/3/4 filesystem to fill its device (check,
	// then resize2fs); it does nothing for a filesystem that fills it already, for other
	// filesystems (xfs grows only mounted) and for a blank device.
	GrowUnmounted(device string) error
	// SetReadOnly makes the block device refuse writes (BLKROSET); ClearReadOnly undoes
	// that (a read-only attachment stays read-only: the hypervisor's flag is its own).
	SetReadOnly(device string) error
	ClearReadOnly(device string) error
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
		m:       mountutils.NewSafeFormatAndMount(mountutils.NewWithoutSystemd(""), ex),
		resizer: mountutils.NewResizeFs(ex),
	}
}

func (s *systemMounter) FormatAndMount(device, target, fsType string, options []string) error {
	return s.m.FormatAndMount(device, target, fsType, options)
}

// BindMount uses mount(2) directly: a bind mount needs no helper binary, and a pod's
// start waits for every fork and exec on this path.
func (s *systemMounter) BindMount(source, target string, readOnly bool) error {
	if err := unix.Mount(source, target, "", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("bind %s at %s: %w", source, target, err)
	}
	if readOnly {
		// A bind mount takes MS_RDONLY only on a remount of itself.
		if err := unix.Mount("", target, "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY, ""); err != nil {
			_ = unix.Unmount(target, 0)
			return fmt.Errorf("make the bind mount %s read-only: %w", target, err)
		}
	}
	return nil
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

func (s *systemMounter) GrowUnmounted(device string) error {
	ext, err := hasExtSuperblock(device)
	if err != nil || !ext {
		return err
	}
	fsBytes, err := s.extSize(device)
	if err != nil {
		return err
	}
	devBytes, err := s.DeviceSize(device)
	if err != nil {
		return err
	}
	// resize2fs may leave a sliver short of a block group off; only real growth counts.
	if devBytes <= fsBytes+growSlack {
		return nil
	}
	// resize2fs refuses an unmounted filesystem that was not just checked; -p repairs
	// only what is safe and fails on the rest (exit status 4 and up).
	if out, err := s.m.Exec.Command("e2fsck", "-f", "-p", device).CombinedOutput(); err != nil {
		var ee utilexec.ExitError
		if !errors.As(err, &ee) || ee.ExitStatus() >= 4 {
			return fmt.Errorf("e2fsck -f -p %s: %w: %s", device, err, out)
		}
	}
	if out, err := s.m.Exec.Command("resize2fs", device).CombinedOutput(); err != nil {
		return fmt.Errorf("resize2fs %s: %w: %s", device, err, out)
	}
	return nil
}

// hasExtSuperblock reads the ext2/3/4 magic (0xEF53 at byte 1080): two bytes instead of
// a blkid run, on the path every new volume takes.
func hasExtSuperblock(device string) (bool, error) {
	f, err := os.Open(device)
	if err != nil {
		return false, fmt.Errorf("open %s: %w", device, err)
	}
	defer f.Close()
	var magic [2]byte
	if _, err := f.ReadAt(magic[:], 1080); err != nil {
		return false, fmt.Errorf("read the superblock of %s: %w", device, err)
	}
	return magic[0] == 0x53 && magic[1] == 0xEF, nil
}

// growSlack is how much larger than its filesystem a device must be to grow it.
const growSlack = 64 << 20

// extSize is the size of the ext filesystem on device (dumpe2fs -h).
func (s *systemMounter) extSize(device string) (int64, error) {
	out, err := s.m.Exec.Command("dumpe2fs", "-h", device).Output()
	if err != nil {
		return 0, fmt.Errorf("dumpe2fs -h %s: %w", device, err)
	}
	var count, size int64
	for _, line := range strings.Split(string(out), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		switch strings.TrimSpace(k) {
		case "Block count":
			count = n
		case "Block size":
			size = n
		default:
			continue
		}
		if err != nil {
			return 0, fmt.Errorf("dumpe2fs -h %s: %s: %w", device, line, err)
		}
	}
	if count == 0 || size == 0 {
		return 0, fmt.Errorf("dumpe2fs -h %s: no block count and size", device)
	}
	return count * size, nil
}

func (s *systemMounter) SetReadOnly(device string) error { return setRO(device, 1) }

func (s *systemMounter) ClearReadOnly(device string) error { return setRO(device, 0) }

func setRO(device string, ro int) error {
	f, err := os.OpenFile(device, os.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open %s: %w", device, err)
	}
	defer f.Close()
	if err := unix.IoctlSetPointerInt(int(f.Fd()), unix.BLKROSET, ro); err != nil {
		return fmt.Errorf("BLKROSET %d %s: %w", ro, device, err)
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
