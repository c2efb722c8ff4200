// Package vpc simulates the cloud's VPC service: VPCs, subnets (with the private IP
// addresses handed out from them), route tables and routes. Other services read its
// tables (Subnets, RouteTables) and lease addresses with AllocateIP / ReleaseIP inside
// their own store transaction, so an instance and its address appear (or fail) together.
//
// The package owns only state and its API; it never touches the host network. A router
// data plane (Options.Router; package routerplane programs one) is told the desired
// routing after every route write and on Start.
package vpc

import (
	"time"

	"github.com/stratus-cloud/stratus/cloudapi"
	"github.com/stratus-cloud/stratus/fakecloud/store"
)

// VPC is one virtual private cloud.
type VPC struct {
	VpcId           string
	Name            string
	CidrBlock       string
	IsDefault       bool
	EnableMulticast bool
	DnsServers      []string
	DomainName      string
	Tags            []cloudapi.Tag
	CreatedTime     time.Time
}

// Subnet is one subnet of a VPC, in one zone. UsedIPs counts the leased addresses and
// NextIP is where the next-free search starts (both maintained by AllocateIP/ReleaseIP).
type Subnet struct {
	SubnetId     string
	VpcId        string
	Name         string
	CidrBlock    string
	Zone         string
	RouteTableId string
	IsDefault    bool
	Tags         []cloudapi.Tag
	CreatedTime  time.Time
	UsedIPs      int
	NextIP       uint32
}

// RouteTable is one route table with its routes, in creation order.
type RouteTable struct {
	RouteTableId string
	VpcId        string
	Name         string
	Main         bool
	Routes       []Route
	Tags         []cloudapi.Tag
	CreatedTime  time.Time
}

// Route is one entry of a RouteTable. RouteId is unique in the region; RouteItemId is
// the newer string form of the same identity.
type Route struct {
	RouteId              uint64
	RouteItemId          string
	DestinationCidrBlock string
	GatewayType          string
	GatewayId            string
	Description          string
	Enabled              bool
	CreatedTime          time.Time
}

// lease marks one private address of a subnet as taken.
type lease struct {
	SubnetId string
	IP       string
}

// counter is a region-wide sequence (route IDs).
type counter struct {
	N uint64
}

const (
	vpcsName    = "vpc.vpcs"
	subnetsName = "vpc.subnets"
	tablesName  = "vpc.route-tables"
	leasesName  = "vpc.ip-leases"
	countersNm  = "vpc.counters"
)

// A Table handle is only the table's name, so handles registered once here address the
// same table in any store whose module registered it (New does, for the world's store).
var (
	handles     = store.New()
	vpcsT       = store.Register[VPC](handles, vpcsName)
	subnetsT    = store.Register[Subnet](handles, subnetsName)
	routeTables = store.Register[RouteTable](handles, tablesName)
	leasesT     = store.Register[lease](handles, leasesName)
	countersT   = store.Register[counter](handles, countersNm)
)

// VPCs registers (idempotently) the VPC module's tables in s and returns the VPC table.
// Registering them all lets a module use AllocateIP even in a world built without the
// VPC module.
func VPCs(s *store.Store) *store.Table[VPC] {
	registerAll(s)
	return store.Register[VPC](s, vpcsName)
}

// Subnets registers (idempotently) the VPC module's tables in s and returns the subnet
// table.
func Subnets(s *store.Store) *store.Table[Subnet] {
	registerAll(s)
	return store.Register[Subnet](s, subnetsName)
}

// RouteTables registers (idempotently) the VPC module's tables in s and returns the
// route table table.
func RouteTables(s *store.Store) *store.Table[RouteTable] {
	registerAll(s)
	return store.Register[RouteTable](s, tablesName)
}

func registerAll(s *store.Store) {
	store.Register[VPC](s, vpcsName)
	store.Register[Subnet](s, subnetsName)
	store.Register[RouteTable](s, tablesName)
	store.Register[lease](s, leasesName)
	store.Register[counter](s, countersNm)
}

// nextRouteID hands out region-unique route IDs.
func nextRouteID(tx *store.Tx) (uint64, error) {
	c := counter{}
	if old, ok := countersT.Get(tx, "route"); ok {
		c = *old
	}
	c.N++
	return c.N, countersT.Put(tx, "route", &c)
}
