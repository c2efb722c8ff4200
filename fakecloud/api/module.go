package api

import "github.com/stratus-cloud/stratus/fakecloud/store"

// Module is what a service package gives the server: its actions and its part of the seed.
// A module that owns goroutines, listeners or devices (the data plane) also implements
// io.Closer.
type Module interface {
	API() Service
	// Seed imports the module's resources from s into an empty store.
	Seed(tx *store.Tx, s *Seed) error
}

// Starter is implemented by modules that bring the machine in line with the stored state
// (the data plane re-binding devices and listeners after a restart or a reset).
type Starter interface {
	Start() error
}

// Seed is the declarative starting world (YAML). IDs are given explicitly so that config
// files (a CCM cloud-config, a manifest) can refer to them.
type Seed struct {
	Region      string           `json:"region"`
	Zones       []string         `json:"zones"`
	Credentials []SeedCredential `json:"credentials"`
	VPCs        []SeedVPC        `json:"vpcs"`
	Instances   []SeedInstance   `json:"instances"`
	Delays      *Delays          `json:"delays,omitempty"`
	Limits      map[string]int   `json:"limits,omitempty"`
}

// SeedCredential is one key pair fakecloud accepts.
type SeedCredential struct {
	SecretID  string `json:"secretId"`
	SecretKey string `json:"secretKey"`
}

// SeedVPC declares a VPC with its subnets and route tables.
type SeedVPC struct {
	VpcID       string           `json:"vpcId"`
	Name        string           `json:"name"`
	CidrBlock   string           `json:"cidrBlock"`
	Subnets     []SeedSubnet     `json:"subnets"`
	RouteTables []SeedRouteTable `json:"routeTables"`
}

// SeedSubnet is one subnet of a VPC, in one zone.
type SeedSubnet struct {
	SubnetID  string `json:"subnetId"`
	Name      string `json:"name"`
	CidrBlock string `json:"cidrBlock"`
	Zone      string `json:"zone"`
}

// SeedRouteTable is one route table; the VPC's first one is its default when none says so.
type SeedRouteTable struct {
	RouteTableID string `json:"routeTableId"`
	Name         string `json:"name"`
	Default      bool   `json:"default"`
}

// SeedInstance is one CVM instance. PrivateIP empty means "allocate from the subnet".
// Local marks an instance that is this machine, so the data plane attaches its disks here.
type SeedInstance struct {
	InstanceID   string            `json:"instanceId"`
	Name         string            `json:"name"`
	Zone         string            `json:"zone"`
	InstanceType string            `json:"instanceType"`
	ImageID      string            `json:"imageId"`
	VpcID        string            `json:"vpcId"`
	SubnetID     string            `json:"subnetId"`
	PrivateIP    string            `json:"privateIp"`
	PublicIP     string            `json:"publicIp"`
	State        string            `json:"state"` // default RUNNING
	Tags         map[string]string `json:"tags"`
	Local        bool              `json:"local"`
}
