package cbs

import (
	"slices"
	"time"

	"github.com/stratus-cloud/stratus/cloudapi"
	"github.com/stratus-cloud/stratus/cloudapi/cbs"
	"github.com/stratus-cloud/stratus/fakecloud/store"
)

// Disk is one disk as fakecloud stores it. Like every record it is shared once stored:
// change a copy (clone) and Put it.
type Disk struct {
	DiskId             string
	DiskName           string
	DiskType           string
	DiskChargeType     string
	Zone               string
	ProjectId          int64
	DiskSize           int64 // GiB, as of the last settled operation
	Shareable          bool
	Encrypt            bool
	DeleteWithInstance bool
	Tags               []cloudapi.Tag
	SnapshotId         string // the snapshot it was created from
	CreatedTime        time.Time
	DeadlineTime       time.Time // PREPAID only
	// Attachments are in attach order. A shareable disk's first attachment is read-write;
	// one made while another instance holds the disk is read-only for its lifetime.
	Attachments []Attachment

	// Op is the running operation (ATTACHING, DETACHING, EXPANDING) or "" when settled;
	// it completes at OpDoneAt. TargetSize is the size EXPANDING reaches; Detaching lists
	// the instances DETACHING removes.
	Op         string
	OpDoneAt   time.Time
	TargetSize int64
	Detaching  []string
}

// Attachment is a disk's link to one instance.
type Attachment struct {
	InstanceId   string
	AttachedTime time.Time
	ReadOnly     bool
}

// Snapshot is one snapshot as fakecloud stores it; it is CREATING until ReadyAt.
type Snapshot struct {
	SnapshotId   string
	SnapshotName string
	DiskId       string
	Zone         string
	ProjectId    int64
	DiskSize     int64 // GiB
	Encrypt      bool
	CreatedTime  time.Time
	ReadyAt      time.Time
	Deadline     time.Time // zero: kept until deleted
}

// clientToken remembers the disks a CreateDisks ClientToken made.
type clientToken struct {
	DiskIds     []string
	CreatedTime time.Time
}

const (
	disksName     = "cbs.disks"
	snapshotsName = "cbs.snapshots"
	tokensName    = "cbs.client-tokens"
)

// Disks registers (idempotently) and returns the disk table of s, for modules and tests
// that read disks. Derive what the API would say with Settle and State.
func Disks(s *store.Store) *store.Table[Disk] { return store.Register[Disk](s, disksName) }

// Snapshots registers (idempotently) and returns the snapshot table of s.
func Snapshots(s *store.Store) *store.Table[Snapshot] {
	return store.Register[Snapshot](s, snapshotsName)
}

func (d *Disk) clone() *Disk {
	c := *d
	c.Tags = slices.Clone(d.Tags)
	c.Attachments = slices.Clone(d.Attachments)
	c.Detaching = slices.Clone(d.Detaching)
	return &c
}

// opRunning reports whether d's operation is still in progress at now.
func (d *Disk) opRunning(now time.Time) bool { return d.Op != "" && now.Before(d.OpDoneAt) }

// Settle returns d as it is at now: a finished operation applied (an EXPANDING disk has
// its new size, a DETACHING one has lost its instances) and attachments to instances that
// no longer exist dropped (exists may be nil). It returns d itself when nothing changed,
// else a copy; d is never modified.
func Settle(d *Disk, now time.Time, exists func(instanceID string) bool) *Disk {
	out := d
	if d.Op != "" && !d.opRunning(now) {
		out = d.clone()
		switch d.Op {
		case cbs.DiskStateExpanding:
			out.DiskSize = d.TargetSize
		case cbs.DiskStateDetaching:
			out.Attachments = slices.DeleteFunc(out.Attachments, func(a Attachment) bool {
				return slices.Contains(d.Detaching, a.InstanceId)
			})
		}
		out.Op, out.OpDoneAt, out.TargetSize, out.Detaching = "", time.Time{}, 0, nil
	}
	if exists != nil && slices.ContainsFunc(out.Attachments, func(a Attachment) bool { return !exists(a.InstanceId) }) {
		if out == d {
			out = d.clone()
		}
		out.Attachments = slices.DeleteFunc(out.Attachments, func(a Attachment) bool { return !exists(a.InstanceId) })
	}
	return out
}

// State is the DiskState of a settled disk at now.
func State(d *Disk, now time.Time) string {
	if d.opRunning(now) {
		return d.Op
	}
	if len(d.Attachments) > 0 {
		return cbs.DiskStateAttached
	}
	return cbs.DiskStateUnattached
}

// goneWithInstance reports whether d was deleted together with its instance: it was set
// to DeleteWithInstance and every instance it was attached to no longer exists.
func goneWithInstance(raw *Disk, exists func(string) bool) bool {
	if !raw.DeleteWithInstance || len(raw.Attachments) == 0 || exists == nil {
		return false
	}
	for _, a := range raw.Attachments {
		if exists(a.InstanceId) {
			return false
		}
	}
	return true
}

// snapshotState is a snapshot's SnapshotState and Percent at now.
func snapshotState(s *Snapshot, now time.Time) (string, int64) {
	if !now.Before(s.ReadyAt) {
		return cbs.SnapshotStateNormal, 100
	}
	total := s.ReadyAt.Sub(s.CreatedTime)
	pct := int64(0)
	if total > 0 {
		pct = int64(now.Sub(s.CreatedTime) * 100 / total)
	}
	return cbs.SnapshotStateCreating, min(max(pct, 0), 99)
}

// snapshotExists reports whether s has not passed its deadline at now.
func snapshotExists(s *Snapshot, now time.Time) bool {
	return s.Deadline.IsZero() || now.Before(s.Deadline)
}
