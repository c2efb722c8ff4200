package cbs

import (
	"slices"
	"strconv"
	"strings"
	"time"

	"k8s.io/klog/v2"

	"github.com/stratus-cloud/stratus/cloudapi/cbs"
	"github.com/stratus-cloud/stratus/fakecloud/api"
	"github.com/stratus-cloud/stratus/fakecloud/cbs/dataplane"
	"github.com/stratus-cloud/stratus/fakecloud/store"
)

func (m *Module) createSnapshot(r *api.Request) (any, error) {
	in, err := api.Decode[cbs.CreateSnapshotRequest](r)
	if err != nil {
		return nil, err
	}
	if in.DiskId == "" {
		return nil, api.MissingParameter("DiskId")
	}
	if err := api.MaxBytes("", "SnapshotName", in.SnapshotName, maxNameBytes); err != nil {
		return nil, err
	}
	var deadline time.Time
	if in.Deadline != "" {
		if deadline, err = parseDeadline(in.Deadline, r.Now); err != nil {
			return nil, err
		}
	}
	out := &cbs.CreateSnapshotResponse{}
	err = m.update(r.Now, func(tx *store.Tx, p *dataplane.Plane, _ []dataplane.Attachment) error {
		d, ok := m.liveDisk(tx, in.DiskId, r.Now)
		if !ok {
			return diskNotFound(in.DiskId)
		}
		if d.opRunning(r.Now) {
			return busy(d, cbs.CodeDiskBusy)
		}
		for _, s := range m.snapshots.List(tx) {
			if st, _ := snapshotState(s, r.Now); s.DiskId == d.DiskId && snapshotExists(s, r.Now) && st == cbs.SnapshotStateCreating {
				return api.Errorf(cbs.CodeDiskSnapshotCreating, "disk `%s` is already being snapshotted (%s)", d.DiskId, s.SnapshotId)
			}
		}
		name := in.SnapshotName
		if name == "" {
			name = "未命名"
		}
		s := &Snapshot{
			SnapshotId: api.NewID("snap"), SnapshotName: name, DiskId: d.DiskId, Zone: d.Zone, ProjectId: d.ProjectId,
			DiskSize: d.DiskSize, Encrypt: d.Encrypt, CreatedTime: r.Now, ReadyAt: r.Now.Add(m.opts.Delays.Snapshot), Deadline: deadline,
		}
		if err := m.snapshots.Put(tx, s.SnapshotId, s); err != nil {
			return err
		}
		if p != nil {
			if err := p.Snapshot(d.DiskId, s.SnapshotId); err != nil {
				return planeError("copy disk bytes", err)
			}
		}
		out.SnapshotId = s.SnapshotId
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

func (m *Module) describeSnapshots(r *api.Request) (any, error) {
	in, err := api.Decode[cbs.DescribeSnapshotsRequest](r)
	if err != nil {
		return nil, err
	}
	if err := describeIDs("SnapshotIds", in.SnapshotIds, in.Filters); err != nil {
		return nil, err
	}
	filters, err := snapshotFilters.Compile(in.Filters)
	if err != nil {
		return nil, err
	}
	desc, err := order(in.Order, in.OrderField, "CREATE_TIME")
	if err != nil {
		return nil, err
	}
	if _, err := m.dataPlane(); err != nil {
		klog.ErrorS(err, "Start the CBS data plane")
	}
	out := &cbs.DescribeSnapshotsResponse{SnapshotSet: []cbs.Snapshot{}}
	err = m.w.Store.View(func(tx *store.Tx) error {
		var match []cbs.Snapshot
		for _, s := range m.snapshots.List(tx) {
			if !snapshotExists(s, r.Now) || (len(in.SnapshotIds) > 0 && !slices.Contains(in.SnapshotIds, s.SnapshotId)) {
				continue
			}
			v := snapshotView(s, r.Now)
			f := fields{
				"snapshot-id": {v.SnapshotId}, "snapshot-name": {v.SnapshotName}, "snapshot-state": {v.SnapshotState},
				"snapshot-type": {v.SnapshotType}, "disk-id": {v.DiskId}, "disk-usage": {v.DiskUsage},
				"project-id": {strconv.FormatInt(s.ProjectId, 10)}, "zone": {s.Zone},
				"encrypt": {strings.ToUpper(strconv.FormatBool(s.Encrypt))},
			}
			if filters.Match(&f) {
				match = append(match, v)
			}
		}
		if desc {
			slices.Reverse(match)
		}
		page, err := api.Page(match, in.Offset, in.Limit, api.DefaultLimit)
		if err != nil {
			return err
		}
		out.TotalCount = int64(len(match))
		out.SnapshotSet = append(out.SnapshotSet, page...)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

func snapshotView(s *Snapshot, now time.Time) cbs.Snapshot {
	state, pct := snapshotState(s, now)
	return cbs.Snapshot{
		SnapshotId: s.SnapshotId, SnapshotName: s.SnapshotName, SnapshotState: state, SnapshotType: "PRIVATE_SNAPSHOT",
		Placement: cbs.Placement{Zone: s.Zone, ProjectId: &s.ProjectId}, DiskId: s.DiskId, DiskUsage: "DATA_DISK",
		DiskSize: s.DiskSize, Percent: pct, CreateTime: api.Timestamp(s.CreatedTime), DeadlineTime: describeTime(s.Deadline),
		Encrypt: s.Encrypt, IsPermanent: s.Deadline.IsZero(),
	}
}

func (m *Module) deleteSnapshots(r *api.Request) (any, error) {
	in, err := api.Decode[cbs.DeleteSnapshotsRequest](r)
	if err != nil {
		return nil, err
	}
	if err := checkIDs("SnapshotIds", in.SnapshotIds, maxDeleteSnaps); err != nil {
		return nil, err
	}
	var plane *dataplane.Plane
	err = m.update(r.Now, func(tx *store.Tx, p *dataplane.Plane, _ []dataplane.Attachment) error {
		plane = p
		for _, id := range in.SnapshotIds {
			s, ok := m.liveSnapshot(tx, id, r.Now)
			if !ok {
				return snapshotNotFound(id)
			}
			if st, _ := snapshotState(s, r.Now); st != cbs.SnapshotStateNormal {
				return api.Errorf(cbs.CodeSnapshotNotSupported, "snapshot `%s` is %s; only NORMAL snapshots can be deleted", id, st)
			}
		}
		for _, id := range in.SnapshotIds {
			if err := m.snapshots.Delete(tx, id); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if plane != nil {
		for _, id := range in.SnapshotIds {
			if err := plane.DeleteSnapshot(id); err != nil {
				klog.ErrorS(err, "Delete snapshot image", "snapshot", id)
			}
		}
	}
	return &cbs.DeleteSnapshotsResponse{}, nil
}
