package api

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stratus-cloud/stratus/cloudapi"
)

func i64(v int64) *int64   { return &v }
func str(v string) *string { return &v }

func TestPage(t *testing.T) {
	items := []int{0, 1, 2, 3, 4}
	cases := []struct {
		name          string
		offset, limit *int64
		want          []int
		code          string
	}{
		{"defaults", nil, nil, []int{0, 1, 2}, ""},
		{"window", i64(1), i64(2), []int{1, 2}, ""},
		{"past the end", i64(9), nil, []int{}, ""},
		{"zero limit", nil, i64(0), []int{}, ""},
		{"limit 100 is allowed", nil, i64(100), items, ""},
		{"limit 101", nil, i64(101), nil, cloudapi.CodeInvalidParameterValue},
		{"negative limit", nil, i64(-1), nil, cloudapi.CodeInvalidParameterValue},
		{"negative offset", i64(-1), nil, nil, cloudapi.CodeInvalidParameterValue},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Page(items, tc.offset, tc.limit, 3)
			if tc.code != "" {
				assert.Equal(t, tc.code, AsError(err).Code)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}

func TestPageStrings(t *testing.T) {
	got, err := PageStrings([]int{0, 1, 2, 3}, str("1"), str("2"), 20)
	require.NoError(t, err)
	assert.Equal(t, []int{1, 2}, got)
	for _, bad := range []*string{str("x"), str(" 1"), str("1.0"), str("101")} {
		_, err := PageStrings([]int{0}, nil, bad, 20)
		assert.Equal(t, cloudapi.CodeInvalidParameterValue, AsError(err).Code, "Limit %q", *bad)
	}
}

func TestIDList(t *testing.T) {
	spec := IDList{Field: "InstanceIds", Max: 3, Required: true, Prefix: "ins-", MalformedCode: "InvalidInstanceId.Malformed", RejectDuplicates: true}
	cases := []struct {
		name string
		ids  []string
		code string
	}{
		{"ok", []string{"ins-a", "ins-b"}, ""},
		{"at the limit", []string{"ins-a", "ins-b", "ins-c"}, ""},
		{"one past the limit", []string{"ins-a", "ins-b", "ins-c", "ins-d"}, "InvalidParameterValue.LimitExceeded"},
		{"missing", nil, cloudapi.CodeMissingParameter},
		{"malformed", []string{"node-1"}, "InvalidInstanceId.Malformed"},
		{"upper case is malformed", []string{"ins-ABC"}, "InvalidInstanceId.Malformed"},
		{"empty", []string{""}, cloudapi.CodeInvalidParameterValue},
		{"duplicate", []string{"ins-a", "ins-a"}, "InvalidParameterValue.Duplicate"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := spec.Check(tc.ids)
			if tc.code == "" {
				assert.NoError(t, err)
				return
			}
			assert.Equal(t, tc.code, AsError(err).Code, "%v", err)
		})
	}
	t.Run("optional and duplicates allowed", func(t *testing.T) {
		loose := IDList{Field: "DiskIds", Max: 2}
		assert.NoError(t, loose.Check(nil))
		assert.NoError(t, loose.Check([]string{"disk-a", "disk-a"}))
	})
}

type rec struct {
	ID    string
	State string
	IPs   []string
	Tags  []cloudapi.Tag
}

func recSpec() *FilterSpec[rec] {
	return &FilterSpec[rec]{
		Limits: FilterLimits{MaxFilters: 2, MaxValues: 3, TooManyValuesCode: "InvalidFilterValue.LimitExceeded", UnknownNameCode: "InvalidFilter"},
		Fields: map[string]func(*rec) []string{
			"id":    func(r *rec) []string { return []string{r.ID} },
			"state": func(r *rec) []string { return []string{r.State} },
			"ip":    func(r *rec) []string { return r.IPs },
		},
		Tags:     func(r *rec) []cloudapi.Tag { return r.Tags },
		TagValue: true,
		Enums:    map[string][]string{"state": {"RUNNING", "STOPPED"}},
	}
}

func TestFilterLimitsAndNames(t *testing.T) {
	cases := []struct {
		name    string
		filters []cloudapi.Filter
		code    string
	}{
		{"at both limits", []cloudapi.Filter{{Name: "id", Values: []string{"a", "b", "c"}}, {Name: "ip", Values: []string{"x"}}}, ""},
		{"one filter too many", []cloudapi.Filter{{Name: "id", Values: []string{"a"}}, {Name: "ip", Values: []string{"x"}}, {Name: "tag-key", Values: []string{"k"}}}, "InvalidParameterValue.LimitExceeded"},
		{"one value too many", []cloudapi.Filter{{Name: "id", Values: []string{"a", "b", "c", "d"}}}, "InvalidFilterValue.LimitExceeded"},
		{"unknown name", []cloudapi.Filter{{Name: "colour", Values: []string{"red"}}}, "InvalidFilter"},
		{"names are case-exact", []cloudapi.Filter{{Name: "ID", Values: []string{"a"}}}, "InvalidFilter"},
		{"no values", []cloudapi.Filter{{Name: "id"}}, cloudapi.CodeInvalidParameterValue},
		{"no name", []cloudapi.Filter{{Values: []string{"a"}}}, cloudapi.CodeMissingParameter},
		{"enum value", []cloudapi.Filter{{Name: "state", Values: []string{"running"}}}, cloudapi.CodeInvalidParameterValue},
		{"bare tag: prefix", []cloudapi.Filter{{Name: "tag:", Values: []string{"v"}}}, "InvalidFilter"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := recSpec().Compile(tc.filters)
			if tc.code == "" {
				assert.NoError(t, err)
				return
			}
			assert.Equal(t, tc.code, AsError(err).Code, "%v", err)
		})
	}
}

func TestFilterMatching(t *testing.T) {
	a := &rec{ID: "a", State: "RUNNING", IPs: []string{"10.0.0.1", "10.0.0.2"}, Tags: []cloudapi.Tag{{Key: "team", Value: "blue"}}}
	b := &rec{ID: "b", State: "STOPPED", IPs: []string{"10.0.0.3"}}
	cases := []struct {
		name    string
		filters []cloudapi.Filter
		want    []string
	}{
		{"none matches all", nil, []string{"a", "b"}},
		{"values are OR", []cloudapi.Filter{{Name: "id", Values: []string{"a", "b"}}}, []string{"a", "b"}},
		{"filters are AND", []cloudapi.Filter{{Name: "id", Values: []string{"a", "b"}}, {Name: "state", Values: []string{"STOPPED"}}}, []string{"b"}},
		{"any of a record's values", []cloudapi.Filter{{Name: "ip", Values: []string{"10.0.0.2"}}}, []string{"a"}},
		{"tag-key", []cloudapi.Filter{{Name: "tag-key", Values: []string{"team"}}}, []string{"a"}},
		{"tag-value", []cloudapi.Filter{{Name: "tag-value", Values: []string{"blue"}}}, []string{"a"}},
		{"tag:key", []cloudapi.Filter{{Name: "tag:team", Values: []string{"blue"}}}, []string{"a"}},
		{"tag:key other value", []cloudapi.Filter{{Name: "tag:team", Values: []string{"red"}}}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m, err := recSpec().Compile(tc.filters)
			require.NoError(t, err)
			var got []string
			for _, r := range []*rec{a, b} {
				if m.Match(r) {
					got = append(got, r.ID)
				}
			}
			assert.Equal(t, tc.want, got)
		})
	}
	m, err := recSpec().Compile([]cloudapi.Filter{{Name: "ip", Values: []string{"10.0.0.3", "10.0.0.1"}}})
	require.NoError(t, err)
	vals, ok := m.Values("ip")
	assert.True(t, ok)
	assert.Equal(t, []string{"10.0.0.1", "10.0.0.3"}, vals)
	_, ok = m.Values("id")
	assert.False(t, ok)
}

func TestTextChecks(t *testing.T) {
	t.Run("bytes", func(t *testing.T) {
		assert.NoError(t, MaxBytes("", "VpcName", strings.Repeat("a", 60), 60))
		assert.Error(t, MaxBytes("", "VpcName", strings.Repeat("a", 61), 60))
		assert.Error(t, MaxBytes("", "VpcName", strings.Repeat("名", 21), 60), "21 CJK characters are 63 bytes")
	})
	t.Run("characters", func(t *testing.T) {
		assert.NoError(t, MaxChars("", "InstanceName", strings.Repeat("名", 60), 60))
		err := MaxChars("InvalidInstanceName.TooLong", "InstanceName", strings.Repeat("a", 61), 60)
		assert.Equal(t, "InvalidInstanceName.TooLong", AsError(err).Code)
	})
	t.Run("enum", func(t *testing.T) {
		assert.NoError(t, OneOf("StopType", "SOFT", "SOFT", "HARD"))
		assert.Error(t, OneOf("StopType", "soft", "SOFT", "HARD"))
	})
	t.Run("client token", func(t *testing.T) {
		assert.NoError(t, ClientToken("", "ClientToken", strings.Repeat("t", 64)))
		assert.Error(t, ClientToken("", "ClientToken", strings.Repeat("t", 65)))
		assert.Error(t, ClientToken("", "ClientToken", "令牌"))
		assert.Error(t, ClientToken("", "ClientToken", "a b"))
	})
}

func TestCheckTags(t *testing.T) {
	tag := func(k, v string) cloudapi.Tag { return cloudapi.Tag{Key: k, Value: v} }
	many := func(n int) []cloudapi.Tag {
		out := make([]cloudapi.Tag, n)
		for i := range out {
			out[i] = tag("k"+strings.Repeat("x", i), "v")
		}
		return out
	}
	cases := []struct {
		name string
		tags []cloudapi.Tag
		ok   bool
	}{
		{"stratus tags", []cloudapi.Tag{tag("stratus.io/cluster", "prod-1"), tag("stratus.io/service", "default/web"), tag("stratus.io/service-uid", "0b1c-22")}, true},
		{"chinese", []cloudapi.Tag{tag("城市", "上海【一区】")}, true},
		{"50 tags", many(50), true},
		{"51 tags", many(51), false},
		{"key at 127", []cloudapi.Tag{tag(strings.Repeat("k", 127), "v")}, true},
		{"key at 128", []cloudapi.Tag{tag(strings.Repeat("k", 128), "v")}, false},
		{"value at 255", []cloudapi.Tag{tag("k", strings.Repeat("v", 255))}, true},
		{"value at 256", []cloudapi.Tag{tag("k", strings.Repeat("v", 256))}, false},
		{"empty key", []cloudapi.Tag{tag("", "v")}, false},
		{"empty value", []cloudapi.Tag{tag("k", "")}, false},
		{"leading space", []cloudapi.Tag{tag(" k", "v")}, false},
		{"trailing space in value", []cloudapi.Tag{tag("k", "v ")}, false},
		{"inner space", []cloudapi.Tag{tag("my key", "my value")}, true},
		{"bad character", []cloudapi.Tag{tag("k*", "v")}, false},
		{"reserved qcs:", []cloudapi.Tag{tag("qcs:owner", "v")}, false},
		{"reserved project", []cloudapi.Tag{tag("project-x", "v")}, false},
		{"duplicate key", []cloudapi.Tag{tag("k", "a"), tag("k", "b")}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckTags("Tags", tc.tags, TagCodes{})
			if tc.ok {
				assert.NoError(t, err)
			} else {
				assert.Equal(t, cloudapi.CodeInvalidParameterValue, AsError(err).Code, "%v", err)
			}
		})
	}
}

func TestExclusive(t *testing.T) {
	assert.NoError(t, Exclusive("InvalidParameter.AtMostOne", "InstanceIds", true, "Filters", false))
	err := Exclusive("InvalidParameter.AtMostOne", "InstanceIds", true, "Filters", true)
	assert.Equal(t, "InvalidParameter.AtMostOne", AsError(err).Code)
}
