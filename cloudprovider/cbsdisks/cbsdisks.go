// Package cbsdisks binds the CSI driver's Disks interface (package csi) to the cloud's
// block storage (cloudapi/cbs) and instances (cloudapi/cvm).
//
// It owns the mapping between CSI objects and cloud resources: the ownership tags every
// disk it creates carries (stratus.io/cluster=<clusterId>, and the CSI volume name), the
// ClientToken that makes a create retry-safe, the snapshot names that mark this
// cluster's snapshots (CreateSnapshot takes no tags in this API version), the disk types
// and their size rules, and the waits for the asynchronous state changes. Every request
// stays within the API's documented per-request limits (cloudapi/cbs limits.go). It
// reports ownership and never decides on it: the driver refuses to change what is not
// owned. It never imports Kubernetes.
package cbsdisks

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/stratus-cloud/stratus/cloudapi"
	"github.com/stratus-cloud/stratus/cloudapi/cbs"
	"github.com/stratus-cloud/stratus/cloudapi/cvm"
	"github.com/stratus-cloud/stratus/csi"
)

// Tag keys on the disks the driver creates.
const (
	TagCluster = "stratus.io/cluster"
	// TagVolume is the CSI volume name (its hash when longer than a tag value may be).
	TagVolume = "stratus.io/csi-volume"
	// TagSourceSnapshot is the snapshot a disk was restored from (the API does not say).
	TagSourceSnapshot = "stratus.io/csi-source-snapshot"
)

// diskTypes are CBS's data disk types with their size rules (GiB). Sizes step by 10 GiB:
// the API's older rule, and still valid where any size is.
var diskTypes = []csi.DiskType{
	{Name: cbs.DiskTypePremium, MinGiB: 10, MaxGiB: 32000, StepGiB: 10},
	{Name: cbs.DiskTypeSSD, MinGiB: 20, MaxGiB: 32000, StepGiB: 10},
	{Name: cbs.DiskTypeHSSD, MinGiB: 20, MaxGiB: 32000, StepGiB: 10},
}

var (
	diskIDRE     = regexp.MustCompile(`^disk-[a-z0-9]+$`)
	snapshotIDRE = regexp.MustCompile(`^snap-[a-z0-9]+$`)
	instanceIDRE = regexp.MustCompile(`^ins-[a-z0-9]+$`)
)

// Config configures the adapter.
type Config struct {
	// ClusterID is the value of the stratus.io/cluster tag. Required.
	ClusterID string
	// Wait shapes the polls of attach, detach, resize and snapshot (delays and timeout).
	Wait cloudapi.WaitOptions
	// AppearTimeout bounds how long a created disk may take to show in DescribeDisks
	// (default 15s).
	AppearTimeout time.Duration
}

// Disks implements csi.Disks on CBS.
type Disks struct {
	cbs *cbs.Client
	cvm *cvm.Client
	cfg Config
	// snapPrefix starts the names of this cluster's snapshots.
	snapPrefix string
}

var _ csi.Disks = (*Disks)(nil)

// New returns the adapter on c.
func New(c *cloudapi.Client, cfg Config) (*Disks, error) {
	if cfg.ClusterID == "" {
		return nil, errors.New("cbsdisks: cluster id is empty")
	}
	if cfg.AppearTimeout <= 0 {
		cfg.AppearTimeout = 15 * time.Second
	}
	if cfg.Wait.Timeout <= 0 {
		cfg.Wait.Timeout = 5 * time.Minute
	}
	if cfg.Wait.MinDelay <= 0 {
		cfg.Wait.MinDelay = 200 * time.Millisecond
	}
	if cfg.Wait.MaxDelay <= 0 {
		cfg.Wait.MaxDelay = 5 * time.Second
	}
	return &Disks{cbs: cbs.New(c), cvm: cvm.New(c), cfg: cfg, snapPrefix: "stratus-" + hash(cfg.ClusterID, 8) + "-"}, nil
}

func hash(s string, n int) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])[:n]
}

// DiskTypes lists CBS's types, CLOUD_PREMIUM (the default) first.
func (a *Disks) DiskTypes() []csi.DiskType { return diskTypes }

// volumeTag is the TagVolume value of a volume name.
func volumeTag(name string) string {
	if len(name) <= cbs.MaxTagValueLen {
		return name
	}
	return "sha256-" + hash(name, 64)
}

// clientToken is the ClientToken of a volume's create; after is the disk a previous
// token made that no longer exists (a volume deleted and created again), "" at first.
func (a *Disks) clientToken(name, after string) string {
	return "csi-" + hash(a.cfg.ClusterID+"\x00"+name+"\x00"+after, cbs.MaxClientTokenLen-4)
}

func diskName(volume string) string {
	n := "stratus-" + volume
	if len(n) > cbs.MaxDiskNameBytes {
		n = n[:cbs.MaxDiskNameBytes]
	}
	return n
}

// maxTokenChain bounds how many deleted disks a volume name may have left behind.
const maxTokenChain = 16

func (a *Disks) CreateDisk(ctx context.Context, spec csi.DiskSpec) (*csi.Disk, error) {
	tags := []cloudapi.Tag{{Key: TagCluster, Value: a.cfg.ClusterID}, {Key: TagVolume, Value: volumeTag(spec.Name)}}
	if spec.SnapshotID != "" {
		tags = append(tags, cloudapi.Tag{Key: TagSourceSnapshot, Value: spec.SnapshotID})
	}
	for k, v := range spec.Tags {
		if len(k) > cbs.MaxTagKeyLen || len(v) > cbs.MaxTagValueLen {
			return nil, fmt.Errorf("volume %s: tag %.40q is longer than the cloud allows (%d/%d): %w", spec.Name, k, cbs.MaxTagKeyLen, cbs.MaxTagValueLen, csi.ErrInvalid)
		}
		tags = append(tags, cloudapi.Tag{Key: k, Value: v})
	}
	if len(tags) > cbs.MaxTags {
		return nil, fmt.Errorf("volume %s: %d tags, the cloud takes %d: %w", spec.Name, len(tags), cbs.MaxTags, csi.ErrInvalid)
	}
	req := &cbs.CreateDisksRequest{
		DiskType:  spec.Type,
		Placement: &cbs.Placement{Zone: spec.Zone},
		DiskName:  diskName(spec.Name),
		DiskSize:  cloudapi.Int64(spec.SizeGiB),
		Tags:      tags,
	}
	if spec.SnapshotID != "" {
		req.SnapshotId = spec.SnapshotID
	}
	if spec.Encrypted {
		req.Encrypt = "ENCRYPT"
	}
	if spec.Shareable {
		req.Shareable = cloudapi.Bool(true)
	}
	after := ""
	for range maxTokenChain {
		req.ClientToken = a.clientToken(spec.Name, after)
		out, err := a.cbs.CreateDisks(ctx, req)
		if err != nil {
			return nil, fmt.Errorf("volume %s: CreateDisks: %w", spec.Name, mapError(err))
		}
		if len(out.DiskIdSet) != 1 {
			return nil, fmt.Errorf("volume %s: CreateDisks answered %d disks for one", spec.Name, len(out.DiskIdSet))
		}
		id := out.DiskIdSet[0]
		d, err := a.waitAppears(ctx, id)
		if err == nil {
			return d, nil
		}
		if !errors.Is(err, csi.ErrNotFound) {
			return nil, fmt.Errorf("volume %s: disk %s: %w", spec.Name, id, err)
		}
		// The token replayed a disk that was deleted since: the next token in the chain
		// is derived from it, so a retry of this call follows the same chain.
		after = id
	}
	return nil, fmt.Errorf("volume %s: %d deleted disks were created under this name: %w", spec.Name, maxTokenChain, csi.ErrConflict)
}

// waitAppears waits for a just created disk to show (DescribeDisks may lag behind).
func (a *Disks) waitAppears(ctx context.Context, id string) (*csi.Disk, error) {
	o := a.cfg.Wait
	o.Timeout = a.cfg.AppearTimeout
	var out *csi.Disk
	var lastErr error
	err := cloudapi.WaitFor(ctx, withWhat(o, "disk "+id+" to appear"), func(ctx context.Context) (bool, error) {
		d, err := a.cbs.GetDisk(ctx, id)
		if cloudapi.IsNotFound(err) {
			lastErr = err
			return false, nil
		}
		if err != nil {
			return false, mapError(err)
		}
		out = a.toDisk(d)
		return true, nil
	})
	if err != nil && lastErr != nil && errors.Is(err, cloudapi.ErrWaitTimeout) {
		return nil, fmt.Errorf("disk %s never appeared: %w", id, csi.ErrNotFound)
	}
	return out, err
}

func withWhat(o cloudapi.WaitOptions, what string) cloudapi.WaitOptions {
	o.What = what
	return o
}

func (a *Disks) toDisk(d *cbs.Disk) *csi.Disk {
	out := &csi.Disk{
		ID: d.DiskId, Type: d.DiskType, SizeGiB: d.DiskSize, Zone: d.Placement.Zone,
		Shareable: d.Shareable, Encrypted: d.Encrypt,
		Busy:      d.DiskState == cbs.DiskStateAttaching || d.DiskState == cbs.DiskStateDetaching || d.DiskState == cbs.DiskStateExpanding,
		Instances: append([]string(nil), d.AttachedInstances()...),
	}
	for _, t := range d.Tags {
		switch t.Key {
		case TagCluster:
			out.Owned = t.Value == a.cfg.ClusterID
		case TagVolume:
			out.Name = t.Value
		case TagSourceSnapshot:
			out.SnapshotID = t.Value
		}
	}
	return out
}

func (a *Disks) GetDisk(ctx context.Context, id string) (*csi.Disk, error) {
	if !diskIDRE.MatchString(id) {
		return nil, fmt.Errorf("disk %q: not a disk id: %w", id, csi.ErrNotFound)
	}
	d, err := a.cbs.GetDisk(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("disk %s: %w", id, mapError(err))
	}
	return a.toDisk(d), nil
}

func (a *Disks) FindDisk(ctx context.Context, name string) (*csi.Disk, error) {
	out, err := a.cbs.DescribeDisks(ctx, &cbs.DescribeDisksRequest{
		Filters: []cloudapi.Filter{
			{Name: "tag:" + TagCluster, Values: []string{a.cfg.ClusterID}},
			{Name: "tag:" + TagVolume, Values: []string{volumeTag(name)}},
		},
		Limit: cloudapi.Int64(cbs.MaxLimit),
	})
	if err != nil {
		return nil, fmt.Errorf("volume %s: find disk: %w", name, mapError(err))
	}
	if len(out.DiskSet) == 0 {
		return nil, nil
	}
	return a.toDisk(&out.DiskSet[0]), nil
}

func (a *Disks) ListDisks(ctx context.Context, offset, limit int) ([]*csi.Disk, int, error) {
	out, err := a.cbs.DescribeDisks(ctx, &cbs.DescribeDisksRequest{
		Filters: []cloudapi.Filter{{Name: "tag:" + TagCluster, Values: []string{a.cfg.ClusterID}}},
		Offset:  cloudapi.Int64(int64(offset)),
		Limit:   cloudapi.Int64(int64(min(limit, cbs.MaxLimit))),
		Order:   "ASC", OrderField: "CREATE_TIME",
	})
	if err != nil {
		return nil, 0, fmt.Errorf("list disks: %w", mapError(err))
	}
	disks := make([]*csi.Disk, 0, len(out.DiskSet))
	for i := range out.DiskSet {
		disks = append(disks, a.toDisk(&out.DiskSet[i]))
	}
	return disks, int(out.TotalCount), nil
}

func (a *Disks) AttachedDisks(ctx context.Context, instanceID string) (int, error) {
	out, err := a.cbs.DescribeDisks(ctx, &cbs.DescribeDisksRequest{
		Filters: []cloudapi.Filter{{Name: "instance-id", Values: []string{instanceID}}, {Name: "disk-usage", Values: []string{"DATA_DISK"}}},
		Limit:   cloudapi.Int64(1),
	})
	if err != nil {
		return 0, fmt.Errorf("instance %s: count disks: %w", instanceID, mapError(err))
	}
	return int(out.TotalCount), nil
}

func (a *Disks) DeleteDisk(ctx context.Context, id string) error {
	if !diskIDRE.MatchString(id) {
		return nil
	}
	if _, err := a.settled(ctx, id); errors.Is(err, csi.ErrNotFound) {
		return nil
	} else if err != nil {
		return err
	}
	_, err := a.cbs.TerminateDisks(ctx, &cbs.TerminateDisksRequest{DiskIds: []string{id}})
	if err != nil && !cloudapi.IsNotFound(err) {
		return fmt.Errorf("disk %s: TerminateDisks: %w", id, mapError(err))
	}
	return nil
}

// settled waits until no operation runs on the disk.
func (a *Disks) settled(ctx context.Context, id string) (*cbs.Disk, error) {
	d, err := a.cbs.WaitDisk(ctx, id, "settled", func(d *cbs.Disk) bool {
		return d.DiskState == cbs.DiskStateAttached || d.DiskState == cbs.DiskStateUnattached
	}, a.cfg.Wait)
	if err != nil {
		return nil, fmt.Errorf("disk %s: %w", id, mapError(err))
	}
	return d, nil
}

func (a *Disks) AttachDisk(ctx context.Context, diskID, instanceID string) (*csi.Disk, error) {
	// Optimistic: the common case is a settled disk, so attach first and wait for the disk
	// to settle only when the cloud says it is busy (a detach still running).
	req := &cbs.AttachDisksRequest{DiskIds: []string{diskID}, InstanceId: instanceID}
	_, err := a.cbs.AttachDisks(ctx, req)
	if cloudapi.HasCode(err, cbs.CodeDiskBusy) {
		if _, err = a.settled(ctx, diskID); err != nil {
			return nil, err
		}
		_, err = a.cbs.AttachDisks(ctx, req)
	}
	// Already attached there (a retry): the wait below confirms it.
	if err != nil && !cloudapi.HasCode(err, cbs.CodeDiskAttached) {
		return nil, fmt.Errorf("disk %s: AttachDisks to %s: %w", diskID, instanceID, mapError(err))
	}
	d, err := a.cbs.WaitDiskAttached(ctx, diskID, instanceID, a.cfg.Wait)
	if err != nil {
		return nil, fmt.Errorf("disk %s: %w", diskID, mapError(err))
	}
	return a.toDisk(d), nil
}

func (a *Disks) DetachDisk(ctx context.Context, diskID, instanceID string) error {
	d, err := a.settled(ctx, diskID)
	if err != nil {
		return err
	}
	if d.AttachedTo(instanceID) {
		// For a disk that is not shareable the API detaches it from its one instance
		// whatever InstanceId says; settled above showed that instance is this one.
		_, err := a.cbs.DetachDisks(ctx, &cbs.DetachDisksRequest{DiskIds: []string{diskID}, InstanceId: instanceID})
		if err != nil && !cloudapi.HasCode(err, cbs.CodeDiskNotSupported) {
			return fmt.Errorf("disk %s: DetachDisks from %s: %w", diskID, instanceID, mapError(err))
		}
	}
	if _, err := a.cbs.WaitDiskDetached(ctx, diskID, instanceID, a.cfg.Wait); err != nil {
		return fmt.Errorf("disk %s: %w", diskID, mapError(err))
	}
	return nil
}

func (a *Disks) ResizeDisk(ctx context.Context, diskID string, sizeGiB int64) (*csi.Disk, error) {
	d, err := a.settled(ctx, diskID)
	if err != nil {
		return nil, err
	}
	if d.DiskSize < sizeGiB {
		if _, err := a.cbs.ResizeDisk(ctx, &cbs.ResizeDiskRequest{DiskId: diskID, DiskSize: cloudapi.Int64(sizeGiB)}); err != nil {
			return nil, fmt.Errorf("disk %s: ResizeDisk to %d GiB: %w", diskID, sizeGiB, mapError(err))
		}
	}
	d, err = a.cbs.WaitDisk(ctx, diskID, fmt.Sprintf("%d GiB", sizeGiB), func(d *cbs.Disk) bool {
		return d.DiskState != cbs.DiskStateExpanding && d.DiskSize >= sizeGiB
	}, a.cfg.Wait)
	if err != nil {
		return nil, fmt.Errorf("disk %s: %w", diskID, mapError(err))
	}
	return a.toDisk(d), nil
}

func (a *Disks) GetInstance(ctx context.Context, id string) (*csi.Instance, error) {
	if !instanceIDRE.MatchString(id) {
		return nil, fmt.Errorf("instance %q: not an instance id: %w", id, csi.ErrNotFound)
	}
	out, err := a.cvm.DescribeInstances(ctx, &cvm.DescribeInstancesRequest{InstanceIds: []string{id}})
	if err != nil {
		return nil, fmt.Errorf("instance %s: %w", id, mapError(err))
	}
	for _, in := range out.InstanceSet {
		if in.InstanceId == id {
			return &csi.Instance{ID: id, Zone: in.Placement.Zone}, nil
		}
	}
	return nil, fmt.Errorf("instance %s: %w", id, csi.ErrNotFound)
}

// snapshotName is the SnapshotName of a CSI snapshot name: the cluster's prefix and a
// hash, within the API's 60 bytes whatever the CSI name's length.
func (a *Disks) snapshotName(name string) string { return a.snapPrefix + hash(name, 32) }

func (a *Disks) toSnapshot(s *cbs.Snapshot) *csi.Snapshot {
	return &csi.Snapshot{
		ID: s.SnapshotId, Name: s.SnapshotName, DiskID: s.DiskId, SizeGiB: s.DiskSize,
		CreatedUnix: parseTime(s.CreateTime),
		Ready:       s.SnapshotState == cbs.SnapshotStateNormal && s.Percent == 100,
		Owned:       strings.HasPrefix(s.SnapshotName, a.snapPrefix),
	}
}

func parseTime(s string) int64 {
	for _, layout := range []string{time.RFC3339, "2006-01-02 15:04:05"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.Unix()
		}
	}
	return 0
}

func (a *Disks) CreateSnapshot(ctx context.Context, diskID, name string) (*csi.Snapshot, error) {
	if !diskIDRE.MatchString(diskID) {
		return nil, fmt.Errorf("disk %q: not a disk id: %w", diskID, csi.ErrNotFound)
	}
	out, err := a.cbs.CreateSnapshot(ctx, &cbs.CreateSnapshotRequest{DiskId: diskID, SnapshotName: a.snapshotName(name)})
	if err != nil {
		return nil, fmt.Errorf("snapshot %s of disk %s: CreateSnapshot: %w", name, diskID, mapError(err))
	}
	var snap *cbs.Snapshot
	err = cloudapi.WaitFor(ctx, withWhat(a.cfg.Wait, "snapshot "+out.SnapshotId+" to appear"), func(ctx context.Context) (bool, error) {
		s, err := a.cbs.GetSnapshot(ctx, out.SnapshotId)
		if cloudapi.IsNotFound(err) {
			return false, nil
		}
		snap = s
		return err == nil, mapError(err)
	})
	if err != nil {
		return nil, fmt.Errorf("snapshot %s: %w", out.SnapshotId, err)
	}
	return a.toSnapshot(snap), nil
}

func (a *Disks) FindSnapshot(ctx context.Context, name string) (*csi.Snapshot, error) {
	out, err := a.cbs.DescribeSnapshots(ctx, &cbs.DescribeSnapshotsRequest{
		Filters: []cloudapi.Filter{{Name: "snapshot-name", Values: []string{a.snapshotName(name)}}},
		Limit:   cloudapi.Int64(cbs.MaxLimit),
	})
	if err != nil {
		return nil, fmt.Errorf("snapshot %s: find: %w", name, mapError(err))
	}
	if len(out.SnapshotSet) == 0 {
		return nil, nil
	}
	return a.toSnapshot(&out.SnapshotSet[0]), nil
}

func (a *Disks) GetSnapshot(ctx context.Context, id string) (*csi.Snapshot, error) {
	if !snapshotIDRE.MatchString(id) {
		return nil, fmt.Errorf("snapshot %q: not a snapshot id: %w", id, csi.ErrNotFound)
	}
	s, err := a.cbs.GetSnapshot(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("snapshot %s: %w", id, mapError(err))
	}
	return a.toSnapshot(s), nil
}

func (a *Disks) WaitSnapshotReady(ctx context.Context, id string) (*csi.Snapshot, error) {
	s, err := a.cbs.WaitSnapshotState(ctx, id, cbs.SnapshotStateNormal, a.cfg.Wait)
	if err != nil {
		return nil, fmt.Errorf("snapshot %s: %w", id, mapError(err))
	}
	return a.toSnapshot(s), nil
}

// ListSnapshots pages through the cloud's snapshots and keeps this cluster's: their
// names are the only mark this API version lets a snapshot carry.
func (a *Disks) ListSnapshots(ctx context.Context, diskID string, offset, limit int) ([]*csi.Snapshot, int, error) {
	req := &cbs.DescribeSnapshotsRequest{Limit: cloudapi.Int64(cbs.MaxLimit), Order: "ASC", OrderField: "CREATE_TIME"}
	if diskID != "" {
		if !diskIDRE.MatchString(diskID) {
			return nil, 0, nil
		}
		req.Filters = []cloudapi.Filter{{Name: "disk-id", Values: []string{diskID}}}
	}
	var owned []*csi.Snapshot
	for off := int64(0); ; {
		req.Offset = cloudapi.Int64(off)
		out, err := a.cbs.DescribeSnapshots(ctx, req)
		if err != nil {
			return nil, 0, fmt.Errorf("list snapshots: %w", mapError(err))
		}
		for i := range out.SnapshotSet {
			if s := a.toSnapshot(&out.SnapshotSet[i]); s.Owned {
				owned = append(owned, s)
			}
		}
		off += int64(len(out.SnapshotSet))
		if len(out.SnapshotSet) == 0 || off >= out.TotalCount {
			break
		}
	}
	if offset >= len(owned) {
		return nil, len(owned), nil
	}
	return owned[offset:min(offset+limit, len(owned))], len(owned), nil
}

func (a *Disks) DeleteSnapshot(ctx context.Context, id string) error {
	if !snapshotIDRE.MatchString(id) {
		return nil
	}
	_, err := a.cbs.DeleteSnapshots(ctx, &cbs.DeleteSnapshotsRequest{SnapshotIds: []string{id}})
	if err != nil && !cloudapi.IsNotFound(err) {
		return fmt.Errorf("snapshot %s: DeleteSnapshots: %w", id, mapError(err))
	}
	return nil
}

// mapError wraps a cloud error with the csi sentinel that says what it means.
func mapError(err error) error {
	if err == nil {
		return nil
	}
	var sentinel error
	switch code := cloudapi.ErrorCode(err); {
	case cloudapi.IsNotFound(err):
		sentinel = csi.ErrNotFound
	case strings.Contains(code, "SnapshotCreating"):
		sentinel = csi.ErrNotReady
	case cloudapi.IsLimitExceeded(err) || code == "ResourceInsufficient" || code == cbs.CodeInstanceAttachedDiskLimit:
		sentinel = csi.ErrLimit
	case code == cbs.CodeDiskAttachedElsewhere, code == cbs.CodeZoneNotMatch, code == cbs.CodeDiskBusy,
		code == cbs.CodeResourceBusy, code == cbs.CodeInstanceNotSupported, code == cbs.CodeDiskNotSupported,
		code == cbs.CodeDiskAttached, code == cbs.CodeSnapshotNotSupported, cloudapi.IsInUse(err):
		sentinel = csi.ErrConflict
	case code == cbs.CodeTooManyValues:
		sentinel = csi.ErrInvalid
	case code == cbs.CodeDiskSizeNotMatch, cloudapi.IsInvalidInput(err), strings.HasPrefix(code, "InvalidParameter"):
		sentinel = csi.ErrInvalid
	default:
		return err
	}
	return fmt.Errorf("%w: %w", sentinel, err)
}

// FindInstanceByIPs returns the instance of the VPC that has one of ips as a private
// address: how a node without --node-id finds itself.
func (a *Disks) FindInstanceByIPs(ctx context.Context, vpcID string, ips []string) (*csi.Instance, error) {
	for start := 0; start < len(ips); start += cbs.MaxFilterValues {
		batch := ips[start:min(start+cbs.MaxFilterValues, len(ips))]
		filters := []cloudapi.Filter{{Name: "private-ip-address", Values: batch}}
		if vpcID != "" {
			filters = append(filters, cloudapi.Filter{Name: "vpc-id", Values: []string{vpcID}})
		}
		out, err := a.cvm.DescribeInstances(ctx, &cvm.DescribeInstancesRequest{Filters: filters, Limit: cloudapi.Int64(cbs.MaxLimit)})
		if err != nil {
			return nil, fmt.Errorf("find the instance with address %v: %w", batch, mapError(err))
		}
		switch len(out.InstanceSet) {
		case 0:
			continue
		case 1:
			in := out.InstanceSet[0]
			return &csi.Instance{ID: in.InstanceId, Zone: in.Placement.Zone}, nil
		default:
			return nil, fmt.Errorf("addresses %v belong to %d instances; pass --node-id: %w", batch, len(out.InstanceSet), csi.ErrConflict)
		}
	}
	return nil, fmt.Errorf("no instance has any of the addresses %v: %w", ips, csi.ErrNotFound)
}
