package cvm

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/stratus-cloud/stratus/cloudapi"
	"github.com/stratus-cloud/stratus/cloudapi/cvm"
	"github.com/stratus-cloud/stratus/fakecloud/api"
	"github.com/stratus-cloud/stratus/fakecloud/store"
)

const (
	maxIDsPerCall = 100
	maxFilters    = 10
	// maxFilterValues is higher than the public cloud's 5 because the cloud provider
	// batches a whole node list (private-ip-address) into one call.
	maxFilterValues = 100
)

// instanceFilter is one compiled filter. values is the set to match; byIP marks the
// filter that may drive the private-ip index.
type instanceFilter struct {
	name   string
	values map[string]struct{}
	field  func(in *Instance, state string) string // nil for tag filters
	tagKey string                                  // tag:<key>; "" with field == nil means tag-key
}

func (f *instanceFilter) match(in *Instance, state string) bool {
	if f.field != nil {
		_, ok := f.values[f.field(in, state)]
		return ok
	}
	for _, t := range in.Tags {
		if f.tagKey == "" {
			if _, ok := f.values[t.Key]; ok {
				return true
			}
		} else if t.Key == f.tagKey {
			if _, ok := f.values[t.Value]; ok {
				return true
			}
		}
	}
	return false
}

var instanceFields = map[string]func(in *Instance, state string) string{
	"zone":                 func(in *Instance, _ string) string { return in.Zone },
	"vpc-id":               func(in *Instance, _ string) string { return in.VpcId },
	"subnet-id":            func(in *Instance, _ string) string { return in.SubnetId },
	"instance-id":          func(in *Instance, _ string) string { return in.InstanceId },
	"instance-name":        func(in *Instance, _ string) string { return in.InstanceName },
	"instance-type":        func(in *Instance, _ string) string { return in.InstanceType },
	"instance-state":       func(_ *Instance, state string) string { return state },
	"private-ip-address":   func(in *Instance, _ string) string { return in.PrivateIP },
	"public-ip-address":    func(in *Instance, _ string) string { return in.PublicIP },
	"image-id":             func(in *Instance, _ string) string { return in.ImageId },
	"instance-charge-type": func(in *Instance, _ string) string { return in.ChargeType },
}

func compileFilters(filters []cloudapi.Filter) ([]*instanceFilter, error) {
	if len(filters) > maxFilters {
		return nil, api.Errorf("InvalidFilterValue.LimitExceeded", "parameter `Filters` has %d filters, at most %d are allowed", len(filters), maxFilters)
	}
	out := make([]*instanceFilter, 0, len(filters))
	for i, f := range filters {
		if len(f.Values) == 0 {
			return nil, api.InvalidValue(fmt.Sprintf("Filters.%d.Values", i), "filter %q needs at least one value", f.Name)
		}
		if len(f.Values) > maxFilterValues {
			return nil, api.Errorf("InvalidFilterValue.LimitExceeded", "parameter `Filters.%d.Values` has %d values, at most %d are allowed", i, len(f.Values), maxFilterValues)
		}
		c := &instanceFilter{name: f.Name, values: make(map[string]struct{}, len(f.Values))}
		for _, v := range f.Values {
			c.values[v] = struct{}{}
		}
		switch field, ok := instanceFields[f.Name]; {
		case ok:
			c.field = field
		case f.Name == "tag-key":
		case strings.HasPrefix(f.Name, "tag:") && len(f.Name) > len("tag:"):
			c.tagKey = f.Name[len("tag:"):]
		default:
			return nil, api.Errorf("InvalidFilter", "parameter `Filters.%d.Name`: filter %q is not supported", i, f.Name)
		}
		if f.Name == "instance-state" {
			for _, v := range f.Values {
				if !validStates[v] {
					return nil, api.InvalidValue(fmt.Sprintf("Filters.%d.Values", i), "%q is not an instance state", v)
				}
			}
		}
		out = append(out, c)
	}
	return out, nil
}

func (m *Module) describeInstances(r *api.Request) (any, error) {
	in, err := api.Decode[cvm.DescribeInstancesRequest](r)
	if err != nil {
		return nil, err
	}
	if len(in.InstanceIds) > 0 && len(in.Filters) > 0 {
		return nil, api.Errorf("InvalidParameter.AtMostOne", "parameters `InstanceIds` and `Filters` cannot be given together")
	}
	if err := checkInstanceIDs(in.InstanceIds); err != nil {
		return nil, err
	}
	filters, err := compileFilters(in.Filters)
	if err != nil {
		return nil, err
	}
	out := &cvm.DescribeInstancesResponse{InstanceSet: []cvm.Instance{}}
	err = m.w.Store.View(func(tx *store.Tx) error {
		sel := m.selectInstances(tx, in.InstanceIds, filters, r.Now)
		pg, err := api.Page(sel, in.Offset, in.Limit, 20)
		if err != nil {
			return err
		}
		out.TotalCount = int64(len(sel))
		out.InstanceSet = make([]cvm.Instance, 0, len(pg))
		for _, x := range pg {
			out.InstanceSet = append(out.InstanceSet, toWire(x, r.Now))
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

func checkInstanceIDs(ids []string) error {
	if len(ids) > maxIDsPerCall {
		return api.Errorf("InvalidParameterValue.LimitExceeded", "parameter `InstanceIds` has %d IDs, at most %d are allowed", len(ids), maxIDsPerCall)
	}
	for i, id := range ids {
		if !wellFormedID(id) {
			return api.Errorf("InvalidInstanceId.Malformed", "parameter `InstanceIds.%d`: %q is not an instance ID (ins-xxxxxxxx)", i, id)
		}
	}
	return nil
}

// selectInstances returns the live instances named by ids, or matching every filter, in
// creation order. When an instance-id or private-ip-address filter (or ids) narrows the
// candidates, they come from point lookups instead of a scan of the whole table.
func (m *Module) selectInstances(tx *store.Tx, ids []string, filters []*instanceFilter, now time.Time) []*Instance {
	var candidates []*Instance
	indexed := false
	switch {
	case len(ids) > 0:
		candidates, indexed = m.lookupIDs(tx, ids), true
	default:
		for _, f := range filters {
			switch f.name {
			case "instance-id":
				candidates, indexed = m.lookupIDs(tx, keys(f.values)), true
			case "private-ip-address":
				candidates, indexed = m.lookupIPs(tx, f.values), true
			default:
				continue
			}
			break
		}
	}
	if !indexed {
		candidates = instancesT.List(tx)
	}
	out := candidates[:0:0]
	for _, x := range candidates {
		state := EffectiveState(x, now)
		if state == "" {
			continue
		}
		ok := true
		for _, f := range filters {
			if !f.match(x, state) {
				ok = false
				break
			}
		}
		if ok {
			out = append(out, x)
		}
	}
	if indexed {
		// Point lookups come in request order; answer in creation order like a scan.
		slices.SortFunc(out, func(a, b *Instance) int {
			return cmp.Or(a.CreatedTime.Compare(b.CreatedTime), cmp.Compare(a.LaunchIndex, b.LaunchIndex), strings.Compare(a.InstanceId, b.InstanceId))
		})
	}
	return out
}

func keys(set map[string]struct{}) []string {
	out := make([]string, 0, len(set))
	for k := range set {
		out = append(out, k)
	}
	return out
}

func (m *Module) lookupIDs(tx *store.Tx, ids []string) []*Instance {
	out := make([]*Instance, 0, len(ids))
	seen := make(map[string]bool, len(ids))
	for _, id := range ids {
		if seen[id] {
			continue
		}
		seen[id] = true
		if x, ok := instancesT.Get(tx, id); ok {
			out = append(out, x)
		}
	}
	return out
}

func (m *Module) lookupIPs(tx *store.Tx, ips map[string]struct{}) []*Instance {
	out := make([]*Instance, 0, len(ips))
	for ip := range ips {
		idx, ok := ipIndexT.Get(tx, ip)
		if !ok {
			continue
		}
		for _, id := range idx.InstanceIds {
			if x, ok := instancesT.Get(tx, id); ok {
				out = append(out, x)
			}
		}
	}
	return out
}

// toWire renders x as DescribeInstances answers it at now.
func toWire(x *Instance, now time.Time) cvm.Instance {
	t := catalogByName[x.InstanceType]
	size := x.SystemDiskSize
	pub := []string{}
	if x.PublicIP != "" {
		pub = []string{x.PublicIP}
	}
	var internet *cvm.InternetAccessible
	if x.PublicIP != "" {
		bw, assigned := int64(1), true
		internet = &cvm.InternetAccessible{InternetChargeType: "TRAFFIC_POSTPAID_BY_HOUR", InternetMaxBandwidthOut: &bw, PublicIpAssigned: &assigned}
	}
	opState := "SUCCESS"
	if !settled(x, now) {
		opState = "OPERATING"
	}
	tags := x.Tags
	if tags == nil {
		tags = []cloudapi.Tag{}
	}
	sgs := x.SecurityGroupIds
	if sgs == nil {
		sgs = []string{}
	}
	return cvm.Instance{
		Placement:                cvm.Placement{Zone: x.Zone, ProjectId: new(int64)},
		InstanceId:               x.InstanceId,
		InstanceType:             x.InstanceType,
		CPU:                      t.CPU,
		Memory:                   t.Memory,
		RestrictState:            "NORMAL",
		InstanceName:             x.InstanceName,
		InstanceChargeType:       x.ChargeType,
		SystemDisk:               &cvm.SystemDisk{DiskType: x.SystemDiskType, DiskId: "disk-" + strings.TrimPrefix(x.InstanceId, "ins-"), DiskSize: &size},
		PrivateIpAddresses:       []string{x.PrivateIP},
		PublicIpAddresses:        pub,
		InternetAccessible:       internet,
		VirtualPrivateCloud:      cvm.VirtualPrivateCloud{VpcId: x.VpcId, SubnetId: x.SubnetId},
		ImageId:                  x.ImageId,
		CreatedTime:              api.Timestamp(x.CreatedTime),
		OsName:                   "TencentOS Server 3.1 (TK4)",
		SecurityGroupIds:         sgs,
		InstanceState:            EffectiveState(x, now),
		Tags:                     tags,
		StopChargingMode:         "NOT_APPLICABLE",
		Uuid:                     x.Uuid,
		LatestOperation:          x.LatestOperation,
		LatestOperationState:     opState,
		LatestOperationRequestId: x.LatestOperationRequestId,
	}
}
