package cbs

import (
	"context"
	"errors"
	"fmt"

	"github.com/stratus-cloud/stratus/cloudapi"
)

// WaitDisk polls DescribeDisks until cond holds for the disk and returns the disk as last
// seen. what names the condition in errors. A disk that does not exist ends the wait with
// a not-found error; throttling and transport failures only mean "not yet". opts is
// optional (at most one value): delays and timeout of the poll, see cloudapi.WaitOptions.
func (c *Client) WaitDisk(ctx context.Context, diskID, what string, cond func(*Disk) bool, opts ...cloudapi.WaitOptions) (*Disk, error) {
	o := waitOptions(opts)
	o.What = fmt.Sprintf("disk %s %s", diskID, what)
	var last *Disk
	err := cloudapi.WaitFor(ctx, o, func(ctx context.Context) (bool, error) {
		d, err := c.GetDisk(ctx, diskID)
		if err != nil {
			return false, transient(err)
		}
		last = d
		return cond(d), nil
	})
	return last, err
}

// WaitDiskState waits until the disk's DiskState is state (for example DiskStateAttached).
func (c *Client) WaitDiskState(ctx context.Context, diskID, state string, opts ...cloudapi.WaitOptions) (*Disk, error) {
	return c.WaitDisk(ctx, diskID, state, func(d *Disk) bool { return d.DiskState == state }, opts...)
}

// WaitDiskAttached waits until the disk is ATTACHED and instanceID is one of its
// instances, which is what a shareable disk's second attachment needs.
func (c *Client) WaitDiskAttached(ctx context.Context, diskID, instanceID string, opts ...cloudapi.WaitOptions) (*Disk, error) {
	return c.WaitDisk(ctx, diskID, "ATTACHED to "+instanceID, func(d *Disk) bool {
		return d.DiskState == DiskStateAttached && d.AttachedTo(instanceID)
	}, opts...)
}

// WaitDiskDetached waits until the disk is no longer attached to instanceID and not in
// transition (UNATTACHED, or ATTACHED to other instances for a shareable disk).
func (c *Client) WaitDiskDetached(ctx context.Context, diskID, instanceID string, opts ...cloudapi.WaitOptions) (*Disk, error) {
	return c.WaitDisk(ctx, diskID, "detached from "+instanceID, func(d *Disk) bool {
		settled := d.DiskState == DiskStateUnattached || d.DiskState == DiskStateAttached
		return settled && !d.AttachedTo(instanceID)
	}, opts...)
}

// WaitDiskDeleted waits until DescribeDisks no longer reports the disk.
func (c *Client) WaitDiskDeleted(ctx context.Context, diskID string, opts ...cloudapi.WaitOptions) error {
	o := waitOptions(opts)
	o.What = fmt.Sprintf("disk %s deleted", diskID)
	return cloudapi.WaitFor(ctx, o, func(ctx context.Context) (bool, error) {
		_, err := c.GetDisk(ctx, diskID)
		if cloudapi.IsNotFound(err) {
			return true, nil
		}
		return false, transient(err)
	})
}

// WaitSnapshotState waits until the snapshot's SnapshotState is state (usually
// SnapshotStateNormal) and returns it as last seen.
func (c *Client) WaitSnapshotState(ctx context.Context, snapshotID, state string, opts ...cloudapi.WaitOptions) (*Snapshot, error) {
	o := waitOptions(opts)
	o.What = fmt.Sprintf("snapshot %s %s", snapshotID, state)
	var last *Snapshot
	err := cloudapi.WaitFor(ctx, o, func(ctx context.Context) (bool, error) {
		s, err := c.GetSnapshot(ctx, snapshotID)
		if err != nil {
			return false, transient(err)
		}
		last = s
		return s.SnapshotState == state, nil
	})
	return last, err
}

func waitOptions(opts []cloudapi.WaitOptions) cloudapi.WaitOptions {
	if len(opts) > 0 {
		return opts[0]
	}
	return cloudapi.WaitOptions{}
}

// transient swallows the failures a later poll may not see again (the client already
// retried them), and passes everything else through as the end of the wait.
func transient(err error) error {
	var te *cloudapi.TransportError
	if err == nil || cloudapi.IsThrottled(err) || cloudapi.HasCode(err, cloudapi.CodeInternalError) || errors.As(err, &te) {
		return nil
	}
	return err
}
