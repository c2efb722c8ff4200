package cbs

import (
	"github.com/stratus-cloud/stratus/cloudapi"
	"github.com/stratus-cloud/stratus/cloudapi/cbs"
	"github.com/stratus-cloud/stratus/fakecloud/api"
)

// Per-request limits of the CBS actions (SDK v1.0.162 model docs and the CBS API pages;
// fakecloud/LIMITS.md). The docs give no Filters limits; the API's common ones apply.
const (
	maxFilters      = 10
	maxFilterValues = 5
	maxDescribeIDs  = 100 // DiskIds, SnapshotIds of a Describe call ("ids.N")
	maxPerCall      = 10  // AttachDisks, DetachDisks
	maxTerminate    = 50  // TerminateDisks
	maxDeleteSnaps  = 100 // DeleteSnapshots: not documented; see LIMITS.md
	maxCreateCount  = 50  // CreateDisks DiskCount: see LIMITS.md
	maxNameBytes    = 60  // DiskName, SnapshotName
)

// fields maps a filter name to the values a resource has for it (tag filters included,
// as tag-key, tag-value and tag:<key>).
type fields map[string][]string

func (f fields) addTags(tags []cloudapi.Tag) {
	for _, t := range tags {
		f["tag-key"] = append(f["tag-key"], t.Key)
		f["tag-value"] = append(f["tag-value"], t.Value)
		f["tag:"+t.Key] = append(f["tag:"+t.Key], t.Value)
	}
}

var filterLimits = api.FilterLimits{
	MaxFilters: maxFilters, MaxValues: maxFilterValues,
	TooManyFiltersCode: cbs.CodeTooManyValues, TooManyValuesCode: cbs.CodeTooManyValues, UnknownNameCode: cbs.CodeInvalidFilter,
}

// spec builds a filter spec over fields for the given names.
func spec(names []string, tags bool, enums map[string][]string) *api.FilterSpec[fields] {
	s := &api.FilterSpec[fields]{Limits: filterLimits, Fields: map[string]func(*fields) []string{}, Enums: enums}
	for _, n := range names {
		s.Fields[n] = func(f *fields) []string { return (*f)[n] }
	}
	if tags {
		s.Tags = func(f *fields) []cloudapi.Tag {
			var out []cloudapi.Tag
			for k, vs := range *f {
				if len(k) > len("tag:") && k[:len("tag:")] == "tag:" {
					for _, v := range vs {
						out = append(out, cloudapi.Tag{Key: k[len("tag:"):], Value: v})
					}
				}
			}
			return out
		}
		s.TagValue = true
	}
	return s
}

// The filter names the model docs list for DescribeDisks and DescribeSnapshots.
var (
	diskFilters = spec([]string{
		"disk-id", "disk-name", "disk-type", "disk-state", "disk-usage", "disk-charge-type", "portable",
		"project-id", "zone", "instance-id", "instance-name", "instance-ip-address",
	}, true, map[string][]string{
		"disk-usage":       {"SYSTEM_DISK", "DATA_DISK"},
		"disk-charge-type": {cbs.ChargePrepaid, cbs.ChargePostpaidByHour},
		"portable":         {"TRUE", "FALSE"},
		"disk-type":        {"CLOUD_BASIC", cbs.DiskTypePremium, cbs.DiskTypeSSD, cbs.DiskTypeHSSD, "CLOUD_TSSD"},
		"disk-state":       {"UNATTACHED", "ATTACHING", "ATTACHED", "DETACHING", "EXPANDING", "ROLLBACKING", "TORECYCLE"},
	})
	snapshotFilters = spec([]string{
		"snapshot-id", "snapshot-name", "snapshot-state", "snapshot-type", "disk-id", "disk-usage", "project-id", "zone", "encrypt",
	}, false, map[string][]string{
		"snapshot-state": {"NORMAL", "CREATING", "ROLLBACKING"},
		"snapshot-type":  {"SHARED_SNAPSHOT", "PRIVATE_SNAPSHOT"},
		"disk-usage":     {"SYSTEM_DISK", "DATA_DISK"},
		"encrypt":        {"TRUE", "FALSE"},
	})
)
