package clb

import "github.com/stratus-cloud/stratus/cloudapi"

// Load balancer network types.
const (
	TypeOpen     = "OPEN"     // public VIP
	TypeInternal = "INTERNAL" // VIP from a subnet of the VPC
)

// Listener protocols and schedulers (layer 4 only).
const (
	ProtocolTCP = "TCP"
	ProtocolUDP = "UDP"

	SchedulerWRR       = "WRR"
	SchedulerLeastConn = "LEAST_CONN"
)

// Health check types (HealthCheck.CheckType).
const (
	CheckTCP    = "TCP"
	CheckHTTP   = "HTTP"
	CheckCustom = "CUSTOM"
)

// Load balancer Status values.
const (
	StatusCreating uint64 = 0
	StatusNormal   uint64 = 1
)

// DescribeTaskStatus Status values.
const (
	TaskSucceeded int64 = 0
	TaskFailed    int64 = 1
	TaskRunning   int64 = 2
)

// TagInfo is a CLB tag. CLB spells tags TagKey/TagValue, unlike cvm's Key/Value.
type TagInfo struct {
	TagKey   string `json:"TagKey"`
	TagValue string `json:"TagValue"`
}

// ZoneInfo names a zone in LoadBalancer.MasterZone.
type ZoneInfo struct {
	ZoneId     uint64 `json:"ZoneId"`
	Zone       string `json:"Zone"`
	ZoneName   string `json:"ZoneName,omitempty"`
	ZoneRegion string `json:"ZoneRegion,omitempty"`
	LocalZone  bool   `json:"LocalZone"`
}

// CreateLoadBalancerRequest creates one (or Number) load balancers.
type CreateLoadBalancerRequest struct {
	LoadBalancerType string    `json:"LoadBalancerType,omitempty"` // OPEN | INTERNAL
	Forward          *int64    `json:"Forward,omitempty"`          // 1 (the only value)
	LoadBalancerName string    `json:"LoadBalancerName,omitempty"`
	VpcId            string    `json:"VpcId,omitempty"`
	SubnetId         string    `json:"SubnetId,omitempty"` // required for INTERNAL
	ProjectId        *int64    `json:"ProjectId,omitempty"`
	AddressIPVersion string    `json:"AddressIPVersion,omitempty"` // IPV4
	Number           *uint64   `json:"Number,omitempty"`
	MasterZoneId     string    `json:"MasterZoneId,omitempty"`
	ZoneId           string    `json:"ZoneId,omitempty"`
	VipIsp           string    `json:"VipIsp,omitempty"`
	Tags             []TagInfo `json:"Tags,omitempty"`
	Vip              string    `json:"Vip,omitempty"` // a wanted VIP (INTERNAL: inside the subnet)
	ClientToken      string    `json:"ClientToken,omitempty"`
}

// ClientTokenField makes CreateLoadBalancer idempotent across retries.
func (r *CreateLoadBalancerRequest) ClientTokenField() *string { return &r.ClientToken }

// CreateLoadBalancerResponse names the new load balancers. RequestId is also the task id
// to poll with DescribeTaskStatus.
type CreateLoadBalancerResponse struct {
	LoadBalancerIds []string `json:"LoadBalancerIds"`
	RequestId       string   `json:"RequestId"`
}

// DescribeLoadBalancersRequest lists load balancers. Filters: tag-key, tag:<key>,
// master-zone-id, vip-isp.
type DescribeLoadBalancersRequest struct {
	LoadBalancerIds   []string          `json:"LoadBalancerIds,omitempty"`
	LoadBalancerType  string            `json:"LoadBalancerType,omitempty"`
	Forward           *int64            `json:"Forward,omitempty"`
	LoadBalancerName  string            `json:"LoadBalancerName,omitempty"`
	LoadBalancerVips  []string          `json:"LoadBalancerVips,omitempty"`
	BackendPublicIps  []string          `json:"BackendPublicIps,omitempty"`
	BackendPrivateIps []string          `json:"BackendPrivateIps,omitempty"`
	Offset            *int64            `json:"Offset,omitempty"`
	Limit             *int64            `json:"Limit,omitempty"`
	OrderBy           string            `json:"OrderBy,omitempty"`   // LoadBalancerName | CreateTime | LoadBalancerType
	OrderType         *int64            `json:"OrderType,omitempty"` // 1 descending (default), 0 ascending
	SearchKey         string            `json:"SearchKey,omitempty"`
	ProjectId         *int64            `json:"ProjectId,omitempty"`
	WithRs            *int64            `json:"WithRs,omitempty"` // 0 without targets, 1 with, -1 all
	VpcId             string            `json:"VpcId,omitempty"`
	MasterZone        string            `json:"MasterZone,omitempty"`
	SecurityGroup     string            `json:"SecurityGroup,omitempty"` // bound to this security group
	Filters           []cloudapi.Filter `json:"Filters,omitempty"`
}

// LoadBalancer is one load balancer as DescribeLoadBalancers shows it.
type LoadBalancer struct {
	LoadBalancerId   string    `json:"LoadBalancerId"`
	LoadBalancerName string    `json:"LoadBalancerName"`
	LoadBalancerType string    `json:"LoadBalancerType"`
	Forward          uint64    `json:"Forward"`
	Domain           string    `json:"Domain,omitempty"`
	LoadBalancerVips []string  `json:"LoadBalancerVips"`
	Status           uint64    `json:"Status"` // 0 creating, 1 normal
	CreateTime       string    `json:"CreateTime"`
	StatusTime       string    `json:"StatusTime"`
	ProjectId        uint64    `json:"ProjectId"`
	VpcId            string    `json:"VpcId"`
	SubnetId         string    `json:"SubnetId,omitempty"`
	Tags             []TagInfo `json:"Tags"`
	AddressIPVersion string    `json:"AddressIPVersion"`
	VipIsp           string    `json:"VipIsp,omitempty"`
	MasterZone       *ZoneInfo `json:"MasterZone,omitempty"`
	Zones            []string  `json:"Zones,omitempty"`
	// SecureGroups are the bound security groups, in priority order (OPEN only).
	SecureGroups []string `json:"SecureGroups"`
}

// DescribeLoadBalancersResponse is one page; TotalCount counts every match.
type DescribeLoadBalancersResponse struct {
	TotalCount      uint64         `json:"TotalCount"`
	LoadBalancerSet []LoadBalancer `json:"LoadBalancerSet"`
	RequestId       string         `json:"RequestId"`
}

// DeleteLoadBalancerRequest deletes load balancers with their listeners and targets.
type DeleteLoadBalancerRequest struct {
	LoadBalancerIds []string `json:"LoadBalancerIds"`
}

// DeleteLoadBalancerResponse carries the task id (RequestId).
type DeleteLoadBalancerResponse struct {
	RequestId string `json:"RequestId"`
}

// HealthCheck configures a layer-4 listener's health checks. Absent fields take the
// API's defaults (on, timeout 2s, interval 5s, thresholds 3/3, TCP connect).
type HealthCheck struct {
	HealthSwitch    *int64  `json:"HealthSwitch,omitempty"` // 1 on, 0 off
	TimeOut         *int64  `json:"TimeOut,omitempty"`      // 2..60 s, below IntervalTime
	IntervalTime    *int64  `json:"IntervalTime,omitempty"` // 5..300 s
	HealthNum       *int64  `json:"HealthNum,omitempty"`    // 2..10
	UnHealthNum     *int64  `json:"UnHealthNum,omitempty"`  // 2..10
	HttpCode        *int64  `json:"HttpCode,omitempty"`     // bitmask 1=1xx 2=2xx 4=3xx 8=4xx 16=5xx
	HttpCheckPath   *string `json:"HttpCheckPath,omitempty"`
	HttpCheckDomain *string `json:"HttpCheckDomain,omitempty"`
	HttpCheckMethod *string `json:"HttpCheckMethod,omitempty"` // HEAD | GET
	CheckPort       *int64  `json:"CheckPort,omitempty"`
	ContextType     *string `json:"ContextType,omitempty"` // TEXT | HEX (CUSTOM)
	SendContext     *string `json:"SendContext,omitempty"`
	RecvContext     *string `json:"RecvContext,omitempty"`
	CheckType       *string `json:"CheckType,omitempty"`   // TCP | HTTP | CUSTOM
	HttpVersion     *string `json:"HttpVersion,omitempty"` // HTTP/1.0 | HTTP/1.1
}

// CreateListenerRequest creates one listener per port.
type CreateListenerRequest struct {
	LoadBalancerId      string       `json:"LoadBalancerId"`
	Ports               []int64      `json:"Ports"`
	Protocol            string       `json:"Protocol"` // TCP | UDP
	ListenerNames       []string     `json:"ListenerNames,omitempty"`
	HealthCheck         *HealthCheck `json:"HealthCheck,omitempty"`
	SessionExpireTime   *int64       `json:"SessionExpireTime,omitempty"` // 0 off, 30..3600 s
	Scheduler           string       `json:"Scheduler,omitempty"`         // WRR | LEAST_CONN
	TargetType          string       `json:"TargetType,omitempty"`        // NODE
	SessionType         string       `json:"SessionType,omitempty"`       // NORMAL
	EndPort             *uint64      `json:"EndPort,omitempty"`
	DeregisterTargetRst *bool        `json:"DeregisterTargetRst,omitempty"`
}

// CreateListenerResponse names the new listeners, in Ports order.
type CreateListenerResponse struct {
	ListenerIds []string `json:"ListenerIds"`
	RequestId   string   `json:"RequestId"`
}

// DescribeListenersRequest lists the listeners of one load balancer.
type DescribeListenersRequest struct {
	LoadBalancerId string   `json:"LoadBalancerId"`
	ListenerIds    []string `json:"ListenerIds,omitempty"`
	Protocol       string   `json:"Protocol,omitempty"`
	Port           *int64   `json:"Port,omitempty"`
}

// Listener is one listener as DescribeListeners shows it.
type Listener struct {
	ListenerId          string       `json:"ListenerId"`
	Protocol            string       `json:"Protocol"`
	Port                int64        `json:"Port"`
	HealthCheck         *HealthCheck `json:"HealthCheck,omitempty"`
	Scheduler           string       `json:"Scheduler"`
	SessionExpireTime   int64        `json:"SessionExpireTime"`
	ListenerName        string       `json:"ListenerName"`
	CreateTime          string       `json:"CreateTime"`
	TargetType          string       `json:"TargetType"`
	SessionType         string       `json:"SessionType"`
	DeregisterTargetRst bool         `json:"DeregisterTargetRst"`
}

// DescribeListenersResponse lists the matching listeners (no pagination in the API).
type DescribeListenersResponse struct {
	Listeners  []Listener `json:"Listeners"`
	TotalCount uint64     `json:"TotalCount"`
	RequestId  string     `json:"RequestId"`
}

// ModifyListenerRequest changes a listener's name, health check, scheduler or session
// persistence; absent fields keep their value.
type ModifyListenerRequest struct {
	LoadBalancerId      string       `json:"LoadBalancerId"`
	ListenerId          string       `json:"ListenerId"`
	ListenerName        *string      `json:"ListenerName,omitempty"`
	SessionExpireTime   *int64       `json:"SessionExpireTime,omitempty"`
	HealthCheck         *HealthCheck `json:"HealthCheck,omitempty"`
	Scheduler           *string      `json:"Scheduler,omitempty"`
	DeregisterTargetRst *bool        `json:"DeregisterTargetRst,omitempty"`
}

// ModifyListenerResponse carries the task id.
type ModifyListenerResponse struct {
	RequestId string `json:"RequestId"`
}

// DeleteListenerRequest deletes one listener and its targets.
type DeleteListenerRequest struct {
	LoadBalancerId string `json:"LoadBalancerId"`
	ListenerId     string `json:"ListenerId"`
}

// DeleteListenerResponse carries the task id.
type DeleteListenerResponse struct {
	RequestId string `json:"RequestId"`
}

// Target is a backend of a layer-4 listener: an instance's primary IP (InstanceId) or an
// IP (EniIp), exactly one of the two, and a port.
type Target struct {
	Port       *int64  `json:"Port,omitempty"`
	Type       *string `json:"Type,omitempty"` // ignored as input
	InstanceId *string `json:"InstanceId,omitempty"`
	Weight     *int64  `json:"Weight,omitempty"` // 0..100, default 10
	EniIp      *string `json:"EniIp,omitempty"`
}

// RegisterTargetsRequest binds up to 20 targets to a listener.
type RegisterTargetsRequest struct {
	LoadBalancerId string   `json:"LoadBalancerId"`
	ListenerId     string   `json:"ListenerId"`
	Targets        []Target `json:"Targets"`
	LocationId     string   `json:"LocationId,omitempty"` // layer 7 only; refused
}

// RegisterTargetsResponse carries the task id.
type RegisterTargetsResponse struct {
	RequestId string `json:"RequestId"`
}

// DeregisterTargetsRequest unbinds up to 20 targets from a listener.
type DeregisterTargetsRequest struct {
	LoadBalancerId string   `json:"LoadBalancerId"`
	ListenerId     string   `json:"ListenerId"`
	Targets        []Target `json:"Targets"`
	LocationId     string   `json:"LocationId,omitempty"`
}

// DeregisterTargetsResponse carries the task id.
type DeregisterTargetsResponse struct {
	RequestId string `json:"RequestId"`
}

// BatchTarget is a target of one listener of the load balancer, for the batch actions.
type BatchTarget struct {
	ListenerId *string `json:"ListenerId,omitempty"`
	Port       *int64  `json:"Port,omitempty"`
	InstanceId *string `json:"InstanceId,omitempty"`
	EniIp      *string `json:"EniIp,omitempty"`
	Weight     *int64  `json:"Weight,omitempty"`
	LocationId *string `json:"LocationId,omitempty"`
}

// BatchRegisterTargetsRequest binds up to 500 targets across listeners of one load balancer.
type BatchRegisterTargetsRequest struct {
	LoadBalancerId string        `json:"LoadBalancerId"`
	Targets        []BatchTarget `json:"Targets"`
}

// BatchRegisterTargetsResponse lists the listeners whose binding failed (empty: none).
type BatchRegisterTargetsResponse struct {
	FailListenerIdSet []string `json:"FailListenerIdSet"`
	RequestId         string   `json:"RequestId"`
}

// BatchDeregisterTargetsRequest unbinds up to 500 targets across listeners.
type BatchDeregisterTargetsRequest struct {
	LoadBalancerId string        `json:"LoadBalancerId"`
	Targets        []BatchTarget `json:"Targets"`
}

// BatchDeregisterTargetsResponse lists the listeners whose unbinding failed.
type BatchDeregisterTargetsResponse struct {
	FailListenerIdSet []string `json:"FailListenerIdSet"`
	RequestId         string   `json:"RequestId"`
}

// DescribeTargetsRequest lists the targets of a load balancer's listeners.
type DescribeTargetsRequest struct {
	LoadBalancerId string   `json:"LoadBalancerId"`
	ListenerIds    []string `json:"ListenerIds,omitempty"`
	Protocol       string   `json:"Protocol,omitempty"`
	Port           *int64   `json:"Port,omitempty"`
}

// Backend is one bound target as DescribeTargets shows it.
type Backend struct {
	Type               string   `json:"Type"` // CVM | ENI
	InstanceId         string   `json:"InstanceId,omitempty"`
	Port               int64    `json:"Port"`
	Weight             int64    `json:"Weight"`
	PublicIpAddresses  []string `json:"PublicIpAddresses"`
	PrivateIpAddresses []string `json:"PrivateIpAddresses"`
	InstanceName       string   `json:"InstanceName,omitempty"`
	RegisteredTime     string   `json:"RegisteredTime"`
	EniId              string   `json:"EniId,omitempty"`
}

// ListenerBackend is one listener with its targets.
type ListenerBackend struct {
	ListenerId string    `json:"ListenerId"`
	Protocol   string    `json:"Protocol"`
	Port       int64     `json:"Port"`
	Targets    []Backend `json:"Targets"`
}

// DescribeTargetsResponse lists the listeners with their targets.
type DescribeTargetsResponse struct {
	Listeners []ListenerBackend `json:"Listeners"`
	RequestId string            `json:"RequestId"`
}

// DescribeTaskStatusRequest asks for the state of the task a write started; TaskId is
// that write's RequestId.
type DescribeTaskStatusRequest struct {
	TaskId string `json:"TaskId"`
}

// DescribeTaskStatusResponse: Status 0 succeeded, 1 failed, 2 running.
type DescribeTaskStatusResponse struct {
	Status    int64  `json:"Status"`
	RequestId string `json:"RequestId"`
}

// SetLoadBalancerSecurityGroupsRequest binds exactly SecurityGroups (set semantics, in
// priority order, at most 50) to a public load balancer; empty unbinds all.
type SetLoadBalancerSecurityGroupsRequest struct {
	LoadBalancerId string   `json:"LoadBalancerId"`
	SecurityGroups []string `json:"SecurityGroups,omitempty"` // omitted: unbind all
}

// SetLoadBalancerSecurityGroupsResponse carries the task id.
type SetLoadBalancerSecurityGroupsResponse struct {
	RequestId string `json:"RequestId"`
}

// DeleteLoadBalancerListenersRequest deletes several listeners of one load balancer (all
// of them when ListenerIds is empty) with their targets.
type DeleteLoadBalancerListenersRequest struct {
	LoadBalancerId string   `json:"LoadBalancerId"`
	ListenerIds    []string `json:"ListenerIds,omitempty"`
}

// DeleteLoadBalancerListenersResponse carries the task id.
type DeleteLoadBalancerListenersResponse struct {
	RequestId string `json:"RequestId"`
}

// RsWeightRule sets the weight of Targets on one listener: each target's own Weight, or
// the rule's Weight for targets without one.
type RsWeightRule struct {
	ListenerId string   `json:"ListenerId"`
	Targets    []Target `json:"Targets"`
	LocationId string   `json:"LocationId,omitempty"` // layer 7 only; refused
	Weight     *int64   `json:"Weight,omitempty"`
}

// BatchModifyTargetWeightRequest changes target weights across listeners of one load
// balancer, at most 500 targets per call.
type BatchModifyTargetWeightRequest struct {
	LoadBalancerId string         `json:"LoadBalancerId"`
	ModifyList     []RsWeightRule `json:"ModifyList"`
}

// BatchModifyTargetWeightResponse carries the task id.
type BatchModifyTargetWeightResponse struct {
	RequestId string `json:"RequestId"`
}
