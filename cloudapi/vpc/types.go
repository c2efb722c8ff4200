package vpc

import (
	"strconv"

	"github.com/stratus-cloud/stratus/cloudapi"
)

// Gateway types of a route's next hop. Stratus routes pod CIDRs to nodes with
// GatewayTypeNormalCVM and the node's private IP as GatewayId.
const (
	GatewayTypeNormalCVM      = "NORMAL_CVM"
	GatewayTypeVPN            = "VPN"
	GatewayTypeDirectConnect  = "DIRECTCONNECT"
	GatewayTypePeerConnection = "PEERCONNECTION"
	GatewayTypeSSLVPN         = "SSLVPN"
	GatewayTypeNAT            = "NAT"
	GatewayTypeHaVip          = "HAVIP"
	GatewayTypeEIP            = "EIP"
	GatewayTypeLocalGateway   = "LOCAL_GATEWAY"
	GatewayTypeCCN            = "CCN"
	GatewayTypeLocal          = "LOCAL"
)

// Route types as DescribeRouteTables reports them.
const (
	RouteTypeUser = "USER"
	RouteTypeNetd = "NETD"
	RouteTypeCCN  = "CCN"
)

// Count formats n as the decimal string the VPC service's list calls carry in Offset
// and Limit (the official SDK declares both *string).
func Count(n int64) *string { return cloudapi.String(strconv.FormatInt(n, 10)) }

// Vpc is one VPC.
type Vpc struct {
	VpcName         string         `json:"VpcName"`
	VpcId           string         `json:"VpcId"`
	CidrBlock       string         `json:"CidrBlock"`
	IsDefault       bool           `json:"IsDefault"`
	EnableMulticast bool           `json:"EnableMulticast"`
	CreatedTime     string         `json:"CreatedTime"`
	DnsServerSet    []string       `json:"DnsServerSet"`
	DomainName      string         `json:"DomainName"`
	DhcpOptionsId   string         `json:"DhcpOptionsId"`
	EnableDhcp      bool           `json:"EnableDhcp"`
	Ipv6CidrBlock   string         `json:"Ipv6CidrBlock"`
	TagSet          []cloudapi.Tag `json:"TagSet"`
}

// CreateVpcRequest creates a VPC with a private IPv4 CIDR (10/8, 172.16/12 or 192.168/16,
// prefix /12../28).
type CreateVpcRequest struct {
	VpcName         string         `json:"VpcName,omitempty"`
	CidrBlock       string         `json:"CidrBlock,omitempty"`
	EnableMulticast string         `json:"EnableMulticast,omitempty"` // "true" / "false"
	DnsServers      []string       `json:"DnsServers,omitempty"`
	DomainName      string         `json:"DomainName,omitempty"`
	Tags            []cloudapi.Tag `json:"Tags,omitempty"`
}

// CreateVpcResponse returns the new VPC.
type CreateVpcResponse struct {
	Vpc       Vpc    `json:"Vpc"`
	RequestId string `json:"RequestId"`
}

// DescribeVpcsRequest selects VPCs by VpcIds or Filters (vpc-id, vpc-name, cidr-block,
// is-default, tag-key, tag:<key>).
type DescribeVpcsRequest struct {
	VpcIds  []string          `json:"VpcIds,omitempty"`
	Filters []cloudapi.Filter `json:"Filters,omitempty"`
	Offset  *string           `json:"Offset,omitempty"`
	Limit   *string           `json:"Limit,omitempty"`
}

// DescribeVpcsResponse is one page of VPCs.
type DescribeVpcsResponse struct {
	TotalCount int64  `json:"TotalCount"`
	VpcSet     []Vpc  `json:"VpcSet"`
	RequestId  string `json:"RequestId"`
}

// Subnet is one subnet.
type Subnet struct {
	VpcId                   string         `json:"VpcId"`
	SubnetId                string         `json:"SubnetId"`
	SubnetName              string         `json:"SubnetName"`
	CidrBlock               string         `json:"CidrBlock"`
	IsDefault               bool           `json:"IsDefault"`
	EnableBroadcast         bool           `json:"EnableBroadcast"`
	Zone                    string         `json:"Zone"`
	RouteTableId            string         `json:"RouteTableId"`
	CreatedTime             string         `json:"CreatedTime"`
	AvailableIpAddressCount int64          `json:"AvailableIpAddressCount"`
	Ipv6CidrBlock           string         `json:"Ipv6CidrBlock"`
	NetworkAclId            string         `json:"NetworkAclId"`
	IsRemoteVpcSnat         bool           `json:"IsRemoteVpcSnat"`
	TotalIpAddressCount     int64          `json:"TotalIpAddressCount"`
	TagSet                  []cloudapi.Tag `json:"TagSet"`
}

// CreateSubnetRequest creates a subnet inside the VPC's CIDR, overlapping no other subnet.
type CreateSubnetRequest struct {
	VpcId      string         `json:"VpcId,omitempty"`
	SubnetName string         `json:"SubnetName,omitempty"`
	CidrBlock  string         `json:"CidrBlock,omitempty"`
	Zone       string         `json:"Zone,omitempty"`
	Tags       []cloudapi.Tag `json:"Tags,omitempty"`
}

// CreateSubnetResponse returns the new subnet.
type CreateSubnetResponse struct {
	Subnet    Subnet `json:"Subnet"`
	RequestId string `json:"RequestId"`
}

// DescribeSubnetsRequest selects subnets by SubnetIds or Filters (subnet-id, vpc-id,
// subnet-name, cidr-block, zone, is-default, route-table-id, tag-key, tag:<key>).
type DescribeSubnetsRequest struct {
	SubnetIds []string          `json:"SubnetIds,omitempty"`
	Filters   []cloudapi.Filter `json:"Filters,omitempty"`
	Offset    *string           `json:"Offset,omitempty"`
	Limit     *string           `json:"Limit,omitempty"`
}

// DescribeSubnetsResponse is one page of subnets.
type DescribeSubnetsResponse struct {
	TotalCount int64    `json:"TotalCount"`
	SubnetSet  []Subnet `json:"SubnetSet"`
	RequestId  string   `json:"RequestId"`
}

// Route is one entry of a route table. In CreateRoutes the caller sets
// DestinationCidrBlock, GatewayType, GatewayId and RouteDescription; in DeleteRoutes it
// names a route by RouteId, RouteItemId, or DestinationCidrBlock (+ GatewayId).
type Route struct {
	DestinationCidrBlock     string  `json:"DestinationCidrBlock,omitempty"`
	GatewayType              string  `json:"GatewayType,omitempty"`
	GatewayId                string  `json:"GatewayId,omitempty"`
	RouteId                  *uint64 `json:"RouteId,omitempty"`
	RouteDescription         string  `json:"RouteDescription,omitempty"`
	Enabled                  *bool   `json:"Enabled,omitempty"`
	RouteType                string  `json:"RouteType,omitempty"`
	RouteTableId             string  `json:"RouteTableId,omitempty"`
	DestinationIpv6CidrBlock string  `json:"DestinationIpv6CidrBlock,omitempty"`
	RouteItemId              string  `json:"RouteItemId,omitempty"`
	PublishedToVbc           *bool   `json:"PublishedToVbc,omitempty"` // published to a cloud connect network (CCN)
	CreatedTime              string  `json:"CreatedTime,omitempty"`
}

// ID returns the route's RouteId, 0 when absent.
func (r *Route) ID() uint64 {
	if r.RouteId == nil {
		return 0
	}
	return *r.RouteId
}

// RouteTableAssociation binds a subnet to a route table.
type RouteTableAssociation struct {
	SubnetId     string `json:"SubnetId"`
	RouteTableId string `json:"RouteTableId"`
}

// RouteTable is one route table with its routes.
type RouteTable struct {
	VpcId          string                  `json:"VpcId"`
	RouteTableId   string                  `json:"RouteTableId"`
	RouteTableName string                  `json:"RouteTableName"`
	AssociationSet []RouteTableAssociation `json:"AssociationSet"`
	RouteSet       []Route                 `json:"RouteSet"`
	Main           bool                    `json:"Main"`
	CreatedTime    string                  `json:"CreatedTime"`
	TagSet         []cloudapi.Tag          `json:"TagSet"`
}

// CreateRouteTableRequest creates a route table in a VPC.
type CreateRouteTableRequest struct {
	VpcId          string         `json:"VpcId,omitempty"`
	RouteTableName string         `json:"RouteTableName,omitempty"`
	Tags           []cloudapi.Tag `json:"Tags,omitempty"`
}

// CreateRouteTableResponse returns the new route table.
type CreateRouteTableResponse struct {
	RouteTable RouteTable `json:"RouteTable"`
	RequestId  string     `json:"RequestId"`
}

// DescribeRouteTablesRequest selects route tables by RouteTableIds or Filters
// (route-table-id, route-table-name, vpc-id, association.main, tag-key, tag:<key>).
type DescribeRouteTablesRequest struct {
	Filters       []cloudapi.Filter `json:"Filters,omitempty"`
	RouteTableIds []string          `json:"RouteTableIds,omitempty"`
	Offset        *string           `json:"Offset,omitempty"`
	Limit         *string           `json:"Limit,omitempty"`
}

// DescribeRouteTablesResponse is one page of route tables.
type DescribeRouteTablesResponse struct {
	TotalCount    int64        `json:"TotalCount"`
	RouteTableSet []RouteTable `json:"RouteTableSet"`
	RequestId     string       `json:"RequestId"`
}

// CreateRoutesRequest adds Routes to RouteTableId.
type CreateRoutesRequest struct {
	RouteTableId string  `json:"RouteTableId,omitempty"`
	Routes       []Route `json:"Routes,omitempty"`
}

// CreateRoutesResponse returns the route table after the change, with the new routes'
// RouteIds.
type CreateRoutesResponse struct {
	TotalCount    int64        `json:"TotalCount"`
	RouteTableSet []RouteTable `json:"RouteTableSet"`
	RequestId     string       `json:"RequestId"`
}

// DeleteRoutesRequest removes Routes from RouteTableId.
type DeleteRoutesRequest struct {
	RouteTableId string  `json:"RouteTableId,omitempty"`
	Routes       []Route `json:"Routes,omitempty"`
}

// DeleteRoutesResponse lists the removed routes.
type DeleteRoutesResponse struct {
	RouteSet  []Route `json:"RouteSet"`
	RequestId string  `json:"RequestId"`
}
