// Package cvm simulates the cloud's CVM service: instances with a real state machine
// (PENDING -> RUNNING -> STOPPING -> STOPPED -> STARTING -> RUNNING; TerminateInstances ->
// TERMINATING or SHUTDOWN -> gone), private addresses leased from fakecloud/vpc subnets,
// optional public addresses, tags, ClientToken idempotency and a per-region quota.
//
// Transitions are not driven by goroutines: an instance stores its current state, the
// state it is heading to and when it gets there, and every reader derives the effective
// state from the world's clock (EffectiveState). The package never touches the host.
package cvm

import (
	"time"

	"github.com/stratus-cloud/stratus/cloudapi"
	"github.com/stratus-cloud/stratus/cloudapi/cvm"
	"github.com/stratus-cloud/stratus/fakecloud/store"
)

// Instance is one CVM instance as fakecloud stores it.
type Instance struct {
	InstanceId       string
	InstanceName     string
	InstanceType     string
	ImageId          string
	Zone             string
	VpcId            string
	SubnetId         string
	PrivateIP        string
	PublicIP         string
	Tags             []cloudapi.Tag
	Local            bool // this machine: the data plane attaches disks here
	ChargeType       string
	SystemDiskType   string
	SystemDiskSize   int64
	SecurityGroupIds []string
	Uuid             string
	CreatedTime      time.Time
	// LaunchIndex orders the instances of one RunInstances call (they share CreatedTime).
	LaunchIndex int

	// State is the state entered by the last operation; NextState ("" when State is
	// stable) is reached at NextAt. NextState gone means the instance disappears then.
	State                    string
	NextState                string
	NextAt                   time.Time
	LatestOperation          string
	LatestOperationRequestId string
}

// gone is the internal NextState of a terminated instance; EffectiveState maps it to "".
const gone = "TERMINATED"

// EffectiveState is in's state at now: PENDING, RUNNING, STOPPING, STOPPED, STARTING,
// SHUTDOWN or TERMINATING. It returns "" when the instance no longer exists (its
// termination has completed), even if the record has not been removed yet.
func EffectiveState(in *Instance, now time.Time) string {
	s := in.State
	if in.NextState != "" && !now.Before(in.NextAt) {
		s = in.NextState
	}
	if s == gone {
		return ""
	}
	return s
}

// Exists reports whether in is still an instance at now (not terminated and gone).
func Exists(in *Instance, now time.Time) bool { return EffectiveState(in, now) != "" }

// settled reports whether in's last operation has finished at now.
func settled(in *Instance, now time.Time) bool {
	return in.NextState == "" || !now.Before(in.NextAt)
}

// ipIndex lists the instances holding one private address (VPCs may overlap, so an
// address can belong to several).
type ipIndex struct {
	InstanceIds []string
}

// publicIP marks a public address as taken.
type publicIP struct {
	InstanceId string
}

// tokenRecord remembers the instances a ClientToken created.
type tokenRecord struct {
	InstanceIds []string
	CreatedTime time.Time
}

// reapEntry schedules the removal of a terminating instance's record and addresses.
type reapEntry struct {
	InstanceId string
	At         time.Time
}

const (
	instancesName = "cvm.instances"
	ipIndexName   = "cvm.private-ip-index"
	publicIPsName = "cvm.public-ips"
	tokensName    = "cvm.client-tokens"
	reapName      = "cvm.terminating"
)

// A Table handle is only the table's name, so handles registered once here address the
// same table in any store whose module registered it (New does, for the world's store).
var (
	handles    = store.New()
	instancesT = store.Register[Instance](handles, instancesName)
	ipIndexT   = store.Register[ipIndex](handles, ipIndexName)
	publicIPsT = store.Register[publicIP](handles, publicIPsName)
	tokensT    = store.Register[tokenRecord](handles, tokensName)
	reapT      = store.Register[reapEntry](handles, reapName)
)

// Instances registers (idempotently) the CVM module's tables in s and returns the
// instance table. Records of terminated instances may linger until the next CVM write;
// filter with Exists.
func Instances(s *store.Store) *store.Table[Instance] {
	registerAll(s)
	return store.Register[Instance](s, instancesName)
}

func registerAll(s *store.Store) {
	store.Register[Instance](s, instancesName)
	store.Register[ipIndex](s, ipIndexName)
	store.Register[publicIP](s, publicIPsName)
	store.Register[tokenRecord](s, tokensName)
	store.Register[reapEntry](s, reapName)
}

// instanceType is one entry of the built-in catalog.
type instanceType struct {
	Name   string
	Family string
	CPU    int64
	Memory int64 // GiB
}

// catalog is what every zone sells. It includes the types Stratus' docs and tests use
// (S5.MEDIUM2, S5.LARGE8).
var catalog = []instanceType{
	{"S5.SMALL1", "S5", 1, 1}, {"S5.SMALL2", "S5", 1, 2}, {"S5.SMALL4", "S5", 1, 4},
	{"S5.MEDIUM2", "S5", 2, 2}, {"S5.MEDIUM4", "S5", 2, 4}, {"S5.MEDIUM8", "S5", 2, 8},
	{"S5.LARGE8", "S5", 4, 8}, {"S5.LARGE16", "S5", 4, 16},
	{"S5.2XLARGE16", "S5", 8, 16}, {"S5.2XLARGE32", "S5", 8, 32},
	{"S5.4XLARGE32", "S5", 16, 32}, {"S5.4XLARGE64", "S5", 16, 64},
	{"SA2.MEDIUM4", "SA2", 2, 4}, {"SA2.LARGE8", "SA2", 4, 8}, {"SA2.2XLARGE16", "SA2", 8, 16},
	{"M5.LARGE32", "M5", 4, 32}, {"C5.LARGE8", "C5", 4, 8},
}

var catalogByName = func() map[string]instanceType {
	m := make(map[string]instanceType, len(catalog))
	for _, t := range catalog {
		m[t.Name] = t
	}
	return m
}()

// defaultInstanceType is what RunInstances launches when InstanceType is empty.
const defaultInstanceType = "S5.SMALL1"

// stateNames are the states the instance-state filter accepts.
var stateNames = []string{
	cvm.StatePending, cvm.StateLaunchFailed, cvm.StateRunning, cvm.StateStopping, cvm.StateStopped,
	cvm.StateStarting, cvm.StateRebooting, cvm.StateShutdown, cvm.StateTerminating,
}
