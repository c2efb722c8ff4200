// Package cbs simulates the cloud's block storage service (CBS): disks with the real
// state machine (UNATTACHED -> ATTACHING -> ATTACHED -> DETACHING -> UNATTACHED, and
// EXPANDING while a resize runs), shareable disks attached to several instances,
// snapshots (CREATING -> NORMAL) and disks created from them, with the public API's
// validation, quotas and error codes. Transitions are derived from the world's clock
// (Settle, State), never driven by goroutines; delays come from Options.Delays.
//
// With the data plane on (Options.DataPlane, see package dataplane) every disk really
// holds bytes: an image file per disk and snapshot, and a loop device plus
// <dev-root>/disk/by-id/virtio-<disk-id> symlink for each disk attached to an instance
// that is this machine (the instance's Local flag, or its private address is on a local
// interface). Devices appear when AttachDisks is accepted and disappear when DetachDisks
// is. There is no read-only attach mode in this API version, so a shareable disk's first
// attachment is read-write and every attachment made while another instance holds the
// disk is read-only (a read-only loop device): never a silent second writer.
//
// A terminated instance releases its disks (they read UNATTACHED; DeleteWithInstance ones
// are gone); their devices go at the next CBS write or Start. The package reads CVM's
// instance table and never writes it.
package cbs

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sync"
	"syscall"
	"time"

	"k8s.io/klog/v2"

	"github.com/stratus-cloud/stratus/cloudapi/cbs"
	"github.com/stratus-cloud/stratus/fakecloud/api"
	"github.com/stratus-cloud/stratus/fakecloud/cbs/dataplane"
	"github.com/stratus-cloud/stratus/fakecloud/cvm"
	"github.com/stratus-cloud/stratus/fakecloud/store"
)

// Delays says how long the disk and snapshot state machines' transitions take (0: at
// once).
type Delays struct {
	Attach   time.Duration // ATTACHING -> ATTACHED
	Detach   time.Duration // DETACHING -> UNATTACHED
	Resize   time.Duration // EXPANDING -> done
	Snapshot time.Duration // CREATING -> NORMAL
}

// DelaysSeedKey is the seed section with the CBS delays (diskDelays: {attach: 2s, ...}).
const DelaysSeedKey = "diskDelays"

// SeedDelays reads the disk delays a seed sets; ok is false when it sets none.
func SeedDelays(s *api.Seed) (d Delays, ok bool, err error) {
	ok, err = s.Durations(DelaysSeedKey, map[string]*time.Duration{
		"attach": &d.Attach, "detach": &d.Detach, "resize": &d.Resize, "snapshot": &d.Snapshot,
	})
	return d, ok, err
}

// Options configures the module beyond the World.
type Options struct {
	Delays Delays
	// DataPlane, when non-nil, backs disks with image files and binds the disks of local
	// instances to loop devices (needs root). Its DataDir defaults to World.DataDir.
	DataPlane *dataplane.Options
	// LocalAddrs lists this machine's addresses (nil: the addresses of its interfaces).
	LocalAddrs func() ([]netip.Addr, error)
}

// Module serves the CBS API.
type Module struct {
	w         *api.World
	opts      Options
	disks     *store.Table[Disk]
	snapshots *store.Table[Snapshot]
	tokens    *store.Table[clientToken]
	instances *store.Table[cvm.Instance]

	planeMu sync.Mutex
	plane   *dataplane.Plane // nil until started, or without a data plane
}

// New is the module without a data plane.
func New(w *api.World) (api.Module, error) { return NewWithOptions(w, Options{}) }

// NewWithOptions registers the CBS tables in w's store. The data plane, if configured,
// starts with Start or with the first CBS request, whichever comes first (the store is
// not open yet when modules are built). Invalid options are an error.
func NewWithOptions(w *api.World, opts Options) (*Module, error) {
	if d := opts.Delays; d.Attach < 0 || d.Detach < 0 || d.Resize < 0 || d.Snapshot < 0 {
		return nil, fmt.Errorf("cbs: delays must not be negative, got %+v", d)
	}
	if opts.DataPlane != nil && opts.DataPlane.DataDir == "" {
		dp := *opts.DataPlane
		dp.DataDir = w.DataDir
		opts.DataPlane = &dp
	}
	if opts.DataPlane != nil && opts.DataPlane.DataDir == "" {
		return nil, errors.New("cbs: the data plane needs a data dir for disk images")
	}
	if opts.LocalAddrs == nil {
		opts.LocalAddrs = interfaceAddrs
	}
	return &Module{
		w:         w,
		opts:      opts,
		disks:     Disks(w.Store),
		snapshots: Snapshots(w.Store),
		tokens:    store.Register[clientToken](w.Store, tokensName),
		instances: cvm.Instances(w.Store),
	}, nil
}

// API lists the CBS actions.
func (m *Module) API() api.Service {
	return api.Service{Name: cbs.Service, Version: cbs.Version, Actions: map[string]api.Handler{
		"CreateDisks":       m.createDisks,
		"DescribeDisks":     m.describeDisks,
		"AttachDisks":       m.attachDisks,
		"DetachDisks":       m.detachDisks,
		"ResizeDisk":        m.resizeDisk,
		"TerminateDisks":    m.terminateDisks,
		"CreateSnapshot":    m.createSnapshot,
		"DescribeSnapshots": m.describeSnapshots,
		"DeleteSnapshots":   m.deleteSnapshots,
	}}
}

// Seed imports nothing: the seed format declares no disks.
func (m *Module) Seed(*store.Tx, *api.Seed) error { return nil }

// Start brings the data plane in line with the stored state: after a restart it adopts
// the loop devices of attached disks (rebinding any that vanished), detaches leftovers,
// removes stale by-id symlinks and the images of deleted disks. Call it once the store is
// open, and again after a state reset. Without a data plane it does nothing.
func (m *Module) Start() error {
	if m.opts.DataPlane == nil {
		return nil
	}
	m.planeMu.Lock()
	defer m.planeMu.Unlock()
	if m.plane == nil {
		p, err := dataplane.New(*m.opts.DataPlane)
		if err != nil {
			return err
		}
		m.plane = p
	}
	// The whole sync runs under the store's read lock: handlers create and delete images
	// under its write lock, so Sync never sees an image whose disk is not committed yet.
	now := m.w.Now()
	return m.w.Store.View(func(tx *store.Tx) error {
		exists := m.instanceExists(tx, now)
		var disks, snaps []string
		for _, d := range m.disks.List(tx) {
			if !goneWithInstance(d, exists) {
				disks = append(disks, d.DiskId)
			}
		}
		for _, s := range m.snapshots.List(tx) {
			if snapshotExists(s, now) {
				snaps = append(snaps, s.SnapshotId)
			}
		}
		if err := m.plane.Sync(m.wanted(tx, now), disks, snaps); err != nil {
			return fmt.Errorf("cbs data plane: %w", err)
		}
		return nil
	})
}

// WithOptions returns a module constructor using opts, for fakecloud.Config.Modules.
func WithOptions(opts Options) api.NewModule {
	return func(w *api.World) (api.Module, error) { return NewWithOptions(w, opts) }
}

// DataPlane returns the running data plane, or nil.
func (m *Module) DataPlane() *dataplane.Plane {
	m.planeMu.Lock()
	defer m.planeMu.Unlock()
	return m.plane
}

// Close leaves attached disks attached (their loop devices and symlinks stay, so a
// restarted fakecloud adopts them and a node's mounts survive); it releases nothing else.
func (m *Module) Close() error {
	if p := m.DataPlane(); p != nil {
		return p.Close()
	}
	return nil
}

// dataPlane returns the plane, starting it on the first request (the store is open by
// then); nil without one. Every handler calls it, so a restarted fakecloud re-establishes
// its devices on the first CBS call even if nobody called Start.
func (m *Module) dataPlane() (*dataplane.Plane, error) {
	if m.opts.DataPlane == nil {
		return nil, nil
	}
	if p := m.DataPlane(); p != nil {
		return p, nil
	}
	if err := m.Start(); err != nil && m.DataPlane() == nil {
		return nil, api.Errorf("InternalError.ComponentError", "the block storage data plane is unavailable: %v", err)
	}
	return m.DataPlane(), nil
}

// instanceExists answers whether an instance id is (still) an instance at now.
func (m *Module) instanceExists(tx *store.Tx, now time.Time) func(string) bool {
	return func(id string) bool {
		in, ok := m.instances.Get(tx, id)
		return ok && cvm.Exists(in, now)
	}
}

// liveDisk returns the disk as the API sees it at now, or false when it does not exist.
func (m *Module) liveDisk(tx *store.Tx, id string, now time.Time) (*Disk, bool) {
	raw, ok := m.disks.Get(tx, id)
	if !ok {
		return nil, false
	}
	exists := m.instanceExists(tx, now)
	if goneWithInstance(raw, exists) {
		return nil, false
	}
	return Settle(raw, now, exists), true
}

// liveDisks lists every existing disk, settled at now, in creation order.
func (m *Module) liveDisks(tx *store.Tx, now time.Time) []*Disk {
	exists := m.instanceExists(tx, now)
	var out []*Disk
	for _, raw := range m.disks.List(tx) {
		if !goneWithInstance(raw, exists) {
			out = append(out, Settle(raw, now, exists))
		}
	}
	return out
}

func (m *Module) liveSnapshot(tx *store.Tx, id string, now time.Time) (*Snapshot, bool) {
	s, ok := m.snapshots.Get(tx, id)
	if !ok || !snapshotExists(s, now) {
		return nil, false
	}
	return s, true
}

// wanted lists the attachments that should have a device on this machine at now: those
// of disks attached (or attaching) to local instances, minus those being detached.
func (m *Module) wanted(tx *store.Tx, now time.Time) []dataplane.Attachment {
	local := m.localAddrs()
	var out []dataplane.Attachment
	for _, d := range m.liveDisks(tx, now) {
		for _, a := range d.Attachments {
			if d.opRunning(now) && d.Op == cbs.DiskStateDetaching && slices.Contains(d.Detaching, a.InstanceId) {
				continue
			}
			in, ok := m.instances.Get(tx, a.InstanceId)
			if !ok || !(in.Local || local[in.PrivateIP]) {
				continue
			}
			out = append(out, dataplane.Attachment{DiskID: d.DiskId, InstanceID: a.InstanceId, ReadOnly: a.ReadOnly})
		}
	}
	return out
}

func (m *Module) localAddrs() map[string]bool {
	addrs, err := m.opts.LocalAddrs()
	if err != nil {
		klog.ErrorS(err, "List local addresses; only instances marked local get devices")
	}
	set := map[string]bool{}
	for _, a := range addrs {
		set[a.Unmap().String()] = true
	}
	return set
}

func interfaceAddrs() ([]netip.Addr, error) {
	ifAddrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil, err
	}
	var out []netip.Addr
	for _, a := range ifAddrs {
		if p, err := netip.ParsePrefix(a.String()); err == nil {
			out = append(out, p.Addr())
		}
	}
	return out, nil
}

// syncPlane makes the data plane match the transaction's staged state. On failure it puts
// the devices back as they were (before) and returns an API error, so the caller's
// transaction aborts and neither the state nor the devices change.
func (m *Module) syncPlane(tx *store.Tx, now time.Time, p *dataplane.Plane, before []dataplane.Attachment) error {
	if p == nil {
		return nil
	}
	if err := p.Reconcile(m.wanted(tx, now)); err != nil {
		if rerr := p.Reconcile(before); rerr != nil {
			klog.ErrorS(rerr, "Restore disk devices after a failed change")
		}
		return planeError("change the block devices", err)
	}
	return nil
}

// planeError turns a data-plane failure into the API's answer: the host running out of
// room (or an image larger than its filesystem allows: ext4 stops at 16 TiB) is
// ResourceInsufficient, which a client does not retry; anything else is an internal
// error of the operation.
func planeError(what string, err error) error {
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EFBIG) || errors.Is(err, syscall.EDQUOT) {
		return api.Errorf("ResourceInsufficient", "%s: the storage backend is out of room: %v", what, err)
	}
	return api.Errorf("InternalError.ResourceOpFailed", "%s: %v", what, err)
}

// update runs fn in a write transaction with the data plane (nil without one) and the
// attachments wanted before fn's changes.
func (m *Module) update(now time.Time, fn func(tx *store.Tx, p *dataplane.Plane, before []dataplane.Attachment) error) error {
	p, err := m.dataPlane()
	if err != nil {
		return err
	}
	return m.w.Store.Update(func(tx *store.Tx) error {
		var before []dataplane.Attachment
		if p != nil {
			before = m.wanted(tx, now)
		}
		return fn(tx, p, before)
	})
}

const gib = int64(1) << 30
