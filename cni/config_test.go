package cni

import (
	"errors"
	"testing"

	"github.com/containernetworking/cni/pkg/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseConfigDefaults(t *testing.T) {
	c, err := ParseConfig([]byte(`{"cniVersion":"1.1.0","name":"net","type":"stratus-bridge","subnet":"10.244.1.0/24"}`))
	require.NoError(t, err)
	assert.Equal(t, "cbr0", c.Bridge)
	assert.Equal(t, "/var/lib/cni/stratus", c.DataDir)
	assert.Equal(t, "10.244.1.1", c.Gateway().String())
	assert.Equal(t, "10.244.1.0/24", c.SubnetNet().String())
	assert.False(t, c.IPMasq)
	assert.Zero(t, c.MTU)
}

func TestParseConfigErrorsNameTheField(t *testing.T) {
	cases := []struct{ conf, field string }{
		{`"mtu":"1500"`, "mtu"},
		{`"mtu":100`, "mtu"},
		{`"subnet":"10.244.1.0"`, "subnet"},
		{`"subnet":"10.244.1.7/24"`, "subnet"},
		{`"subnet":"10.244.1.0/31"`, "subnet"},
		{`"subnet":"fd00::/64"`, "subnet"},
		{`"subnet":24`, "subnet"},
		{`"hairpinMode":"true"`, "hairpinMode"},
		{`"ipMasq":1`, "ipMasq"},
		{`"nonMasqueradeCIDRs":"10.0.0.0/8"`, "nonMasqueradeCIDRs"},
		{`"nonMasqueradeCIDRs":["10.0.0.0/8","nope"]`, "nonMasqueradeCIDRs[1]"},
		{`"dataDir":"var/lib"`, "dataDir"},
		{`"bridge":"br/0"`, "bridge"},
		{`"bridge":"sixteen-chars-xx"`, "bridge"},
	}
	for _, tc := range cases {
		t.Run(tc.conf, func(t *testing.T) {
			_, err := ParseConfig([]byte(`{"cniVersion":"1.1.0","name":"net","type":"stratus-bridge",` + tc.conf + `}`))
			var e *types.Error
			require.True(t, errors.As(err, &e), "%v", err)
			assert.Equal(t, types.ErrInvalidNetworkConfig, e.Code)
			assert.Contains(t, e.Msg, "field "+tc.field+":")
		})
	}
}

func TestSubnetIsOptionalUntilADDNeedsIt(t *testing.T) {
	c, err := ParseConfig([]byte(`{"cniVersion":"1.1.0","name":"net","type":"stratus-bridge"}`))
	require.NoError(t, err)
	assert.Nil(t, c.SubnetNet())
	err = c.RequireSubnet()
	var e *types.Error
	require.True(t, errors.As(err, &e))
	assert.Equal(t, types.ErrInvalidNetworkConfig, e.Code)
	assert.Contains(t, e.Msg, "field subnet")
}

func TestSplitRuleHonoursQuotes(t *testing.T) {
	assert.Equal(t,
		[]string{"-A", "POSTROUTING", "-s", "10.0.0.0/24", "-m", "comment", "--comment", "stratus-bridge:a b", "-j", "X"},
		splitRule(`-A POSTROUTING -s 10.0.0.0/24 -m comment --comment "stratus-bridge:a b" -j X`))
}

func TestHostVethNamesFitAndDiffer(t *testing.T) {
	a := hostVethName("net", Attachment{"c1", "eth0"})
	b := hostVethName("net", Attachment{"c1", "eth1"})
	c := hostVethName("other", Attachment{"c1", "eth0"})
	assert.Len(t, a, 15)
	assert.NotEqual(t, a, b)
	assert.NotEqual(t, a[:6], c[:6], "the prefix tells networks apart")
	assert.Equal(t, a[:6], b[:6])
}
