package clb

import (
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParsePrefixMapsAndMapTarget(t *testing.T) {
	maps, err := ParsePrefixMaps(" 10.0.0.0/16=127.10.0.0/16, 172.16.0.0/12=127.16.0.0/12 ")
	require.NoError(t, err)
	require.Len(t, maps, 2)
	m := &Module{opts: Options{TargetMap: maps}}
	for ip, want := range map[string]string{
		"10.0.1.11":   "127.10.1.11",
		"172.20.3.4":  "127.20.3.4", // /12: the host part keeps its 4 low bits of the second octet
		"127.0.0.9":   "127.0.0.9",  // loopback stays as it is
		"192.168.0.1": "",           // unmapped, not local: unreachable
	} {
		got, ok := m.mapTarget(ip, false)
		if want == "" {
			assert.False(t, ok, ip)
			continue
		}
		require.True(t, ok, ip)
		assert.Equal(t, netip.MustParseAddr(want), got, ip)
	}
	got, ok := m.mapTarget("192.168.0.1", true)
	require.True(t, ok)
	assert.Equal(t, netip.MustParseAddr("127.0.0.1"), got, "a Local instance is this machine")

	// A map whose image overlaps the VIP pool never sends a target into a listener.
	wide := &Module{opts: Options{LoopbackPool: netip.MustParsePrefix("127.240.0.0/16"),
		TargetMap: []PrefixMap{{From: netip.MustParsePrefix("10.0.0.0/8"), To: netip.MustParsePrefix("127.0.0.0/8")}}}}
	got, ok = wide.mapTarget("10.0.1.11", false)
	require.True(t, ok)
	assert.Equal(t, netip.MustParseAddr("127.0.1.11"), got)
	_, ok = wide.mapTarget("10.240.0.1", false)
	assert.False(t, ok, "10.240.0.1 would map onto the VIP 127.240.0.1")

	empty, err := ParsePrefixMaps("")
	require.NoError(t, err)
	assert.Empty(t, empty)
	for _, bad := range []string{"10.0.0.0/16", "10.0.0.0/16=127.0.0.0/8", "10.0.0.0/16=192.168.0.0/16", "x=127.0.0.0/16", "10.0.0.0/16=y"} {
		_, err := ParsePrefixMaps(bad)
		assert.Error(t, err, bad)
	}
}

func TestFirstFreeSkipsNetworkAndBroadcast(t *testing.T) {
	pool := netip.MustParsePrefix("127.240.0.0/30")
	used := map[netip.Addr]bool{}
	a, ok := firstFree(pool, used)
	require.True(t, ok)
	assert.Equal(t, netip.MustParseAddr("127.240.0.1"), a)
	used[a] = true
	a, ok = firstFree(pool, used)
	require.True(t, ok)
	assert.Equal(t, netip.MustParseAddr("127.240.0.2"), a)
	used[a] = true
	_, ok = firstFree(pool, used)
	assert.False(t, ok, ".3 is the broadcast address")
}
