package cloudapi

// Filter is the protocol's generic list filter: a resource matches when its field Name
// has any of Values; several filters must all match.
type Filter struct {
	Name   string   `json:"Name"`
	Values []string `json:"Values"`
}

// Tag is a key/value label on a resource.
type Tag struct {
	Key   string `json:"Key"`
	Value string `json:"Value"`
}

// Int64 returns a pointer to v, for the optional numeric fields of requests.
func Int64(v int64) *int64 { return &v }

// Bool returns a pointer to v, for the optional boolean fields of requests.
func Bool(v bool) *bool { return &v }

// String returns a pointer to v, for the optional string fields of requests.
func String(v string) *string { return &v }
