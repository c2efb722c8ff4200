package cni

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func subnet(t *testing.T, s string) *net.IPNet {
	_, n, err := net.ParseCIDR(s)
	require.NoError(t, err)
	n.IP = n.IP.To4()
	return n
}

func alloc(t *testing.T, s *Store, owner Attachment, sn *net.IPNet) (net.IP, error) {
	var ip net.IP
	err := s.Locked(func(tx *Tx) (err error) {
		ip, _, err = tx.Allocate(owner, sn)
		return err
	})
	return ip, err
}

func TestAllocateSkipsReservedAddressesAndExhausts(t *testing.T) {
	s, err := OpenStore(t.TempDir(), "net")
	require.NoError(t, err)
	sn := subnet(t, "10.1.0.0/29") // .0 network, .1 gateway, .7 broadcast
	var got []string
	for i := 0; i < 5; i++ {
		ip, err := alloc(t, s, Attachment{fmt.Sprintf("c%d", i), "eth0"}, sn)
		require.NoError(t, err)
		got = append(got, ip.String())
	}
	assert.Equal(t, []string{"10.1.0.2", "10.1.0.3", "10.1.0.4", "10.1.0.5", "10.1.0.6"}, got)
	_, err = alloc(t, s, Attachment{"c9", "eth0"}, sn)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "10.1.0.0/29 is exhausted")
}

func TestAllocateIsIdempotentPerOwnerAndRoundRobin(t *testing.T) {
	s, err := OpenStore(t.TempDir(), "net")
	require.NoError(t, err)
	sn := subnet(t, "10.1.0.0/24")
	a := Attachment{"a", "eth0"}
	ip1, err := alloc(t, s, a, sn)
	require.NoError(t, err)
	again, err := alloc(t, s, a, sn)
	require.NoError(t, err)
	assert.Equal(t, ip1.String(), again.String(), "a retried ADD gets its address back")

	require.NoError(t, s.Locked(func(tx *Tx) error {
		freed, err := tx.Release(a)
		assert.Equal(t, []string{ip1.String()}, ipStrings(freed))
		return err
	}))
	ip2, err := alloc(t, s, Attachment{"b", "eth0"}, sn)
	require.NoError(t, err)
	assert.NotEqual(t, ip1.String(), ip2.String(), "a freed IP is not reused at once")
	// Releasing again is fine.
	require.NoError(t, s.Locked(func(tx *Tx) error { _, err := tx.Release(a); return err }))
}

func ipStrings(ips []net.IP) []string {
	var out []string
	for _, ip := range ips {
		out = append(out, ip.String())
	}
	return out
}

func TestConcurrentAllocationsAreDistinct(t *testing.T) {
	dir := t.TempDir()
	sn := subnet(t, "10.2.0.0/24")
	const n = 50
	ips := make([]string, n)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Each goroutine opens its own store, as separate plugin processes do;
			// flock locks per open file, so they exclude each other.
			s, err := OpenStore(dir, "net")
			if !assert.NoError(t, err) {
				return
			}
			ip, err := alloc(t, s, Attachment{fmt.Sprintf("c%d", i), "eth0"}, sn)
			if assert.NoError(t, err) {
				ips[i] = ip.String()
			}
		}()
	}
	wg.Wait()
	seen := map[string]bool{}
	for _, ip := range ips {
		assert.False(t, seen[ip], "duplicate %s", ip)
		seen[ip] = true
	}
	assert.Len(t, seen, n)
}

func TestAllocationIsOnDiskBeforeAllocateReturns(t *testing.T) {
	dir := t.TempDir()
	s, err := OpenStore(dir, "net")
	require.NoError(t, err)
	ip, err := alloc(t, s, Attachment{"ctr", "eth0"}, subnet(t, "10.3.0.0/24"))
	require.NoError(t, err)
	b, err := os.ReadFile(filepath.Join(dir, "net", ip.String()))
	require.NoError(t, err)
	assert.Equal(t, "ctr\neth0\n", string(b))
}

func TestHalfWrittenAllocationStaysTakenUntilGC(t *testing.T) {
	dir := t.TempDir()
	s, err := OpenStore(dir, "net")
	require.NoError(t, err)
	sn := subnet(t, "10.4.0.0/29")
	// What a crash between create and write leaves: the IP's file, empty.
	require.NoError(t, os.WriteFile(filepath.Join(s.Dir(), "10.4.0.2"), nil, 0o600))
	ip, err := alloc(t, s, Attachment{"b", "eth0"}, sn)
	require.NoError(t, err)
	assert.Equal(t, "10.4.0.3", ip.String(), "an unreadable allocation is never handed out again")

	require.NoError(t, s.Locked(func(tx *Tx) error {
		freed, err := tx.Retain(func(a Attachment) bool { return a == Attachment{"b", "eth0"} })
		require.Len(t, freed, 1)
		assert.Equal(t, "10.4.0.2", freed[0].IP.String())
		assert.True(t, freed[0].Unreadable)
		n, _ := tx.Count()
		assert.Equal(t, 1, n)
		return err
	}))
}
