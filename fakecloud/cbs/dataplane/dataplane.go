// Package dataplane makes fakecloud's CBS disks real block devices: every disk is a
// sparse image file under <DataDir>/cbs, and a disk attached to an instance that runs on
// this machine is bound to a loop device with the symlink
// <DevRoot>/disk/by-id/virtio-<disk-id>, the way a hypervisor plus udev present a virtio
// disk to a real guest. Read-only attachments get read-only loop devices. Snapshots are
// sparse copies of the image; resizing grows the image and the loop device.
//
// The package owns image files, loop devices bound to those files, and the by-id
// symlinks it created; it never touches a loop device bound to any other file, nor a
// symlink that does not point at a loop device. It knows nothing about the API or the
// store: the cbs service says which attachments should exist (Reconcile, Sync) and the
// plane makes the kernel agree. Plain Close leaves attached disks attached, so a
// restarted fakecloud (Sync) finds them bound as before and a mounted filesystem on a
// node survives the restart; Teardown detaches everything.
package dataplane

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"

	"k8s.io/klog/v2"
)

// DefaultDevRoot is where a real udev puts disk/by-id.
const DefaultDevRoot = "/dev"

// InstancePlaceholder in Options.DevRoot is replaced by the instance id.
const InstancePlaceholder = "{instanceId}"

// Options configures a Plane.
type Options struct {
	// DataDir is fakecloud's data directory; images live in DataDir/cbs. Required.
	DataDir string
	// DevRoot is the root of the device tree the symlinks go into (default /dev). When
	// several instances are local (sandbox nodes sharing one kernel), put
	// "{instanceId}" in it so that each gets its own tree, e.g. /run/stratus/{instanceId}/dev.
	DevRoot string
}

// Attachment is one attachment of a disk to a local instance that should have a device.
type Attachment struct {
	DiskID     string
	InstanceID string
	ReadOnly   bool
}

// Binding is a disk bound to a loop device and linked into a device tree.
type Binding struct {
	DiskID     string `json:"diskId"`
	InstanceID string `json:"instanceId"`
	DevRoot    string `json:"devRoot"`
	Link       string `json:"link"` // <DevRoot>/disk/by-id/virtio-<disk-id>
	Loop       string `json:"loop"` // /dev/loopN
	ReadOnly   bool   `json:"readOnly"`
}

// Plane is the data plane of one fakecloud data directory. It is safe for concurrent use.
type Plane struct {
	dir     string // <DataDir>/cbs, absolute
	devRoot string

	mu       sync.Mutex
	bindings map[string]Binding // key: disk id + "\x00" + dev root
}

var idPattern = regexp.MustCompile(`^[a-z]+-[a-z0-9]+$`)

// New prepares the image directories and checks that loop devices can be created.
func New(opts Options) (*Plane, error) {
	if opts.DataDir == "" {
		return nil, errors.New("cbs data plane: data dir is empty")
	}
	if err := Available(); err != nil {
		return nil, fmt.Errorf("cbs data plane needs loop devices (root and %s): %w", loopControl, err)
	}
	dir, err := filepath.Abs(filepath.Join(opts.DataDir, "cbs"))
	if err != nil {
		return nil, fmt.Errorf("cbs data plane: %w", err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "snapshots"), 0o700); err != nil {
		return nil, fmt.Errorf("cbs data plane: create %s: %w", dir, err)
	}
	root := opts.DevRoot
	if root == "" {
		root = DefaultDevRoot
	}
	if root, err = filepath.Abs(root); err != nil {
		return nil, fmt.Errorf("cbs data plane: dev root: %w", err)
	}
	p := &Plane{dir: dir, devRoot: root, bindings: map[string]Binding{}}
	if err := p.load(); err != nil {
		return nil, err
	}
	return p, nil
}

// ImagePath is the image file of a disk.
func (p *Plane) ImagePath(diskID string) string { return filepath.Join(p.dir, diskID+".img") }

// SnapshotPath is the image file of a snapshot.
func (p *Plane) SnapshotPath(snapshotID string) string {
	return filepath.Join(p.dir, "snapshots", snapshotID+".img")
}

// DevRootFor is the device tree of an instance.
func (p *Plane) DevRootFor(instanceID string) string {
	return strings.ReplaceAll(p.devRoot, InstancePlaceholder, instanceID)
}

// LinkPath is where the disk appears for the instance.
func (p *Plane) LinkPath(diskID, instanceID string) string {
	return linkPath(p.DevRootFor(instanceID), diskID)
}

func linkPath(devRoot, diskID string) string {
	return filepath.Join(devRoot, "disk", "by-id", "virtio-"+diskID)
}

func checkID(id string) error {
	if !idPattern.MatchString(id) {
		return fmt.Errorf("cbs data plane: %q is not a resource id", id)
	}
	return nil
}

// CreateDisk creates the disk's image: sizeBytes of zeros, or the snapshot's bytes grown
// to sizeBytes when snapshotID is set.
func (p *Plane) CreateDisk(diskID string, sizeBytes int64, snapshotID string) error {
	if err := checkID(diskID); err != nil {
		return err
	}
	if snapshotID == "" {
		return createSparse(p.ImagePath(diskID), sizeBytes)
	}
	if err := checkID(snapshotID); err != nil {
		return err
	}
	if err := copySparse(p.SnapshotPath(snapshotID), p.ImagePath(diskID), sizeBytes); err != nil {
		return fmt.Errorf("create disk %s from snapshot %s: %w", diskID, snapshotID, err)
	}
	return nil
}

// DeleteDisk removes the disk's image. A disk that is still bound is refused.
func (p *Plane) DeleteDisk(diskID string) error {
	if err := checkID(diskID); err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, b := range p.bindings {
		if b.DiskID == diskID {
			return fmt.Errorf("delete disk %s: still bound to %s at %s", diskID, b.Loop, b.Link)
		}
	}
	if err := os.Remove(p.ImagePath(diskID)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("delete disk %s: %w", diskID, err)
	}
	return nil
}

// ResizeDisk grows the disk's image to sizeBytes and tells its loop devices.
func (p *Plane) ResizeDisk(diskID string, sizeBytes int64) error {
	if err := checkID(diskID); err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := grow(p.ImagePath(diskID), sizeBytes); err != nil {
		return fmt.Errorf("resize disk %s: %w", diskID, err)
	}
	var errs []error
	for _, b := range p.bindings {
		if b.DiskID == diskID {
			if err := setCapacity(b.Loop); err != nil {
				errs = append(errs, fmt.Errorf("resize disk %s: %w", diskID, err))
			}
		}
	}
	return errors.Join(errs...)
}

// Snapshot copies the disk's current bytes into the snapshot's image. Writes that
// reached the disk's devices before the call are in the copy (crash-consistent, like a
// real cloud snapshot of a mounted disk).
func (p *Plane) Snapshot(diskID, snapshotID string) error {
	if err := errors.Join(checkID(diskID), checkID(snapshotID)); err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, b := range p.bindings {
		if b.DiskID == diskID && !b.ReadOnly {
			if err := flushLoop(b.Loop); err != nil {
				return fmt.Errorf("snapshot %s of disk %s: %w", snapshotID, diskID, err)
			}
		}
	}
	if err := copySparse(p.ImagePath(diskID), p.SnapshotPath(snapshotID), 0); err != nil {
		return fmt.Errorf("snapshot %s of disk %s: %w", snapshotID, diskID, err)
	}
	return nil
}

// DeleteSnapshot removes the snapshot's image.
func (p *Plane) DeleteSnapshot(snapshotID string) error {
	if err := checkID(snapshotID); err != nil {
		return err
	}
	if err := os.Remove(p.SnapshotPath(snapshotID)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("delete snapshot %s: %w", snapshotID, err)
	}
	return nil
}

// Bindings returns the disks bound now, ordered by disk id and dev root.
func (p *Plane) Bindings() []Binding {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]Binding, 0, len(p.bindings))
	for _, b := range p.bindings {
		out = append(out, b)
	}
	slices.SortFunc(out, func(a, b Binding) int { return strings.Compare(a.DiskID+a.DevRoot, b.DiskID+b.DevRoot) })
	return out
}

// Reconcile makes the bound devices exactly want: it unbinds what is not wanted (or wanted
// with another access mode) and binds what is missing. Two attachments that land in the
// same device tree share one device; the first one in want decides its mode. It carries on
// past failures and returns them all.
func (p *Plane) Reconcile(want []Attachment) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.reconcile(want)
}

func (p *Plane) reconcile(want []Attachment) error {
	wanted := map[string]Attachment{}
	var order []string
	var errs []error
	for _, a := range want {
		if err := checkID(a.DiskID); err != nil {
			errs = append(errs, err)
			continue
		}
		k := key(a.DiskID, p.DevRootFor(a.InstanceID))
		if _, dup := wanted[k]; !dup {
			wanted[k] = a
			order = append(order, k)
		}
	}
	for k, b := range p.bindings {
		a, ok := wanted[k]
		if ok && a.ReadOnly == b.ReadOnly && p.healthy(b) {
			continue
		}
		if err := p.unbind(b); err != nil {
			errs = append(errs, err)
			continue
		}
		delete(p.bindings, k)
	}
	for _, k := range order {
		if _, ok := p.bindings[k]; ok {
			continue
		}
		a := wanted[k]
		b, err := p.bind(a)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		p.bindings[k] = b
	}
	errs = append(errs, p.save())
	return errors.Join(errs...)
}

func key(diskID, devRoot string) string { return diskID + "\x00" + devRoot }

// healthy reports whether b's loop device is still bound to the disk's image in b's mode,
// repairing a missing or wrong symlink on the way.
func (p *Plane) healthy(b Binding) bool {
	d, err := readLoop(filepath.Base(b.Loop))
	if err != nil || d == nil || d.Backing != p.ImagePath(b.DiskID) || d.Deleted || d.ReadOnly != b.ReadOnly {
		return false
	}
	if target, err := os.Readlink(b.Link); err != nil || target != b.Loop {
		if err := symlink(b.Loop, b.Link); err != nil {
			klog.ErrorS(err, "Repair disk symlink", "disk", b.DiskID, "link", b.Link)
			return false
		}
	}
	return true
}

func (p *Plane) bind(a Attachment) (Binding, error) {
	img := p.ImagePath(a.DiskID)
	root := p.DevRootFor(a.InstanceID)
	b := Binding{DiskID: a.DiskID, InstanceID: a.InstanceID, DevRoot: root, Link: linkPath(root, a.DiskID), ReadOnly: a.ReadOnly}
	loop, err := attachLoop(img, a.ReadOnly)
	if err != nil {
		return b, fmt.Errorf("attach disk %s to %s: %w", a.DiskID, a.InstanceID, err)
	}
	b.Loop = loop
	if err := symlink(loop, b.Link); err != nil {
		_ = detachLoop(loop, img)
		return b, fmt.Errorf("attach disk %s to %s: %w", a.DiskID, a.InstanceID, err)
	}
	klog.InfoS("Disk attached", "disk", a.DiskID, "instance", a.InstanceID, "device", loop, "link", b.Link, "readOnly", a.ReadOnly)
	return b, nil
}

func (p *Plane) unbind(b Binding) error {
	if target, err := os.Readlink(b.Link); err == nil && target == b.Loop {
		if err := os.Remove(b.Link); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("detach disk %s: remove %s: %w", b.DiskID, b.Link, err)
		}
	}
	if err := detachLoop(b.Loop, p.ImagePath(b.DiskID)); err != nil {
		return fmt.Errorf("detach disk %s from %s: %w", b.DiskID, b.InstanceID, err)
	}
	klog.InfoS("Disk detached", "disk", b.DiskID, "instance", b.InstanceID, "device", b.Loop, "link", b.Link)
	return nil
}

// symlink points link at target, replacing whatever link was, atomically.
func symlink(target, link string) error {
	if err := os.MkdirAll(filepath.Dir(link), 0o755); err != nil {
		return fmt.Errorf("create %s: %w", filepath.Dir(link), err)
	}
	tmp := link + ".tmp"
	_ = os.Remove(tmp)
	if err := os.Symlink(target, tmp); err != nil {
		return fmt.Errorf("link %s: %w", link, err)
	}
	if err := os.Rename(tmp, link); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("link %s: %w", link, err)
	}
	return nil
}

// Sync is Reconcile after a start or a reset: it also detaches loop devices bound to this
// plane's images that no binding accounts for (left by a crash), removes by-id symlinks
// that point at loop devices but belong to no binding, and deletes images of disks and
// snapshots that no longer exist (disks and snapshots list the ones that do).
func (p *Plane) Sync(want []Attachment, disks, snapshots []string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	var errs []error
	errs = append(errs, p.reconcile(want))
	errs = append(errs, p.detachOrphans(), p.removeStaleLinks(), p.removeStaleImages(disks, snapshots))
	return errors.Join(errs...)
}

func (p *Plane) detachOrphans() error {
	loops, err := listLoops()
	if err != nil {
		return err
	}
	known := map[string]bool{}
	for _, b := range p.bindings {
		known[b.Loop] = true
	}
	var errs []error
	for _, d := range loops {
		if filepath.Dir(d.Backing) != p.dir || known[d.Path] {
			continue
		}
		klog.InfoS("Detaching orphaned loop device", "device", d.Path, "image", d.Backing)
		errs = append(errs, detachLoop(d.Path, d.Backing))
	}
	return errors.Join(errs...)
}

func (p *Plane) removeStaleLinks() error {
	roots := map[string]bool{p.devRoot: true}
	for _, b := range p.bindings {
		roots[b.DevRoot] = true
	}
	links := map[string]bool{}
	for _, b := range p.bindings {
		links[b.Link] = true
	}
	var errs []error
	for root := range roots {
		pattern := linkPath(strings.ReplaceAll(root, InstancePlaceholder, "*"), "disk-*")
		matches, err := filepath.Glob(pattern)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, l := range matches {
			if links[l] {
				continue
			}
			target, err := os.Readlink(l)
			// Only our kind of link: one that points at a loop device. A real udev
			// link to a real virtio disk is never touched, nor a link to a loop
			// device that another data directory's plane has bound (two fakeclouds
			// sharing /dev).
			if err != nil || !strings.HasPrefix(target, "/dev/loop") {
				continue
			}
			if d, err := readLoop(filepath.Base(target)); err != nil || (d != nil && filepath.Dir(d.Backing) != p.dir) {
				continue
			}
			klog.InfoS("Removing stale disk symlink", "link", l, "target", target)
			if err := os.Remove(l); err != nil && !errors.Is(err, os.ErrNotExist) {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

func (p *Plane) removeStaleImages(disks, snapshots []string) error {
	var errs []error
	clean := func(dir string, keep []string) {
		files, err := filepath.Glob(filepath.Join(dir, "*.img"))
		if err != nil {
			errs = append(errs, err)
			return
		}
		for _, f := range files {
			id := strings.TrimSuffix(filepath.Base(f), ".img")
			if slices.Contains(keep, id) {
				continue
			}
			klog.InfoS("Removing image of a deleted resource", "image", f)
			if err := os.Remove(f); err != nil && !errors.Is(err, os.ErrNotExist) {
				errs = append(errs, err)
			}
		}
	}
	bound := map[string]bool{}
	for _, b := range p.bindings {
		bound[b.DiskID] = true
	}
	keep := slices.Clone(disks)
	for id := range bound {
		keep = append(keep, id)
	}
	clean(p.dir, keep)
	clean(filepath.Join(p.dir, "snapshots"), snapshots)
	// Half-written copies of a crashed snapshot or create.
	for _, pattern := range []string{filepath.Join(p.dir, "*.tmp"), filepath.Join(p.dir, "snapshots", "*.tmp")} {
		tmps, _ := filepath.Glob(pattern)
		for _, f := range tmps {
			errs = append(errs, os.Remove(f))
		}
	}
	return errors.Join(errs...)
}

// Teardown detaches every bound disk and removes its symlink. fakecloud does not call it
// on shutdown (attached disks stay attached across a restart); tests and an explicit
// cleanup do.
func (p *Plane) Teardown() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	err := p.reconcile(nil)
	return errors.Join(err, p.detachOrphans())
}

// Close releases nothing that a restart needs: bound disks stay bound and their state
// file stays on disk.
func (p *Plane) Close() error { return nil }

func (p *Plane) stateFile() string { return filepath.Join(p.dir, "bindings.json") }

func (p *Plane) load() error {
	b, err := os.ReadFile(p.stateFile())
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("cbs data plane: read %s: %w", p.stateFile(), err)
	}
	var list []Binding
	if err := json.Unmarshal(b, &list); err != nil {
		return fmt.Errorf("cbs data plane: parse %s: %w", p.stateFile(), err)
	}
	for _, b := range list {
		p.bindings[key(b.DiskID, b.DevRoot)] = b
	}
	return nil
}

func (p *Plane) save() error {
	list := make([]Binding, 0, len(p.bindings))
	for _, b := range p.bindings {
		list = append(list, b)
	}
	slices.SortFunc(list, func(a, b Binding) int { return strings.Compare(a.DiskID+a.DevRoot, b.DiskID+b.DevRoot) })
	raw, err := json.MarshalIndent(list, "", "  ")
	if err != nil {
		return err
	}
	tmp := p.stateFile() + ".tmp"
	if err := os.WriteFile(tmp, raw, 0o600); err != nil {
		return fmt.Errorf("cbs data plane: write %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, p.stateFile()); err != nil {
		return fmt.Errorf("cbs data plane: %w", err)
	}
	return nil
}

// DeviceSize returns the size in bytes of the block device behind a by-id link (or a
// /dev/loopN path), as the kernel sees it.
func DeviceSize(path string) (int64, error) {
	dev, err := filepath.EvalSymlinks(path)
	if err != nil {
		return 0, err
	}
	return deviceSize(dev)
}
