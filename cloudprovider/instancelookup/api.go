package instancelookup

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// The per-request limits of DescribeInstances, as the API documents them
// (tencentcloud-sdk-go cvm/v20170312 DescribeInstancesRequest). Each is its own constant
// because each bounds a different thing; the lookup never sends a request over any of them.
const (
	// MaxIDsPerCall is the most InstanceIds one request carries.
	MaxIDsPerCall = 100
	// MaxPageSize is the largest Limit, so the most instances one answer holds.
	MaxPageSize = 100
	// MaxFilterValues is the most Values one filter carries.
	MaxFilterValues = 5
	// MaxFilters is the most Filters one request carries (a lookup uses at most two).
	MaxFilters = 10
)

// Instance is what the provider needs to know about one instance.
type Instance struct {
	ID         string
	State      string
	Type       string
	Zone       string
	VpcID      string
	Name       string
	PrivateIPs []string
	PublicIPs  []string
}

// Query is one DescribeInstances request. IDs are sent as InstanceIds, which the API never
// combines with Filters, so a Query with IDs has no VpcID and no PrivateIPs; otherwise
// VpcID becomes a vpc-id filter and PrivateIPs a private-ip-address filter. Neither IDs
// nor PrivateIPs means every instance of VpcID, one page of Limit from Offset.
type Query struct {
	VpcID      string
	IDs        []string
	PrivateIPs []string
	Offset     int
	Limit      int
}

// check reports a Query the API would refuse. The lookup checks every query before it
// sends it, so that a bug here is an error naming the limit, never a request the cloud
// rejects for the whole batch.
func (q Query) check() error {
	filters := 0
	if q.VpcID != "" {
		filters++
	}
	if len(q.PrivateIPs) > 0 {
		filters++
	}
	switch {
	case len(q.IDs) > 0 && filters > 0:
		return errors.New("InstanceIds and Filters in one request")
	case len(q.IDs) > MaxIDsPerCall:
		return fmt.Errorf("%d InstanceIds, at most %d", len(q.IDs), MaxIDsPerCall)
	case len(q.PrivateIPs) > MaxFilterValues:
		return fmt.Errorf("%d private-ip-address values, at most %d", len(q.PrivateIPs), MaxFilterValues)
	case filters > MaxFilters:
		return fmt.Errorf("%d filters, at most %d", filters, MaxFilters)
	case q.Limit < 1 || q.Limit > MaxPageSize:
		return fmt.Errorf("limit %d, want 1 to %d", q.Limit, MaxPageSize)
	case q.Offset < 0:
		return fmt.Errorf("offset %d", q.Offset)
	}
	return nil
}

// Page is one answer to a Query; Total counts every match, not only this page.
type Page struct {
	Instances []Instance
	Total     int
}

// API is the one cloud call the lookup needs. The provider binds it to cloudapi/cvm;
// tests use a fake that counts calls and enforces the limits above.
type API interface {
	DescribeInstances(ctx context.Context, q Query) (Page, error)
}

// ErrNotFound says a query made after the lookup was asked matched no instance.
var ErrNotFound = errors.New("instance not found")

// ErrMalformedID says an instance id cannot be one: the API would reject it, and with it
// every other id of its batch, so the lookup refuses it without asking.
var ErrMalformedID = errors.New("not an instance id (ins-<lowercase letters and digits>)")

// ErrStopped says the context the Lookup runs under is done.
var ErrStopped = errors.New("instance lookup stopped")

// wellFormedID accepts what the API accepts in InstanceIds: "ins-" and up to 32 lowercase
// letters and digits (real ids have 8).
func wellFormedID(id string) bool {
	rest, ok := strings.CutPrefix(id, "ins-")
	if !ok || rest == "" || len(rest) > 32 {
		return false
	}
	for _, c := range rest {
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') {
			return false
		}
	}
	return true
}
