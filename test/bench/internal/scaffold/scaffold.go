// Package scaffold is what the bench commands under test/bench set up alike: quiet logs,
// a seeded fakecloud fleet of instances in one VPC, the status a kubelet reports for their
// Nodes, and the count of a client's attempts at one action. It measures nothing and
// checks no target: each command owns its figures.
package scaffold

import (
	"flag"
	"fmt"
	"sync"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2"

	"github.com/stratus-cloud/stratus/cloudapi"
	"github.com/stratus-cloud/stratus/fakecloud/api"
	fccvm "github.com/stratus-cloud/stratus/fakecloud/cvm"
	fcvpc "github.com/stratus-cloud/stratus/fakecloud/vpc"
)

const (
	Region = "ap-guangzhou"
	VpcID  = "vpc-bench"
)

// Zones are the fleet's zones, one subnet each.
var Zones = []string{Region + "-1", Region + "-2", Region + "-3"}

// QuietLogs registers klog's flags and keeps its output off the bench's table: only
// fatal errors reach stderr. Call it before flag.Parse; a -v given on the command line
// still wins.
func QuietLogs() {
	klog.InitFlags(nil)
	_ = flag.Set("v", "0")
	_ = flag.Set("logtostderr", "false")
	_ = flag.Set("stderrthreshold", "FATAL")
}

// Mode names a run by its batching setting.
func Mode(batching bool) string {
	if batching {
		return "batching on"
	}
	return "batching off"
}

// Fleet declares the VPC (10.1.0.0/16, one /20 subnet per zone) and n instances spread
// over the zones, "ins-b0000000" named "node-00000" onwards, and returns their private
// IPs in order. extend, when not nil, adds to the VPC (route tables).
func Fleet(n int, extend func(*fcvpc.SeedVPC)) (*api.Seed, []string) {
	seed := &api.Seed{Region: Region, Zones: Zones}
	v := fcvpc.SeedVPC{
		VpcID: VpcID, Name: "bench", CidrBlock: "10.1.0.0/16",
		Subnets: []fcvpc.SeedSubnet{
			{SubnetID: "subnet-bench1", Name: "b1", CidrBlock: "10.1.0.0/20", Zone: Zones[0]},
			{SubnetID: "subnet-bench2", Name: "b2", CidrBlock: "10.1.16.0/20", Zone: Zones[1]},
			{SubnetID: "subnet-bench3", Name: "b3", CidrBlock: "10.1.32.0/20", Zone: Zones[2]},
		},
	}
	if extend != nil {
		extend(&v)
	}
	fcvpc.SetSeed(seed, []fcvpc.SeedVPC{v})
	var instances []fccvm.SeedInstance
	ips := make([]string, n)
	for i := range n {
		z, k := i%3, i/3+10 // skip the low addresses a subnet reserves
		ips[i] = fmt.Sprintf("10.1.%d.%d", z*16+k/256, k%256)
		instances = append(instances, fccvm.SeedInstance{
			InstanceID:   fmt.Sprintf("ins-b%07d", i),
			Name:         fmt.Sprintf("node-%05d", i),
			Zone:         Zones[z],
			InstanceType: "S5.MEDIUM2",
			SubnetID:     fmt.Sprintf("subnet-bench%d", z+1),
			PrivateIP:    ips[i],
		})
	}
	fccvm.SetSeed(seed, instances)
	return seed, ips
}

// ReadyStatus is what a ready kubelet on the instance with the private IP reports.
func ReadyStatus(name, ip string) v1.NodeStatus {
	return v1.NodeStatus{
		Addresses: []v1.NodeAddress{{Type: v1.NodeInternalIP, Address: ip}, {Type: v1.NodeHostName, Address: name}},
		Conditions: []v1.NodeCondition{{Type: v1.NodeReady, Status: v1.ConditionTrue, Reason: "KubeletReady",
			LastHeartbeatTime: metav1.Now(), LastTransitionTime: metav1.Now()}},
	}
}

// Attempts counts a client's attempts at one action, retries included, and how many of
// them failed (throttled, injected). Hook goes into the provider's options.
type Attempts struct {
	action string
	mu     sync.Mutex
	n      int
	failed int
}

// CountAttempts counts the attempts at action.
func CountAttempts(action string) *Attempts { return &Attempts{action: action} }

// Hook is the cloudapi.CallHook that counts.
func (a *Attempts) Hook(c cloudapi.Call) {
	if c.Action != a.action {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.n++
	if c.Err != nil {
		a.failed++
	}
}

// Counts are the attempts so far and the failed ones among them.
func (a *Attempts) Counts() (attempts, failed int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.n, a.failed
}
