package vpc

import (
	"strconv"
	"strings"

	"github.com/stratus-cloud/stratus/cloudapi"
	"github.com/stratus-cloud/stratus/fakecloud/api"
)

// Filter limits of the VPC service's Describe calls.
const (
	maxFilters      = 10
	maxFilterValues = 100
	maxIDs          = 100
)

// fields maps a filter name to the values a record has for it.
type fields[T any] map[string]func(*T) []string

// matcher is a compiled Filters list: a record matches when every filter matches.
type matcher[T any] []func(*T) bool

func (m matcher[T]) match(v *T) bool {
	for _, f := range m {
		if !f(v) {
			return false
		}
	}
	return true
}

// compile checks filters against the names in fs (plus tag-key and tag:<key> when tags
// is set) and builds the matcher.
func compile[T any](filters []cloudapi.Filter, fs fields[T], tags func(*T) []cloudapi.Tag) (matcher[T], error) {
	if len(filters) > maxFilters {
		return nil, api.Errorf("LimitExceeded.NumberOfFilters", "parameter `Filters` has %d filters, at most %d are allowed", len(filters), maxFilters)
	}
	var m matcher[T]
	for i, f := range filters {
		if len(f.Values) == 0 {
			return nil, api.InvalidValue("Filters."+strconv.Itoa(i)+".Values", "filter %q needs at least one value", f.Name)
		}
		if len(f.Values) > maxFilterValues {
			return nil, api.Errorf("InvalidParameterValue.LimitExceeded", "parameter `Filters.%d.Values` has %d values, at most %d are allowed", i, len(f.Values), maxFilterValues)
		}
		set := make(map[string]struct{}, len(f.Values))
		for _, v := range f.Values {
			set[v] = struct{}{}
		}
		switch get, ok := fs[f.Name]; {
		case ok:
			m = append(m, func(v *T) bool {
				for _, have := range get(v) {
					if _, ok := set[have]; ok {
						return true
					}
				}
				return false
			})
		case tags != nil && f.Name == "tag-key":
			m = append(m, func(v *T) bool {
				for _, t := range tags(v) {
					if _, ok := set[t.Key]; ok {
						return true
					}
				}
				return false
			})
		case tags != nil && strings.HasPrefix(f.Name, "tag:") && len(f.Name) > 4:
			key := f.Name[4:]
			m = append(m, func(v *T) bool {
				for _, t := range tags(v) {
					if _, ok := set[t.Value]; ok && t.Key == key {
						return true
					}
				}
				return false
			})
		default:
			return nil, api.Errorf("InvalidParameter.FilterInvalidKey", "parameter `Filters.%d.Name`: filter %q is not supported", i, f.Name)
		}
	}
	return m, nil
}

// page parses the VPC service's string Offset and Limit and selects the page.
func page[T any](items []T, offset, limit *string) ([]T, error) {
	off, err := parseCount("Offset", offset)
	if err != nil {
		return nil, err
	}
	lim, err := parseCount("Limit", limit)
	if err != nil {
		return nil, err
	}
	return api.Page(items, off, lim, 20)
}

func parseCount(field string, s *string) (*int64, error) {
	if s == nil {
		return nil, nil
	}
	n, err := strconv.ParseInt(strings.TrimSpace(*s), 10, 64)
	if err != nil {
		return nil, api.InvalidValue(field, "%q is not an integer", *s)
	}
	return &n, nil
}

func one(s string) []string { return []string{s} }

func boolString(b bool) []string { return []string{strconv.FormatBool(b)} }

// checkIDs validates the IDs of a Describe call.
func checkIDs(field string, ids []string, prefix, malformedCode string) error {
	if len(ids) > maxIDs {
		return api.InvalidValue(field, "at most %d IDs per call, got %d", maxIDs, len(ids))
	}
	for i, id := range ids {
		if !wellFormed(id, prefix) {
			return api.Errorf(malformedCode, "parameter `%s.%d`: %q is not a %s ID", field, i, id, strings.TrimSuffix(prefix, "-"))
		}
	}
	return nil
}

// wellFormed accepts prefix followed by lowercase letters and digits (real IDs have 8;
// seeds may use readable ones).
func wellFormed(id, prefix string) bool {
	rest, ok := strings.CutPrefix(id, prefix)
	if !ok || rest == "" || len(rest) > 32 {
		return false
	}
	for _, c := range rest {
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '-' {
			return false
		}
	}
	return true
}

func validTags(field string, tags []cloudapi.Tag) error {
	seen := map[string]bool{}
	for i, t := range tags {
		if t.Key == "" {
			return api.Errorf("InvalidParameterValue.TagInvalidKey", "parameter `%s.%d.Key` must not be empty", field, i)
		}
		if seen[t.Key] {
			return api.Errorf("InvalidParameterValue.TagDuplicateKey", "parameter `%s.%d.Key`: tag key %q is given twice", field, i, t.Key)
		}
		seen[t.Key] = true
	}
	return nil
}
