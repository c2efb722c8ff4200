package cbs

import (
	"slices"

	"github.com/stratus-cloud/stratus/cloudapi/cbs"
	"github.com/stratus-cloud/stratus/fakecloud/api"
	"github.com/stratus-cloud/stratus/fakecloud/cbs/dataplane"
	"github.com/stratus-cloud/stratus/fakecloud/cvm"
	"github.com/stratus-cloud/stratus/fakecloud/store"
)

func (m *Module) attachDisks(r *api.Request) (any, error) {
	in, err := api.Decode[cbs.AttachDisksRequest](r)
	if err != nil {
		return nil, err
	}
	if err := checkIDs("DiskIds", in.DiskIds, maxPerCall); err != nil {
		return nil, err
	}
	if in.InstanceId == "" {
		return nil, api.MissingParameter("InstanceId")
	}
	perInstance := m.w.Limit("cbs-disks-per-instance", 20)
	perShareable := m.w.Limit("cbs-instances-per-shareable-disk", 16)
	err = m.update(r.Now, func(tx *store.Tx, p *dataplane.Plane, before []dataplane.Attachment) error {
		ins, ok := m.instances.Get(tx, in.InstanceId)
		if !ok || !cvm.Exists(ins, r.Now) {
			return api.NotFound(cbs.CodeInstanceNotFound, "instance", in.InstanceId)
		}
		if st := cvm.EffectiveState(ins, r.Now); st != "RUNNING" && st != "STOPPED" {
			return api.Errorf(cbs.CodeInstanceNotSupported, "instance `%s` is %s; disks attach to RUNNING or STOPPED instances", ins.InstanceId, st)
		}
		var disks []*Disk
		for _, id := range in.DiskIds {
			d, ok := m.liveDisk(tx, id, r.Now)
			if !ok {
				return diskNotFound(id)
			}
			if d.opRunning(r.Now) {
				return busy(d, cbs.CodeDiskBusy)
			}
			if d.Zone != ins.Zone {
				return api.Errorf(cbs.CodeZoneNotMatch, "disk `%s` is in %s and instance `%s` in %s", id, d.Zone, ins.InstanceId, ins.Zone)
			}
			if slices.ContainsFunc(d.Attachments, func(a Attachment) bool { return a.InstanceId == ins.InstanceId }) {
				return api.Errorf(cbs.CodeDiskAttached, "disk `%s` is already attached to `%s`", id, ins.InstanceId)
			}
			switch {
			case len(d.Attachments) > 0 && !d.Shareable:
				return api.Errorf(cbs.CodeDiskAttachedElsewhere, "disk `%s` is attached to `%s` and is not shareable", id, d.Attachments[0].InstanceId)
			case len(d.Attachments) >= perShareable:
				return api.Errorf(cbs.CodeDiskAttachedElsewhere, "shareable disk `%s` is already attached to %d instances, the most it takes", id, len(d.Attachments))
			}
			disks = append(disks, d)
		}
		attached := 0
		for _, d := range m.liveDisks(tx, r.Now) {
			if slices.ContainsFunc(d.Attachments, func(a Attachment) bool { return a.InstanceId == ins.InstanceId }) {
				attached++
			}
		}
		if attached+len(disks) > perInstance {
			return api.Errorf(cbs.CodeInstanceAttachedDiskLimit, "instance `%s` has %d data disks; %d more would exceed its limit of %d", ins.InstanceId, attached, len(disks), perInstance)
		}
		for _, d := range disks {
			nd := d.clone()
			nd.Attachments = append(nd.Attachments, Attachment{
				InstanceId:   ins.InstanceId,
				AttachedTime: r.Now,
				ReadOnly:     d.Shareable && len(d.Attachments) > 0,
			})
			if in.DeleteWithInstance != nil {
				nd.DeleteWithInstance = *in.DeleteWithInstance
			}
			if delay := m.opts.Delays.Attach; delay > 0 {
				nd.Op, nd.OpDoneAt = cbs.DiskStateAttaching, r.Now.Add(delay)
			}
			if err := m.disks.Put(tx, nd.DiskId, nd); err != nil {
				return err
			}
		}
		return m.syncPlane(tx, r.Now, p, before)
	})
	if err != nil {
		return nil, err
	}
	return &cbs.AttachDisksResponse{}, nil
}

func (m *Module) detachDisks(r *api.Request) (any, error) {
	in, err := api.Decode[cbs.DetachDisksRequest](r)
	if err != nil {
		return nil, err
	}
	if err := checkIDs("DiskIds", in.DiskIds, maxPerCall); err != nil {
		return nil, err
	}
	err = m.update(r.Now, func(tx *store.Tx, p *dataplane.Plane, before []dataplane.Attachment) error {
		if in.InstanceId != "" {
			if ins, ok := m.instances.Get(tx, in.InstanceId); !ok || !cvm.Exists(ins, r.Now) {
				return api.NotFound(cbs.CodeInstanceNotFound, "instance", in.InstanceId)
			}
		}
		var changed []*Disk
		for _, id := range in.DiskIds {
			d, ok := m.liveDisk(tx, id, r.Now)
			if !ok {
				return diskNotFound(id)
			}
			if d.opRunning(r.Now) {
				return busy(d, cbs.CodeDiskBusy)
			}
			if len(d.Attachments) == 0 {
				return api.Errorf(cbs.CodeDiskNotSupported, "disk `%s` is not attached", id)
			}
			// As on the real API, InstanceId only selects among a shareable disk's
			// instances; a disk with one attachment detaches from it regardless.
			var from []string
			for _, a := range d.Attachments {
				if !d.Shareable || in.InstanceId == "" || a.InstanceId == in.InstanceId {
					from = append(from, a.InstanceId)
				}
			}
			if len(from) == 0 {
				return api.Errorf(cbs.CodeDiskNotSupported, "shareable disk `%s` is not attached to `%s`", id, in.InstanceId)
			}
			nd := d.clone()
			if delay := m.opts.Delays.Detach; delay > 0 {
				nd.Op, nd.OpDoneAt, nd.Detaching = cbs.DiskStateDetaching, r.Now.Add(delay), from
			} else {
				nd.Attachments = slices.DeleteFunc(nd.Attachments, func(a Attachment) bool { return slices.Contains(from, a.InstanceId) })
			}
			changed = append(changed, nd)
		}
		for _, nd := range changed {
			if err := m.disks.Put(tx, nd.DiskId, nd); err != nil {
				return err
			}
		}
		return m.syncPlane(tx, r.Now, p, before)
	})
	if err != nil {
		return nil, err
	}
	return &cbs.DetachDisksResponse{}, nil
}
