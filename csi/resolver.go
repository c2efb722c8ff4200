package csi

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/aws/smithy-go/waiter"
)

// DeviceResolver finds the block device of a disk attached to this machine and proves
// that it is that disk before the node touches it: a stale or wrong by-id link must
// never get another disk formatted or mounted.
type DeviceResolver interface {
	// Resolve returns the device path (/dev/vdb, /dev/loop7) of diskID. It waits (with
	// backoff, until ctx ends) for the device to appear, answers an error wrapping
	// ErrNotFound when it never does, and one wrapping ErrWrongDevice when the device
	// there is another disk.
	Resolve(ctx context.Context, diskID string) (string, error)
}

// ErrWrongDevice says a link names one disk and the device behind it is another.
var ErrWrongDevice = errors.New("device is not the disk its link names")

// ByIDResolver finds disks the way udev presents virtio disks, as
// <DevRoot>/disk/by-id/virtio-<disk-id>, and checks the device's identity from sysfs:
//
//   - a virtio disk's serial (/sys/block/<dev>/serial) is the disk id (the hypervisor
//     truncates it to 20 bytes);
//   - a loop device (the cloud simulator's data plane) is bound to the disk's image,
//     <image-dir>/<disk-id>.img (/sys/block/loopN/loop/backing_file).
//
// A device with neither identity is refused.
type ByIDResolver struct {
	// DevRoot is where disk/by-id lives (default /dev).
	DevRoot string
	// LoopImageDir, when set, is the only directory a loop device's image may be in.
	LoopImageDir string
	// SysBlock is sysfs' block directory (default /sys/block; tests change it).
	SysBlock string
	// Timeout bounds the wait for the link to appear (default 2 minutes; the context's
	// deadline, when earlier, wins).
	Timeout time.Duration
}

// virtioSerialLen is how much of the disk id a virtio serial holds.
const virtioSerialLen = 20

// LinkPath is where the disk's link is expected.
func (r *ByIDResolver) LinkPath(diskID string) string {
	root := r.DevRoot
	if root == "" {
		root = "/dev"
	}
	return filepath.Join(root, "disk", "by-id", "virtio-"+diskID)
}

func (r *ByIDResolver) Resolve(ctx context.Context, diskID string) (string, error) {
	if diskID == "" || strings.ContainsAny(diskID, "/\x00") || diskID == "." || diskID == ".." {
		return "", fmt.Errorf("disk id %q: %w", diskID, ErrNotFound)
	}
	link := r.LinkPath(diskID)
	timeout := r.Timeout
	if timeout <= 0 {
		timeout = 2 * time.Minute
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for attempt := int64(1); ; attempt++ {
		dev, err := filepath.EvalSymlinks(link)
		if err == nil {
			if err := r.verify(dev, diskID); err != nil {
				return "", fmt.Errorf("disk %s: link %s: %w", diskID, link, err)
			}
			return dev, nil
		}
		if !errors.Is(err, os.ErrNotExist) {
			return "", fmt.Errorf("disk %s: resolve %s: %w", diskID, link, err)
		}
		remaining := time.Until(deadline(ctx))
		delay, derr := waiter.ComputeDelay(attempt, 20*time.Millisecond, time.Second, remaining)
		if derr != nil || delay <= 0 {
			return "", fmt.Errorf("disk %s: no device at %s: %w", diskID, link, ErrNotFound)
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return "", fmt.Errorf("disk %s: no device at %s (%v): %w", diskID, link, ctx.Err(), ErrNotFound)
		case <-t.C:
		}
	}
}

func deadline(ctx context.Context) time.Time {
	if d, ok := ctx.Deadline(); ok {
		return d
	}
	return time.Now().Add(time.Hour)
}

// verify proves that dev is diskID.
func (r *ByIDResolver) verify(dev, diskID string) error {
	sys := r.SysBlock
	if sys == "" {
		sys = "/sys/block"
	}
	name := filepath.Base(dev)
	if b, err := os.ReadFile(filepath.Join(sys, name, "loop", "backing_file")); err == nil {
		backing := strings.TrimSuffix(strings.TrimSpace(string(b)), " (deleted)")
		want := diskID + ".img"
		if filepath.Base(backing) != want || (r.LoopImageDir != "" && filepath.Clean(filepath.Dir(backing)) != filepath.Clean(r.LoopImageDir)) {
			return fmt.Errorf("%w: %s is bound to %s, not to the image of %s", ErrWrongDevice, dev, backing, diskID)
		}
		return nil
	}
	b, err := os.ReadFile(filepath.Join(sys, name, "serial"))
	if err != nil {
		return fmt.Errorf("%w: %s has neither a serial nor a loop backing file, so it cannot be proven to be %s", ErrWrongDevice, dev, diskID)
	}
	serial := strings.TrimSpace(string(b))
	want := diskID
	if len(want) > virtioSerialLen {
		want = want[:virtioSerialLen]
	}
	if serial != want {
		return fmt.Errorf("%w: %s has serial %q, not %q", ErrWrongDevice, dev, serial, want)
	}
	return nil
}
