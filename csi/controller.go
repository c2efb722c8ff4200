package csi

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"
	"k8s.io/klog/v2"
)

// StorageClass parameters CreateVolume understands. Keys with the prefix
// "csi.storage.k8s.io/" belong to the sidecars and are ignored; any other key is an error.
const (
	ParamDiskType  = "diskType"
	ParamFSType    = "fsType"
	ParamEncrypted = "encrypted"
	ParamShareable = "shareable"
	// ParamTags is "key=value,key2=value2": tags the disk gets besides the driver's own.
	ParamTags = "tags"
)

// VolumeContext keys CreateVolume returns and the node reads.
const (
	ContextFSType = "fsType"
)

const sidecarParamPrefix = "csi.storage.k8s.io/"

// maxListEntries bounds a ListVolumes / ListSnapshots page when the CO asks for none
// (or more): one cloud page.
const maxListEntries = 100

type controllerServer struct {
	csi.UnimplementedControllerServer
	opts     Options
	disks    Disks
	types    []DiskType
	locks    inflight
	attached attachments
}

func newControllerServer(opts Options) *controllerServer {
	return &controllerServer{opts: opts, disks: opts.Disks, types: opts.Disks.DiskTypes()}
}

func (s *controllerServer) ControllerGetCapabilities(context.Context, *csi.ControllerGetCapabilitiesRequest) (*csi.ControllerGetCapabilitiesResponse, error) {
	out := &csi.ControllerGetCapabilitiesResponse{}
	for _, c := range controllerCapabilities {
		out.Capabilities = append(out.Capabilities, &csi.ControllerServiceCapability{
			Type: &csi.ControllerServiceCapability_Rpc{Rpc: &csi.ControllerServiceCapability_RPC{Type: c}},
		})
	}
	return out, nil
}

// volumeParams is a validated parameter map.
type volumeParams struct {
	diskType  DiskType
	fsType    string
	encrypted bool
	shareable bool
	tags      map[string]string
}

func (s *controllerServer) parseParams(params map[string]string) (*volumeParams, error) {
	p := &volumeParams{diskType: s.types[0]}
	keys := make([]string, 0, len(params))
	for k := range params {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v := params[k]
		switch {
		case strings.HasPrefix(k, sidecarParamPrefix):
		case k == ParamDiskType:
			i := slices.IndexFunc(s.types, func(t DiskType) bool { return t.Name == v })
			if i < 0 {
				var names []string
				for _, t := range s.types {
					names = append(names, t.Name)
				}
				return nil, invalid("parameter %s: %q is not a disk type (one of %s)", ParamDiskType, v, strings.Join(names, ", "))
			}
			p.diskType = s.types[i]
		case k == ParamFSType:
			if !slices.Contains(fsTypes, v) {
				return nil, invalid("parameter %s: %q is not one of %v", ParamFSType, v, fsTypes)
			}
			p.fsType = v
		case k == ParamEncrypted || k == ParamShareable:
			b, err := strconv.ParseBool(v)
			if err != nil {
				return nil, invalid("parameter %s: %q is not true or false", k, v)
			}
			if k == ParamEncrypted {
				p.encrypted = b
			} else {
				p.shareable = b
			}
		case k == ParamTags:
			tags, err := parseTags(v)
			if err != nil {
				return nil, invalid("parameter %s: %v", ParamTags, err)
			}
			p.tags = tags
		default:
			return nil, invalid("parameter %s is not known (known: %s, %s, %s, %s, %s)", k, ParamDiskType, ParamFSType, ParamEncrypted, ParamShareable, ParamTags)
		}
	}
	return p, nil
}

func parseTags(s string) (map[string]string, error) {
	out := map[string]string{}
	for _, kv := range strings.Split(s, ",") {
		kv = strings.TrimSpace(kv)
		if kv == "" {
			continue
		}
		k, v, ok := strings.Cut(kv, "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" {
			return nil, fmt.Errorf("%q is not key=value", kv)
		}
		if strings.HasPrefix(k, "stratus.io/") {
			return nil, fmt.Errorf("tag %q: the stratus.io/ prefix is the driver's own", k)
		}
		if _, dup := out[k]; dup {
			return nil, fmt.Errorf("tag %q is given twice", k)
		}
		out[k] = strings.TrimSpace(v)
	}
	return out, nil
}

// zoneFor picks the zone from the accessibility requirements: the first preferred
// topology, else the first requisite one, else the default zone.
func (s *controllerServer) zoneFor(req *csi.TopologyRequirement) (string, error) {
	for _, list := range [][]*csi.Topology{req.GetPreferred(), req.GetRequisite()} {
		for _, t := range list {
			if z := t.GetSegments()[TopologyKey]; z != "" {
				return z, nil
			}
		}
	}
	if len(req.GetRequisite()) > 0 || len(req.GetPreferred()) > 0 {
		return "", invalid("accessibility requirements name no %s segment", TopologyKey)
	}
	if s.opts.DefaultZone == "" {
		return "", invalid("no accessibility requirements and the driver has no default zone")
	}
	return s.opts.DefaultZone, nil
}

// zoneAllowed reports whether zone satisfies the requisite topologies (none: any).
func zoneAllowed(req *csi.TopologyRequirement, zone string) bool {
	if len(req.GetRequisite()) == 0 {
		return true
	}
	return slices.ContainsFunc(req.GetRequisite(), func(t *csi.Topology) bool { return t.GetSegments()[TopologyKey] == zone })
}

func (s *controllerServer) CreateVolume(ctx context.Context, req *csi.CreateVolumeRequest) (*csi.CreateVolumeResponse, error) {
	name := req.GetName()
	if name == "" {
		return nil, invalid("CreateVolume: the volume name is missing")
	}
	if err := checkCapabilities(req.GetVolumeCapabilities()); err != nil {
		return nil, invalid("volume %s: %v", name, err)
	}
	params, err := s.parseParams(req.GetParameters())
	if err != nil {
		return nil, err
	}
	for _, c := range req.GetVolumeCapabilities() {
		if isMultiNode(c.GetAccessMode().GetMode()) {
			params.shareable = true
		}
		if fs := c.GetMount().GetFsType(); fs != "" && params.fsType == "" {
			params.fsType = fs
		}
	}
	capRange := req.GetCapacityRange()
	required, limit := capRange.GetRequiredBytes(), capRange.GetLimitBytes()
	if required < 0 || limit < 0 || (limit > 0 && required > limit) {
		return nil, invalid("volume %s: capacity range %d..%d is not a range", name, required, limit)
	}
	zone, err := s.zoneFor(req.GetAccessibilityRequirements())
	if err != nil {
		return nil, err
	}
	release, err := s.locks.acquire("volume-name/" + name)
	if err != nil {
		return nil, err
	}
	defer release()

	spec := DiskSpec{Name: name, Type: params.diskType.Name, Zone: zone, Shareable: params.shareable,
		Encrypted: params.encrypted, Tags: params.tags}
	minGiB := int64(0)
	src := req.GetVolumeContentSource()
	switch {
	case src == nil:
	case src.GetSnapshot() != nil:
		snap, err := s.readySnapshot(ctx, src.GetSnapshot().GetSnapshotId())
		if err != nil {
			return nil, err
		}
		spec.SnapshotID, minGiB = snap.ID, snap.SizeGiB
	case src.GetVolume() != nil:
		srcDisk, err := s.disks.GetDisk(ctx, src.GetVolume().GetVolumeId())
		if err != nil {
			return nil, cloudError("clone source volume "+src.GetVolume().GetVolumeId(), err)
		}
		minGiB = srcDisk.SizeGiB
	default:
		return nil, invalid("volume %s: content source has neither a snapshot nor a volume", name)
	}
	size, ok := params.diskType.RoundSize(max(required, minGiB*GiB), limit)
	if !ok {
		return nil, status.Errorf(codes.OutOfRange, "volume %s: no %s disk fits %d..%d bytes (%d to %d GiB in steps of %d; the source needs %d GiB)",
			name, params.diskType.Name, required, limit, params.diskType.MinGiB, params.diskType.MaxGiB, max(params.diskType.StepGiB, 1), minGiB)
	}
	spec.SizeGiB = size

	d, err := s.disks.FindDisk(ctx, name)
	if err != nil {
		return nil, cloudError("volume "+name+": look up an earlier attempt", err)
	}
	if d == nil {
		if v := src.GetVolume(); v != nil {
			if spec.SnapshotID, err = s.cloneSnapshot(ctx, name, v.GetVolumeId()); err != nil {
				return nil, err
			}
		}
		if d, err = s.disks.CreateDisk(ctx, spec); err != nil {
			return nil, cloudError("volume "+name+": create disk", err)
		}
		klog.InfoS("Volume created", "volume", name, "disk", d.ID, "type", d.Type, "sizeGiB", d.SizeGiB, "zone", d.Zone)
		if v := src.GetVolume(); v != nil {
			// The temporary snapshot of a clone is only needed until the disk exists.
			if err := s.disks.DeleteSnapshot(ctx, spec.SnapshotID); err != nil {
				klog.ErrorS(err, "Delete the temporary snapshot of a clone", "volume", name, "snapshot", spec.SnapshotID)
			}
		}
	}
	if err := compatible(d, spec, required, limit, req.GetAccessibilityRequirements(), src); err != nil {
		return nil, status.Errorf(codes.AlreadyExists, "volume %s exists as disk %s with other properties: %v", name, d.ID, err)
	}
	vol := s.volume(d)
	vol.ContentSource = src
	if params.fsType != "" {
		vol.VolumeContext = map[string]string{ContextFSType: params.fsType}
	}
	return &csi.CreateVolumeResponse{Volume: vol}, nil
}

// cloneSnapshot makes (or finds) the temporary snapshot a clone of srcID is restored from.
func (s *controllerServer) cloneSnapshot(ctx context.Context, volume, srcID string) (string, error) {
	name := "clone-" + volume
	snap, err := s.disks.FindSnapshot(ctx, name)
	if err != nil {
		return "", cloudError("clone "+srcID+": look up temporary snapshot", err)
	}
	if snap == nil {
		if snap, err = s.disks.CreateSnapshot(ctx, srcID, name); err != nil {
			return "", cloudError("clone "+srcID+": snapshot", err)
		}
	}
	if snap, err = s.disks.WaitSnapshotReady(ctx, snap.ID); err != nil {
		return "", cloudError("clone "+srcID+": wait for snapshot "+snap.ID, err)
	}
	return snap.ID, nil
}

func (s *controllerServer) readySnapshot(ctx context.Context, id string) (*Snapshot, error) {
	snap, err := s.disks.GetSnapshot(ctx, id)
	if err != nil {
		return nil, cloudError("source snapshot "+id, err)
	}
	if !snap.Ready {
		return nil, status.Errorf(codes.Unavailable, "source snapshot %s is not ready yet", id)
	}
	return snap, nil
}

// compatible reports how an existing disk differs from what a CreateVolume asks for.
func compatible(d *Disk, spec DiskSpec, required, limit int64, topo *csi.TopologyRequirement, src *csi.VolumeContentSource) error {
	switch {
	case d.SizeGiB*GiB < required:
		return fmt.Errorf("%d GiB is less than the %d bytes required", d.SizeGiB, required)
	case limit > 0 && d.SizeGiB*GiB > limit:
		return fmt.Errorf("%d GiB is more than the %d bytes limit", d.SizeGiB, limit)
	case d.Type != spec.Type:
		return fmt.Errorf("type %s, not %s", d.Type, spec.Type)
	case !zoneAllowed(topo, d.Zone):
		return fmt.Errorf("zone %s is not one of the requisite topologies", d.Zone)
	case spec.Shareable && !d.Shareable:
		return fmt.Errorf("the disk is not shareable")
	case d.Encrypted != spec.Encrypted:
		return fmt.Errorf("encrypted is %t", d.Encrypted)
	case src.GetSnapshot() != nil && d.SnapshotID != src.GetSnapshot().GetSnapshotId():
		return fmt.Errorf("it was not restored from snapshot %s", src.GetSnapshot().GetSnapshotId())
	case src == nil && d.SnapshotID != "":
		return fmt.Errorf("it was restored from snapshot %s", d.SnapshotID)
	}
	return nil
}

func (s *controllerServer) volume(d *Disk) *csi.Volume {
	return &csi.Volume{
		VolumeId:           d.ID,
		CapacityBytes:      d.SizeGiB * GiB,
		AccessibleTopology: []*csi.Topology{{Segments: map[string]string{TopologyKey: d.Zone}}},
	}
}

func (s *controllerServer) DeleteVolume(ctx context.Context, req *csi.DeleteVolumeRequest) (*csi.DeleteVolumeResponse, error) {
	id := req.GetVolumeId()
	if id == "" {
		return nil, invalid("DeleteVolume: the volume id is missing")
	}
	release, err := s.locks.acquire(id)
	if err != nil {
		return nil, err
	}
	defer release()
	d, err := s.disks.GetDisk(ctx, id)
	if errors.Is(err, ErrNotFound) {
		return &csi.DeleteVolumeResponse{}, nil
	}
	if err != nil {
		return nil, cloudError("volume "+id+": look up", err)
	}
	if !d.Owned {
		return nil, status.Errorf(codes.FailedPrecondition, "volume %s: disk is not tagged for this cluster; it is never deleted", id)
	}
	if len(d.Instances) > 0 {
		return nil, status.Errorf(codes.FailedPrecondition, "volume %s is still attached to %s", id, strings.Join(d.Instances, ", "))
	}
	if err := s.disks.DeleteDisk(ctx, id); err != nil {
		return nil, cloudError("volume "+id+": delete", err)
	}
	klog.InfoS("Volume deleted", "volume", id)
	return &csi.DeleteVolumeResponse{}, nil
}

func (s *controllerServer) ControllerPublishVolume(ctx context.Context, req *csi.ControllerPublishVolumeRequest) (*csi.ControllerPublishVolumeResponse, error) {
	id, node, c := req.GetVolumeId(), req.GetNodeId(), req.GetVolumeCapability()
	switch {
	case id == "":
		return nil, invalid("ControllerPublishVolume: the volume id is missing")
	case node == "":
		return nil, invalid("ControllerPublishVolume: volume %s: the node id is missing", id)
	case c == nil:
		return nil, invalid("ControllerPublishVolume: volume %s: the volume capability is missing", id)
	}
	if err := checkCapability(c); err != nil {
		return nil, invalid("volume %s: %v", id, err)
	}
	release, err := s.locks.acquire(id)
	if err != nil {
		return nil, err
	}
	defer release()
	d, err := s.disks.GetDisk(ctx, id)
	if err != nil {
		return nil, cloudError("volume "+id, err)
	}
	inst, err := s.disks.GetInstance(ctx, node)
	if err != nil {
		return nil, cloudError("volume "+id+": node "+node, err)
	}
	if !d.Owned {
		return nil, status.Errorf(codes.FailedPrecondition, "volume %s: disk is not tagged for this cluster; it is never attached", id)
	}
	if isMultiNode(c.GetAccessMode().GetMode()) && !d.Shareable {
		return nil, status.Errorf(codes.FailedPrecondition, "volume %s: access mode %s needs a shareable disk", id, c.GetAccessMode().GetMode())
	}
	want := accessWriter
	if req.GetReadonly() || isReadOnlyMode(c.GetAccessMode().GetMode()) {
		want = accessReader
	}
	if err := s.attached.checkPublish(d, node, c, want); err != nil {
		return nil, err
	}
	attached := slices.Contains(d.Instances, node)
	if attached {
		if prev := s.attached.get(id, node); prev != accessUnknown && prev != want {
			// One attachment per node, published one way: pods of the same volume share
			// it and choose read-only per mount (NodePublish).
			return nil, status.Errorf(codes.AlreadyExists, "volume %s is already published %s to node %s", id, prev, node)
		}
	} else {
		if d.Zone != inst.Zone {
			return nil, status.Errorf(codes.FailedPrecondition, "volume %s is in zone %s and node %s in zone %s", id, d.Zone, node, inst.Zone)
		}
		if max := s.opts.MaxVolumesPerNode; max > 0 {
			n, err := s.disks.AttachedDisks(ctx, node)
			if err != nil {
				return nil, cloudError("node "+node+": count attached disks", err)
			}
			if int64(n) >= max {
				return nil, status.Errorf(codes.ResourceExhausted, "node %s already has %d volumes attached, its limit", node, n)
			}
		}
	}
	// Busy: an earlier call's attach is still running (its caller gave up waiting); wait
	// for it here rather than answer before the disk is there.
	if !attached || d.Busy {
		if _, err := s.disks.AttachDisk(ctx, id, node); err != nil {
			return nil, cloudError("volume "+id+": attach to node "+node, err)
		}
		klog.InfoS("Volume attached", "volume", id, "node", node, "access", want)
	}
	s.attached.set(id, node, want)
	return &csi.ControllerPublishVolumeResponse{PublishContext: map[string]string{
		PublishDiskID:   id,
		PublishReadOnly: strconv.FormatBool(req.GetReadonly() || isReadOnlyMode(c.GetAccessMode().GetMode())),
	}}, nil
}

func (s *controllerServer) ControllerUnpublishVolume(ctx context.Context, req *csi.ControllerUnpublishVolumeRequest) (*csi.ControllerUnpublishVolumeResponse, error) {
	id, node := req.GetVolumeId(), req.GetNodeId()
	if id == "" {
		return nil, invalid("ControllerUnpublishVolume: the volume id is missing")
	}
	release, err := s.locks.acquire(id)
	if err != nil {
		return nil, err
	}
	defer release()
	d, err := s.disks.GetDisk(ctx, id)
	if errors.Is(err, ErrNotFound) {
		return &csi.ControllerUnpublishVolumeResponse{}, nil
	}
	if err != nil {
		return nil, cloudError("volume "+id, err)
	}
	from := []string{node}
	if node == "" { // the spec: unpublish from every node
		from = slices.Clone(d.Instances)
	}
	for _, n := range from {
		if !slices.Contains(d.Instances, n) {
			s.attached.forget(id, n)
			continue
		}
		if !d.Owned {
			return nil, status.Errorf(codes.FailedPrecondition, "volume %s: disk is not tagged for this cluster; it is never detached", id)
		}
		if err := s.disks.DetachDisk(ctx, id, n); err != nil && !errors.Is(err, ErrNotFound) {
			return nil, cloudError("volume "+id+": detach from node "+n, err)
		}
		s.attached.forget(id, n)
		klog.InfoS("Volume detached", "volume", id, "node", n)
	}
	return &csi.ControllerUnpublishVolumeResponse{}, nil
}

func (s *controllerServer) ValidateVolumeCapabilities(ctx context.Context, req *csi.ValidateVolumeCapabilitiesRequest) (*csi.ValidateVolumeCapabilitiesResponse, error) {
	id := req.GetVolumeId()
	if id == "" {
		return nil, invalid("ValidateVolumeCapabilities: the volume id is missing")
	}
	if len(req.GetVolumeCapabilities()) == 0 {
		return nil, invalid("ValidateVolumeCapabilities: volume %s: the volume capabilities are missing", id)
	}
	d, err := s.disks.GetDisk(ctx, id)
	if err != nil {
		return nil, cloudError("volume "+id, err)
	}
	if err := checkCapabilities(req.GetVolumeCapabilities()); err != nil {
		return &csi.ValidateVolumeCapabilitiesResponse{Message: err.Error()}, nil
	}
	for _, c := range req.GetVolumeCapabilities() {
		if isMultiNode(c.GetAccessMode().GetMode()) && !d.Shareable {
			return &csi.ValidateVolumeCapabilitiesResponse{Message: fmt.Sprintf("access mode %s needs a shareable disk", c.GetAccessMode().GetMode())}, nil
		}
	}
	if _, err := s.parseParams(req.GetParameters()); err != nil {
		return &csi.ValidateVolumeCapabilitiesResponse{Message: status.Convert(err).Message()}, nil
	}
	return &csi.ValidateVolumeCapabilitiesResponse{Confirmed: &csi.ValidateVolumeCapabilitiesResponse_Confirmed{
		VolumeContext:      req.GetVolumeContext(),
		VolumeCapabilities: req.GetVolumeCapabilities(),
		Parameters:         req.GetParameters(),
	}}, nil
}

// page reads a list call's starting token (an offset) and page size.
func page(token string, maxEntries int32) (offset, limit int, err error) {
	if maxEntries < 0 {
		return 0, 0, invalid("max_entries %d is negative", maxEntries)
	}
	if token != "" {
		n, err := strconv.Atoi(token)
		if err != nil || n < 0 {
			return 0, 0, status.Errorf(codes.Aborted, "starting_token %q is not a token this driver issued", token)
		}
		offset = n
	}
	limit = maxListEntries
	if maxEntries > 0 && maxEntries < maxListEntries {
		limit = int(maxEntries)
	}
	return offset, limit, nil
}

func nextToken(offset, n, total int) string {
	if offset+n < total {
		return strconv.Itoa(offset + n)
	}
	return ""
}

func (s *controllerServer) ListVolumes(ctx context.Context, req *csi.ListVolumesRequest) (*csi.ListVolumesResponse, error) {
	offset, limit, err := page(req.GetStartingToken(), req.GetMaxEntries())
	if err != nil {
		return nil, err
	}
	disks, total, err := s.disks.ListDisks(ctx, offset, limit)
	if err != nil {
		return nil, cloudError("list volumes", err)
	}
	if offset > total {
		return nil, status.Errorf(codes.Aborted, "starting_token %q is past the end of the %d volumes", req.GetStartingToken(), total)
	}
	out := &csi.ListVolumesResponse{NextToken: nextToken(offset, len(disks), total)}
	for _, d := range disks {
		out.Entries = append(out.Entries, &csi.ListVolumesResponse_Entry{
			Volume: s.volume(d),
			Status: &csi.ListVolumesResponse_VolumeStatus{PublishedNodeIds: slices.Clone(d.Instances)},
		})
	}
	return out, nil
}

func (s *controllerServer) ControllerGetVolume(ctx context.Context, req *csi.ControllerGetVolumeRequest) (*csi.ControllerGetVolumeResponse, error) {
	id := req.GetVolumeId()
	if id == "" {
		return nil, invalid("ControllerGetVolume: the volume id is missing")
	}
	d, err := s.disks.GetDisk(ctx, id)
	if err != nil {
		return nil, cloudError("volume "+id, err)
	}
	return &csi.ControllerGetVolumeResponse{
		Volume: s.volume(d),
		Status: &csi.ControllerGetVolumeResponse_VolumeStatus{PublishedNodeIds: slices.Clone(d.Instances)},
	}, nil
}

func (s *controllerServer) ControllerExpandVolume(ctx context.Context, req *csi.ControllerExpandVolumeRequest) (*csi.ControllerExpandVolumeResponse, error) {
	id := req.GetVolumeId()
	if id == "" {
		return nil, invalid("ControllerExpandVolume: the volume id is missing")
	}
	if req.GetCapacityRange() == nil {
		return nil, invalid("ControllerExpandVolume: volume %s: the capacity range is missing", id)
	}
	required, limit := req.GetCapacityRange().GetRequiredBytes(), req.GetCapacityRange().GetLimitBytes()
	if required < 0 || limit < 0 || (limit > 0 && required > limit) {
		return nil, invalid("volume %s: capacity range %d..%d is not a range", id, required, limit)
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
	d, err := s.disks.GetDisk(ctx, id)
	if err != nil {
		return nil, cloudError("volume "+id, err)
	}
	nodeExpansion := req.GetVolumeCapability().GetBlock() == nil
	if d.SizeGiB*GiB >= required {
		return &csi.ControllerExpandVolumeResponse{CapacityBytes: d.SizeGiB * GiB, NodeExpansionRequired: nodeExpansion}, nil
	}
	if !d.Owned {
		return nil, status.Errorf(codes.FailedPrecondition, "volume %s: disk is not tagged for this cluster; it is never resized", id)
	}
	i := slices.IndexFunc(s.types, func(t DiskType) bool { return t.Name == d.Type })
	if i < 0 {
		return nil, status.Errorf(codes.FailedPrecondition, "volume %s: disk type %s is unknown to the driver", id, d.Type)
	}
	size, ok := s.types[i].RoundSize(required, limit)
	if !ok {
		return nil, status.Errorf(codes.OutOfRange, "volume %s: no %s disk fits %d..%d bytes", id, d.Type, required, limit)
	}
	if d, err = s.disks.ResizeDisk(ctx, id, size); err != nil {
		return nil, cloudError("volume "+id+": resize", err)
	}
	klog.InfoS("Volume expanded", "volume", id, "sizeGiB", d.SizeGiB)
	return &csi.ControllerExpandVolumeResponse{CapacityBytes: d.SizeGiB * GiB, NodeExpansionRequired: nodeExpansion}, nil
}

func (s *controllerServer) CreateSnapshot(ctx context.Context, req *csi.CreateSnapshotRequest) (*csi.CreateSnapshotResponse, error) {
	name, src := req.GetName(), req.GetSourceVolumeId()
	if name == "" {
		return nil, invalid("CreateSnapshot: the snapshot name is missing")
	}
	if src == "" {
		return nil, invalid("CreateSnapshot: snapshot %s: the source volume id is missing", name)
	}
	if len(req.GetParameters()) > 0 {
		for k := range req.GetParameters() {
			if !strings.HasPrefix(k, sidecarParamPrefix) {
				return nil, invalid("snapshot %s: parameter %s is not known (snapshots take none)", name, k)
			}
		}
	}
	release, err := s.locks.acquire("snapshot-name/" + name)
	if err != nil {
		return nil, err
	}
	defer release()
	snap, err := s.disks.FindSnapshot(ctx, name)
	if err != nil {
		return nil, cloudError("snapshot "+name+": look up an earlier attempt", err)
	}
	if snap != nil {
		if snap.DiskID != src {
			return nil, status.Errorf(codes.AlreadyExists, "snapshot %s exists as %s of volume %s, not of %s", name, snap.ID, snap.DiskID, src)
		}
		return &csi.CreateSnapshotResponse{Snapshot: csiSnapshot(snap)}, nil
	}
	if _, err := s.disks.GetDisk(ctx, src); err != nil {
		return nil, cloudError("snapshot "+name+": source volume "+src, err)
	}
	if snap, err = s.disks.CreateSnapshot(ctx, src, name); err != nil {
		return nil, cloudError("snapshot "+name+" of volume "+src, err)
	}
	klog.InfoS("Snapshot created", "snapshot", name, "id", snap.ID, "volume", src)
	return &csi.CreateSnapshotResponse{Snapshot: csiSnapshot(snap)}, nil
}

func csiSnapshot(s *Snapshot) *csi.Snapshot {
	return &csi.Snapshot{
		SnapshotId:     s.ID,
		SourceVolumeId: s.DiskID,
		SizeBytes:      s.SizeGiB * GiB,
		CreationTime:   timestamppb.New(unixTime(s.CreatedUnix)),
		ReadyToUse:     s.Ready,
	}
}

func (s *controllerServer) DeleteSnapshot(ctx context.Context, req *csi.DeleteSnapshotRequest) (*csi.DeleteSnapshotResponse, error) {
	id := req.GetSnapshotId()
	if id == "" {
		return nil, invalid("DeleteSnapshot: the snapshot id is missing")
	}
	release, err := s.locks.acquire(id)
	if err != nil {
		return nil, err
	}
	defer release()
	snap, err := s.disks.GetSnapshot(ctx, id)
	if errors.Is(err, ErrNotFound) {
		return &csi.DeleteSnapshotResponse{}, nil
	}
	if err != nil {
		return nil, cloudError("snapshot "+id, err)
	}
	if !snap.Owned {
		return nil, status.Errorf(codes.FailedPrecondition, "snapshot %s was not made by this cluster; it is never deleted", id)
	}
	if err := s.disks.DeleteSnapshot(ctx, id); err != nil {
		return nil, cloudError("snapshot "+id+": delete", err)
	}
	klog.InfoS("Snapshot deleted", "snapshot", id)
	return &csi.DeleteSnapshotResponse{}, nil
}

func (s *controllerServer) ListSnapshots(ctx context.Context, req *csi.ListSnapshotsRequest) (*csi.ListSnapshotsResponse, error) {
	offset, limit, err := page(req.GetStartingToken(), req.GetMaxEntries())
	if err != nil {
		return nil, err
	}
	if id := req.GetSnapshotId(); id != "" {
		snap, err := s.disks.GetSnapshot(ctx, id)
		if errors.Is(err, ErrNotFound) {
			return &csi.ListSnapshotsResponse{}, nil
		}
		if err != nil {
			return nil, cloudError("snapshot "+id, err)
		}
		if !snap.Owned || (req.GetSourceVolumeId() != "" && snap.DiskID != req.GetSourceVolumeId()) {
			return &csi.ListSnapshotsResponse{}, nil
		}
		return &csi.ListSnapshotsResponse{Entries: []*csi.ListSnapshotsResponse_Entry{{Snapshot: csiSnapshot(snap)}}}, nil
	}
	snaps, total, err := s.disks.ListSnapshots(ctx, req.GetSourceVolumeId(), offset, limit)
	if err != nil {
		return nil, cloudError("list snapshots", err)
	}
	if offset > total {
		return nil, status.Errorf(codes.Aborted, "starting_token %q is past the end of the %d snapshots", req.GetStartingToken(), total)
	}
	out := &csi.ListSnapshotsResponse{NextToken: nextToken(offset, len(snaps), total)}
	for _, sn := range snaps {
		out.Entries = append(out.Entries, &csi.ListSnapshotsResponse_Entry{Snapshot: csiSnapshot(sn)})
	}
	return out, nil
}

func (s *controllerServer) GetSnapshot(ctx context.Context, req *csi.GetSnapshotRequest) (*csi.GetSnapshotResponse, error) {
	id := req.GetSnapshotId()
	if id == "" {
		return nil, invalid("GetSnapshot: the snapshot id is missing")
	}
	snap, err := s.disks.GetSnapshot(ctx, id)
	if err != nil {
		return nil, cloudError("snapshot "+id, err)
	}
	if !snap.Owned {
		return nil, status.Errorf(codes.NotFound, "snapshot %s was not made by this cluster", id)
	}
	return &csi.GetSnapshotResponse{Snapshot: csiSnapshot(snap)}, nil
}
