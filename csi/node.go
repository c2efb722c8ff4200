package csi

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"k8s.io/klog/v2"
)

type nodeServer struct {
	csi.UnimplementedNodeServer
	opts  Options
	locks inflight
}

func (s *nodeServer) NodeGetCapabilities(context.Context, *csi.NodeGetCapabilitiesRequest) (*csi.NodeGetCapabilitiesResponse, error) {
	out := &csi.NodeGetCapabilitiesResponse{}
	for _, c := range nodeCapabilities {
		out.Capabilities = append(out.Capabilities, &csi.NodeServiceCapability{
			Type: &csi.NodeServiceCapability_Rpc{Rpc: &csi.NodeServiceCapability_RPC{Type: c}},
		})
	}
	return out, nil
}

func (s *nodeServer) NodeGetInfo(context.Context, *csi.NodeGetInfoRequest) (*csi.NodeGetInfoResponse, error) {
	out := &csi.NodeGetInfoResponse{NodeId: s.opts.NodeID, MaxVolumesPerNode: s.opts.MaxVolumesPerNode}
	if s.opts.NodeZone != "" {
		out.AccessibleTopology = &csi.Topology{Segments: map[string]string{TopologyKey: s.opts.NodeZone}}
	}
	return out, nil
}

// readOnlyAttachment reports whether the controller published the volume read-only.
func readOnlyAttachment(publishContext map[string]string) bool {
	return publishContext[PublishReadOnly] == "true"
}

// device resolves the volume's device, mapping the resolver's errors to codes.
func (s *nodeServer) device(ctx context.Context, volumeID string, publishContext map[string]string) (string, error) {
	if id := publishContext[PublishDiskID]; id != "" && id != volumeID {
		return "", status.Errorf(codes.InvalidArgument, "volume %s: the publish context names disk %s", volumeID, id)
	}
	dev, err := s.opts.Resolver.Resolve(ctx, volumeID)
	switch {
	case errors.Is(err, ErrWrongDevice):
		return "", status.Errorf(codes.FailedPrecondition, "volume %s: %v; nothing was touched", volumeID, err)
	case errors.Is(err, ErrNotFound):
		return "", status.Errorf(codes.NotFound, "volume %s is not attached to this node: %v", volumeID, err)
	case err != nil:
		return "", status.Errorf(codes.Internal, "volume %s: %v", volumeID, err)
	}
	return dev, nil
}

func (s *nodeServer) NodeStageVolume(ctx context.Context, req *csi.NodeStageVolumeRequest) (*csi.NodeStageVolumeResponse, error) {
	id, staging, c := req.GetVolumeId(), req.GetStagingTargetPath(), req.GetVolumeCapability()
	switch {
	case id == "":
		return nil, invalid("NodeStageVolume: the volume id is missing")
	case staging == "":
		return nil, invalid("NodeStageVolume: volume %s: the staging target path is missing", id)
	case c == nil:
		return nil, invalid("NodeStageVolume: volume %s: the volume capability is missing", id)
	}
	if err := checkCapability(c); err != nil {
		return nil, invalid("volume %s: %v", id, err)
	}
	release, err := s.locks.acquire(id)
	if err != nil {
		return nil, err
	}
	defer release()
	dev, err := s.device(ctx, id, req.GetPublishContext())
	if err != nil {
		return nil, err
	}
	m := s.opts.Mounter
	readOnly := readOnlyAttachment(req.GetPublishContext()) || isReadOnlyMode(c.GetAccessMode().GetMode())
	devRO, err := m.IsReadOnly(dev)
	if err != nil {
		return nil, status.Errorf(codes.Internal, "volume %s: %v", id, err)
	}
	if !readOnly && devRO {
		return nil, status.Errorf(codes.FailedPrecondition, "volume %s: device %s is read-only (a read-only attachment); a read-write stage is refused", id, dev)
	}
	if readOnly && !devRO {
		// Only a device nobody on this node writes through: a read-write stage of the
		// same attachment (another PV on the same disk) keeps its writes.
		users, err := m.MountsOf(dev)
		if err != nil {
			return nil, status.Errorf(codes.Internal, "volume %s: %v", id, err)
		}
		if len(users) == 0 {
			if err := m.SetReadOnly(dev); err != nil {
				return nil, status.Errorf(codes.Internal, "volume %s: make %s read-only: %v", id, dev, err)
			}
		}
	}
	if c.GetBlock() != nil {
		// A raw block volume is published straight from the device.
		return &csi.NodeStageVolumeResponse{}, nil
	}

	mounted, err := m.IsMountPoint(staging)
	if err != nil {
		return nil, status.Errorf(codes.Internal, "volume %s: check %s: %v", id, staging, err)
	}
	if mounted {
		users, err := m.MountsOf(dev)
		if err != nil {
			return nil, status.Errorf(codes.Internal, "volume %s: %v", id, err)
		}
		if !slices.Contains(users, filepath.Clean(staging)) {
			return nil, status.Errorf(codes.AlreadyExists, "volume %s: %s is already a mount of another device", id, staging)
		}
		return &csi.NodeStageVolumeResponse{}, nil
	}
	if err := os.MkdirAll(staging, 0o750); err != nil {
		return nil, status.Errorf(codes.Internal, "volume %s: create %s: %v", id, staging, err)
	}
	fsType := c.GetMount().GetFsType()
	if fsType == "" {
		fsType = req.GetVolumeContext()[ContextFSType]
	}
	if fsType == "" {
		fsType = defaultFSType
	}
	opts := slices.Clone(c.GetMount().GetMountFlags())
	if readOnly {
		opts = append(opts, "ro")
		if fsType == "ext4" || fsType == "ext3" {
			// A read-only ext4 mount still replays its journal unless told not to, which
			// writes to the device: a reader must not.
			opts = append(opts, "noload")
		}
	}
	start := time.Now()
	if !readOnly {
		// The disk may have grown while it was not staged (expanded while detached, or an
		// online resize that failed): fill it before the pod sees the filesystem.
		if err := m.GrowUnmounted(dev); err != nil {
			return nil, status.Errorf(codes.Internal, "volume %s: %v", id, err)
		}
	}
	if err := m.FormatAndMount(dev, staging, fsType, opts); err != nil {
		return nil, status.Errorf(codes.Internal, "volume %s: format and mount %s at %s: %v", id, dev, staging, err)
	}
	if !readOnly && fsType == "xfs" {
		if err := m.Resize(dev, staging); err != nil {
			return nil, status.Errorf(codes.Internal, "volume %s: %v", id, err)
		}
	}
	klog.InfoS("Volume staged", "volume", id, "device", dev, "path", staging, "fsType", fsType, "readOnly", readOnly, "duration", time.Since(start))
	return &csi.NodeStageVolumeResponse{}, nil
}

func (s *nodeServer) NodeUnstageVolume(ctx context.Context, req *csi.NodeUnstageVolumeRequest) (*csi.NodeUnstageVolumeResponse, error) {
	id, staging := req.GetVolumeId(), req.GetStagingTargetPath()
	switch {
	case id == "":
		return nil, invalid("NodeUnstageVolume: the volume id is missing")
	case staging == "":
		return nil, invalid("NodeUnstageVolume: volume %s: the staging target path is missing", id)
	}
	release, err := s.locks.acquire(id)
	if err != nil {
		return nil, err
	}
	defer release()
	m := s.opts.Mounter
	if err := m.UnmountKeep(staging); err != nil {
		return nil, status.Errorf(codes.Internal, "volume %s: unmount %s: %v", id, staging, err)
	}
	// Undo the read-only flag a read-only stage set, once nothing on this node uses the
	// device: it outlives the attachment on some devices (loop), and a later read-write
	// attachment must not inherit it.
	// One look, no waiting: a volume already detached has nothing to undo.
	rctx, cancel := context.WithTimeout(ctx, 10*time.Millisecond)
	defer cancel()
	if dev, err := s.opts.Resolver.Resolve(rctx, id); err == nil {
		if users, err := m.MountsOf(dev); err == nil && len(users) == 0 {
			if err := m.ClearReadOnly(dev); err != nil {
				klog.ErrorS(err, "Clear the read-only flag of an unstaged volume", "volume", id, "device", dev)
			}
		}
	}
	klog.V(2).InfoS("Volume unstaged", "volume", id, "path", staging)
	return &csi.NodeUnstageVolumeResponse{}, nil
}

func (s *nodeServer) NodePublishVolume(ctx context.Context, req *csi.NodePublishVolumeRequest) (*csi.NodePublishVolumeResponse, error) {
	id, target, staging, c := req.GetVolumeId(), req.GetTargetPath(), req.GetStagingTargetPath(), req.GetVolumeCapability()
	switch {
	case id == "":
		return nil, invalid("NodePublishVolume: the volume id is missing")
	case target == "":
		return nil, invalid("NodePublishVolume: volume %s: the target path is missing", id)
	case c == nil:
		return nil, invalid("NodePublishVolume: volume %s: the volume capability is missing", id)
	case staging == "":
		return nil, invalid("NodePublishVolume: volume %s: the staging target path is missing (the volume must be staged first)", id)
	}
	if err := checkCapability(c); err != nil {
		return nil, invalid("volume %s: %v", id, err)
	}
	release, err := s.locks.acquire(id)
	if err != nil {
		return nil, err
	}
	defer release()
	m := s.opts.Mounter
	dev, err := s.device(ctx, id, req.GetPublishContext())
	if err != nil {
		return nil, err
	}
	readOnly := req.GetReadonly() || readOnlyAttachment(req.GetPublishContext()) || isReadOnlyMode(c.GetAccessMode().GetMode())
	devRO, err := m.IsReadOnly(dev)
	if err != nil {
		return nil, status.Errorf(codes.Internal, "volume %s: %v", id, err)
	}
	if !readOnly && devRO {
		return nil, status.Errorf(codes.FailedPrecondition, "volume %s is attached read-only on this node; a read-write publish is refused", id)
	}
	target = filepath.Clean(target)
	users, err := m.MountsOf(dev)
	if err != nil {
		return nil, status.Errorf(codes.Internal, "volume %s: %v", id, err)
	}
	if slices.Contains(users, target) {
		return &csi.NodePublishVolumeResponse{}, nil
	}
	if c.GetAccessMode().GetMode() == csi.VolumeCapability_AccessMode_SINGLE_NODE_SINGLE_WRITER {
		for _, u := range users {
			if u != filepath.Clean(staging) {
				return nil, status.Errorf(codes.FailedPrecondition, "volume %s (%s) is already published at %s", id, c.GetAccessMode().GetMode(), u)
			}
		}
	}
	source := staging
	if c.GetBlock() != nil {
		source = dev
		if err := os.MkdirAll(filepath.Dir(target), 0o750); err != nil {
			return nil, status.Errorf(codes.Internal, "volume %s: create %s: %v", id, filepath.Dir(target), err)
		}
		f, err := os.OpenFile(target, os.O_CREATE|os.O_RDONLY, 0o640)
		if err != nil {
			return nil, status.Errorf(codes.Internal, "volume %s: create %s: %v", id, target, err)
		}
		f.Close()
	} else {
		if !slices.Contains(users, filepath.Clean(staging)) {
			return nil, status.Errorf(codes.FailedPrecondition, "volume %s is not staged at %s", id, staging)
		}
		if err := os.MkdirAll(target, 0o750); err != nil {
			return nil, status.Errorf(codes.Internal, "volume %s: create %s: %v", id, target, err)
		}
	}
	if err := m.BindMount(source, target, readOnly); err != nil {
		return nil, status.Errorf(codes.Internal, "volume %s: bind %s at %s: %v", id, source, target, err)
	}
	klog.V(2).InfoS("Volume published", "volume", id, "path", target, "readOnly", readOnly, "block", c.GetBlock() != nil)
	return &csi.NodePublishVolumeResponse{}, nil
}

func (s *nodeServer) NodeUnpublishVolume(ctx context.Context, req *csi.NodeUnpublishVolumeRequest) (*csi.NodeUnpublishVolumeResponse, error) {
	id, target := req.GetVolumeId(), req.GetTargetPath()
	switch {
	case id == "":
		return nil, invalid("NodeUnpublishVolume: the volume id is missing")
	case target == "":
		return nil, invalid("NodeUnpublishVolume: volume %s: the target path is missing", id)
	}
	release, err := s.locks.acquire(id)
	if err != nil {
		return nil, err
	}
	defer release()
	if err := s.opts.Mounter.Unmount(target); err != nil {
		return nil, status.Errorf(codes.Internal, "volume %s: unmount %s: %v", id, target, err)
	}
	klog.V(2).InfoS("Volume unpublished", "volume", id, "path", target)
	return &csi.NodeUnpublishVolumeResponse{}, nil
}

// volumeAt checks that path holds volume id: a mount of its device (or the device node
// itself, for a block volume) and returns the device and whether it is a block volume.
func (s *nodeServer) volumeAt(ctx context.Context, id, path string) (string, bool, error) {
	st, err := os.Stat(path)
	if errors.Is(err, os.ErrNotExist) {
		return "", false, status.Errorf(codes.NotFound, "volume %s: path %s does not exist", id, path)
	}
	if err != nil {
		return "", false, status.Errorf(codes.Internal, "volume %s: %v", id, err)
	}
	// A published volume's device is there already: no waiting for it to appear.
	rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	dev, err := s.device(rctx, id, nil)
	if err != nil {
		return "", false, err
	}
	users, err := s.opts.Mounter.MountsOf(dev)
	if err != nil {
		return "", false, status.Errorf(codes.Internal, "volume %s: %v", id, err)
	}
	if !slices.Contains(users, filepath.Clean(path)) {
		return "", false, status.Errorf(codes.NotFound, "volume %s is not mounted at %s (the mount is gone)", id, path)
	}
	return dev, st.Mode()&os.ModeDevice != 0, nil
}

func (s *nodeServer) NodeGetVolumeStats(ctx context.Context, req *csi.NodeGetVolumeStatsRequest) (*csi.NodeGetVolumeStatsResponse, error) {
	id, path := req.GetVolumeId(), req.GetVolumePath()
	switch {
	case id == "":
		return nil, invalid("NodeGetVolumeStats: the volume id is missing")
	case path == "":
		return nil, invalid("NodeGetVolumeStats: volume %s: the volume path is missing", id)
	}
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		return nil, status.Errorf(codes.NotFound, "volume %s: path %s does not exist", id, path)
	}
	dev, block, err := s.volumeAt(ctx, id, path)
	if err != nil {
		return nil, err
	}
	if block {
		size, err := s.opts.Mounter.DeviceSize(dev)
		if err != nil {
			return nil, status.Errorf(codes.Internal, "volume %s: %v", id, err)
		}
		return &csi.NodeGetVolumeStatsResponse{Usage: []*csi.VolumeUsage{{Unit: csi.VolumeUsage_BYTES, Total: size}}}, nil
	}
	st, err := s.opts.Mounter.Stats(path)
	if err != nil {
		return nil, status.Errorf(codes.Internal, "volume %s: %v", id, err)
	}
	return &csi.NodeGetVolumeStatsResponse{Usage: []*csi.VolumeUsage{
		{Unit: csi.VolumeUsage_BYTES, Total: st.TotalBytes, Available: st.AvailableBytes, Used: st.UsedBytes},
		{Unit: csi.VolumeUsage_INODES, Total: st.TotalInodes, Available: st.FreeInodes, Used: st.UsedInodes},
	}}, nil
}

func (s *nodeServer) NodeExpandVolume(ctx context.Context, req *csi.NodeExpandVolumeRequest) (*csi.NodeExpandVolumeResponse, error) {
	id, path := req.GetVolumeId(), req.GetVolumePath()
	switch {
	case id == "":
		return nil, invalid("NodeExpandVolume: the volume id is missing")
	case path == "":
		return nil, invalid("NodeExpandVolume: volume %s: the volume path is missing", id)
	}
	if c := req.GetVolumeCapability(); c != nil {
		if err := checkCapability(c); err != nil {
			return nil, invalid("volume %s: %v", id, err)
		}
	}
	release, err := s.locks.acquire(id)
	if err != nil {
		return nil, err
	}
	defer release()
	dev, block, err := s.volumeAt(ctx, id, path)
	if err != nil {
		return nil, err
	}
	m := s.opts.Mounter
	size, err := m.DeviceSize(dev)
	if err != nil {
		return nil, status.Errorf(codes.Internal, "volume %s: %v", id, err)
	}
	if req.GetCapacityRange().GetRequiredBytes() > size {
		return nil, status.Errorf(codes.OutOfRange, "volume %s: device %s has %d bytes, less than the %d required; expand the volume first", id, dev, size, req.GetCapacityRange().GetRequiredBytes())
	}
	if block || req.GetVolumeCapability().GetBlock() != nil {
		return &csi.NodeExpandVolumeResponse{CapacityBytes: size}, nil
	}
	if ro, _ := m.IsReadOnly(dev); ro {
		return nil, status.Errorf(codes.FailedPrecondition, "volume %s is read-only on this node; a writer's node grows the filesystem", id)
	}
	if err := m.Resize(dev, path); err != nil {
		return nil, status.Errorf(codes.Internal, "volume %s: %v", id, err)
	}
	klog.InfoS("Volume filesystem expanded", "volume", id, "device", dev, "path", path, "bytes", size)
	return &csi.NodeExpandVolumeResponse{CapacityBytes: size}, nil
}

func unixTime(sec int64) time.Time { return time.Unix(sec, 0) }
