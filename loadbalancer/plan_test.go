package loadbalancer

import (
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	v1 "k8s.io/api/core/v1"
)

func mustResolve(t *testing.T, svc *v1.Service, ns []*v1.Node) *Spec {
	t.Helper()
	s, err := Resolve(Input{Service: svc, Nodes: ns, NodeID: testNodeID}, testSettings())
	require.NoError(t, err)
	return s
}

// actualFrom is the load balancer that exactly matches spec, as the cloud would show it.
func actualFrom(spec *Spec) *LoadBalancer {
	lb := &LoadBalancer{ID: "lb-1", VIP: "198.18.0.1", Internal: spec.Internal, SubnetID: spec.SubnetID, Tags: spec.Tags}
	for i, l := range spec.Listeners {
		lb.Listeners = append(lb.Listeners, Listener{ID: "lbl-" + string(rune('a'+i)), ListenerSpec: l})
	}
	if len(spec.SourceRanges) > 0 {
		lb.Filters = []Filter{{ID: "sg-1", OwnerUID: spec.UID, Ranges: spec.SourceRanges}}
	}
	return lb.clone()
}

func kinds(ops []Op) []OpKind {
	out := make([]OpKind, len(ops))
	for i, o := range ops {
		out[i] = o.Kind
	}
	return out
}

func TestPlan(t *testing.T) {
	for _, mode := range modes {
		t.Run(string(mode), func(t *testing.T) {
			tp := targetPort(mode, 80, 30080)
			base := func(opts ...svcOpt) *v1.Service { return service(append([]svcOpt{withMode(mode)}, opts...)...) }
			for _, tc := range []struct {
				name   string
				actual func() *LoadBalancer // nil: the one matching spec
				want   *Spec
				check  func(t *testing.T, ops []Op)
			}{
				{
					name:  "unchanged: nothing to do",
					want:  mustResolve(t, base(), nodes("n1", "n2")),
					check: func(t *testing.T, ops []Op) { assert.Empty(t, ops) },
				},
				{
					name: "new load balancer: listeners then all targets in one call",
					actual: func() *LoadBalancer {
						return &LoadBalancer{ID: "lb-1"}
					},
					want: mustResolve(t, base(withPorts(
						v1.ServicePort{Name: "a", Protocol: v1.ProtocolTCP, Port: 80, NodePort: 30080},
						v1.ServicePort{Name: "b", Protocol: v1.ProtocolUDP, Port: 53, NodePort: 30053}),
						withSourceRanges("10.0.0.0/8")), nodes("n1", "n2")),
					check: func(t *testing.T, ops []Op) {
						require.Equal(t, []OpKind{OpSetSourceRanges, OpCreateListeners, OpRegisterTargets}, kinds(ops))
						assert.Len(t, ops[1].Listeners, 2)
						assert.Len(t, ops[2].Targets, 4)
						assert.Equal(t, []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}, ops[0].SourceRanges)
					},
				},
				{
					name: "node added: one register of that node",
					actual: func() *LoadBalancer {
						return actualFrom(mustResolve(t, base(), nodes("n1", "n2")))
					},
					want: mustResolve(t, base(), nodes("n1", "n2", "n3")),
					check: func(t *testing.T, ops []Op) {
						require.Equal(t, []OpKind{OpRegisterTargets}, kinds(ops))
						assert.Equal(t, []KeyedTarget{{Key: ListenerKey{TCP, 80}, Target: Target{ID: "ins-n3", Port: tp, Weight: 10}}}, ops[0].Targets)
					},
				},
				{
					name: "node removed: one deregister",
					actual: func() *LoadBalancer {
						return actualFrom(mustResolve(t, base(), nodes("n1", "n2")))
					},
					want: mustResolve(t, base(), nodes("n1")),
					check: func(t *testing.T, ops []Op) {
						require.Equal(t, []OpKind{OpDeregisterTargets}, kinds(ops))
						assert.Equal(t, "ins-n2", ops[0].Targets[0].ID)
					},
				},
				{
					name: "node replaced: the new one registers before the old one goes",
					actual: func() *LoadBalancer {
						return actualFrom(mustResolve(t, base(), nodes("n1")))
					},
					want: mustResolve(t, base(), nodes("n2")),
					check: func(t *testing.T, ops []Op) {
						assert.Equal(t, []OpKind{OpRegisterTargets, OpDeregisterTargets}, kinds(ops))
					},
				},
				{
					name: "port changed: the old listener goes, a new one comes",
					actual: func() *LoadBalancer {
						return actualFrom(mustResolve(t, base(), nodes("n1")))
					},
					want: mustResolve(t, base(withPorts(v1.ServicePort{Name: "http", Protocol: v1.ProtocolTCP, Port: 8080, NodePort: 30080})), nodes("n1")),
					check: func(t *testing.T, ops []Op) {
						require.Equal(t, []OpKind{OpDeleteListeners, OpCreateListeners, OpRegisterTargets}, kinds(ops))
						assert.Equal(t, []string{"lbl-a"}, ops[0].ListenerIDs)
						assert.Equal(t, ListenerKey{TCP, 8080}, ops[1].Listeners[0].ListenerKey)
					},
				},
				{
					name: "scheduler changed: one update, targets untouched",
					actual: func() *LoadBalancer {
						return actualFrom(mustResolve(t, base(), nodes("n1")))
					},
					want: mustResolve(t, base(withAnnotation(AnnotationScheduler, "LEAST_CONN")), nodes("n1")),
					check: func(t *testing.T, ops []Op) {
						require.Equal(t, []OpKind{OpUpdateListener}, kinds(ops))
						assert.Equal(t, "lbl-a", ops[0].Listener.ID)
						assert.Equal(t, LeastConn, ops[0].Listener.Scheduler)
					},
				},
				{
					name: "weight changed",
					actual: func() *LoadBalancer {
						lb := actualFrom(mustResolve(t, base(), nodes("n1")))
						lb.Listeners[0].Targets[0].Weight = 50
						return lb
					},
					want:  mustResolve(t, base(), nodes("n1")),
					check: func(t *testing.T, ops []Op) { assert.Equal(t, []OpKind{OpSetWeights}, kinds(ops)) },
				},
				{
					name: "source ranges removed",
					actual: func() *LoadBalancer {
						return actualFrom(mustResolve(t, base(withSourceRanges("10.0.0.0/8")), nodes("n1")))
					},
					want: mustResolve(t, base(), nodes("n1")),
					check: func(t *testing.T, ops []Op) {
						require.Equal(t, []OpKind{OpSetSourceRanges}, kinds(ops))
						assert.Empty(t, ops[0].SourceRanges)
					},
				},
				{
					name: "someone else's filter and listeners stay",
					actual: func() *LoadBalancer {
						lb := actualFrom(mustResolve(t, base(), nodes("n1")))
						lb.Filters = append(lb.Filters, Filter{ID: "sg-user"})
						lb.Listeners = append(lb.Listeners, Listener{ID: "lbl-user", ListenerSpec: ListenerSpec{ListenerKey: ListenerKey{TCP, 443}, Name: "made-by-hand"}})
						return lb
					},
					want:  mustResolve(t, base(), nodes("n1")),
					check: func(t *testing.T, ops []Op) { assert.Empty(t, ops) },
				},
				{
					name: "duplicate listener of ours on one key: the extra one goes",
					actual: func() *LoadBalancer {
						lb := actualFrom(mustResolve(t, base(), nodes("n1")))
						dup := lb.Listeners[0]
						dup.ID = "lbl-dup"
						lb.Listeners = append(lb.Listeners, dup)
						return lb
					},
					want: mustResolve(t, base(), nodes("n1")),
					check: func(t *testing.T, ops []Op) {
						require.Equal(t, []OpKind{OpDeleteListeners}, kinds(ops))
						assert.Equal(t, []string{"lbl-dup"}, ops[0].ListenerIDs)
					},
				},
			} {
				t.Run(tc.name, func(t *testing.T) {
					var lb *LoadBalancer
					if tc.actual == nil {
						lb = actualFrom(tc.want)
					} else {
						lb = tc.actual()
					}
					ops, err := Plan(tc.want, lb)
					require.NoError(t, err)
					tc.check(t, ops)
				})
			}
		})
	}
}

func TestPlanConflictWithForeignListener(t *testing.T) {
	for _, mode := range modes {
		t.Run(string(mode), func(t *testing.T) {
			spec := mustResolve(t, service(withMode(mode)), nodes("n1"))
			lb := &LoadBalancer{ID: "lb-9", Listeners: []Listener{{ID: "lbl-x", ListenerSpec: ListenerSpec{ListenerKey: ListenerKey{TCP, 80}, Name: "someone"}}}}
			_, err := Plan(spec, lb)
			var ce *ConflictError
			require.ErrorAs(t, err, &ce)
			assert.Equal(t, "lbl-x", ce.ListenerID)
			assert.Contains(t, err.Error(), "port TCP/80 is taken by listener lbl-x")
		})
	}
}

func TestPlanRelease(t *testing.T) {
	spec := mustResolve(t, service(withSourceRanges("10.0.0.0/8")), nodes("n1"))
	lb := actualFrom(spec)
	lb.Listeners = append(lb.Listeners, Listener{ID: "lbl-user", ListenerSpec: ListenerSpec{ListenerKey: ListenerKey{TCP, 443}, Name: "made-by-hand"}})
	lb.Filters = append(lb.Filters, Filter{ID: "sg-user"})
	ops := PlanRelease(spec.Owner, spec.ListenerName, lb)
	require.Equal(t, []OpKind{OpSetSourceRanges, OpDeleteListeners}, kinds(ops))
	assert.Equal(t, []string{"lbl-a"}, ops[1].ListenerIDs, "only the Service's listener goes")
	assert.Empty(t, ops[0].SourceRanges)
}
