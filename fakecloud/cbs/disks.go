package cbs

import (
	"slices"
	"strconv"
	"strings"
	"time"

	"k8s.io/klog/v2"

	"github.com/stratus-cloud/stratus/cloudapi"
	"github.com/stratus-cloud/stratus/cloudapi/cbs"
	"github.com/stratus-cloud/stratus/fakecloud/api"
	"github.com/stratus-cloud/stratus/fakecloud/cbs/dataplane"
	"github.com/stratus-cloud/stratus/fakecloud/store"
)

var prepaidPeriods = []int64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 24, 36}

// createSpec is a validated CreateDisks request.
type createSpec struct {
	zone, diskType, charge, name, snapshotID string
	size, count                              int64
	deadline                                 time.Time
	shareable, encrypt                       bool
}

func (m *Module) checkCreate(in *cbs.CreateDisksRequest, now time.Time) (*createSpec, error) {
	s := &createSpec{count: 1, charge: cbs.ChargePostpaidByHour, name: in.DiskName}
	if in.Placement == nil {
		return nil, api.MissingParameter("Placement")
	}
	if in.Placement.Zone == "" {
		return nil, api.MissingParameter("Placement.Zone")
	}
	if _, ok := m.w.Zone(in.Placement.Zone); !ok {
		return nil, api.InvalidValue("Placement.Zone", "zone `%s` does not exist in %s", in.Placement.Zone, m.w.Region)
	}
	s.zone = in.Placement.Zone
	if in.Placement.ProjectId != nil && *in.Placement.ProjectId != 0 {
		return nil, api.Errorf("InvalidParameter.ProjectIdNotExist", "project %d does not exist", *in.Placement.ProjectId)
	}
	switch {
	case in.DiskType == "":
		return nil, api.MissingParameter("DiskType")
	case unsupportedTypes[in.DiskType]:
		return nil, api.Errorf("InvalidParameter.DiskConfigNotSupported", "disk type %s is not sold in %s", in.DiskType, s.zone)
	case sizeBounds[in.DiskType] == [2]int64{}:
		return nil, api.InvalidValue("DiskType", "`%s` is not one of CLOUD_PREMIUM, CLOUD_SSD, CLOUD_HSSD", in.DiskType)
	}
	s.diskType = in.DiskType
	switch in.DiskChargeType {
	case "CDCPAID":
		return nil, api.Errorf(cloudapi.CodeUnsupportedOperation, "DiskChargeType CDCPAID bills a dedicated cluster, which this region does not offer")
	case "", cbs.ChargePostpaidByHour:
		if in.DiskChargePrepaid != nil {
			return nil, api.InvalidValue("DiskChargePrepaid", "is only for PREPAID disks")
		}
	case cbs.ChargePrepaid:
		if in.DiskChargePrepaid == nil || in.DiskChargePrepaid.Period == nil {
			return nil, api.MissingParameter("DiskChargePrepaid.Period")
		}
		if !slices.Contains(prepaidPeriods, *in.DiskChargePrepaid.Period) {
			return nil, api.InvalidValue("DiskChargePrepaid.Period", "%d is not a period in months (1-12, 24, 36)", *in.DiskChargePrepaid.Period)
		}
		switch in.DiskChargePrepaid.RenewFlag {
		case "", "NOTIFY_AND_AUTO_RENEW", "NOTIFY_AND_MANUAL_RENEW", "DISABLE_NOTIFY_AND_MANUAL_RENEW":
		default:
			return nil, api.InvalidValue("DiskChargePrepaid.RenewFlag", "`%s` is not a renew flag", in.DiskChargePrepaid.RenewFlag)
		}
		s.charge = cbs.ChargePrepaid
		s.deadline = addMonths(now, *in.DiskChargePrepaid.Period)
	default:
		return nil, api.InvalidValue("DiskChargeType", "`%s` is not PREPAID, POSTPAID_BY_HOUR or CDCPAID", in.DiskChargeType)
	}
	if err := api.MaxBytes("", "DiskName", in.DiskName, maxNameBytes); err != nil {
		return nil, err
	}
	if s.name == "" {
		s.name = "未命名"
	}
	if in.DiskCount != nil {
		s.count = *in.DiskCount
	}
	// A per-request limit, not a quota: no seed can raise it.
	if s.count < 1 || s.count > maxCreateCount {
		return nil, api.InvalidValue("DiskCount", "must be 1 to %d, got %d", maxCreateCount, s.count)
	}
	switch in.Encrypt {
	case "":
	case "ENCRYPT":
		s.encrypt = true
	default:
		return nil, api.InvalidValue("Encrypt", "the only value is ENCRYPT, got `%s`", in.Encrypt)
	}
	if in.Shareable != nil {
		s.shareable = *in.Shareable
	}
	if err := checkTags(in.Tags); err != nil {
		return nil, err
	}
	if err := api.ClientToken("", "ClientToken", in.ClientToken); err != nil {
		return nil, err
	}
	if in.DiskSize != nil {
		s.size = *in.DiskSize
	} else if in.SnapshotId == "" {
		return nil, api.MissingParameter("DiskSize")
	}
	s.snapshotID = in.SnapshotId
	return s, nil
}

func (m *Module) createDisks(r *api.Request) (any, error) {
	in, err := api.Decode[cbs.CreateDisksRequest](r)
	if err != nil {
		return nil, err
	}
	spec, err := m.checkCreate(in, r.Now)
	if err != nil {
		return nil, err
	}
	out := &cbs.CreateDisksResponse{}
	err = m.update(r.Now, func(tx *store.Tx, p *dataplane.Plane, _ []dataplane.Attachment) error {
		if in.ClientToken != "" {
			if tok, ok := m.tokens.Get(tx, in.ClientToken); ok {
				out.DiskIdSet = slices.Clone(tok.DiskIds)
				return nil
			}
		}
		if spec.snapshotID != "" {
			snap, ok := m.liveSnapshot(tx, spec.snapshotID, r.Now)
			if !ok {
				return snapshotNotFound(spec.snapshotID)
			}
			if st, _ := snapshotState(snap, r.Now); st != cbs.SnapshotStateNormal {
				return api.Errorf(cbs.CodeSnapshotCreating, "snapshot `%s` is still %s", snap.SnapshotId, st)
			}
			if in.DiskSize == nil {
				spec.size = max(snap.DiskSize, sizeBounds[spec.diskType][0])
			}
			if spec.size < snap.DiskSize {
				return api.Errorf(cbs.CodeDiskSizeNotMatch, "a disk from snapshot `%s` needs at least %d GiB, got %d", snap.SnapshotId, snap.DiskSize, spec.size)
			}
		}
		if err := checkSize("DiskSize", spec.diskType, spec.size); err != nil {
			return err
		}
		var created []string
		for i := int64(0); i < spec.count; i++ {
			d := &Disk{
				DiskId: api.NewID("disk"), DiskName: spec.name, DiskType: spec.diskType, DiskChargeType: spec.charge,
				Zone: spec.zone, DiskSize: spec.size, Shareable: spec.shareable, Encrypt: spec.encrypt,
				Tags: slices.Clone(in.Tags), SnapshotId: spec.snapshotID, CreatedTime: r.Now, DeadlineTime: spec.deadline,
			}
			if err := m.disks.Put(tx, d.DiskId, d); err != nil {
				return err
			}
			if p != nil {
				if err := p.CreateDisk(d.DiskId, d.DiskSize*gib, d.SnapshotId); err != nil {
					for _, id := range created {
						_ = p.DeleteDisk(id)
					}
					return planeError("create disk image", err)
				}
			}
			created = append(created, d.DiskId)
		}
		if in.ClientToken != "" {
			if err := m.tokens.Put(tx, in.ClientToken, &clientToken{DiskIds: created, CreatedTime: r.Now}); err != nil {
				return err
			}
		}
		out.DiskIdSet = created
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

func (m *Module) describeDisks(r *api.Request) (any, error) {
	in, err := api.Decode[cbs.DescribeDisksRequest](r)
	if err != nil {
		return nil, err
	}
	if err := describeIDs("DiskIds", in.DiskIds, in.Filters); err != nil {
		return nil, err
	}
	filters, err := diskFilters.Compile(in.Filters)
	if err != nil {
		return nil, err
	}
	desc, err := order(in.Order, in.OrderField, "CREATE_TIME", "DEADLINE")
	if err != nil {
		return nil, err
	}
	if _, err := m.dataPlane(); err != nil {
		klog.ErrorS(err, "Start the CBS data plane")
	}
	out := &cbs.DescribeDisksResponse{DiskSet: []cbs.Disk{}}
	err = m.w.Store.View(func(tx *store.Tx) error {
		var match []*Disk
		for _, d := range m.liveDisks(tx, r.Now) {
			if len(in.DiskIds) > 0 && !slices.Contains(in.DiskIds, d.DiskId) {
				continue
			}
			if f := m.diskFields(tx, d, r.Now); filters.Match(&f) {
				match = append(match, d)
			}
		}
		if in.OrderField == "DEADLINE" {
			slices.SortStableFunc(match, func(a, b *Disk) int { return a.DeadlineTime.Compare(b.DeadlineTime) })
		}
		if desc {
			slices.Reverse(match)
		}
		page, err := api.Page(match, in.Offset, in.Limit, api.DefaultLimit)
		if err != nil {
			return err
		}
		out.TotalCount = int64(len(match))
		for _, d := range page {
			out.DiskSet = append(out.DiskSet, m.diskView(tx, d, r.Now))
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// order validates Order / OrderField and reports whether the order is descending.
func order(o, field string, fields ...string) (bool, error) {
	if field != "" && !slices.Contains(fields, field) {
		return false, api.InvalidValue("OrderField", "`%s` is not one of %s", field, strings.Join(fields, ", "))
	}
	switch o {
	case "", "ASC":
		return false, nil
	case "DESC":
		return true, nil
	}
	return false, api.InvalidValue("Order", "`%s` is not ASC or DESC", o)
}

func (m *Module) diskView(tx *store.Tx, d *Disk, now time.Time) cbs.Disk {
	v := cbs.Disk{
		DiskId: d.DiskId, DiskName: d.DiskName, DiskUsage: "DATA_DISK", DiskChargeType: d.DiskChargeType,
		DiskType: d.DiskType, DiskSize: d.DiskSize, DiskState: State(d, now), Portable: true, SnapshotAbility: true,
		Placement: cbs.Placement{Zone: d.Zone, ProjectId: cloudapi.Int64(d.ProjectId)}, Shareable: d.Shareable,
		Encrypt: d.Encrypt, DeleteWithInstance: d.DeleteWithInstance, CreateTime: api.Timestamp(d.CreatedTime),
		DeadlineTime: describeTime(d.DeadlineTime), Tags: slices.Clone(d.Tags), InstanceIdList: []string{},
	}
	if v.Tags == nil {
		v.Tags = []cloudapi.Tag{}
	}
	// As on the real API, InstanceIdList lists a shareable disk's instances and is empty
	// for any other disk, whose one instance is InstanceId.
	if d.Shareable {
		for _, a := range d.Attachments {
			v.InstanceIdList = append(v.InstanceIdList, a.InstanceId)
		}
	}
	if len(d.Attachments) > 0 {
		v.InstanceId = d.Attachments[0].InstanceId
	}
	// Attached counts finished attachments only: the one an ATTACHING operation adds is
	// always the last.
	done := len(d.Attachments)
	if d.opRunning(now) && d.Op == cbs.DiskStateAttaching {
		done--
	}
	v.Attached = done > 0
	for _, s := range m.snapshots.List(tx) {
		if s.DiskId == d.DiskId && snapshotExists(s, now) {
			v.SnapshotCount++
			v.SnapshotSize += s.DiskSize * 1024
		}
	}
	return v
}

// diskFields are the values a disk has for each filter name.
func (m *Module) diskFields(tx *store.Tx, d *Disk, now time.Time) fields {
	f := fields{
		"disk-id":          {d.DiskId},
		"disk-name":        {d.DiskName},
		"disk-type":        {d.DiskType},
		"disk-state":       {State(d, now)},
		"disk-usage":       {"DATA_DISK"},
		"disk-charge-type": {d.DiskChargeType},
		"portable":         {"TRUE"},
		"project-id":       {strconv.FormatInt(d.ProjectId, 10)},
		"zone":             {d.Zone},
	}
	for _, a := range d.Attachments {
		f["instance-id"] = append(f["instance-id"], a.InstanceId)
		if in, ok := m.instances.Get(tx, a.InstanceId); ok {
			f["instance-name"] = append(f["instance-name"], in.InstanceName)
			for _, ip := range []string{in.PrivateIP, in.PublicIP} {
				if ip != "" {
					f["instance-ip-address"] = append(f["instance-ip-address"], ip)
				}
			}
		}
	}
	f.addTags(d.Tags)
	return f
}

func (m *Module) resizeDisk(r *api.Request) (any, error) {
	in, err := api.Decode[cbs.ResizeDiskRequest](r)
	if err != nil {
		return nil, err
	}
	if in.DiskId == "" {
		return nil, api.MissingParameter("DiskId")
	}
	if in.DiskSize == nil {
		return nil, api.MissingParameter("DiskSize")
	}
	err = m.update(r.Now, func(tx *store.Tx, p *dataplane.Plane, _ []dataplane.Attachment) error {
		d, ok := m.liveDisk(tx, in.DiskId, r.Now)
		if !ok {
			return diskNotFound(in.DiskId)
		}
		if d.opRunning(r.Now) {
			return busy(d, cbs.CodeDiskBusy)
		}
		if *in.DiskSize <= d.DiskSize {
			return api.InvalidValue("DiskSize", "a disk only grows: %d GiB is not larger than its %d GiB", *in.DiskSize, d.DiskSize)
		}
		if err := checkSize("DiskSize", d.DiskType, *in.DiskSize); err != nil {
			return err
		}
		nd := d.clone()
		if delay := m.opts.Delays.Resize; delay > 0 {
			nd.Op, nd.OpDoneAt, nd.TargetSize = cbs.DiskStateExpanding, r.Now.Add(delay), *in.DiskSize
		} else {
			nd.DiskSize = *in.DiskSize
		}
		if err := m.disks.Put(tx, nd.DiskId, nd); err != nil {
			return err
		}
		if p != nil {
			if err := p.ResizeDisk(nd.DiskId, *in.DiskSize*gib); err != nil {
				return planeError("resize disk image", err)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &cbs.ResizeDiskResponse{}, nil
}

func (m *Module) terminateDisks(r *api.Request) (any, error) {
	in, err := api.Decode[cbs.TerminateDisksRequest](r)
	if err != nil {
		return nil, err
	}
	if err := checkIDs("DiskIds", in.DiskIds, maxTerminate); err != nil {
		return nil, err
	}
	var plane *dataplane.Plane
	err = m.update(r.Now, func(tx *store.Tx, p *dataplane.Plane, _ []dataplane.Attachment) error {
		plane = p
		for _, id := range in.DiskIds {
			d, ok := m.liveDisk(tx, id, r.Now)
			if !ok {
				return diskNotFound(id)
			}
			if d.opRunning(r.Now) {
				return busy(d, cbs.CodeResourceBusy)
			}
			if len(d.Attachments) > 0 {
				return api.Errorf(cbs.CodeDiskAttached, "disk `%s` is attached to %s; detach it first", id, d.Attachments[0].InstanceId)
			}
		}
		for _, id := range in.DiskIds {
			if err := m.disks.Delete(tx, id); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	// Bytes go only once the deletion is durable; a crash in between leaves an image that
	// the next Start removes.
	if plane != nil {
		for _, id := range in.DiskIds {
			if err := plane.DeleteDisk(id); err != nil {
				klog.ErrorS(err, "Delete disk image", "disk", id)
			}
		}
	}
	return &cbs.TerminateDisksResponse{}, nil
}
