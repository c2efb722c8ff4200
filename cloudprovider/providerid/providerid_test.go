package providerid

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestFormatParseRoundTrip(t *testing.T) {
	for _, tc := range []ID{
		{Zone: "ap-guangzhou-1", InstanceID: "ins-node0001"},
		{Zone: "ap-shanghai-5", InstanceID: "ins-a1b2c3d4"},
	} {
		s := tc.String()
		got, err := Parse(s)
		require.NoError(t, err, s)
		assert.Equal(t, tc, got)
	}
	assert.Equal(t, "qcloud:///ap-guangzhou-1/ins-node0001", Format("ap-guangzhou-1", "ins-node0001"))
}

func TestParseRejectsMalformed(t *testing.T) {
	for name, in := range map[string]string{
		"empty":              "",
		"other provider":     "aws:///us-east-1a/i-0123",
		"no scheme":          "ap-guangzhou-1/ins-node0001",
		"host part":          "qcloud://ap-guangzhou-1/ins-node0001",
		"no zone":            "qcloud:///ins-node0001",
		"empty zone":         "qcloud:////ins-node0001",
		"empty instance":     "qcloud:///ap-guangzhou-1/",
		"extra element":      "qcloud:///ap-guangzhou-1/ins-node0001/x",
		"not an instance id": "qcloud:///ap-guangzhou-1/disk-123",
		"bare prefix":        "qcloud:///ap-guangzhou-1/ins-",
		"whitespace":         "qcloud:///ap-guangzhou-1/ins-node0001 ",
		"upper scheme":       "QCLOUD:///ap-guangzhou-1/ins-node0001",
	} {
		t.Run(name, func(t *testing.T) {
			_, err := Parse(in)
			require.Error(t, err)
			assert.Contains(t, err.Error(), "providerID", "error names what was parsed")
		})
	}
}

func TestParseOtherProviderIsErrNotQcloud(t *testing.T) {
	_, err := Parse("gce://project/zone/name")
	assert.True(t, errors.Is(err, ErrNotQcloud))
	_, err = Parse("qcloud:///zone/")
	assert.False(t, errors.Is(err, ErrNotQcloud), "a malformed qcloud id is not another provider's")
}

// FuzzParse: Parse never panics, and whatever it accepts formats back to the same string.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"qcloud:///ap-guangzhou-1/ins-node0001", "qcloud:///", "qcloud:////", "aws:///x/i-1", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		id, err := Parse(s)
		if err != nil {
			return
		}
		if got := id.String(); got != s {
			t.Fatalf("Parse(%q) = %+v, formats as %q", s, id, got)
		}
	})
}
