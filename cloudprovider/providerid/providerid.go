// Package providerid owns the format of the Node spec.providerID that the qcloud provider
// sets: "qcloud:///<zone>/<instance-id>". Formatting and parsing live here and nowhere
// else, so the format can only change in one place.
//
// The package makes no API calls and knows nothing about Nodes beyond the string.
package providerid

import (
	"errors"
	"fmt"
	"strings"
)

// Scheme is the prefix every providerID of this provider starts with. The empty host
// ("qcloud:///") follows the convention of other providers (aws:///zone/id, gce://...):
// the path carries the location.
const Scheme = "qcloud://"

// instancePrefix is the prefix of every CVM instance id.
const instancePrefix = "ins-"

// ErrNotQcloud reports a providerID that belongs to another provider (or none): the caller
// must not treat that node's instance as gone, only as not ours.
var ErrNotQcloud = errors.New("not a qcloud providerID")

// ID is a parsed providerID.
type ID struct {
	Zone       string
	InstanceID string
}

// String formats id; it is the inverse of Parse.
func (id ID) String() string { return Format(id.Zone, id.InstanceID) }

// Format returns "qcloud:///<zone>/<instance-id>".
func Format(zone, instanceID string) string {
	return Scheme + "/" + zone + "/" + instanceID
}

// Parse splits a providerID into zone and instance id. It rejects anything Format would
// not produce: another scheme, a missing or empty zone or instance id, extra path
// elements, whitespace, and instance ids without the "ins-" prefix.
func Parse(providerID string) (ID, error) {
	rest, ok := strings.CutPrefix(providerID, Scheme)
	if !ok {
		return ID{}, fmt.Errorf("providerID %q: %w (want %s/<zone>/<instance-id>)", providerID, ErrNotQcloud, Scheme)
	}
	if strings.ContainsAny(rest, " \t\r\n") {
		return ID{}, fmt.Errorf("providerID %q: contains whitespace", providerID)
	}
	rest, ok = strings.CutPrefix(rest, "/")
	if !ok {
		return ID{}, fmt.Errorf("providerID %q: has a host part; want %s/<zone>/<instance-id>", providerID, Scheme)
	}
	parts := strings.Split(rest, "/")
	if len(parts) != 2 {
		return ID{}, fmt.Errorf("providerID %q: want exactly <zone>/<instance-id> after %s/", providerID, Scheme)
	}
	zone, instanceID := parts[0], parts[1]
	switch {
	case zone == "":
		return ID{}, fmt.Errorf("providerID %q: zone is empty", providerID)
	case instanceID == "":
		return ID{}, fmt.Errorf("providerID %q: instance id is empty", providerID)
	case !strings.HasPrefix(instanceID, instancePrefix) || len(instanceID) == len(instancePrefix):
		return ID{}, fmt.Errorf("providerID %q: instance id %q does not look like %s<id>", providerID, instanceID, instancePrefix)
	}
	return ID{Zone: zone, InstanceID: instanceID}, nil
}
