package clbbackend

import "time"

// Per-request limits of the cloud's API (Tencent Cloud API 3.0 documentation and the
// official SDK's model comments, tencentcloud-sdk-go v1.0.162). Every call this package
// makes stays within them; fakecloud enforces the same numbers.
const (
	// DescribeLoadBalancers: "LoadBalancerIds.N: there can be up to 20 IDs".
	maxDescribeLoadBalancerIDs = 20
	// DescribeLoadBalancers / DescribeSecurityGroups: "Limit: default 20, maximum 100".
	maxPageLimit = 100
	// BatchRegisterTargets / BatchDeregisterTargets / BatchModifyTargetWeight: "up to 500
	// servers can be bound in a batch".
	maxBatchTargets = 500
	// A load balancer has at most 50 listeners (the account's default quota), so one
	// CreateListener or DeleteLoadBalancerListeners call never needs more ports or ids.
	maxListenersPerCall = 50
	// SetLoadBalancerSecurityGroups: "a load balancer can be bound to up to 50 security
	// groups".
	maxSecurityGroupsPerLB = 50
	// CreateLoadBalancer LoadBalancerName: "1-60 letters, digits, '-' or '_'".
	maxLoadBalancerName = 60
	// CreateListener ListenerNames: 1-80 common characters (the newer documentation;
	// older versions allowed 255: the stricter one is kept).
	maxListenerName = 80
	// CreateSecurityGroup: GroupName at most 60 characters, GroupDescription at most 100.
	maxSecurityGroupName        = 60
	maxSecurityGroupDescription = 100
	// A security group direction holds at most 100 rules (account quota), one per range.
	maxSecurityGroupPolicies = 100
	// CreateLoadBalancer ClientToken: "at most 64 ASCII characters".
	maxClientToken = 64
	// Health checks (HealthCheck model): TimeOut 2-60 s below IntervalTime 5-300 s,
	// HealthNum / UnHealthNum 2-10; HttpCheckPath at most 200 characters; a TCP
	// listener's HTTP check accepts exactly one status class (HttpCode 1, 2, 4, 8 or 16).
	minCheckInterval, maxCheckInterval = 5 * time.Second, 300 * time.Second
	minCheckTimeout, maxCheckTimeout   = 2 * time.Second, 60 * time.Second
	minThreshold, maxThreshold         = 2, 10
	maxHealthCheckPath                 = 200
	httpCode2xx                        = 2
	// SessionExpireTime: 0 (off) or 30-3600 s. Target Weight: 0-100, default 10.
	minSessionExpire, maxSessionExpire = 30 * time.Second, 3600 * time.Second
	defaultWeight, maxWeight           = 10, 100
)
