package cvm

import (
	"cmp"
	"slices"
	"strings"
	"time"

	"github.com/stratus-cloud/stratus/cloudapi"
	"github.com/stratus-cloud/stratus/cloudapi/cvm"
	"github.com/stratus-cloud/stratus/fakecloud/api"
	"github.com/stratus-cloud/stratus/fakecloud/store"
)

// Per-request limits of the CVM actions (SDK v1.0.162 model docs; fakecloud/LIMITS.md).
const (
	maxIDsPerCall   = 100 // InstanceIds of Describe/Stop/Start/TerminateInstances
	maxFilters      = 10
	maxFilterValues = 5
)

// instanceRow is what a filter sees: an instance and its state at the request's time.
type instanceRow struct {
	in    *Instance
	state string
}

func one(s string) []string { return []string{s} }

var describeFilters = api.FilterSpec[instanceRow]{
	Limits: api.FilterLimits{
		MaxFilters: maxFilters, MaxValues: maxFilterValues,
		TooManyFiltersCode: "InvalidFilterValue.LimitExceeded", TooManyValuesCode: "InvalidFilterValue.LimitExceeded",
		UnknownNameCode: "InvalidFilter",
	},
	Fields: map[string]func(*instanceRow) []string{
		"zone":                 func(r *instanceRow) []string { return one(r.in.Zone) },
		"project-id":           func(*instanceRow) []string { return one("0") },
		"vpc-id":               func(r *instanceRow) []string { return one(r.in.VpcId) },
		"subnet-id":            func(r *instanceRow) []string { return one(r.in.SubnetId) },
		"instance-id":          func(r *instanceRow) []string { return one(r.in.InstanceId) },
		"uuid":                 func(r *instanceRow) []string { return one(r.in.Uuid) },
		"security-group-id":    func(r *instanceRow) []string { return r.in.SecurityGroupIds },
		"instance-name":        func(r *instanceRow) []string { return one(r.in.InstanceName) },
		"instance-type":        func(r *instanceRow) []string { return one(r.in.InstanceType) },
		"instance-charge-type": func(r *instanceRow) []string { return one(r.in.ChargeType) },
		"instance-state":       func(r *instanceRow) []string { return one(r.state) },
		"private-ip-address":   func(r *instanceRow) []string { return one(r.in.PrivateIP) },
		"public-ip-address":    func(r *instanceRow) []string { return one(r.in.PublicIP) },
		"image-id":             func(r *instanceRow) []string { return one(r.in.ImageId) },
	},
	Tags:     func(r *instanceRow) []cloudapi.Tag { return r.in.Tags },
	TagValue: true,
	Enums: map[string][]string{
		"instance-state":       stateNames,
		"instance-charge-type": {"PREPAID", "POSTPAID_BY_HOUR", "CDHPAID", "SPOTPAID"},
	},
}

// instanceIDs is the InstanceIds list of every CVM action that takes one.
func instanceIDs(required, rejectDuplicates bool) api.IDList {
	return api.IDList{
		Field: "InstanceIds", Max: maxIDsPerCall, Required: required, Prefix: "ins-",
		MalformedCode: "InvalidInstanceId.Malformed", TooManyCode: "InvalidParameterValue.LimitExceeded",
		RejectDuplicates: rejectDuplicates,
	}
}

func (m *Module) describeInstances(r *api.Request) (any, error) {
	in, err := api.Decode[cvm.DescribeInstancesRequest](r)
	if err != nil {
		return nil, err
	}
	if err := api.Exclusive("InvalidParameter.AtMostOne", "InstanceIds", len(in.InstanceIds) > 0, "Filters", len(in.Filters) > 0); err != nil {
		return nil, err
	}
	if err := instanceIDs(false, false).Check(in.InstanceIds); err != nil {
		return nil, err
	}
	filters, err := describeFilters.Compile(in.Filters)
	if err != nil {
		return nil, err
	}
	out := &cvm.DescribeInstancesResponse{InstanceSet: []cvm.Instance{}}
	err = m.w.Store.View(func(tx *store.Tx) error {
		sel := m.selectInstances(tx, in.InstanceIds, filters, r.Now)
		pg, err := api.Page(sel, in.Offset, in.Limit, api.DefaultLimit)
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

// selectInstances returns the live instances named by ids, or matching every filter, in
// creation order. When an instance-id or private-ip-address filter (or ids) narrows the
// candidates, they come from point lookups instead of a scan of the whole table.
func (m *Module) selectInstances(tx *store.Tx, ids []string, filters api.Filters[instanceRow], now time.Time) []*Instance {
	var candidates []*Instance
	indexed := false
	if len(ids) > 0 {
		candidates, indexed = m.lookupIDs(tx, ids), true
	} else if v, ok := filters.Values("instance-id"); ok {
		candidates, indexed = m.lookupIDs(tx, v), true
	} else if v, ok := filters.Values("private-ip-address"); ok {
		candidates, indexed = m.lookupIPs(tx, v), true
	}
	if !indexed {
		candidates = instancesT.List(tx)
	}
	out := candidates[:0:0]
	for _, x := range candidates {
		row := instanceRow{in: x, state: EffectiveState(x, now)}
		if row.state != "" && filters.Match(&row) {
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

func (m *Module) lookupIPs(tx *store.Tx, ips []string) []*Instance {
	out := make([]*Instance, 0, len(ips))
	for _, ip := range ips {
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
