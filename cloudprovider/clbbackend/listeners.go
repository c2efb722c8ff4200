package clbbackend

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/stratus-cloud/stratus/cloudapi"
	"github.com/stratus-cloud/stratus/cloudapi/clb"
	"github.com/stratus-cloud/stratus/loadbalancer"
)

// toHealthCheck is the wire form of hc for a listener of protocol p.
func toHealthCheck(p loadbalancer.Protocol, hc loadbalancer.HealthCheck) *clb.HealthCheck {
	out := &clb.HealthCheck{
		HealthSwitch: cloudapi.Int64(1),
		TimeOut:      cloudapi.Int64(int64(hc.Timeout / time.Second)),
		IntervalTime: cloudapi.Int64(int64(hc.Interval / time.Second)),
		HealthNum:    cloudapi.Int64(int64(hc.HealthyThreshold)),
		UnHealthNum:  cloudapi.Int64(int64(hc.UnhealthyThreshold)),
		CheckPort:    cloudapi.Int64(int64(hc.Port)),
	}
	if p == loadbalancer.UDP {
		// A UDP listener checks with PING (its default) or a custom exchange; the port of
		// a PING check means nothing.
		out.CheckPort = nil
		return out
	}
	switch hc.Type {
	case loadbalancer.CheckHTTP:
		out.CheckType = cloudapi.String(clb.CheckHTTP)
		out.HttpCheckPath = cloudapi.String(hc.Path)
		out.HttpCheckMethod = cloudapi.String("GET")
		out.HttpVersion = cloudapi.String("HTTP/1.1")
		out.HttpCode = cloudapi.Int64(httpCode2xx)
	default:
		out.CheckType = cloudapi.String(clb.CheckTCP)
	}
	return out
}

// fromHealthCheck reads a listener's health check back into the engine's terms, so a
// listener that was made from a spec compares equal to it.
func fromHealthCheck(hc *clb.HealthCheck) loadbalancer.HealthCheck {
	if hc == nil {
		return loadbalancer.HealthCheck{}
	}
	v := func(p *int64) int64 {
		if p == nil {
			return 0
		}
		return *p
	}
	out := loadbalancer.HealthCheck{
		Interval: time.Duration(v(hc.IntervalTime)) * time.Second, Timeout: time.Duration(v(hc.TimeOut)) * time.Second,
		HealthyThreshold: int(v(hc.HealthNum)), UnhealthyThreshold: int(v(hc.UnHealthNum)),
		Port: int32(v(hc.CheckPort)),
	}
	ct := ""
	if hc.CheckType != nil {
		ct = *hc.CheckType
	}
	switch ct {
	case clb.CheckHTTP:
		out.Type = loadbalancer.CheckHTTP
		if hc.HttpCheckPath != nil {
			out.Path = *hc.HttpCheckPath
		}
	case clb.CheckTCP:
		out.Type = loadbalancer.CheckTCP
	default:
		out.Type, out.Port = loadbalancer.CheckPing, 0
	}
	if v(hc.HealthSwitch) == 0 {
		out = loadbalancer.HealthCheck{} // off: never what the engine asks for
	}
	return out
}

func sessionSeconds(d time.Duration) *int64 { return cloudapi.Int64(int64(d / time.Second)) }

// CreateListeners creates the listeners with one CreateListener call per group of
// identical settings (a Service's listeners usually form one group per protocol).
func (b *Backend) CreateListeners(ctx context.Context, lb *loadbalancer.LoadBalancer, specs []loadbalancer.ListenerSpec) ([]loadbalancer.Listener, error) {
	type group struct {
		first loadbalancer.ListenerSpec
		ports []loadbalancer.ListenerSpec
	}
	var groups []*group
	for _, s := range specs {
		i := slices.IndexFunc(groups, func(g *group) bool {
			f := g.first
			return f.Protocol == s.Protocol && f.Scheduler == s.Scheduler && f.SessionTimeout == s.SessionTimeout &&
				f.HealthCheck == s.HealthCheck && f.Name == s.Name && len(g.ports) < maxListenersPerCall
		})
		if i < 0 {
			groups = append(groups, &group{first: s})
			i = len(groups) - 1
		}
		groups[i].ports = append(groups[i].ports, s)
	}
	var made []loadbalancer.Listener
	for _, g := range groups {
		if len(g.first.Name) > maxListenerName {
			return made, fmt.Errorf("listener name %q is longer than %d characters", g.first.Name, maxListenerName)
		}
		in := &clb.CreateListenerRequest{
			LoadBalancerId: lb.ID, Protocol: string(g.first.Protocol),
			HealthCheck:       toHealthCheck(g.first.Protocol, g.first.HealthCheck),
			SessionExpireTime: sessionSeconds(g.first.SessionTimeout),
			Scheduler:         string(g.first.Scheduler),
		}
		for _, p := range g.ports {
			in.Ports = append(in.Ports, int64(p.Port))
			in.ListenerNames = append(in.ListenerNames, p.Name)
		}
		var ids []string
		err := b.tasks.write(ctx, lb.ID, func(ctx context.Context) (string, error) {
			out, err := b.cfg.CLB.CreateListener(ctx, in)
			if err != nil {
				return "", err
			}
			ids = out.ListenerIds
			return out.RequestId, nil
		})
		if err != nil {
			return made, fmt.Errorf("CreateListener %s ports %v: %w", in.Protocol, in.Ports, classify(err))
		}
		if len(ids) != len(g.ports) {
			return made, fmt.Errorf("CreateListener answered %d ids for %d ports", len(ids), len(g.ports))
		}
		for i, p := range g.ports {
			p.Targets = nil
			made = append(made, loadbalancer.Listener{ID: ids[i], ListenerSpec: p})
		}
	}
	return made, nil
}

// UpdateListener sends the listener's scheduler, session persistence and health check.
func (b *Backend) UpdateListener(ctx context.Context, lb *loadbalancer.LoadBalancer, l loadbalancer.Listener) error {
	in := &clb.ModifyListenerRequest{
		LoadBalancerId: lb.ID, ListenerId: l.ID,
		HealthCheck:       toHealthCheck(l.Protocol, l.HealthCheck),
		SessionExpireTime: sessionSeconds(l.SessionTimeout),
		Scheduler:         cloudapi.String(string(l.Scheduler)),
	}
	err := b.tasks.write(ctx, lb.ID, func(ctx context.Context) (string, error) {
		out, err := b.cfg.CLB.ModifyListener(ctx, in)
		if err != nil {
			return "", err
		}
		return out.RequestId, nil
	})
	if err != nil {
		return fmt.Errorf("ModifyListener %s: %w", l.ID, classify(err))
	}
	return nil
}

// DeleteListeners deletes listeners with DeleteLoadBalancerListeners, which takes many
// ids in one task.
func (b *Backend) DeleteListeners(ctx context.Context, lb *loadbalancer.LoadBalancer, ids []string) error {
	for chunk := range slices.Chunk(ids, maxListenersPerCall) {
		err := b.tasks.write(ctx, lb.ID, func(ctx context.Context) (string, error) {
			out, err := b.cfg.CLB.DeleteLoadBalancerListeners(ctx, &clb.DeleteLoadBalancerListenersRequest{LoadBalancerId: lb.ID, ListenerIds: chunk})
			if err != nil {
				return "", err
			}
			return out.RequestId, nil
		})
		if err != nil {
			return fmt.Errorf("DeleteLoadBalancerListeners %v: %w", chunk, classify(err))
		}
	}
	return nil
}

func batchTargets(ts []loadbalancer.ListenerTarget, weights bool) []clb.BatchTarget {
	out := make([]clb.BatchTarget, len(ts))
	for i, t := range ts {
		out[i] = clb.BatchTarget{ListenerId: cloudapi.String(t.ListenerID), InstanceId: cloudapi.String(t.ID), Port: cloudapi.Int64(int64(t.Port))}
		if weights {
			out[i].Weight = cloudapi.Int64(int64(t.Weight))
		}
	}
	return out
}

// RegisterTargets binds targets with BatchRegisterTargets, 500 per call: a node added to a
// Service is one call whatever its number of ports.
func (b *Backend) RegisterTargets(ctx context.Context, lb *loadbalancer.LoadBalancer, ts []loadbalancer.ListenerTarget) error {
	for chunk := range slices.Chunk(ts, maxBatchTargets) {
		err := b.tasks.write(ctx, lb.ID, func(ctx context.Context) (string, error) {
			out, err := b.cfg.CLB.BatchRegisterTargets(ctx, &clb.BatchRegisterTargetsRequest{LoadBalancerId: lb.ID, Targets: batchTargets(chunk, true)})
			if err != nil {
				return "", err
			}
			if len(out.FailListenerIdSet) > 0 {
				return out.RequestId, fmt.Errorf("binding failed on listeners %v: %w", out.FailListenerIdSet, loadbalancer.ErrStale)
			}
			return out.RequestId, nil
		})
		if err != nil {
			return fmt.Errorf("BatchRegisterTargets: %w", targetError(err))
		}
	}
	return nil
}

// DeregisterTargets unbinds targets with BatchDeregisterTargets, 500 per call.
func (b *Backend) DeregisterTargets(ctx context.Context, lb *loadbalancer.LoadBalancer, ts []loadbalancer.ListenerTarget) error {
	for chunk := range slices.Chunk(ts, maxBatchTargets) {
		err := b.tasks.write(ctx, lb.ID, func(ctx context.Context) (string, error) {
			out, err := b.cfg.CLB.BatchDeregisterTargets(ctx, &clb.BatchDeregisterTargetsRequest{LoadBalancerId: lb.ID, Targets: batchTargets(chunk, false)})
			if err != nil {
				return "", err
			}
			if len(out.FailListenerIdSet) > 0 {
				return out.RequestId, fmt.Errorf("unbinding failed on listeners %v: %w", out.FailListenerIdSet, loadbalancer.ErrStale)
			}
			return out.RequestId, nil
		})
		if err != nil {
			return fmt.Errorf("BatchDeregisterTargets: %w", targetError(err))
		}
	}
	return nil
}

// SetWeights changes weights with BatchModifyTargetWeight, 500 targets per call.
func (b *Backend) SetWeights(ctx context.Context, lb *loadbalancer.LoadBalancer, ts []loadbalancer.ListenerTarget) error {
	for chunk := range slices.Chunk(ts, maxBatchTargets) {
		var rules []clb.RsWeightRule
		for _, t := range chunk {
			i := slices.IndexFunc(rules, func(r clb.RsWeightRule) bool { return r.ListenerId == t.ListenerID })
			if i < 0 {
				rules = append(rules, clb.RsWeightRule{ListenerId: t.ListenerID})
				i = len(rules) - 1
			}
			rules[i].Targets = append(rules[i].Targets, clb.Target{InstanceId: cloudapi.String(t.ID), Port: cloudapi.Int64(int64(t.Port)), Weight: cloudapi.Int64(int64(t.Weight))})
		}
		err := b.tasks.write(ctx, lb.ID, func(ctx context.Context) (string, error) {
			out, err := b.cfg.CLB.BatchModifyTargetWeight(ctx, &clb.BatchModifyTargetWeightRequest{LoadBalancerId: lb.ID, ModifyList: rules})
			if err != nil {
				return "", err
			}
			return out.RequestId, nil
		})
		if err != nil {
			return fmt.Errorf("BatchModifyTargetWeight: %w", targetError(err))
		}
	}
	return nil
}

// targetError marks a target bound or unbound twice (the cache was wrong) as ErrStale.
func targetError(err error) error {
	if cloudapi.HasCode(err, cloudapi.CodeInvalidParameter) && !cloudapi.HasCode(err, clb.CodeLBNotFound) {
		return fmt.Errorf("%w: %w", err, loadbalancer.ErrStale)
	}
	return classify(err)
}
