package api

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"sigs.k8s.io/yaml"
)

type sectionItem struct {
	ID   string `json:"id"`
	Size int    `json:"size,omitempty"`
}

func TestSeedSections(t *testing.T) {
	var s Seed
	require.NoError(t, yaml.UnmarshalStrict([]byte(`
region: ap-guangzhou
zones: [ap-guangzhou-1]
limits: {routes-per-table: 1000}
items:
  - {id: a, size: 2}
  - {id: b}
itemDelays: {boot: 30s}
`), &s))
	assert.Equal(t, "ap-guangzhou", s.Region)
	assert.Equal(t, []string{"ap-guangzhou-1"}, s.Zones)
	assert.Equal(t, map[string]int{"routes-per-table": 1000}, s.Limits)
	assert.Equal(t, []string{"itemDelays", "items"}, s.Unread(), "no service has read them yet")

	var items []sectionItem
	ok, err := s.Section("items", &items)
	require.NoError(t, err)
	assert.True(t, ok)
	assert.Equal(t, []sectionItem{{ID: "a", Size: 2}, {ID: "b"}}, items)
	var boot time.Duration
	ok, err = s.Durations("itemDelays", map[string]*time.Duration{"boot": &boot})
	require.NoError(t, err)
	assert.True(t, ok)
	assert.Equal(t, 30*time.Second, boot)
	assert.Empty(t, s.Unread())

	// What a caller changes in a section it read stays in the seed.
	items[1].Size = 9
	var again []sectionItem
	_, err = s.Section("items", &again)
	require.NoError(t, err)
	assert.Equal(t, 9, again[1].Size)

	ok, err = s.Section("absent", &items)
	require.NoError(t, err)
	assert.False(t, ok)
}

func TestSeedSectionsAreStrict(t *testing.T) {
	cases := []struct{ name, yaml string }{
		{"unknown field in a section", "items: [{id: a, colour: red}]"},
		{"wrong type", "items: [{id: a, size: big}]"},
		{"wrong case", "items: [{ID: a}]"},
		{"bad duration", "itemDelays: {boot: soon}"},
		{"negative duration", "itemDelays: {boot: -1s}"},
		{"unknown delay", "itemDelays: {bot: 1s}"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var s Seed
			require.NoError(t, yaml.UnmarshalStrict([]byte(tc.yaml), &s), "sections are decoded by their owner")
			var items []sectionItem
			var boot time.Duration
			_, err1 := s.Section("items", &items)
			_, err2 := s.Durations("itemDelays", map[string]*time.Duration{"boot": &boot})
			assert.Error(t, firstErr(err1, err2))
		})
	}
	t.Run("framework keys", func(t *testing.T) {
		var s Seed
		assert.Error(t, yaml.UnmarshalStrict([]byte("zones: ap-guangzhou-1"), &s))
		assert.Error(t, yaml.UnmarshalStrict([]byte("region: a\nregion: b"), &s), "a duplicate key")
	})
}

func firstErr(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

func TestSeedGoValues(t *testing.T) {
	s := &Seed{Region: "r"}
	s.Set("items", []sectionItem{{ID: "a"}})
	var items []sectionItem
	_, err := s.Section("items", &items)
	require.NoError(t, err)
	assert.Equal(t, []sectionItem{{ID: "a"}}, items)
	// Another Go type that encodes alike also fits.
	s.Set("items", []map[string]any{{"id": "b", "size": 3}})
	_, err = s.Section("items", &items)
	require.NoError(t, err)
	assert.Equal(t, []sectionItem{{ID: "b", Size: 3}}, items)
	// A seed survives a round trip through JSON (the admin reset keeps a copy).
	b, err := s.MarshalJSON()
	require.NoError(t, err)
	var back Seed
	require.NoError(t, back.UnmarshalJSON(b))
	_, err = back.Section("items", &items)
	require.NoError(t, err)
	assert.Equal(t, "r", back.Region)
	assert.Equal(t, []sectionItem{{ID: "b", Size: 3}}, items)
}
