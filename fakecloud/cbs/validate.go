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

// checkIDs validates a list of ids: present, at most limit, no duplicates.
func checkIDs(field string, ids []string, limit int) error {
	if len(ids) == 0 {
		return api.MissingParameter(field)
	}
	if len(ids) > limit {
		return api.Errorf(cbs.CodeTooManyValues, "parameter `%s` takes at most %d ids, got %d", field, limit, len(ids))
	}
	seen := map[string]bool{}
	for _, id := range ids {
		if id == "" {
			return api.InvalidValue(field, "an id is empty")
		}
		if seen[id] {
			return api.InvalidValue(field, "`%s` is given twice", id)
		}
		seen[id] = true
	}
	return nil
}

func checkTags(tags []cloudapi.Tag) error {
	if len(tags) > 50 {
		return api.Errorf(cbs.CodeTooManyValues, "at most 50 tags, got %d", len(tags))
	}
	seen := map[string]bool{}
	for _, t := range tags {
		switch {
		case t.Key == "":
			return api.InvalidValue("Tags.Key", "a tag key is empty")
		case len(t.Key) > 127 || len(t.Value) > 255:
			return api.InvalidValue("Tags", "tag `%.40s` is too long", t.Key)
		case seen[t.Key]:
			return api.InvalidValue("Tags.Key", "tag key `%s` is given twice", t.Key)
		}
		seen[t.Key] = true
	}
	return nil
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
