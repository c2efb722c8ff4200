package api

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stratus-cloud/stratus/cloudapi"
)

type decodeFilter struct {
	Name   string   `json:"Name"`
	Values []string `json:"Values"`
}

type decodeTarget struct {
	DiskId  string         `json:"DiskId,omitempty"`
	Size    *int64         `json:"DiskSize,omitempty"`
	Filters []decodeFilter `json:"Filters,omitempty"`
	Shared  *bool          `json:"Shareable,omitempty"`
}

func TestDecodeIsStrict(t *testing.T) {
	cases := []struct {
		name, body, code, mentions string
	}{
		{"wrong case is unknown", `{"diskid":"disk-1"}`, cloudapi.CodeUnknownParameter, "diskid"},
		{"unknown nested name names its path", `{"Filters":[{"Name":"zone","Valuez":["a"]}]}`, cloudapi.CodeUnknownParameter, "Filters.0.Valuez"},
		{"duplicate name", `{"DiskId":"disk-1","DiskId":"disk-2"}`, cloudapi.CodeInvalidParameter, "DiskId"},
		{"duplicate nested name", `{"Filters":[{"Name":"a","Name":"b","Values":["x"]}]}`, cloudapi.CodeInvalidParameter, "Filters.0.Name"},
		{"trailing object", `{"DiskId":"disk-1"}{"DiskId":"disk-2"}`, cloudapi.CodeInvalidParameter, "after top-level value"},
		{"trailing garbage", `{"DiskId":"disk-1"} x`, cloudapi.CodeInvalidParameter, "after top-level value"},
		{"invalid UTF-8", "{\"DiskId\":\"disk-\xff\"}", cloudapi.CodeInvalidParameter, "UTF-8"},
		{"truncated", `{"DiskId":`, cloudapi.CodeInvalidParameter, "not valid JSON"},
		{"not an object", `["disk-1"]`, cloudapi.CodeInvalidParameter, "JSON object"},
		{"string for integer", `{"DiskSize":"10"}`, cloudapi.CodeInvalidParameter, "DiskSize` must be of type Integer"},
		{"fraction for integer", `{"DiskSize":1.5}`, cloudapi.CodeInvalidParameter, "DiskSize"},
		{"number for boolean", `{"Shareable":1}`, cloudapi.CodeInvalidParameter, "Shareable` must be of type Boolean"},
		{"object for list", `{"Filters":{"Name":"zone"}}`, cloudapi.CodeInvalidParameter, "Filters` must be of type Array"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Decode[decodeTarget](&Request{Body: []byte(tc.body)})
			require.Error(t, err)
			e := AsError(err)
			assert.Equal(t, tc.code, e.Code, "message: %s", e.Message)
			assert.Contains(t, e.Message, tc.mentions)
		})
	}
}

func TestDecodeAcceptsWhatTheCloudAccepts(t *testing.T) {
	cases := []struct {
		name, body string
		want       decodeTarget
	}{
		{"empty body", ``, decodeTarget{}},
		{"empty object", `{}`, decodeTarget{}},
		{"surrounding whitespace", " \n{\"DiskId\":\"disk-1\"}\n ", decodeTarget{DiskId: "disk-1"}},
		{"null leaves the zero value", `{"DiskSize":null}`, decodeTarget{}},
		{"nested", `{"Filters":[{"Name":"zone","Values":["ap-guangzhou-1"]}]}`, decodeTarget{Filters: []decodeFilter{{Name: "zone", Values: []string{"ap-guangzhou-1"}}}}},
		{"UTF-8 text", `{"DiskId":"未命名"}`, decodeTarget{DiskId: "未命名"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Decode[decodeTarget](&Request{Body: []byte(tc.body)})
			require.NoError(t, err)
			assert.Equal(t, tc.want, *got)
		})
	}
}
