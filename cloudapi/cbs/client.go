// Package cbs is the typed client of the cloud's block storage service (CBS, API version
// 2017-03-12): disks, their attachment to instances, resizing, and snapshots, plus
// waiters for the asynchronous state changes. Field names follow the public API exactly,
// so fakecloud decodes requests into these same types.
//
// The package only builds and sends requests through a *cloudapi.Client; it never
// retries or signs on its own and never imports Kubernetes.
package cbs

import (
	"context"

	"github.com/stratus-cloud/stratus/cloudapi"
)

// Service and Version name the API.
const (
	Service = "cbs"
	Version = "2017-03-12"
)

func op(action string) cloudapi.Operation {
	return cloudapi.Operation{Service: Service, Version: Version, Action: action}
}

// Client sends CBS actions through a cloudapi.Client.
type Client struct{ c *cloudapi.Client }

// New returns a CBS client on top of c.
func New(c *cloudapi.Client) *Client { return &Client{c: c} }

func call[Out any](ctx context.Context, c *Client, action string, in any) (*Out, error) {
	out := new(Out)
	if err := c.c.Invoke(ctx, op(action), in, out); err != nil {
		return nil, err
	}
	return out, nil
}

// CreateDisks creates disks; they are UNATTACHED as soon as the call returns.
func (c *Client) CreateDisks(ctx context.Context, in *CreateDisksRequest) (*CreateDisksResponse, error) {
	return call[CreateDisksResponse](ctx, c, "CreateDisks", in)
}

// DescribeDisks lists disks.
func (c *Client) DescribeDisks(ctx context.Context, in *DescribeDisksRequest) (*DescribeDisksResponse, error) {
	return call[DescribeDisksResponse](ctx, c, "DescribeDisks", in)
}

// AttachDisks starts attaching disks to an instance.
func (c *Client) AttachDisks(ctx context.Context, in *AttachDisksRequest) (*AttachDisksResponse, error) {
	return call[AttachDisksResponse](ctx, c, "AttachDisks", in)
}

// DetachDisks starts detaching disks.
func (c *Client) DetachDisks(ctx context.Context, in *DetachDisksRequest) (*DetachDisksResponse, error) {
	return call[DetachDisksResponse](ctx, c, "DetachDisks", in)
}

// ResizeDisk starts growing a disk.
func (c *Client) ResizeDisk(ctx context.Context, in *ResizeDiskRequest) (*ResizeDiskResponse, error) {
	return call[ResizeDiskResponse](ctx, c, "ResizeDisk", in)
}

// TerminateDisks deletes unattached disks.
func (c *Client) TerminateDisks(ctx context.Context, in *TerminateDisksRequest) (*TerminateDisksResponse, error) {
	return call[TerminateDisksResponse](ctx, c, "TerminateDisks", in)
}

// CreateSnapshot starts a snapshot of a disk.
func (c *Client) CreateSnapshot(ctx context.Context, in *CreateSnapshotRequest) (*CreateSnapshotResponse, error) {
	return call[CreateSnapshotResponse](ctx, c, "CreateSnapshot", in)
}

// DescribeSnapshots lists snapshots.
func (c *Client) DescribeSnapshots(ctx context.Context, in *DescribeSnapshotsRequest) (*DescribeSnapshotsResponse, error) {
	return call[DescribeSnapshotsResponse](ctx, c, "DescribeSnapshots", in)
}

// DeleteSnapshots deletes snapshots.
func (c *Client) DeleteSnapshots(ctx context.Context, in *DeleteSnapshotsRequest) (*DeleteSnapshotsResponse, error) {
	return call[DeleteSnapshotsResponse](ctx, c, "DeleteSnapshots", in)
}

// GetDisk returns one disk, or an error for which cloudapi.IsNotFound holds when it does
// not exist (DescribeDisks itself answers an empty list for unknown ids).
func (c *Client) GetDisk(ctx context.Context, diskID string) (*Disk, error) {
	out, err := c.DescribeDisks(ctx, &DescribeDisksRequest{DiskIds: []string{diskID}})
	if err != nil {
		return nil, err
	}
	for i := range out.DiskSet {
		if out.DiskSet[i].DiskId == diskID {
			return &out.DiskSet[i], nil
		}
	}
	return nil, notFound(CodeDiskNotFound, "DescribeDisks", "disk", diskID, out.RequestId)
}

// GetSnapshot returns one snapshot, or a not-found error.
func (c *Client) GetSnapshot(ctx context.Context, snapshotID string) (*Snapshot, error) {
	out, err := c.DescribeSnapshots(ctx, &DescribeSnapshotsRequest{SnapshotIds: []string{snapshotID}})
	if err != nil {
		return nil, err
	}
	for i := range out.SnapshotSet {
		if out.SnapshotSet[i].SnapshotId == snapshotID {
			return &out.SnapshotSet[i], nil
		}
	}
	return nil, notFound(CodeSnapshotNotFound, "DescribeSnapshots", "snapshot", snapshotID, out.RequestId)
}

func notFound(code, action, kind, id, reqID string) error {
	return &cloudapi.APIError{Service: Service, Action: action, Code: code,
		Message: kind + " `" + id + "` does not exist", RequestID: reqID}
}
