package cbs

import (
	"time"

	"github.com/stratus-cloud/stratus/cloudapi"
	"github.com/stratus-cloud/stratus/cloudapi/cbs"
	"github.com/stratus-cloud/stratus/fakecloud/api"
)

// sizeBounds are the public API's size limits in GiB per disk type.
var sizeBounds = map[string][2]int64{
	cbs.DiskTypePremium: {10, 32000},
	cbs.DiskTypeSSD:     {20, 32000},
	cbs.DiskTypeHSSD:    {20, 32000},
}

// Types the real API knows but this region does not sell.
var unsupportedTypes = map[string]bool{"CLOUD_BASIC": true, "CLOUD_TSSD": true}

func checkSize(field, diskType string, size int64) error {
	b := sizeBounds[diskType]
	if size < b[0] || size > b[1] {
		return api.InvalidValue(field, "a %s disk is %d to %d GiB, got %d", diskType, b[0], b[1], size)
	}
	return nil
}

// checkIDs validates the ids of a write: present, at most limit, no duplicates.
func checkIDs(field string, ids []string, limit int) error {
	return api.IDList{
		Field: field, Max: limit, Required: true, TooManyCode: cbs.CodeTooManyValues,
		RejectDuplicates: true, DuplicateCode: cloudapi.CodeInvalidParameterValue,
	}.Check(ids)
}

// describeIDs validates the ids of a Describe call: at most 100, never with Filters.
func describeIDs(field string, ids []string, filters []cloudapi.Filter) error {
	if err := api.Exclusive(cloudapi.CodeInvalidParameter, field, len(ids) > 0, "Filters", len(filters) > 0); err != nil {
		return err
	}
	return api.IDList{Field: field, Max: maxDescribeIDs, TooManyCode: cbs.CodeTooManyValues}.Check(ids)
}

func checkTags(tags []cloudapi.Tag) error {
	return api.CheckTags("Tags", tags, api.TagCodes{TooMany: cbs.CodeTooManyValues})
}

// parseDeadline reads a snapshot deadline, which must lie in the future.
func parseDeadline(s string, now time.Time) (time.Time, error) {
	for _, layout := range []string{time.RFC3339, "2006-01-02 15:04:05", "2006-01-02T15:04:05"} {
		if t, err := time.ParseInLocation(layout, s, time.UTC); err == nil {
			if !t.After(now) {
				return time.Time{}, api.InvalidValue("Deadline", "`%s` is not in the future", s)
			}
			return t, nil
		}
	}
	return time.Time{}, api.InvalidValue("Deadline", "`%s` is not a time (use 2006-01-02T15:04:05Z)", s)
}

func diskNotFound(id string) error { return api.NotFound(cbs.CodeDiskNotFound, "disk", id) }

func snapshotNotFound(id string) error {
	return api.NotFound(cbs.CodeSnapshotNotFound, "snapshot", id)
}

func busy(d *Disk, code string) error {
	return api.Errorf(code, "disk `%s` is %s; try again when it is settled", d.DiskId, d.Op)
}

func addMonths(t time.Time, months int64) time.Time { return t.AddDate(0, int(months), 0) }

func describeTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return api.Timestamp(t)
}
