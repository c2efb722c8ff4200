package csi

import (
	"context"
	"fmt"
	"slices"
	"sync"
)

// fakeDisks is an in-memory cloud for the controller's unit tests. Every disk it makes
// is owned; tests add foreign disks with add.
type fakeDisks struct {
	mu        sync.Mutex
	disks     map[string]*Disk
	order     []string
	snaps     map[string]*Snapshot
	instances map[string]string // id -> zone
	creates   int
	attaches  int
	detaches  int
	deletes   int
	n         int
}

func newFakeDisks() *fakeDisks {
	return &fakeDisks{disks: map[string]*Disk{}, snaps: map[string]*Snapshot{},
		instances: map[string]string{"ins-a": "zone-1", "ins-b": "zone-1", "ins-c": "zone-1", "ins-far": "zone-2"}}
}

var fakeTypes = []DiskType{{Name: "PREMIUM", MinGiB: 10, MaxGiB: 100, StepGiB: 10}, {Name: "SSD", MinGiB: 20, MaxGiB: 100, StepGiB: 10}}

func (f *fakeDisks) DiskTypes() []DiskType { return fakeTypes }

func (f *fakeDisks) add(d *Disk) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.disks[d.ID] = d
	f.order = append(f.order, d.ID)
}

func (f *fakeDisks) CreateDisk(_ context.Context, s DiskSpec) (*Disk, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.creates++
	f.n++
	d := &Disk{ID: fmt.Sprintf("disk-%d", f.n), Name: s.Name, Type: s.Type, SizeGiB: s.SizeGiB, Zone: s.Zone,
		Shareable: s.Shareable, Encrypted: s.Encrypted, SnapshotID: s.SnapshotID, Owned: true}
	f.disks[d.ID] = d
	f.order = append(f.order, d.ID)
	c := *d
	return &c, nil
}

func (f *fakeDisks) GetDisk(_ context.Context, id string) (*Disk, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	d, ok := f.disks[id]
	if !ok {
		return nil, fmt.Errorf("disk %s: %w", id, ErrNotFound)
	}
	c := *d
	c.Instances = slices.Clone(d.Instances)
	return &c, nil
}

func (f *fakeDisks) FindDisk(_ context.Context, name string) (*Disk, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, id := range f.order {
		if d, ok := f.disks[id]; ok && d.Name == name && d.Owned {
			c := *d
			return &c, nil
		}
	}
	return nil, nil
}

func (f *fakeDisks) ListDisks(_ context.Context, offset, limit int) ([]*Disk, int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var all []*Disk
	for _, id := range f.order {
		if d, ok := f.disks[id]; ok && d.Owned {
			all = append(all, d)
		}
	}
	if offset >= len(all) {
		return nil, len(all), nil
	}
	return all[offset:min(offset+limit, len(all))], len(all), nil
}

func (f *fakeDisks) AttachedDisks(_ context.Context, instanceID string) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, d := range f.disks {
		if slices.Contains(d.Instances, instanceID) {
			n++
		}
	}
	return n, nil
}

func (f *fakeDisks) DeleteDisk(_ context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.deletes++
	delete(f.disks, id)
	return nil
}

func (f *fakeDisks) AttachDisk(_ context.Context, diskID, instanceID string) (*Disk, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	d := f.disks[diskID]
	if slices.Contains(d.Instances, instanceID) {
		f.attaches++
		d.Busy = false
		c := *d
		return &c, nil
	}
	if len(d.Instances) > 0 && !d.Shareable {
		return nil, fmt.Errorf("attached elsewhere: %w", ErrConflict)
	}
	f.attaches++
	d.Instances = append(d.Instances, instanceID)
	c := *d
	return &c, nil
}

func (f *fakeDisks) DetachDisk(_ context.Context, diskID, instanceID string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.detaches++
	d := f.disks[diskID]
	d.Instances = slices.DeleteFunc(d.Instances, func(s string) bool { return s == instanceID })
	return nil
}

func (f *fakeDisks) ResizeDisk(_ context.Context, diskID string, sizeGiB int64) (*Disk, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	d := f.disks[diskID]
	d.SizeGiB = sizeGiB
	c := *d
	return &c, nil
}

func (f *fakeDisks) GetInstance(_ context.Context, id string) (*Instance, error) {
	z, ok := f.instances[id]
	if !ok {
		return nil, fmt.Errorf("instance %s: %w", id, ErrNotFound)
	}
	return &Instance{ID: id, Zone: z}, nil
}

func (f *fakeDisks) CreateSnapshot(_ context.Context, diskID, name string) (*Snapshot, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.n++
	s := &Snapshot{ID: fmt.Sprintf("snap-%d", f.n), Name: name, DiskID: diskID, SizeGiB: f.disks[diskID].SizeGiB, Ready: true, Owned: true}
	f.snaps[s.ID] = s
	return s, nil
}

func (f *fakeDisks) FindSnapshot(_ context.Context, name string) (*Snapshot, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, s := range f.snaps {
		if s.Name == name {
			return s, nil
		}
	}
	return nil, nil
}

func (f *fakeDisks) GetSnapshot(_ context.Context, id string) (*Snapshot, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if s, ok := f.snaps[id]; ok {
		return s, nil
	}
	return nil, fmt.Errorf("snapshot %s: %w", id, ErrNotFound)
}

func (f *fakeDisks) WaitSnapshotReady(ctx context.Context, id string) (*Snapshot, error) {
	return f.GetSnapshot(ctx, id)
}

func (f *fakeDisks) ListSnapshots(_ context.Context, diskID string, offset, limit int) ([]*Snapshot, int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var all []*Snapshot
	for _, s := range f.snaps {
		if diskID == "" || s.DiskID == diskID {
			all = append(all, s)
		}
	}
	if offset >= len(all) {
		return nil, len(all), nil
	}
	return all[offset:min(offset+limit, len(all))], len(all), nil
}

func (f *fakeDisks) DeleteSnapshot(_ context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.snaps, id)
	return nil
}
