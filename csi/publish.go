package csi

import (
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Publish context keys: what the node needs from ControllerPublish.
const (
	// PublishDiskID names the disk the node must find (it checks the device's identity
	// against it before touching the device).
	PublishDiskID = "diskId"
	// PublishReadOnly is "true" when the attachment is read-only: the node makes the
	// block device read-only and mounts read-only, whatever the pod asks.
	PublishReadOnly = "readOnly"
)

// access is how one node holds a volume.
type access int

const (
	accessUnknown access = iota // attached before this controller started
	accessReader
	accessWriter
)

func (a access) String() string {
	switch a {
	case accessReader:
		return "read-only"
	case accessWriter:
		return "read-write"
	}
	return "with an access mode this controller has not seen"
}

// attachments remembers how each node was given each volume. The cloud reports only
// which instances a disk is attached to; the access of an attachment made before this
// process started is unknown until the CO publishes it again (it does, on resync).
type attachments struct {
	mu    sync.Mutex
	modes map[string]map[string]access // volume -> node -> access
}

func (a *attachments) get(volume, node string) access {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.modes[volume][node]
}

func (a *attachments) set(volume, node string, acc access) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.modes == nil {
		a.modes = map[string]map[string]access{}
	}
	if a.modes[volume] == nil {
		a.modes[volume] = map[string]access{}
	}
	a.modes[volume][node] = acc
}

func (a *attachments) forget(volume, node string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	delete(a.modes[volume], node)
	if len(a.modes[volume]) == 0 {
		delete(a.modes, volume)
	}
}

// checkPublish decides whether node may get the volume with capability c, given the
// instances the disk is attached to now. It enforces one writer / many readers:
//
//   - a writer needs the volume to be on no other node (MULTI_NODE_SINGLE_WRITER block
//     volumes excepted: there the writer may have readers, but only as the disk's first
//     attachment, the one the cloud makes writable);
//   - a reader on another node needs a shareable disk and no writer elsewhere (again
//     except for MULTI_NODE_SINGLE_WRITER block volumes);
//   - on the same node, readers and a writer share the one attachment.
//
// An attachment of unknown access counts as a possible writer when it is the disk's
// only one: a filesystem writer never shares a disk with other nodes, so several
// attachments are all readers.
func (a *attachments) checkPublish(d *Disk, node string, c *csi.VolumeCapability, want access) error {
	mode := c.GetAccessMode().GetMode()
	block := c.GetBlock() != nil
	sharedWriter := block && mode == csi.VolumeCapability_AccessMode_MULTI_NODE_SINGLE_WRITER
	var others []string
	for _, in := range d.Instances {
		if in != node {
			others = append(others, in)
		}
	}
	if len(others) == 0 {
		return nil
	}
	holders := func() string {
		var parts []string
		for _, o := range others {
			parts = append(parts, fmt.Sprintf("node %s (%s)", o, a.effective(d, o)))
		}
		return strings.Join(parts, ", ")
	}
	if !isMultiNode(mode) {
		return status.Errorf(codes.FailedPrecondition, "volume %s is attached to %s and access mode %s allows one node only", d.ID, holders(), mode)
	}
	if want == accessWriter {
		if !sharedWriter {
			return status.Errorf(codes.FailedPrecondition, "volume %s is attached to %s: a second read-write attachment is refused", d.ID, holders())
		}
		for _, o := range others {
			if a.effective(d, o) == accessWriter {
				return status.Errorf(codes.FailedPrecondition, "volume %s already has a writer on node %s", d.ID, o)
			}
		}
		return status.Errorf(codes.FailedPrecondition, "volume %s is attached to %s: the cloud makes only a disk's first attachment writable, so the writer must attach before any reader", d.ID, holders())
	}
	if !d.Shareable {
		return status.Errorf(codes.FailedPrecondition, "volume %s is attached to %s and its disk is not shareable: create it with a MULTI_NODE access mode (or parameter shareable=true) to read it from several nodes", d.ID, holders())
	}
	if sharedWriter {
		return nil
	}
	for _, o := range others {
		if acc := a.effective(d, o); acc != accessReader {
			return status.Errorf(codes.FailedPrecondition, "volume %s is held read-write by node %s (%s): read-only attachments on other nodes are refused while a filesystem has a writer", d.ID, o, acc)
		}
	}
	return nil
}

// effective is an attachment's access, resolving unknown ones as checkPublish explains.
func (a *attachments) effective(d *Disk, node string) access {
	acc := a.get(d.ID, node)
	if acc == accessUnknown && len(d.Instances) > 1 && slices.Contains(d.Instances, node) {
		return accessReader
	}
	return acc
}
