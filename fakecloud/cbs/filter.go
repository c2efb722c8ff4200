package cbs

import (
	"slices"
	"strings"

	"github.com/stratus-cloud/stratus/cloudapi"
	"github.com/stratus-cloud/stratus/cloudapi/cbs"
	"github.com/stratus-cloud/stratus/fakecloud/api"
)

// fields maps a filter name to the values a resource has for it.
type fields map[string][]string

func (f fields) addTags(tags []cloudapi.Tag) {
	for _, t := range tags {
		f["tag-key"] = append(f["tag-key"], t.Key)
		f["tag-value"] = append(f["tag-value"], t.Value)
		f["tag:"+t.Key] = append(f["tag:"+t.Key], t.Value)
	}
}

// filterSet is a validated list of filters: a resource matches when, for every filter,
// one of its values for that name is one of the filter's values.
type filterSet []cloudapi.Filter

func (fs filterSet) match(f fields) bool {
	for _, flt := range fs {
		if !slices.ContainsFunc(f[flt.Name], func(v string) bool { return slices.Contains(flt.Values, v) }) {
			return false
		}
	}
	return true
}

var diskFilterNames = []string{
	"disk-id", "disk-name", "disk-type", "disk-state", "disk-usage", "disk-charge-type", "portable",
	"project-id", "zone", "encrypt", "instance-id", "instance-name", "instance-ip-address", "tag-key", "tag-value",
}

var snapshotFilterNames = []string{
	"snapshot-id", "snapshot-name", "snapshot-state", "snapshot-type", "disk-id", "disk-usage", "project-id", "zone", "encrypt",
}

func diskFilters(in []cloudapi.Filter) (filterSet, error) {
	return checkFilters(in, diskFilterNames, true)
}

func snapshotFilters(in []cloudapi.Filter) (filterSet, error) {
	return checkFilters(in, snapshotFilterNames, false)
}

func checkFilters(in []cloudapi.Filter, names []string, tags bool) (filterSet, error) {
	if len(in) > 10 {
		return nil, api.Errorf(cbs.CodeTooManyValues, "at most 10 filters, got %d", len(in))
	}
	for _, f := range in {
		known := slices.Contains(names, f.Name) || (tags && strings.HasPrefix(f.Name, "tag:") && len(f.Name) > len("tag:"))
		if !known {
			return nil, api.Errorf(cbs.CodeInvalidFilter, "filter `%s` is not supported; use one of %s", f.Name, strings.Join(names, ", "))
		}
		if len(f.Values) == 0 {
			return nil, api.InvalidValue("Filters.Values", "filter `%s` has no values", f.Name)
		}
		if len(f.Values) > 100 {
			return nil, api.Errorf(cbs.CodeTooManyValues, "filter `%s` takes at most 100 values", f.Name)
		}
	}
	return filterSet(in), nil
}
