package clb

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/stratus-cloud/stratus/cloudapi"
	"github.com/stratus-cloud/stratus/fakecloud/api"
	"github.com/stratus-cloud/stratus/fakecloud/store"
)

// usedAddrs collects the public VIPs and loopback VIPs already assigned.
func (m *Module) usedAddrs(tx *store.Tx) (public, loopback map[netip.Addr]bool) {
	public, loopback = map[netip.Addr]bool{}, map[netip.Addr]bool{}
	for _, lb := range m.lbs.List(tx) {
		if a, err := netip.ParseAddr(lb.Vip); err == nil && lb.Type == "OPEN" {
			public[a] = true
		}
		if a, err := netip.ParseAddr(lb.LoopbackVip); err == nil {
			loopback[a] = true
		}
	}
	return public, loopback
}

// firstFree returns the lowest address of pool not in used, skipping the pool's network
// and broadcast addresses.
func firstFree(pool netip.Prefix, used map[netip.Addr]bool) (netip.Addr, bool) {
	for a := pool.Addr().Next(); pool.Contains(a); a = a.Next() {
		if !pool.Contains(a.Next()) {
			break // the last address: broadcast
		}
		if !used[a] {
			return a, true
		}
	}
	return netip.Addr{}, false
}

// allocPublicVIP picks an OPEN load balancer's VIP: want (which must be a free address
// of the public pool) or the first free one. used is updated.
func (m *Module) allocPublicVIP(want string, used map[netip.Addr]bool) (string, error) {
	if want != "" {
		a, err := netip.ParseAddr(want)
		if err != nil || !a.Is4() {
			return "", api.InvalidValue("Vip", "%q is not an IPv4 address", want)
		}
		if !m.opts.PublicPool.Contains(a) {
			return "", api.InvalidValue("Vip", "%s is not in the region's public address pool %s", a, m.opts.PublicPool)
		}
		if used[a] {
			return "", api.Errorf(cloudapi.CodeResourceInUse, "VIP %s is already used by another load balancer", a)
		}
		used[a] = true
		return a.String(), nil
	}
	a, ok := firstFree(m.opts.PublicPool, used)
	if !ok {
		return "", api.Errorf("ResourceInsufficient", "the public address pool %s is exhausted", m.opts.PublicPool)
	}
	used[a] = true
	return a.String(), nil
}

// allocLoopbackVIP picks the loopback address the data plane serves a new load balancer
// on: its VIP itself when that is a loopback address (a public pool on loopback, so the
// address users see answers on this machine), else one from the loopback pool.
func (m *Module) allocLoopbackVIP(vip string, used map[netip.Addr]bool) (string, error) {
	if a, err := netip.ParseAddr(vip); err == nil && a.IsLoopback() {
		used[a] = true
		return a.String(), nil
	}
	a, ok := firstFree(m.opts.LoopbackPool, used)
	if !ok {
		return "", api.Errorf("ResourceInsufficient", "the data plane's loopback pool %s is exhausted", m.opts.LoopbackPool)
	}
	used[a] = true
	return a.String(), nil
}

// mapTarget translates a target's private IP onto the loopback address the data plane
// connects to; false when the target is unreachable from this machine.
func (m *Module) mapTarget(ip string, local bool) (netip.Addr, bool) {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return netip.Addr{}, false
	}
	if a.IsLoopback() {
		return a, true
	}
	for _, pm := range m.opts.TargetMap {
		if pm.From.Contains(a) {
			host := ^uint32(0) >> pm.From.Bits()
			v := u32(pm.To.Addr()) | (u32(a) & host)
			out := netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
			// A map wide enough to land in the VIP pool would send a target's traffic to a
			// listener, possibly its own: such a target is unreachable instead.
			return out, !m.opts.LoopbackPool.Contains(out)
		}
	}
	if local {
		return netip.AddrFrom4([4]byte{127, 0, 0, 1}), true
	}
	return netip.Addr{}, false
}

func u32(a netip.Addr) uint32 {
	b := a.As4()
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}

// ParsePrefixMaps parses a TargetMap flag: comma-separated FROM=TO prefix pairs, for
// example "10.0.0.0/16=127.10.0.0/16,172.16.0.0/16=127.172.0.0/16". Empty is no map.
func ParsePrefixMaps(s string) ([]PrefixMap, error) {
	var out []PrefixMap
	for part := range strings.SplitSeq(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		from, to, ok := strings.Cut(part, "=")
		if !ok {
			return nil, fmt.Errorf("target map %q: want FROM=TO", part)
		}
		f, err := netip.ParsePrefix(strings.TrimSpace(from))
		if err != nil {
			return nil, fmt.Errorf("target map %q: %w", part, err)
		}
		t, err := netip.ParsePrefix(strings.TrimSpace(to))
		if err != nil {
			return nil, fmt.Errorf("target map %q: %w", part, err)
		}
		out = append(out, PrefixMap{From: f.Masked(), To: t.Masked()})
	}
	if err := (Options{TargetMap: out}).Validate(); err != nil {
		return nil, err
	}
	return out, nil
}
