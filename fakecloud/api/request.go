package api

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/stratus-cloud/stratus/cloudapi"
)

// The protocol's pagination: Limit defaults to 20 and is at most 100 on every Describe
// action Stratus uses (the SDK model docs of each say so).
const (
	DefaultLimit = 20
	MaxLimit     = 100
)

// Page returns the items selected by Offset and Limit (nil = 0 and defaultLimit), after
// checking both: a negative Offset, or a Limit outside 0..MaxLimit, is
// InvalidParameterValue.
func Page[T any](items []T, offset, limit *int64, defaultLimit int64) ([]T, error) {
	off, lim := int64(0), defaultLimit
	if offset != nil {
		off = *offset
	}
	if limit != nil {
		lim = *limit
	}
	if off < 0 {
		return nil, InvalidValue("Offset", "must not be negative, got %d", off)
	}
	if lim < 0 || lim > MaxLimit {
		return nil, InvalidValue("Limit", "must be between 0 and %d, got %d", MaxLimit, lim)
	}
	if off >= int64(len(items)) {
		return []T{}, nil
	}
	end := min(off+lim, int64(len(items)))
	return items[off:end], nil
}

// PageStrings is Page for the services that carry Offset and Limit as decimal strings
// (VPC: the official SDK declares both *string).
func PageStrings[T any](items []T, offset, limit *string, defaultLimit int64) ([]T, error) {
	off, err := parseCount("Offset", offset)
	if err != nil {
		return nil, err
	}
	lim, err := parseCount("Limit", limit)
	if err != nil {
		return nil, err
	}
	return Page(items, off, lim, defaultLimit)
}

func parseCount(field string, s *string) (*int64, error) {
	if s == nil {
		return nil, nil
	}
	n, err := strconv.ParseInt(*s, 10, 64)
	if err != nil {
		return nil, InvalidValue(field, "%q is not a decimal integer", *s)
	}
	return &n, nil
}

// IDList is what one action accepts in a list of resource IDs (InstanceIds, DiskIds, ...):
// how many, their shape, and the codes the cloud answers with.
type IDList struct {
	Field string // "InstanceIds"
	Max   int    // per request; 0 = no documented limit
	// Required makes an empty list MissingParameter.
	Required bool
	// Prefix, when set, makes every ID Prefix followed by 1-32 lowercase letters or digits
	// (real IDs have 8; seeds may use readable ones); anything else is MalformedCode.
	Prefix        string
	MalformedCode string // default InvalidParameterValue
	// TooManyCode answers a list over Max (default InvalidParameterValue.LimitExceeded).
	TooManyCode string
	// RejectDuplicates makes an ID given twice DuplicateCode (default
	// InvalidParameterValue.Duplicate); otherwise duplicates count once.
	RejectDuplicates bool
	DuplicateCode    string
}

// Check validates ids against the spec; it never looks at the store.
func (l IDList) Check(ids []string) error {
	if len(ids) == 0 {
		if l.Required {
			return MissingParameter(l.Field)
		}
		return nil
	}
	if l.Max > 0 && len(ids) > l.Max {
		return Errorf(or(l.TooManyCode, cloudapi.CodeInvalidParameterValue+".LimitExceeded"), "parameter `%s` takes at most %d IDs per request, got %d", l.Field, l.Max, len(ids))
	}
	seen := make(map[string]bool, len(ids))
	for i, id := range ids {
		field := l.Field + "." + strconv.Itoa(i)
		if id == "" {
			return InvalidValue(field, "an ID must not be empty")
		}
		if l.Prefix != "" && !WellFormedID(id, l.Prefix) {
			return Errorf(or(l.MalformedCode, cloudapi.CodeInvalidParameterValue), "parameter `%s`: %q is not a %s ID (%sxxxxxxxx)", field, id, strings.TrimSuffix(l.Prefix, "-"), l.Prefix)
		}
		if seen[id] && l.RejectDuplicates {
			return Errorf(or(l.DuplicateCode, cloudapi.CodeInvalidParameterValue+".Duplicate"), "parameter `%s`: %s is given twice", field, id)
		}
		seen[id] = true
	}
	return nil
}

// WellFormedID accepts prefix followed by 1-32 lowercase letters or digits.
func WellFormedID(id, prefix string) bool {
	rest, ok := strings.CutPrefix(id, prefix)
	if !ok || rest == "" || len(rest) > 32 {
		return false
	}
	for _, c := range rest {
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') {
			return false
		}
	}
	return true
}

// Exclusive refuses a request that gives both a and b (InstanceIds and Filters), with the
// service's code.
func Exclusive(code, a string, hasA bool, b string, hasB bool) error {
	if hasA && hasB {
		return Errorf(code, "parameters `%s` and `%s` cannot be given together", a, b)
	}
	return nil
}

// FilterLimits are the per-request limits on Filters and the codes the cloud answers
// with when one is passed.
type FilterLimits struct {
	MaxFilters int // per request
	MaxValues  int // per filter
	// TooManyFiltersCode and TooManyValuesCode answer a request over MaxFilters or
	// MaxValues (default InvalidParameterValue.LimitExceeded); UnknownNameCode a filter
	// name the action does not support (default InvalidParameter).
	TooManyFiltersCode string
	TooManyValuesCode  string
	UnknownNameCode    string
}

// FilterSpec is what one Describe action accepts in Filters: the names, where a record's
// values for each come from, the enums some names take, and the limits.
type FilterSpec[T any] struct {
	Limits FilterLimits
	// Fields maps each supported filter name to the values a record has for it; a record
	// matches a filter when one of them is one of the filter's values.
	Fields map[string]func(*T) []string
	// Tags, when set, adds the tag filters: tag-key, tag:<key> and, with TagValue,
	// tag-value.
	Tags     func(*T) []cloudapi.Tag
	TagValue bool
	// Enums lists the values a filter name accepts (instance-state: the states); any
	// other value is InvalidParameterValue, as the cloud refuses it.
	Enums map[string][]string
}

// Filters is a compiled Filters list: a record matches when every filter matches.
type Filters[T any] struct {
	filters []compiled[T]
}

type compiled[T any] struct {
	name   string
	values map[string]struct{}
	match  func(v *T, values map[string]struct{}) bool
}

// Compile checks filters against the spec (count, names, values, enums) and builds the
// matcher. It reports the first problem in request order.
func (s *FilterSpec[T]) Compile(filters []cloudapi.Filter) (Filters[T], error) {
	lim := s.Limits
	if lim.MaxFilters > 0 && len(filters) > lim.MaxFilters {
		return Filters[T]{}, Errorf(or(lim.TooManyFiltersCode, cloudapi.CodeInvalidParameterValue+".LimitExceeded"), "parameter `Filters` takes at most %d filters per request, got %d", lim.MaxFilters, len(filters))
	}
	out := Filters[T]{filters: make([]compiled[T], 0, len(filters))}
	for i, f := range filters {
		field := "Filters." + strconv.Itoa(i)
		if f.Name == "" {
			return Filters[T]{}, MissingParameter(field + ".Name")
		}
		c := compiled[T]{name: f.Name}
		switch get, ok := s.Fields[f.Name]; {
		case ok:
			c.match = func(v *T, want map[string]struct{}) bool { return anyIn(get(v), want) }
		case s.Tags != nil && f.Name == "tag-key":
			c.match = func(v *T, want map[string]struct{}) bool {
				return slices.ContainsFunc(s.Tags(v), func(t cloudapi.Tag) bool { return has(want, t.Key) })
			}
		case s.Tags != nil && s.TagValue && f.Name == "tag-value":
			c.match = func(v *T, want map[string]struct{}) bool {
				return slices.ContainsFunc(s.Tags(v), func(t cloudapi.Tag) bool { return has(want, t.Value) })
			}
		case s.Tags != nil && strings.HasPrefix(f.Name, "tag:") && len(f.Name) > len("tag:"):
			key := f.Name[len("tag:"):]
			c.match = func(v *T, want map[string]struct{}) bool {
				return slices.ContainsFunc(s.Tags(v), func(t cloudapi.Tag) bool { return t.Key == key && has(want, t.Value) })
			}
		default:
			return Filters[T]{}, Errorf(or(lim.UnknownNameCode, cloudapi.CodeInvalidParameter), "parameter `%s.Name`: filter %q is not supported; use one of %s", field, f.Name, strings.Join(s.names(), ", "))
		}
		if len(f.Values) == 0 {
			return Filters[T]{}, InvalidValue(field+".Values", "filter %q needs at least one value", f.Name)
		}
		if lim.MaxValues > 0 && len(f.Values) > lim.MaxValues {
			return Filters[T]{}, Errorf(or(lim.TooManyValuesCode, cloudapi.CodeInvalidParameterValue+".LimitExceeded"), "parameter `%s.Values` takes at most %d values per filter, got %d", field, lim.MaxValues, len(f.Values))
		}
		c.values = make(map[string]struct{}, len(f.Values))
		for j, v := range f.Values {
			if enum, ok := s.Enums[f.Name]; ok && !slices.Contains(enum, v) {
				return Filters[T]{}, InvalidValue(fmt.Sprintf("%s.Values.%d", field, j), "%q is not a valid %s; use one of %s", v, f.Name, strings.Join(enum, ", "))
			}
			c.values[v] = struct{}{}
		}
		out.filters = append(out.filters, c)
	}
	return out, nil
}

func (s *FilterSpec[T]) names() []string {
	names := make([]string, 0, len(s.Fields)+3)
	for n := range s.Fields {
		names = append(names, n)
	}
	slices.Sort(names)
	if s.Tags != nil {
		names = append(names, "tag-key", "tag:<key>")
		if s.TagValue {
			names = append(names, "tag-value")
		}
	}
	return names
}

// Match reports whether v passes every filter (an empty list passes everything).
func (f Filters[T]) Match(v *T) bool {
	for _, c := range f.filters {
		if !c.match(v, c.values) {
			return false
		}
	}
	return true
}

// Values returns the values of the first filter named name, so that a service can narrow
// its candidates with an index (instance-id, private-ip-address) before matching them all.
func (f Filters[T]) Values(name string) ([]string, bool) {
	for _, c := range f.filters {
		if c.name == name {
			out := make([]string, 0, len(c.values))
			for v := range c.values {
				out = append(out, v)
			}
			slices.Sort(out)
			return out, true
		}
	}
	return nil, false
}

// Len is the number of filters.
func (f Filters[T]) Len() int { return len(f.filters) }

func anyIn(have []string, want map[string]struct{}) bool {
	for _, v := range have {
		if has(want, v) {
			return true
		}
	}
	return false
}

func has(set map[string]struct{}, v string) bool { _, ok := set[v]; return ok }

// MaxBytes refuses a free-text field longer than n bytes, the unit the VPC and CBS model
// docs give ("最大长度不能超过60个字节").
func MaxBytes(code, field, s string, n int) error {
	if len(s) > n {
		return Errorf(or(code, cloudapi.CodeInvalidParameterValue), "parameter `%s` is at most %d bytes, got %d", field, n, len(s))
	}
	return nil
}

// MaxChars refuses a free-text field longer than n characters (Unicode code points), the
// unit the CVM and CLB model docs give ("最多支持60个字符").
func MaxChars(code, field, s string, n int) error {
	if c := utf8.RuneCountInString(s); c > n {
		return Errorf(or(code, cloudapi.CodeInvalidParameterValue), "parameter `%s` is at most %d characters, got %d", field, n, c)
	}
	return nil
}

// OneOf refuses a value outside an enum; "" is allowed when the field is optional and
// the caller checks presence itself.
func OneOf(field, v string, allowed ...string) error {
	if !slices.Contains(allowed, v) {
		return InvalidValue(field, "%q is not one of %s", v, strings.Join(allowed, ", "))
	}
	return nil
}

// MaxClientToken is the documented length of every ClientToken ("最大值不超过64个ASCII字符").
const MaxClientToken = 64

// ClientToken checks an idempotency token: at most 64 printable ASCII characters.
func ClientToken(code, field, s string) error {
	if len(s) > MaxClientToken {
		return Errorf(or(code, cloudapi.CodeInvalidParameterValue), "parameter `%s` is at most %d ASCII characters, got %d bytes", field, MaxClientToken, len(s))
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e {
			return Errorf(or(code, cloudapi.CodeInvalidParameterValue), "parameter `%s` must be printable ASCII; byte %d is 0x%02x", field, i, s[i])
		}
	}
	return nil
}

// Tag limits of the cloud's tag service, which every service's Tags share: at most 50 per
// resource, a key of 1-127 and a value of 1-255 Unicode characters, no leading or trailing
// space, letters (any script), digits, inner spaces and + - = . _ : / @ ( ) [ ] , ; > <
// (plus the full-width 【】（）：), and no key in the reserved qcs: / project namespaces.
const (
	MaxTags        = 50
	MaxTagKeyChars = 127
	MaxTagValChars = 255
)

// TagCodes are a service's answers to a bad tag list; empty fields default to
// InvalidParameterValue.
type TagCodes struct {
	TooMany, Key, Value, Duplicate string
}

// CheckTags validates the tags of a create call against the tag service's rules.
func CheckTags(field string, tags []cloudapi.Tag, codes TagCodes) error {
	if len(tags) > MaxTags {
		return Errorf(or(codes.TooMany, cloudapi.CodeInvalidParameterValue), "parameter `%s` takes at most %d tags, got %d", field, MaxTags, len(tags))
	}
	seen := make(map[string]bool, len(tags))
	for i, t := range tags {
		f := field + "." + strconv.Itoa(i)
		if err := tagText(t.Key, MaxTagKeyChars); err != nil {
			return Errorf(or(codes.Key, cloudapi.CodeInvalidParameterValue), "parameter `%s.Key` %q: %v", f, t.Key, err)
		}
		lower := strings.ToLower(t.Key)
		if strings.HasPrefix(lower, "qcs:") || strings.HasPrefix(lower, "project") || strings.HasPrefix(t.Key, "项目") {
			return Errorf(or(codes.Key, cloudapi.CodeInvalidParameterValue), "parameter `%s.Key` %q: keys starting with qcs:, project or 项目 are reserved for the cloud", f, t.Key)
		}
		if err := tagText(t.Value, MaxTagValChars); err != nil {
			return Errorf(or(codes.Value, cloudapi.CodeInvalidParameterValue), "parameter `%s.Value` %q: %v", f, t.Value, err)
		}
		if seen[t.Key] {
			return Errorf(or(codes.Duplicate, cloudapi.CodeInvalidParameterValue), "parameter `%s.Key`: tag key %q is given twice", f, t.Key)
		}
		seen[t.Key] = true
	}
	return nil
}

const tagPunct = "+-=._:/@()[],;><【】（）："

func tagText(s string, maxChars int) error {
	n := utf8.RuneCountInString(s)
	switch {
	case !utf8.ValidString(s):
		return fmt.Errorf("is not valid UTF-8")
	case n == 0:
		return fmt.Errorf("must not be empty")
	case n > maxChars:
		return fmt.Errorf("is %d characters, at most %d are allowed", n, maxChars)
	case s[0] == ' ' || s[len(s)-1] == ' ':
		return fmt.Errorf("must not start or end with a space")
	}
	for _, r := range s {
		if !unicode.IsLetter(r) && !unicode.IsDigit(r) && r != ' ' && !strings.ContainsRune(tagPunct, r) {
			return fmt.Errorf("character %q is not allowed (letters, digits, inner spaces and %s)", r, tagPunct)
		}
	}
	return nil
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
