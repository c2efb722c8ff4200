package vpc_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stratus-cloud/stratus/fakecloud"
	"github.com/stratus-cloud/stratus/fakecloud/api"
	"github.com/stratus-cloud/stratus/fakecloud/store"
	"github.com/stratus-cloud/stratus/fakecloud/vpc"
)

func TestAllocateAndReleaseIP(t *testing.T) {
	seed := &api.Seed{Region: "ap-guangzhou", Zones: []string{"ap-guangzhou-1"}}
	vpc.SetSeed(seed, []vpc.SeedVPC{{
		VpcID: "vpc-ipam0001", CidrBlock: "10.8.0.0/16",
		Subnets: []vpc.SeedSubnet{{SubnetID: "subnet-tiny0001", CidrBlock: "10.8.0.0/29", Zone: "ap-guangzhou-1"}},
	}})
	c, err := fakecloud.New(fakecloud.Config{Seed: seed, Modules: []api.NewModule{vpc.New}})
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	s := c.World().Store
	subnets := vpc.Subnets(s)
	alloc := func(want string) (string, error) {
		var ip string
		err := s.Update(func(tx *store.Tx) error {
			var err error
			ip, err = vpc.AllocateIP(tx, "subnet-tiny0001", want)
			return err
		})
		return ip, err
	}
	codeOf := func(err error) string { return api.AsError(err).Code }

	ip, err := alloc("10.8.0.5")
	require.NoError(t, err)
	assert.Equal(t, "10.8.0.5", ip)
	_, err = alloc("10.8.0.5")
	assert.Equal(t, vpc.CodeAddressInUse, codeOf(err))
	_, err = alloc("10.8.1.5")
	assert.Equal(t, vpc.CodeAddressOutOfSubnet, codeOf(err))
	for _, reserved := range []string{"10.8.0.0", "10.8.0.1", "10.8.0.7"} {
		_, err = alloc(reserved)
		assert.Equal(t, vpc.CodeAddressReserved, codeOf(err), reserved)
	}
	_, err = alloc("fe80::1")
	assert.Equal(t, vpc.CodeAddressMalformed, codeOf(err))

	var got []string
	for range 4 {
		ip, err := alloc("")
		require.NoError(t, err)
		got = append(got, ip)
	}
	assert.Equal(t, []string{"10.8.0.2", "10.8.0.3", "10.8.0.4", "10.8.0.6"}, got)
	_, err = alloc("")
	assert.Equal(t, vpc.CodeSubnetExhausted, codeOf(err))

	require.NoError(t, s.Update(func(tx *store.Tx) error { return vpc.ReleaseIP(tx, "subnet-tiny0001", "10.8.0.3") }))
	require.NoError(t, s.Update(func(tx *store.Tx) error { return vpc.ReleaseIP(tx, "subnet-tiny0001", "10.8.0.3") }), "release is idempotent")
	_ = s.View(func(tx *store.Tx) error {
		sn, ok := subnets.Get(tx, "subnet-tiny0001")
		require.True(t, ok)
		assert.EqualValues(t, 1, vpc.AvailableIPs(sn))
		return nil
	})
	ip, err = alloc("")
	require.NoError(t, err)
	assert.Equal(t, "10.8.0.3", ip, "a released address is handed out again")

	err = s.Update(func(tx *store.Tx) error { _, err := vpc.AllocateIP(tx, "subnet-nothere", ""); return err })
	assert.Equal(t, "InvalidParameterValue.SubnetNotExist", codeOf(err))
	// An aborted transaction leases nothing.
	require.NoError(t, s.Update(func(tx *store.Tx) error { return vpc.ReleaseIP(tx, "subnet-tiny0001", "10.8.0.2") }))
	_ = s.Update(func(tx *store.Tx) error {
		if _, err := vpc.AllocateIP(tx, "subnet-tiny0001", ""); err != nil {
			return err
		}
		return api.Errorf("InternalError", "abort")
	})
	ip, err = alloc("10.8.0.2")
	require.NoError(t, err, "the aborted lease did not stick")
	assert.Equal(t, "10.8.0.2", ip)
}
