package cbs

// Per-request limits of the public API (the field comments of the official SDK's
// cbs/v20170312 models): clients stay within them, fakecloud enforces them.
const (
	// MaxDisksPerAttach is how many DiskIds one AttachDisks or DetachDisks call takes.
	MaxDisksPerAttach = 10
	// MaxIDsPerDescribe is how many DiskIds / SnapshotIds one Describe call takes.
	MaxIDsPerDescribe = 100
	// MaxLimit is the largest page (Limit) of DescribeDisks and DescribeSnapshots.
	MaxLimit = 100
	// MaxFilterValues is how many values one filter takes.
	MaxFilterValues = 5
	// MaxDiskNameBytes bounds CreateDisks.DiskName; MaxSnapshotNameBytes
	// CreateSnapshot.SnapshotName.
	MaxDiskNameBytes     = 60
	MaxSnapshotNameBytes = 60
	// MaxClientTokenLen bounds CreateDisks.ClientToken (ASCII characters).
	MaxClientTokenLen = 64
	// MaxTags is how many tags a disk carries; MaxTagKeyLen and MaxTagValueLen bound
	// each (the tag service's limits).
	MaxTags        = 50
	MaxTagKeyLen   = 127
	MaxTagValueLen = 255
)
