package csi

import "github.com/container-storage-interface/spec/lib/go/csi"

// field is one required field of a request: what names it ("the target path"), empty
// says the CO left it out, and why, when set, tells the CO what it missed.
type field struct {
	what  string
	empty bool
	why   string
}

func need(what string, empty bool) field { return field{what: what, empty: empty} }

// checkVolumeRequest is what every volume RPC checks before it touches anything, each
// failure an InvalidArgument: the volume id, then the required fields in the order
// given (named with the RPC and the volume), then the capability, when there is one,
// against what the driver serves.
func checkVolumeRequest(rpc, id string, c *csi.VolumeCapability, fields ...field) error {
	if id == "" {
		return invalid("%s: the volume id is missing", rpc)
	}
	for _, f := range fields {
		if !f.empty {
			continue
		}
		if f.why != "" {
			return invalid("%s: volume %s: %s is missing (%s)", rpc, id, f.what, f.why)
		}
		return invalid("%s: volume %s: %s is missing", rpc, id, f.what)
	}
	if c != nil {
		if err := checkCapability(c); err != nil {
			return invalid("volume %s: %v", id, err)
		}
	}
	return nil
}

// checkCapacityRange refuses a capacity range that is not one (negative, or a limit
// below what is required); a zero limit is no limit.
func checkCapacityRange(volume string, required, limit int64) error {
	if required < 0 || limit < 0 || (limit > 0 && required > limit) {
		return invalid("volume %s: capacity range %d..%d is not a range", volume, required, limit)
	}
	return nil
}
