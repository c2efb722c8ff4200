package csi

import (
	"context"
	"errors"
)

// GiB is the unit disks are sized in.
const GiB = int64(1) << 30

// Disks is the cloud's block storage as the controller uses it. Implementations wrap
// their cloud's errors so that errors.Is finds the sentinel errors below, wait for
// asynchronous operations themselves (with backoff, never a fixed sleep), and report
// ownership: Disk.Owned and Snapshot.Owned say whether this cluster may change or delete
// the resource. Methods that take an id answer ErrNotFound for an id that is malformed
// for the cloud, without calling it.
type Disks interface {
	// DiskTypes lists the disk types this cloud sells, the first one being the default.
	DiskTypes() []DiskType
	// CreateDisk creates a disk, idempotently by spec.Name: a retry with the same name
	// returns the disk the first call made (even if that call's answer was lost).
	CreateDisk(ctx context.Context, spec DiskSpec) (*Disk, error)
	// GetDisk returns a disk or ErrNotFound.
	GetDisk(ctx context.Context, id string) (*Disk, error)
	// FindDisk returns the live disk this cluster created for a volume name, or nil.
	FindDisk(ctx context.Context, name string) (*Disk, error)
	// ListDisks returns one page of this cluster's disks, starting at offset (ordered by
	// creation), at most limit of them, and the total number of such disks.
	ListDisks(ctx context.Context, offset, limit int) (disks []*Disk, total int, err error)
	// AttachedDisks counts the data disks attached to an instance (whoever owns them).
	AttachedDisks(ctx context.Context, instanceID string) (int, error)
	// DeleteDisk deletes an unattached disk; a disk that is already gone is not an error.
	DeleteDisk(ctx context.Context, id string) error
	// AttachDisk attaches the disk to the instance and waits until it is ATTACHED there.
	AttachDisk(ctx context.Context, diskID, instanceID string) (*Disk, error)
	// DetachDisk detaches the disk from the instance and waits until it no longer is.
	DetachDisk(ctx context.Context, diskID, instanceID string) error
	// ResizeDisk grows the disk to sizeGiB and waits until it has that size.
	ResizeDisk(ctx context.Context, diskID string, sizeGiB int64) (*Disk, error)
	// GetInstance returns an instance or ErrNotFound.
	GetInstance(ctx context.Context, id string) (*Instance, error)

	// CreateSnapshot snapshots a disk, idempotently by name; it does not wait for the
	// snapshot to be ready.
	CreateSnapshot(ctx context.Context, diskID, name string) (*Snapshot, error)
	// FindSnapshot returns the live snapshot this cluster made under name, or nil.
	FindSnapshot(ctx context.Context, name string) (*Snapshot, error)
	// GetSnapshot returns a snapshot or ErrNotFound.
	GetSnapshot(ctx context.Context, id string) (*Snapshot, error)
	// WaitSnapshotReady waits until the snapshot is ready to restore from.
	WaitSnapshotReady(ctx context.Context, id string) (*Snapshot, error)
	// ListSnapshots returns one page of this cluster's snapshots (of one disk when diskID
	// is set), ordered by creation, and the total count.
	ListSnapshots(ctx context.Context, diskID string, offset, limit int) (snaps []*Snapshot, total int, err error)
	// DeleteSnapshot deletes a snapshot; one that is already gone is not an error.
	DeleteSnapshot(ctx context.Context, id string) error
}

// DiskType is one kind of disk and its size rules.
type DiskType struct {
	Name string
	// MinGiB, MaxGiB and StepGiB bound the size: a disk is MinGiB + n*StepGiB, at most MaxGiB.
	MinGiB, MaxGiB, StepGiB int64
}

// RoundSize returns the smallest size of this type that holds requiredBytes (0: any) and
// is at most limitBytes (0: no limit), in GiB; false when there is none.
func (t DiskType) RoundSize(requiredBytes, limitBytes int64) (int64, bool) {
	gib := (requiredBytes + GiB - 1) / GiB
	size := max(gib, t.MinGiB)
	if step := t.StepGiB; step > 1 {
		size = t.MinGiB + (size-t.MinGiB+step-1)/step*step
	}
	if size > t.MaxGiB || (limitBytes > 0 && size*GiB > limitBytes) {
		return 0, false
	}
	return size, true
}

// DiskSpec is a disk to create.
type DiskSpec struct {
	// Name is the CSI volume name; it makes the creation idempotent.
	Name      string
	Type      string
	SizeGiB   int64
	Zone      string
	Shareable bool
	Encrypted bool
	// SnapshotID restores the disk from a snapshot.
	SnapshotID string
	// Tags are the user's, from the StorageClass; the cloud adds its ownership tags.
	Tags map[string]string
}

// Disk is a disk as the cloud reports it.
type Disk struct {
	ID        string
	Name      string // the CSI volume name it was created for ("" when unknown)
	Type      string
	SizeGiB   int64
	Zone      string
	Shareable bool
	Encrypted bool
	// SnapshotID is the snapshot the disk was restored from.
	SnapshotID string
	// Busy is true while an operation (attach, detach, resize) is running.
	Busy bool
	// Instances are the instances the disk is attached to, in attach order.
	Instances []string
	// Owned is true when the disk is tagged for this cluster.
	Owned bool
}

// Instance is a virtual machine that disks attach to.
type Instance struct {
	ID   string
	Zone string
}

// Snapshot is a point-in-time copy of a disk.
type Snapshot struct {
	ID      string
	Name    string
	DiskID  string
	SizeGiB int64
	// CreatedUnix is the creation time in seconds.
	CreatedUnix int64
	Ready       bool
	Owned       bool
}

// The errors a Disks implementation wraps, so that the driver answers the right code.
var (
	// ErrNotFound: the disk, snapshot or instance does not exist.
	ErrNotFound = errors.New("not found")
	// ErrInvalid: the cloud refused the request's parameters.
	ErrInvalid = errors.New("invalid request")
	// ErrLimit: a quota or per-instance limit was hit.
	ErrLimit = errors.New("limit exceeded")
	// ErrConflict: the resource's state forbids the call (attached elsewhere, busy,
	// in another zone).
	ErrConflict = errors.New("conflicting state")
	// ErrNotReady: the resource is still being made (a snapshot CREATING).
	ErrNotReady = errors.New("not ready")
)
