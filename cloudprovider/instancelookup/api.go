package instancelookup

import (
	"context"
	"errors"
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

// Query selects instances. At most one of IDs and PrivateIPs is set; neither means every
// instance of VpcID. VpcID, when set, scopes the query to that VPC.
type Query struct {
	VpcID      string
	IDs        []string
	PrivateIPs []string
	Offset     int
	Limit      int
}

// Page is one answer to a Query; Total counts every match, not only this page.
type Page struct {
	Instances []Instance
	Total     int
}

// API is the one cloud call the lookup needs. The provider binds it to cloudapi/cvm;
// tests use a fake that counts calls.
type API interface {
	DescribeInstances(ctx context.Context, q Query) (Page, error)
}

// ErrNotFound says a direct query made for this lookup matched no instance.
var ErrNotFound = errors.New("instance not found")

// MaxBatch is the most filter values (and results) one DescribeInstances carries; it is
// also the API's page size limit.
const MaxBatch = 100
