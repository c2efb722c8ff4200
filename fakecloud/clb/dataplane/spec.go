package dataplane

import (
	"fmt"
	"net/netip"
	"time"
)

// Protocols a listener speaks.
const (
	TCP = "TCP"
	UDP = "UDP"
)

// Schedulers choose a target for a new connection (UDP: a new flow).
const (
	WRR       = "WRR"        // smooth weighted round robin
	LeastConn = "LEAST_CONN" // fewest active connections per unit of weight
)

// Health check kinds.
const (
	CheckTCP    = "TCP"    // TCP connect
	CheckHTTP   = "HTTP"   // HTTP request, status class in HTTPCodes
	CheckCustom = "CUSTOM" // send Send, expect Recv (TCP or UDP)
	CheckUDP    = "UDP"    // UDP port probe: refused (ICMP port unreachable) = down
	// CheckPing asks whether the target's host is up. Every target the data plane accepts
	// is a loopback address, whose host is this machine, so the check always passes; it
	// exists so a listener configured for PING behaves as the cloud's would.
	CheckPing = "PING"
)

// Spec is the whole desired data plane.
type Spec struct {
	Listeners []ListenerSpec
}

// ListenerSpec is one listener: where it listens, how it balances, what it checks.
type ListenerSpec struct {
	ID       string // unique; a listener whose ID persists is updated in place
	Protocol string // TCP | UDP
	Address  netip.AddrPort
	// Netns, when set, is the network namespace (a path) the listener's socket lives in:
	// a VPC's router namespace, where the load balancer's own VIP is an address. Address
	// may then be any IPv4 address; empty: this process's namespace, on loopback only.
	Netns string
	// Reachable are the non-loopback prefixes whose targets are dialed as they are (a
	// VPC's CIDR, which this machine routes into the VPC's router); other non-loopback
	// targets are refused.
	Reachable []netip.Prefix
	// Scheduler is WRR (default) or LEAST_CONN.
	Scheduler string
	// SessionExpire > 0 sends a client IP back to the same target while it stays eligible
	// and the client keeps coming back within this time.
	SessionExpire time.Duration
	// ResetOnDeregister closes the connections of a removed target with a TCP RST, as the
	// API's DeregisterTargetRst asks; otherwise they run until either side ends them.
	ResetOnDeregister bool
	Health            HealthSpec
	Targets           []TargetSpec
	// FilterSources makes the listener accept only clients whose address the first
	// matching rule of Sources accepts; no matching rule refuses (a TCP connection is
	// reset before any byte reaches a target, a UDP datagram is dropped). Off: every
	// client is accepted.
	FilterSources bool
	Sources       []SourceRule
}

// SourceRule accepts or refuses clients inside Prefix.
type SourceRule struct {
	Prefix netip.Prefix
	Accept bool
}

// admits reports whether the listener spec accepts a client at src.
func (l *ListenerSpec) admits(src netip.Addr) bool {
	if !l.FilterSources {
		return true
	}
	for _, r := range l.Sources {
		if r.Prefix.Contains(src) {
			return r.Accept
		}
	}
	return false
}

// reachable reports whether the listener may connect to a.
func (l *ListenerSpec) reachable(a netip.Addr) bool {
	if a.IsLoopback() {
		return true
	}
	for _, p := range l.Reachable {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// TargetSpec is one backend.
type TargetSpec struct {
	Address netip.AddrPort
	Weight  int // 0 receives nothing
}

// HealthSpec configures health checks. Disabled means every target is healthy.
type HealthSpec struct {
	Enabled            bool
	Type               string        // CheckTCP, CheckHTTP, CheckCustom, CheckUDP
	Interval, Timeout  time.Duration // already scaled to wall-clock time
	HealthyThreshold   int           // consecutive successes that make a down target up
	UnhealthyThreshold int           // consecutive failures that make an up target down
	Port               uint16        // 0: the target's port
	HTTPPath           string
	HTTPHost           string
	HTTPMethod         string // HEAD | GET
	HTTPCodes          int    // bitmask: 1=1xx 2=2xx 4=3xx 8=4xx 16=5xx
	Send, Recv         []byte
}

func (l *ListenerSpec) validate() error {
	if l.ID == "" {
		return fmt.Errorf("listener without ID")
	}
	if l.Protocol != TCP && l.Protocol != UDP {
		return fmt.Errorf("listener %s: protocol %q is not TCP or UDP", l.ID, l.Protocol)
	}
	if l.Netns != "" {
		if !l.Address.IsValid() || !l.Address.Addr().Is4() || l.Address.Port() == 0 {
			return fmt.Errorf("listener %s: address %s in namespace %s is not an IPv4 address with a port", l.ID, l.Address, l.Netns)
		}
	} else if !l.Address.IsValid() || !l.Address.Addr().IsLoopback() || l.Address.Port() == 0 {
		return fmt.Errorf("listener %s: address %s is not a loopback address with a port", l.ID, l.Address)
	}
	if l.Health.Enabled && (l.Health.Interval <= 0 || l.Health.Timeout <= 0) {
		return fmt.Errorf("listener %s: health check interval and timeout must be positive", l.ID)
	}
	return nil
}
