package cvm

import (
	"github.com/stratus-cloud/stratus/cloudapi/cvm"
	"github.com/stratus-cloud/stratus/fakecloud/api"
)

func (m *Module) describeZones(r *api.Request) (any, error) {
	if _, err := api.Decode[cvm.DescribeZonesRequest](r); err != nil {
		return nil, err
	}
	out := &cvm.DescribeZonesResponse{ZoneSet: make([]cvm.ZoneInfo, 0, len(m.w.Zones))}
	for _, z := range m.w.Zones {
		out.ZoneSet = append(out.ZoneSet, cvm.ZoneInfo{Zone: z.Name, ZoneName: z.Name, ZoneId: z.ID, ZoneState: z.State})
	}
	out.TotalCount = int64(len(out.ZoneSet))
	return out, nil
}

// typeConfigFilters: the model docs allow 10 filters of 1 value each and name zone and
// instance-family; instance-type is in the current API docs.
var typeConfigFilters = api.FilterSpec[typeConfig]{
	Limits: api.FilterLimits{MaxFilters: 10, MaxValues: 1, TooManyFiltersCode: "InvalidFilterValue.LimitExceeded", TooManyValuesCode: "InvalidFilterValue.LimitExceeded", UnknownNameCode: "InvalidFilter"},
	Fields: map[string]func(*typeConfig) []string{
		"zone":            func(c *typeConfig) []string { return []string{c.zone} },
		"instance-family": func(c *typeConfig) []string { return []string{c.t.Family} },
		"instance-type":   func(c *typeConfig) []string { return []string{c.t.Name} },
	},
}

type typeConfig struct {
	zone string
	t    instanceType
}

func (m *Module) describeInstanceTypeConfigs(r *api.Request) (any, error) {
	in, err := api.Decode[cvm.DescribeInstanceTypeConfigsRequest](r)
	if err != nil {
		return nil, err
	}
	filters, err := typeConfigFilters.Compile(in.Filters)
	if err != nil {
		return nil, err
	}
	out := &cvm.DescribeInstanceTypeConfigsResponse{InstanceTypeConfigSet: []cvm.InstanceTypeConfig{}}
	for _, z := range m.w.Zones {
		for _, t := range catalog {
			if c := (typeConfig{zone: z.Name, t: t}); filters.Match(&c) {
				out.InstanceTypeConfigSet = append(out.InstanceTypeConfigSet, cvm.InstanceTypeConfig{
					Zone: z.Name, InstanceType: t.Name, InstanceFamily: t.Family, CPU: t.CPU, Memory: t.Memory,
				})
			}
		}
	}
	return out, nil
}
