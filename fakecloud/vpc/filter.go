package vpc

import (
	"strconv"

	"github.com/stratus-cloud/stratus/cloudapi"
	"github.com/stratus-cloud/stratus/fakecloud/api"
)

// Per-request limits of the VPC service's actions (fakecloud/LIMITS.md). The model docs
// give 100 IDs per Describe call and 60-byte names; they give no Filters limits, so the
// common ones of the API (10 filters, 5 values each, as CVM documents) apply.
const (
	maxFilters      = 10
	maxFilterValues = 5
	maxIDs          = 100
	maxNameBytes    = 60
	maxDNSServers   = 4
)

var filterLimits = api.FilterLimits{
	MaxFilters: maxFilters, MaxValues: maxFilterValues,
	TooManyFiltersCode: "LimitExceeded.NumberOfFilters", TooManyValuesCode: "InvalidParameterValue.LimitExceeded",
	UnknownNameCode: "InvalidParameter.FilterInvalidKey",
}

// ids is a Describe call's ID list: at most 100, each prefix-xxxxxxxx.
func ids(field, prefix, malformedCode string) api.IDList {
	return api.IDList{Field: field, Max: maxIDs, Prefix: prefix, MalformedCode: malformedCode, TooManyCode: "InvalidParameterValue.LimitExceeded"}
}

// coexist refuses IDs and Filters together, as every VPC Describe call does.
func coexist(idsField string, ids []string, filters []cloudapi.Filter) error {
	return api.Exclusive("InvalidParameter.Coexist", idsField, len(ids) > 0, "Filters", len(filters) > 0)
}

func one(s string) []string { return []string{s} }

func boolString(b bool) []string { return []string{strconv.FormatBool(b)} }

// wellFormed accepts prefix followed by lowercase letters and digits (real IDs have 8;
// seeds may use readable ones).
func wellFormed(id, prefix string) bool { return api.WellFormedID(id, prefix) }

func validTags(field string, tags []cloudapi.Tag) error {
	return api.CheckTags(field, tags, api.TagCodes{
		TooMany: "InvalidParameterValue.LimitExceeded", Key: "InvalidParameterValue.TagInvalidKey",
		Value: "InvalidParameterValue.TagInvalidVal", Duplicate: "InvalidParameterValue.TagDuplicateKey",
	})
}
