package clbbackend

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"
	"k8s.io/apimachinery/pkg/types"

	"github.com/stratus-cloud/stratus/cloudapi"
	"github.com/stratus-cloud/stratus/cloudapi/clb"
	"github.com/stratus-cloud/stratus/cloudapi/vpc"
	"github.com/stratus-cloud/stratus/loadbalancer"
)

// Config configures a Backend.
type Config struct {
	CLB *clb.Client
	VPC *vpc.Client
	// ClusterID is the value of loadbalancer.TagCluster on what this cluster owns.
	ClusterID string
	// VpcID is where load balancers are created and whose instances they target.
	VpcID string
	// ReadParallelism bounds the concurrent reads of a List (default 8).
	ReadParallelism int
}

// Backend is loadbalancer.Backend on the CLB API.
type Backend struct {
	cfg   Config
	tasks *tasks
	ready *readiness
}

var _ loadbalancer.Backend = (*Backend)(nil)

// New returns a Backend.
func New(cfg Config) (*Backend, error) {
	switch {
	case cfg.CLB == nil || cfg.VPC == nil:
		return nil, errors.New("clbbackend: CLB and VPC clients are required")
	case cfg.ClusterID == "":
		return nil, errors.New("clbbackend: ClusterID is empty")
	case cfg.VpcID == "":
		return nil, errors.New("clbbackend: VpcID is empty")
	}
	if cfg.ReadParallelism <= 0 {
		cfg.ReadParallelism = 8
	}
	t := newTasks(cfg.CLB)
	return &Backend{cfg: cfg, tasks: t, ready: newReadiness(cfg.CLB, &t.est)}, nil
}

// Settings are the engine settings that fit this cloud: its health check, session and
// weight bounds, and that its security groups bind public load balancers only.
func Settings(clusterID string) loadbalancer.Settings {
	s := loadbalancer.DefaultSettings(clusterID)
	s.IntervalMin, s.IntervalMax = minCheckInterval, maxCheckInterval
	s.TimeoutMin, s.TimeoutMax = minCheckTimeout, maxCheckTimeout
	s.ThresholdMin, s.ThresholdMax = minThreshold, maxThreshold
	s.MaxHealthCheckPath = maxHealthCheckPath
	s.SessionTimeoutMin, s.SessionMax = minSessionExpire, maxSessionExpire
	s.DefaultWeight, s.MaxWeight = defaultWeight, maxWeight
	s.MaxSourceRanges = maxSecurityGroupPolicies
	s.SourceRangesOnInternal = false
	s.MaxLoadBalancerName = maxLoadBalancerName
	return s
}

// List reads every load balancer tagged for this cluster, with listeners, targets and
// security groups: DescribeLoadBalancers by tag (pages of 100), then DescribeListeners and
// DescribeTargets per load balancer, DescribeSecurityGroups by tag and the rules of this
// cluster's groups that are bound.
func (b *Backend) List(ctx context.Context) ([]*loadbalancer.LoadBalancer, error) {
	var raw []clb.LoadBalancer
	for offset := int64(0); ; {
		out, err := b.cfg.CLB.DescribeLoadBalancers(ctx, &clb.DescribeLoadBalancersRequest{
			Filters: []cloudapi.Filter{{Name: "tag:" + loadbalancer.TagCluster, Values: []string{b.cfg.ClusterID}}},
			Offset:  cloudapi.Int64(offset), Limit: cloudapi.Int64(maxPageLimit),
		})
		if err != nil {
			return nil, fmt.Errorf("describe load balancers tagged %s=%s: %w", loadbalancer.TagCluster, b.cfg.ClusterID, err)
		}
		for _, lb := range out.LoadBalancerSet {
			// Trust the tags, not the filter: only what carries this cluster's tag is ours.
			if tagValue(lb.Tags, loadbalancer.TagCluster) == b.cfg.ClusterID {
				raw = append(raw, lb)
			}
		}
		offset += int64(len(out.LoadBalancerSet))
		if len(out.LoadBalancerSet) == 0 || offset >= int64(out.TotalCount) {
			break
		}
	}
	groups, err := b.ownedGroups(ctx, nil)
	if err != nil {
		return nil, err
	}
	return b.complete(ctx, raw, groups)
}

// Get reads one load balancer, whoever owns it.
func (b *Backend) Get(ctx context.Context, id string) (*loadbalancer.LoadBalancer, error) {
	out, err := b.cfg.CLB.DescribeLoadBalancers(ctx, &clb.DescribeLoadBalancersRequest{LoadBalancerIds: []string{id}})
	if err != nil {
		return nil, fmt.Errorf("describe load balancer %s: %w", id, classify(err))
	}
	if len(out.LoadBalancerSet) == 0 {
		return nil, fmt.Errorf("load balancer %s: %w", id, loadbalancer.ErrNotFound)
	}
	raw := out.LoadBalancerSet[0]
	var groups map[string]*ownedGroup
	if len(raw.SecureGroups) > 0 {
		if groups, err = b.ownedGroups(ctx, raw.SecureGroups); err != nil {
			return nil, err
		}
	}
	lbs, err := b.complete(ctx, []clb.LoadBalancer{raw}, groups)
	if err != nil {
		return nil, err
	}
	return lbs[0], nil
}

// complete reads the listeners, targets and filter ranges of raw, concurrently.
func (b *Backend) complete(ctx context.Context, raw []clb.LoadBalancer, groups map[string]*ownedGroup) ([]*loadbalancer.LoadBalancer, error) {
	out := make([]*loadbalancer.LoadBalancer, len(raw))
	var mu sync.Mutex
	ranges := map[string][]netip.Prefix{}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(b.cfg.ReadParallelism)
	for i := range raw {
		g.Go(func() error {
			lb, err := b.listeners(gctx, &raw[i])
			out[i] = lb
			return err
		})
		for _, sg := range raw[i].SecureGroups {
			if og, ok := groups[sg]; ok && !og.read {
				og.read = true
				g.Go(func() error {
					r, err := b.groupRanges(gctx, sg)
					mu.Lock()
					ranges[sg] = r
					mu.Unlock()
					return err
				})
			}
		}
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	for i, lb := range out {
		for _, sg := range raw[i].SecureGroups {
			f := loadbalancer.Filter{ID: sg}
			if og, ok := groups[sg]; ok {
				f.OwnerUID, f.Ranges = og.uid, ranges[sg]
			}
			lb.Filters = append(lb.Filters, f)
		}
	}
	return out, nil
}

// listeners converts raw and reads its listeners with their targets.
func (b *Backend) listeners(ctx context.Context, raw *clb.LoadBalancer) (*loadbalancer.LoadBalancer, error) {
	lb := convert(raw)
	ls, err := b.cfg.CLB.DescribeListeners(ctx, &clb.DescribeListenersRequest{LoadBalancerId: raw.LoadBalancerId})
	if err != nil {
		return nil, fmt.Errorf("describe listeners of %s: %w", raw.LoadBalancerId, classify(err))
	}
	if len(ls.Listeners) == 0 {
		return lb, nil
	}
	ts, err := b.cfg.CLB.DescribeTargets(ctx, &clb.DescribeTargetsRequest{LoadBalancerId: raw.LoadBalancerId})
	if err != nil {
		return nil, fmt.Errorf("describe targets of %s: %w", raw.LoadBalancerId, classify(err))
	}
	targets := map[string][]loadbalancer.Target{}
	for _, l := range ts.Listeners {
		for _, t := range l.Targets {
			if t.InstanceId == "" {
				continue // an IP target: not a node, never Stratus's
			}
			targets[l.ListenerId] = append(targets[l.ListenerId], loadbalancer.Target{ID: t.InstanceId, Port: int32(t.Port), Weight: int(t.Weight)})
		}
	}
	for _, l := range ls.Listeners {
		if l.Protocol != clb.ProtocolTCP && l.Protocol != clb.ProtocolUDP {
			continue // a layer-7 listener is no port of a Service
		}
		ll := loadbalancer.Listener{ID: l.ListenerId, ListenerSpec: loadbalancer.ListenerSpec{
			ListenerKey:    loadbalancer.ListenerKey{Protocol: loadbalancer.Protocol(l.Protocol), Port: int32(l.Port)},
			Name:           l.ListenerName,
			Scheduler:      loadbalancer.Scheduler(l.Scheduler),
			SessionTimeout: time.Duration(l.SessionExpireTime) * time.Second,
			HealthCheck:    fromHealthCheck(l.HealthCheck),
			Targets:        targets[l.ListenerId],
		}}
		slices.SortFunc(ll.Targets, func(a, b loadbalancer.Target) int {
			if c := strings.Compare(a.ID, b.ID); c != 0 {
				return c
			}
			return int(a.Port - b.Port)
		})
		lb.Listeners = append(lb.Listeners, ll)
	}
	return lb, nil
}

func convert(raw *clb.LoadBalancer) *loadbalancer.LoadBalancer {
	lb := &loadbalancer.LoadBalancer{
		ID: raw.LoadBalancerId, Name: raw.LoadBalancerName,
		Internal: raw.LoadBalancerType == clb.TypeInternal, SubnetID: raw.SubnetId,
		Tags: map[string]string{},
	}
	if len(raw.LoadBalancerVips) > 0 {
		lb.VIP = raw.LoadBalancerVips[0]
	}
	for _, t := range raw.Tags {
		lb.Tags[t.TagKey] = t.TagValue
	}
	if !lb.Internal {
		lb.SubnetID = ""
	}
	return lb
}

func tagValue(tags []clb.TagInfo, key string) string {
	for _, t := range tags {
		if t.TagKey == key {
			return t.TagValue
		}
	}
	return ""
}

// Create makes an OPEN or INTERNAL load balancer in the VPC, tagged, with the request's
// token as ClientToken, and returns it once DescribeLoadBalancers shows it ready.
func (b *Backend) Create(ctx context.Context, req loadbalancer.CreateRequest) (*loadbalancer.LoadBalancer, error) {
	if len(req.Token) > maxClientToken {
		return nil, fmt.Errorf("client token %q is longer than %d characters", req.Token, maxClientToken)
	}
	in := &clb.CreateLoadBalancerRequest{
		LoadBalancerType: clb.TypeOpen, Forward: cloudapi.Int64(1), LoadBalancerName: lbName(req.Name),
		VpcId: b.cfg.VpcID, ClientToken: req.Token,
	}
	if req.Internal {
		in.LoadBalancerType, in.SubnetId = clb.TypeInternal, req.SubnetID
	}
	for _, k := range slices.Sorted(maps.Keys(req.Tags)) {
		in.Tags = append(in.Tags, clb.TagInfo{TagKey: k, TagValue: req.Tags[k]})
	}
	out, err := b.cfg.CLB.CreateLoadBalancer(ctx, in)
	if err != nil {
		return nil, fmt.Errorf("CreateLoadBalancer: %w", err)
	}
	// The creation task starts when the cloud answers; time spent before (the client's
	// rate limit) must not teach the estimate that tasks are slow.
	start := time.Now()
	if len(out.LoadBalancerIds) != 1 {
		return nil, fmt.Errorf("CreateLoadBalancer answered %d ids for one load balancer", len(out.LoadBalancerIds))
	}
	raw, err := b.ready.wait(ctx, out.LoadBalancerIds[0], start)
	if err != nil {
		return nil, err
	}
	return convert(raw), nil
}

// lbName keeps the characters the API allows (letters, digits, '-', '_') and its length.
func lbName(s string) string {
	s = strings.Map(func(r rune) rune {
		if r == '-' || r == '_' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' {
			return r
		}
		return '-'
	}, s)
	if len(s) > maxLoadBalancerName {
		s = s[:maxLoadBalancerName]
	}
	return s
}

// Delete deletes a load balancer this cluster owns, then the security group Stratus made
// for it (which the cloud lets go once the deletion task ended).
func (b *Backend) Delete(ctx context.Context, lb *loadbalancer.LoadBalancer) error {
	if lb.Tags[loadbalancer.TagCluster] != b.cfg.ClusterID {
		return fmt.Errorf("load balancer %s is not tagged %s=%s: not deleting it", lb.ID, loadbalancer.TagCluster, b.cfg.ClusterID)
	}
	err := b.tasks.write(ctx, lb.ID, func(ctx context.Context) (string, error) {
		out, err := b.cfg.CLB.DeleteLoadBalancer(ctx, &clb.DeleteLoadBalancerRequest{LoadBalancerIds: []string{lb.ID}})
		if err != nil {
			return "", err
		}
		return out.RequestId, nil
	})
	if err != nil {
		return fmt.Errorf("DeleteLoadBalancer: %w", classify(err))
	}
	for _, f := range lb.Filters {
		if f.OwnerUID == "" {
			continue
		}
		if err := b.tasks.settle(ctx, lb.ID); err != nil {
			return err
		}
		if err := b.deleteGroup(ctx, f.ID); err != nil {
			return err
		}
	}
	b.tasks.forget(lb.ID)
	return nil
}

// classify adds the engine's sentinels to a cloud error: a load balancer or listener
// that does not exist is ErrNotFound (the load balancer) or ErrStale (a listener the
// engine believed in), a target bound or unbound twice is ErrStale.
func classify(err error) error {
	switch {
	case err == nil:
		return nil
	case cloudapi.HasCode(err, clb.CodeLBNotFound):
		return fmt.Errorf("%w: %w", err, loadbalancer.ErrNotFound)
	case cloudapi.HasCode(err, clb.CodeListenerNotFound):
		return fmt.Errorf("%w: %w", err, loadbalancer.ErrStale)
	}
	return err
}

// ownerUID reads the service-uid tag of a security group made for this cluster.
func ownerUID(tags []cloudapi.Tag, cluster string) (types.UID, bool) {
	var c, uid string
	for _, t := range tags {
		switch t.Key {
		case loadbalancer.TagCluster:
			c = t.Value
		case loadbalancer.TagServiceUID:
			uid = t.Value
		}
	}
	return types.UID(uid), c == cluster && uid != ""
}
