package vpc

import (
	"net/netip"

	"github.com/stratus-cloud/stratus/cloudapi"
	"github.com/stratus-cloud/stratus/fakecloud/api"
	"github.com/stratus-cloud/stratus/fakecloud/store"
)

// Error codes of address allocation, as the real VPC service answers them.
const (
	CodeAddressInUse       = "ResourceInUse.Address"
	CodeSubnetExhausted    = "ResourceInsufficient.Subnet"
	CodeAddressOutOfSubnet = "InvalidParameterValue.Range"
	CodeAddressReserved    = "InvalidParameterValue.Reserved"
	CodeAddressMalformed   = "InvalidParameterValue.Malformed"
)

// reservedHead is how many addresses at the start of a subnet the cloud keeps (the
// network address and the gateway); the last address (broadcast) is reserved as well.
const reservedHead = 2

func leaseKey(subnetID, ip string) string { return subnetID + "|" + ip }

// subnetRange returns the first and last assignable addresses of cidr as integers.
func subnetRange(p netip.Prefix) (first, last uint32) {
	base := ipToU32(p.Masked().Addr())
	size := uint32(1) << (32 - p.Bits())
	return base + reservedHead, base + size - 2
}

// TotalIPs is the number of addresses the subnet's CIDR spans.
func TotalIPs(s *Subnet) int64 {
	p, err := netip.ParsePrefix(s.CidrBlock)
	if err != nil {
		return 0
	}
	return int64(1) << (32 - p.Bits())
}

// AvailableIPs is the number of addresses AllocateIP can still hand out.
func AvailableIPs(s *Subnet) int64 {
	return max(0, TotalIPs(s)-reservedHead-1-int64(s.UsedIPs))
}

func ipToU32(a netip.Addr) uint32 {
	b := a.As4()
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}

func u32ToIP(v uint32) netip.Addr {
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// AllocateIP leases an address of subnet subnetID inside tx: want, or the next free one
// when want is "". It answers an *api.Error when the subnet does not exist, want is not
// an IPv4 address of the subnet, is reserved or already taken, or the subnet is full.
func AllocateIP(tx *store.Tx, subnetID, want string) (string, error) {
	sn, ok := subnetsT.Get(tx, subnetID)
	if !ok {
		return "", api.NotFound("InvalidParameterValue.SubnetNotExist", "subnet", subnetID)
	}
	p, err := netip.ParsePrefix(sn.CidrBlock)
	if err != nil {
		return "", api.Errorf(cloudapi.CodeInternalError, "subnet %s has a malformed CIDR %q", subnetID, sn.CidrBlock)
	}
	first, last := subnetRange(p)
	next := *sn
	var ip string
	if want != "" {
		a, err := netip.ParseAddr(want)
		if err != nil || !a.Is4() {
			return "", api.Errorf(CodeAddressMalformed, "private IP address `%s` is not an IPv4 address", want)
		}
		if !p.Contains(a) {
			return "", api.Errorf(CodeAddressOutOfSubnet, "private IP address %s is not in subnet %s (%s)", want, subnetID, sn.CidrBlock)
		}
		if v := ipToU32(a); v < first || v > last {
			return "", api.Errorf(CodeAddressReserved, "private IP address %s is reserved in subnet %s (%s)", want, subnetID, sn.CidrBlock)
		}
		if _, taken := leasesT.Get(tx, leaseKey(subnetID, want)); taken {
			return "", api.Errorf(CodeAddressInUse, "private IP address %s of subnet %s is already in use", want, subnetID)
		}
		ip = a.String()
	} else {
		if AvailableIPs(sn) <= 0 {
			return "", api.Errorf(CodeSubnetExhausted, "subnet %s (%s) has no free IP address", subnetID, sn.CidrBlock)
		}
		span := last - first + 1
		start := sn.NextIP
		if start < first || start > last {
			start = first
		}
		for i := uint32(0); i < span; i++ {
			v := first + (start-first+i)%span
			cand := u32ToIP(v).String()
			if _, taken := leasesT.Get(tx, leaseKey(subnetID, cand)); !taken {
				ip = cand
				next.NextIP = v + 1
				break
			}
		}
		if ip == "" {
			return "", api.Errorf(CodeSubnetExhausted, "subnet %s (%s) has no free IP address", subnetID, sn.CidrBlock)
		}
	}
	next.UsedIPs++
	if err := leasesT.Put(tx, leaseKey(subnetID, ip), &lease{SubnetId: subnetID, IP: ip}); err != nil {
		return "", err
	}
	if err := subnetsT.Put(tx, subnetID, &next); err != nil {
		return "", err
	}
	return ip, nil
}

// ReleaseIP returns ip to subnet subnetID inside tx. Releasing an address that is not
// leased is not an error, so a caller may release on every cleanup path.
func ReleaseIP(tx *store.Tx, subnetID, ip string) error {
	sn, ok := subnetsT.Get(tx, subnetID)
	if !ok {
		return api.NotFound("InvalidParameterValue.SubnetNotExist", "subnet", subnetID)
	}
	key := leaseKey(subnetID, ip)
	if _, leased := leasesT.Get(tx, key); !leased {
		return nil
	}
	next := *sn
	next.UsedIPs = max(0, next.UsedIPs-1)
	if err := leasesT.Delete(tx, key); err != nil {
		return err
	}
	return subnetsT.Put(tx, subnetID, &next)
}

// IPLeased reports whether ip of subnet subnetID is taken.
func IPLeased(tx *store.Tx, subnetID, ip string) bool {
	_, ok := leasesT.Get(tx, leaseKey(subnetID, ip))
	return ok
}
