package csi

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"k8s.io/klog/v2"
)

// StagedVolumes lists the mount points below kubeletDir where kubelet staged this
// driver's volumes (<kubelet>/plugins/kubernetes.io/csi/<driver>/...), read from a
// mountinfo file (/proc/self/mountinfo).
func StagedVolumes(mountinfo, kubeletDir, driver string) ([]string, error) {
	data, err := os.ReadFile(mountinfo)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", mountinfo, err)
	}
	prefix := filepath.Join(kubeletDir, "plugins", "kubernetes.io", "csi", driver) + "/"
	var out []string
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) > 4 && strings.HasPrefix(f[4], prefix) {
			out = append(out, f[4])
		}
	}
	return out, nil
}

// WaitDrained waits until no volume of the driver is staged below kubeletDir: the node
// plugin's preStop, so that it outlives the volumes kubelet still has to unstage. It
// returns an error naming what is left when ctx ends first.
func WaitDrained(ctx context.Context, mountinfo, kubeletDir, driver string, every time.Duration) error {
	for {
		left, err := StagedVolumes(mountinfo, kubeletDir, driver)
		if err != nil {
			return err
		}
		if len(left) == 0 {
			return nil
		}
		klog.InfoS("Waiting for volumes to be unstaged before stopping", "left", len(left))
		select {
		case <-ctx.Done():
			return fmt.Errorf("%d volumes are still staged (%s): %w", len(left), strings.Join(left, ", "), ctx.Err())
		case <-time.After(every):
		}
	}
}
