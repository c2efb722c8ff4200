package cbs

import (
	"slices"

	"github.com/stratus-cloud/stratus/cloudapi"
)

// Disk states (Disk.DiskState).
const (
	DiskStateUnattached = "UNATTACHED"
	DiskStateAttaching  = "ATTACHING"
	DiskStateAttached   = "ATTACHED"
	DiskStateDetaching  = "DETACHING"
	DiskStateExpanding  = "EXPANDING"
)

// Snapshot states (Snapshot.SnapshotState).
const (
	SnapshotStateCreating = "CREATING"
	SnapshotStateNormal   = "NORMAL"
)

// Disk media types (DiskType).
const (
	DiskTypePremium = "CLOUD_PREMIUM"
	DiskTypeSSD     = "CLOUD_SSD"
	DiskTypeHSSD    = "CLOUD_HSSD"
)

// Charge types (DiskChargeType).
const (
	ChargePostpaidByHour = "POSTPAID_BY_HOUR"
	ChargePrepaid        = "PREPAID"
)

// Error codes specific to CBS, as the public API answers them.
const (
	CodeDiskNotFound              = "InvalidDiskId.NotFound"
	CodeSnapshotNotFound          = "InvalidSnapshotId.NotFound"
	CodeInstanceNotFound          = "InvalidInstanceId.NotFound"
	CodeZoneNotMatch              = "ZoneNotMatch"
	CodeDiskAttachedElsewhere     = "ResourceUnavailable.Attached"
	CodeDiskAttached              = "InvalidDisk.Attached"
	CodeDiskBusy                  = "InvalidDisk.Busy"
	CodeDiskNotSupported          = "InvalidDisk.NotSupported"
	CodeDiskSnapshotCreating      = "InvalidDisk.SnapshotCreating"
	CodeInstanceNotSupported      = "InvalidInstance.NotSupported"
	CodeInstanceAttachedDiskLimit = "LimitExceeded.InstanceAttachedDisk"
	CodeSnapshotCreating          = "ResourceUnavailable.SnapshotCreating"
	CodeSnapshotNotSupported      = "InvalidSnapshot.NotSupported"
	CodeDiskSizeNotMatch          = "InvalidParameter.DiskSizeNotMatch"
	CodeTooManyValues             = "InvalidParameterValue.LimitExceeded"
	CodeInvalidFilter             = "InvalidFilter"
	CodeResourceBusy              = "ResourceBusy"
)

// Placement says where a disk or snapshot lives. CdcId and CageId place it in a dedicated
// cluster (CDC), which fakecloud does not have; CdcName is output only.
type Placement struct {
	Zone      string `json:"Zone"`
	ProjectId *int64 `json:"ProjectId,omitempty"`
	CdcId     string `json:"CdcId,omitempty"`
	CageId    string `json:"CageId,omitempty"`
	CdcName   string `json:"CdcName,omitempty"`
}

// DiskChargePrepaid holds the term of a PREPAID disk. CurInstanceDeadline aligns the
// disk's term with its instance's.
type DiskChargePrepaid struct {
	Period              *int64 `json:"Period,omitempty"`
	RenewFlag           string `json:"RenewFlag,omitempty"`
	CurInstanceDeadline string `json:"CurInstanceDeadline,omitempty"`
}

// Disk is one cloud block storage disk, as DescribeDisks reports it.
type Disk struct {
	DiskId             string         `json:"DiskId"`
	DiskName           string         `json:"DiskName"`
	DiskUsage          string         `json:"DiskUsage"`
	DiskChargeType     string         `json:"DiskChargeType"`
	DiskType           string         `json:"DiskType"`
	DiskSize           int64          `json:"DiskSize"` // GiB
	DiskState          string         `json:"DiskState"`
	Portable           bool           `json:"Portable"`
	SnapshotAbility    bool           `json:"SnapshotAbility"`
	Placement          Placement      `json:"Placement"`
	Attached           bool           `json:"Attached"`
	InstanceId         string         `json:"InstanceId"`     // the (first) instance
	InstanceIdList     []string       `json:"InstanceIdList"` // shareable disks only
	Shareable          bool           `json:"Shareable"`
	Encrypt            bool           `json:"Encrypt"`
	DeleteWithInstance bool           `json:"DeleteWithInstance"`
	CreateTime         string         `json:"CreateTime"`
	DeadlineTime       string         `json:"DeadlineTime,omitempty"`
	SnapshotCount      int64          `json:"SnapshotCount"`
	SnapshotSize       int64          `json:"SnapshotSize"` // MiB
	Tags               []cloudapi.Tag `json:"Tags"`
}

// AttachedInstances returns the instances the disk is attached (or attaching) to: the
// API reports a shareable disk's in InstanceIdList and any other disk's in InstanceId.
func (d *Disk) AttachedInstances() []string {
	if len(d.InstanceIdList) > 0 {
		return d.InstanceIdList
	}
	if d.InstanceId != "" {
		return []string{d.InstanceId}
	}
	return nil
}

// AttachedTo reports whether the disk is attached (or attaching) to instanceID.
func (d *Disk) AttachedTo(instanceID string) bool {
	return slices.Contains(d.AttachedInstances(), instanceID)
}

// Snapshot is a point-in-time copy of a disk.
type Snapshot struct {
	SnapshotId    string    `json:"SnapshotId"`
	SnapshotName  string    `json:"SnapshotName"`
	SnapshotState string    `json:"SnapshotState"`
	SnapshotType  string    `json:"SnapshotType"`
	Placement     Placement `json:"Placement"`
	DiskId        string    `json:"DiskId"`
	DiskUsage     string    `json:"DiskUsage"`
	DiskSize      int64     `json:"DiskSize"` // GiB
	Percent       int64     `json:"Percent"`
	CreateTime    string    `json:"CreateTime"`
	DeadlineTime  string    `json:"DeadlineTime,omitempty"`
	Encrypt       bool      `json:"Encrypt"`
	IsPermanent   bool      `json:"IsPermanent"`
}

// CreateDisksRequest creates DiskCount disks (default 1) of one type and size in one zone,
// optionally from a snapshot (then DiskSize defaults to, and must be at least, the
// snapshot's size).
type CreateDisksRequest struct {
	DiskType          string             `json:"DiskType,omitempty"`
	DiskChargeType    string             `json:"DiskChargeType,omitempty"`
	Placement         *Placement         `json:"Placement,omitempty"`
	DiskName          string             `json:"DiskName,omitempty"`
	DiskCount         *int64             `json:"DiskCount,omitempty"`
	DiskChargePrepaid *DiskChargePrepaid `json:"DiskChargePrepaid,omitempty"`
	DiskSize          *int64             `json:"DiskSize,omitempty"`
	SnapshotId        string             `json:"SnapshotId,omitempty"`
	ClientToken       string             `json:"ClientToken,omitempty"`
	Encrypt           string             `json:"Encrypt,omitempty"` // "ENCRYPT"
	Tags              []cloudapi.Tag     `json:"Tags,omitempty"`
	Shareable         *bool              `json:"Shareable,omitempty"`
	// ThroughputPerformance buys extra throughput (MB/s), CLOUD_HSSD and CLOUD_TSSD only.
	ThroughputPerformance *int64 `json:"ThroughputPerformance,omitempty"`
}

// ClientTokenField makes CreateDisks idempotent across retries.
func (r *CreateDisksRequest) ClientTokenField() *string { return &r.ClientToken }

// CreateDisksResponse lists the new disks' IDs.
type CreateDisksResponse struct {
	DiskIdSet []string `json:"DiskIdSet"`
	RequestId string   `json:"RequestId"`
}

// DescribeDisksRequest lists disks by DiskIds or by Filters (not both). Filters: disk-id,
// disk-name, disk-type, disk-state, disk-usage, disk-charge-type, portable, instance-id,
// zone, project-id, tag-key, tag-value, tag:<key>.
type DescribeDisksRequest struct {
	DiskIds                      []string          `json:"DiskIds,omitempty"`
	Filters                      []cloudapi.Filter `json:"Filters,omitempty"`
	Offset                       *int64            `json:"Offset,omitempty"`
	Limit                        *int64            `json:"Limit,omitempty"`
	Order                        string            `json:"Order,omitempty"`      // ASC | DESC
	OrderField                   string            `json:"OrderField,omitempty"` // CREATE_TIME | DEADLINE
	ReturnBindAutoSnapshotPolicy *bool             `json:"ReturnBindAutoSnapshotPolicy,omitempty"`
}

// DescribeDisksResponse is one page of disks; TotalCount counts every match.
type DescribeDisksResponse struct {
	TotalCount int64  `json:"TotalCount"`
	DiskSet    []Disk `json:"DiskSet"`
	RequestId  string `json:"RequestId"`
}

// AttachDisksRequest attaches up to 10 disks to one instance.
type AttachDisksRequest struct {
	DiskIds            []string `json:"DiskIds,omitempty"`
	InstanceId         string   `json:"InstanceId,omitempty"`
	DeleteWithInstance *bool    `json:"DeleteWithInstance,omitempty"`
}

// AttachDisksResponse carries only the request id; poll DescribeDisks for ATTACHED.
type AttachDisksResponse struct {
	RequestId string `json:"RequestId"`
}

// DetachDisksRequest detaches up to 10 disks. InstanceId matters only for shareable
// disks: it names the instance to detach from (absent = all of them).
type DetachDisksRequest struct {
	DiskIds    []string `json:"DiskIds,omitempty"`
	InstanceId string   `json:"InstanceId,omitempty"`
}

// DetachDisksResponse carries only the request id; poll DescribeDisks for UNATTACHED.
type DetachDisksResponse struct {
	RequestId string `json:"RequestId"`
}

// ResizeDiskRequest grows a disk to DiskSize GiB (never shrinks).
type ResizeDiskRequest struct {
	DiskId   string `json:"DiskId,omitempty"`
	DiskSize *int64 `json:"DiskSize,omitempty"`
}

// ResizeDiskResponse carries only the request id; the disk is EXPANDING until done.
type ResizeDiskResponse struct {
	RequestId string `json:"RequestId"`
}

// TerminateDisksRequest deletes up to 50 unattached disks.
type TerminateDisksRequest struct {
	DiskIds []string `json:"DiskIds,omitempty"`
}

// TerminateDisksResponse carries only the request id.
type TerminateDisksResponse struct {
	RequestId string `json:"RequestId"`
}

// CreateSnapshotRequest snapshots a disk.
type CreateSnapshotRequest struct {
	DiskId       string `json:"DiskId,omitempty"`
	SnapshotName string `json:"SnapshotName,omitempty"`
	Deadline     string `json:"Deadline,omitempty"` // RFC 3339 or "2006-01-02 15:04:05"
}

// CreateSnapshotResponse names the new snapshot, which starts CREATING.
type CreateSnapshotResponse struct {
	SnapshotId string `json:"SnapshotId"`
	RequestId  string `json:"RequestId"`
}

// DescribeSnapshotsRequest lists snapshots by SnapshotIds or by Filters (not both).
// Filters: snapshot-id, snapshot-name, snapshot-state, disk-id, disk-usage, zone,
// project-id, encrypt, snapshot-type.
type DescribeSnapshotsRequest struct {
	SnapshotIds []string          `json:"SnapshotIds,omitempty"`
	Filters     []cloudapi.Filter `json:"Filters,omitempty"`
	Offset      *int64            `json:"Offset,omitempty"`
	Limit       *int64            `json:"Limit,omitempty"`
	Order       string            `json:"Order,omitempty"`      // ASC | DESC
	OrderField  string            `json:"OrderField,omitempty"` // CREATE_TIME
}

// DescribeSnapshotsResponse is one page of snapshots.
type DescribeSnapshotsResponse struct {
	TotalCount  int64      `json:"TotalCount"`
	SnapshotSet []Snapshot `json:"SnapshotSet"`
	RequestId   string     `json:"RequestId"`
}

// DeleteSnapshotsRequest deletes NORMAL snapshots.
type DeleteSnapshotsRequest struct {
	SnapshotIds []string `json:"SnapshotIds,omitempty"`
}

// DeleteSnapshotsResponse carries only the request id.
type DeleteSnapshotsResponse struct {
	RequestId string `json:"RequestId"`
}
