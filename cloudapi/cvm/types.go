package cvm

import "github.com/stratus-cloud/stratus/cloudapi"

// Instance states, as DescribeInstances reports them in InstanceState.
const (
	StatePending      = "PENDING"
	StateLaunchFailed = "LAUNCH_FAILED"
	StateRunning      = "RUNNING"
	StateStopping     = "STOPPING"
	StateStopped      = "STOPPED"
	StateStarting     = "STARTING"
	StateRebooting    = "REBOOTING"
	StateShutdown     = "SHUTDOWN"
	StateTerminating  = "TERMINATING"
)

// Placement says where an instance lives.
type Placement struct {
	Zone      string `json:"Zone,omitempty"`
	ProjectId *int64 `json:"ProjectId,omitempty"`
}

// VirtualPrivateCloud is an instance's network: its VPC, subnet and private addresses.
type VirtualPrivateCloud struct {
	VpcId              string   `json:"VpcId,omitempty"`
	SubnetId           string   `json:"SubnetId,omitempty"`
	AsVpcGateway       *bool    `json:"AsVpcGateway,omitempty"`
	PrivateIpAddresses []string `json:"PrivateIpAddresses,omitempty"`
}

// InternetAccessible configures public network access.
type InternetAccessible struct {
	InternetChargeType      string `json:"InternetChargeType,omitempty"`
	InternetMaxBandwidthOut *int64 `json:"InternetMaxBandwidthOut,omitempty"`
	PublicIpAssigned        *bool  `json:"PublicIpAssigned,omitempty"`
	BandwidthPackageId      string `json:"BandwidthPackageId,omitempty"`
}

// SystemDisk is the boot disk.
type SystemDisk struct {
	DiskType string `json:"DiskType,omitempty"`
	DiskId   string `json:"DiskId,omitempty"`
	DiskSize *int64 `json:"DiskSize,omitempty"`
}

// DataDisk is a disk created with the instance.
type DataDisk struct {
	DiskSize           *int64 `json:"DiskSize,omitempty"`
	DiskType           string `json:"DiskType,omitempty"`
	DiskId             string `json:"DiskId,omitempty"`
	DeleteWithInstance *bool  `json:"DeleteWithInstance,omitempty"`
	SnapshotId         string `json:"SnapshotId,omitempty"`
	Encrypt            *bool  `json:"Encrypt,omitempty"`
}

// LoginSettings sets the login credentials of a new instance. fakecloud accepts and
// discards them; they are never stored or logged.
type LoginSettings struct {
	Password       string   `json:"Password,omitempty"`
	KeyIds         []string `json:"KeyIds,omitempty"`
	KeepImageLogin string   `json:"KeepImageLogin,omitempty"`
}

// ServiceEnabled switches one enhanced service on or off.
type ServiceEnabled struct {
	Enabled *bool `json:"Enabled,omitempty"`
}

// EnhancedService selects the security and monitoring agents.
type EnhancedService struct {
	SecurityService *ServiceEnabled `json:"SecurityService,omitempty"`
	MonitorService  *ServiceEnabled `json:"MonitorService,omitempty"`
}

// TagSpecification tags the resources of one type that a create call makes.
type TagSpecification struct {
	ResourceType string         `json:"ResourceType,omitempty"` // "instance"
	Tags         []cloudapi.Tag `json:"Tags,omitempty"`
}

// InstanceChargePrepaid is the term of a PREPAID instance.
type InstanceChargePrepaid struct {
	Period    *int64 `json:"Period,omitempty"`    // months: 1-12, 24, 36, 48, 60
	RenewFlag string `json:"RenewFlag,omitempty"` // NOTIFY_AND_AUTO_RENEW, NOTIFY_AND_MANUAL_RENEW, DISABLE_NOTIFY_AND_MANUAL_RENEW
}

// RunInstancesRequest creates instances.
type RunInstancesRequest struct {
	InstanceChargeType    string                 `json:"InstanceChargeType,omitempty"`
	InstanceChargePrepaid *InstanceChargePrepaid `json:"InstanceChargePrepaid,omitempty"`
	Placement             *Placement             `json:"Placement,omitempty"`
	InstanceType          string                 `json:"InstanceType,omitempty"`
	ImageId               string                 `json:"ImageId,omitempty"`
	SystemDisk            *SystemDisk            `json:"SystemDisk,omitempty"`
	DataDisks             []DataDisk             `json:"DataDisks,omitempty"`
	VirtualPrivateCloud   *VirtualPrivateCloud   `json:"VirtualPrivateCloud,omitempty"`
	InternetAccessible    *InternetAccessible    `json:"InternetAccessible,omitempty"`
	InstanceCount         *int64                 `json:"InstanceCount,omitempty"`
	InstanceName          string                 `json:"InstanceName,omitempty"`
	LoginSettings         *LoginSettings         `json:"LoginSettings,omitempty"`
	SecurityGroupIds      []string               `json:"SecurityGroupIds,omitempty"`
	EnhancedService       *EnhancedService       `json:"EnhancedService,omitempty"`
	ClientToken           string                 `json:"ClientToken,omitempty"`
	HostName              string                 `json:"HostName,omitempty"`
	TagSpecification      []TagSpecification     `json:"TagSpecification,omitempty"`
	UserData              string                 `json:"UserData,omitempty"`
	DryRun                *bool                  `json:"DryRun,omitempty"`
}

// ClientTokenField makes RunInstances idempotent across retries (cloudapi.Idempotent).
func (r *RunInstancesRequest) ClientTokenField() *string { return &r.ClientToken }

// RunInstancesResponse lists the new instances' IDs.
type RunInstancesResponse struct {
	InstanceIdSet []string `json:"InstanceIdSet"`
	RequestId     string   `json:"RequestId"`
}

// DescribeInstancesRequest selects instances by InstanceIds or Filters (zone, vpc-id,
// instance-id, instance-name, instance-state, private-ip-address, tag:<key>, tag-key).
type DescribeInstancesRequest struct {
	InstanceIds []string          `json:"InstanceIds,omitempty"`
	Filters     []cloudapi.Filter `json:"Filters,omitempty"`
	Offset      *int64            `json:"Offset,omitempty"`
	Limit       *int64            `json:"Limit,omitempty"`
}

// Instance is one instance as DescribeInstances reports it.
type Instance struct {
	Placement                Placement           `json:"Placement"`
	InstanceId               string              `json:"InstanceId"`
	InstanceType             string              `json:"InstanceType"`
	CPU                      int64               `json:"CPU"`
	Memory                   int64               `json:"Memory"`
	RestrictState            string              `json:"RestrictState"`
	InstanceName             string              `json:"InstanceName"`
	InstanceChargeType       string              `json:"InstanceChargeType"`
	SystemDisk               *SystemDisk         `json:"SystemDisk,omitempty"`
	DataDisks                []DataDisk          `json:"DataDisks,omitempty"`
	PrivateIpAddresses       []string            `json:"PrivateIpAddresses"`
	PublicIpAddresses        []string            `json:"PublicIpAddresses"`
	InternetAccessible       *InternetAccessible `json:"InternetAccessible,omitempty"`
	VirtualPrivateCloud      VirtualPrivateCloud `json:"VirtualPrivateCloud"`
	ImageId                  string              `json:"ImageId"`
	RenewFlag                string              `json:"RenewFlag,omitempty"`
	CreatedTime              string              `json:"CreatedTime"`
	ExpiredTime              string              `json:"ExpiredTime,omitempty"`
	OsName                   string              `json:"OsName"`
	SecurityGroupIds         []string            `json:"SecurityGroupIds"`
	InstanceState            string              `json:"InstanceState"`
	Tags                     []cloudapi.Tag      `json:"Tags"`
	StopChargingMode         string              `json:"StopChargingMode"`
	Uuid                     string              `json:"Uuid"`
	LatestOperation          string              `json:"LatestOperation,omitempty"`
	LatestOperationState     string              `json:"LatestOperationState,omitempty"`
	LatestOperationRequestId string              `json:"LatestOperationRequestId,omitempty"`
}

// DescribeInstancesResponse is one page of instances; TotalCount counts every match.
type DescribeInstancesResponse struct {
	TotalCount  int64      `json:"TotalCount"`
	InstanceSet []Instance `json:"InstanceSet"`
	RequestId   string     `json:"RequestId"`
}

// StopInstancesRequest stops RUNNING instances.
type StopInstancesRequest struct {
	InstanceIds []string `json:"InstanceIds,omitempty"`
	ForceStop   *bool    `json:"ForceStop,omitempty"`
	StopType    string   `json:"StopType,omitempty"`    // SOFT, HARD, SOFT_FIRST
	StoppedMode string   `json:"StoppedMode,omitempty"` // KEEP_CHARGING, STOP_CHARGING
}

// StopInstancesResponse carries only the RequestId; poll DescribeInstances for STOPPED.
type StopInstancesResponse struct {
	RequestId string `json:"RequestId"`
}

// StartInstancesRequest starts STOPPED instances.
type StartInstancesRequest struct {
	InstanceIds []string `json:"InstanceIds,omitempty"`
}

// StartInstancesResponse carries only the RequestId; poll DescribeInstances for RUNNING.
type StartInstancesResponse struct {
	RequestId string `json:"RequestId"`
}

// TerminateInstancesRequest returns instances.
type TerminateInstancesRequest struct {
	InstanceIds []string `json:"InstanceIds,omitempty"`
}

// TerminateInstancesResponse carries only the RequestId.
type TerminateInstancesResponse struct {
	RequestId string `json:"RequestId"`
}

// DescribeZonesRequest has no parameters.
type DescribeZonesRequest struct{}

// ZoneInfo is one availability zone.
type ZoneInfo struct {
	Zone      string `json:"Zone"`
	ZoneName  string `json:"ZoneName"`
	ZoneId    string `json:"ZoneId"`
	ZoneState string `json:"ZoneState"` // AVAILABLE, UNAVAILABLE
}

// DescribeZonesResponse lists the zones of the region.
type DescribeZonesResponse struct {
	TotalCount int64      `json:"TotalCount"`
	ZoneSet    []ZoneInfo `json:"ZoneSet"`
	RequestId  string     `json:"RequestId"`
}

// DescribeInstanceTypeConfigsRequest filters the catalog by zone, instance-family and
// instance-type.
type DescribeInstanceTypeConfigsRequest struct {
	Filters []cloudapi.Filter `json:"Filters,omitempty"`
}

// InstanceTypeConfig is one instance type offered in one zone.
type InstanceTypeConfig struct {
	Zone           string `json:"Zone"`
	InstanceType   string `json:"InstanceType"`
	InstanceFamily string `json:"InstanceFamily"`
	GPU            int64  `json:"GPU"`
	CPU            int64  `json:"CPU"`
	Memory         int64  `json:"Memory"`
	FPGA           int64  `json:"FPGA"`
}

// DescribeInstanceTypeConfigsResponse lists the matching catalog entries.
type DescribeInstanceTypeConfigsResponse struct {
	InstanceTypeConfigSet []InstanceTypeConfig `json:"InstanceTypeConfigSet"`
	RequestId             string               `json:"RequestId"`
}
