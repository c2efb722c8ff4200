package cvm

import (
	"fmt"

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

func (m *Module) describeInstanceTypeConfigs(r *api.Request) (any, error) {
	in, err := api.Decode[cvm.DescribeInstanceTypeConfigsRequest](r)
	if err != nil {
		return nil, err
	}
	sets := map[string]map[string]bool{}
	for i, f := range in.Filters {
		switch f.Name {
		case "zone", "instance-family", "instance-type":
		default:
			return nil, api.Errorf("InvalidFilter", "parameter `Filters.%d.Name`: filter %q is not supported", i, f.Name)
		}
		if len(f.Values) == 0 {
			return nil, api.InvalidValue(fmt.Sprintf("Filters.%d.Values", i), "filter %q needs at least one value", f.Name)
		}
		set := map[string]bool{}
		for _, v := range f.Values {
			set[v] = true
		}
		sets[f.Name] = set
	}
	ok := func(name, v string) bool { s, has := sets[name]; return !has || s[v] }
	out := &cvm.DescribeInstanceTypeConfigsResponse{InstanceTypeConfigSet: []cvm.InstanceTypeConfig{}}
	for _, z := range m.w.Zones {
		if !ok("zone", z.Name) {
			continue
		}
		for _, t := range catalog {
			if ok("instance-family", t.Family) && ok("instance-type", t.Name) {
				out.InstanceTypeConfigSet = append(out.InstanceTypeConfigSet, cvm.InstanceTypeConfig{
					Zone: z.Name, InstanceType: t.Name, InstanceFamily: t.Family, CPU: t.CPU, Memory: t.Memory,
				})
			}
		}
	}
	return out, nil
}
