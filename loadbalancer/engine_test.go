package loadbalancer

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	v1 "k8s.io/api/core/v1"
)

type testEnv struct {
	cloud  *fakeBackend
	engine *Engine
	ctx    context.Context
	ids    map[string]string // service name -> recorded load balancer id
	mu     sync.Mutex
}

func newTestEnv(t *testing.T, mut ...func(*Config)) *testEnv {
	t.Helper()
	env := &testEnv{cloud: newFakeBackend(testCluster), ctx: context.Background(), ids: map[string]string{}}
	cfg := Config{Settings: testSettings(), Backend: env.cloud, NodeID: testNodeID,
		RecordID: func(_ context.Context, svc *v1.Service, id string) error {
			env.mu.Lock()
			defer env.mu.Unlock()
			env.ids[svc.Name] = id
			return nil
		}}
	for _, m := range mut {
		m(&cfg)
	}
	var err error
	env.engine, err = New(cfg)
	require.NoError(t, err)
	return env
}

// restart is a new engine (a restarted CCM) on the same cloud.
func (env *testEnv) restart(t *testing.T) {
	t.Helper()
	e, err := New(env.engine.cfg)
	require.NoError(t, err)
	env.engine = e
}

func (env *testEnv) ensure(t *testing.T, svc *v1.Service, ns []*v1.Node) *v1.LoadBalancerStatus {
	t.Helper()
	st, err := env.engine.EnsureLoadBalancer(env.ctx, "kubernetes", svc, ns)
	require.NoError(t, err)
	return st
}

// owned are the cloud's load balancers tagged for svc.
func (env *testEnv) owned(svc *v1.Service) []*LoadBalancer {
	var out []*LoadBalancer
	for _, lb := range env.cloud.all() {
		if lb.ownedBy(testCluster, svc.UID) {
			out = append(out, lb)
		}
	}
	return out
}

func targetIDs(l Listener) []string {
	var out []string
	for _, t := range l.Targets {
		out = append(out, t.ID)
	}
	return out
}

func TestEngineEnsureAndFewCalls(t *testing.T) {
	for _, mode := range modes {
		t.Run(string(mode), func(t *testing.T) {
			env := newTestEnv(t)
			svc := service(withMode(mode))
			st := env.ensure(t, svc, nodes("n1", "n2"))
			require.Len(t, st.Ingress, 1)
			lbs := env.owned(svc)
			require.Len(t, lbs, 1)
			assert.Equal(t, lbs[0].VIP, st.Ingress[0].IP)
			want := v1.LoadBalancerIPModeProxy
			if mode == ModeVIP {
				want = v1.LoadBalancerIPModeVIP
			}
			assert.Equal(t, want, *st.Ingress[0].IPMode)
			assert.Equal(t, lbs[0].ID, env.ids["web"], "the load balancer id is recorded on the Service")
			require.Len(t, lbs[0].Listeners, 1)
			assert.Equal(t, []string{"ins-n1", "ins-n2"}, targetIDs(lbs[0].Listeners[0]))
			assert.Equal(t, map[string]int{"List": 1, "Create": 1, "CreateListeners": 1, "RegisterTargets": 1}, env.cloud.snapshot())

			t.Run("unchanged costs nothing", func(t *testing.T) {
				env.cloud.resetCalls()
				env.ensure(t, svc, nodes("n1", "n2"))
				require.NoError(t, env.engine.UpdateLoadBalancer(env.ctx, "", svc, nodes("n2", "n1")))
				_, exists, err := env.engine.GetLoadBalancer(env.ctx, "", svc)
				require.NoError(t, err)
				assert.True(t, exists)
				assert.Empty(t, env.cloud.snapshot(), "no read, no write")
			})
			t.Run("node added: one write, no read", func(t *testing.T) {
				env.cloud.resetCalls()
				require.NoError(t, env.engine.UpdateLoadBalancer(env.ctx, "", svc, nodes("n1", "n2", "n3")))
				assert.Equal(t, map[string]int{"RegisterTargets": 1}, env.cloud.snapshot())
				lb, _ := env.cloud.lb(lbs[0].ID)
				assert.Equal(t, []string{"ins-n1", "ins-n2", "ins-n3"}, targetIDs(lb.Listeners[0]))
			})
			t.Run("node removed: one write, no read", func(t *testing.T) {
				env.cloud.resetCalls()
				require.NoError(t, env.engine.UpdateLoadBalancer(env.ctx, "", svc, nodes("n1", "n3")))
				assert.Equal(t, map[string]int{"DeregisterTargets": 1}, env.cloud.snapshot())
			})
			t.Run("restart: the cache is rebuilt and no second load balancer is made", func(t *testing.T) {
				env.restart(t)
				env.cloud.resetCalls()
				st2 := env.ensure(t, svc, nodes("n1", "n3"))
				assert.Equal(t, st.Ingress[0].IP, st2.Ingress[0].IP)
				assert.Equal(t, map[string]int{"List": 1}, env.cloud.snapshot())
				assert.Len(t, env.owned(svc), 1)
			})
		})
	}
}

func TestEngineInvalidAnnotationChangesNothing(t *testing.T) {
	for _, mode := range modes {
		t.Run(string(mode), func(t *testing.T) {
			env := newTestEnv(t)
			svc := service(withMode(mode))
			env.ensure(t, svc, nodes("n1"))
			before := env.cloud.all()
			env.cloud.resetCalls()

			bad := svc.DeepCopy()
			bad.Annotations[AnnotationHealthCheckTimeout] = "soon"
			bad.Annotations[AnnotationScheduler] = "FASTEST"
			_, err := env.engine.EnsureLoadBalancer(env.ctx, "", bad, nodes("n1", "n2"))
			var inv *InvalidServiceError
			require.ErrorAs(t, err, &inv)
			assert.Contains(t, err.Error(), AnnotationHealthCheckTimeout)
			assert.Contains(t, err.Error(), AnnotationScheduler)
			require.Error(t, env.engine.UpdateLoadBalancer(env.ctx, "", bad, nodes("n1", "n2")))
			assert.Empty(t, env.cloud.snapshot(), "no cloud call at all")
			assert.Equal(t, before, env.cloud.all())
		})
	}
}

func TestEngineOwnership(t *testing.T) {
	env := newTestEnv(t)
	svc := service()
	// Another cluster's load balancer for a Service with the same UID, and one made by hand.
	foreign := &LoadBalancer{ID: "lb-other", VIP: "198.18.9.9", Tags: map[string]string{TagCluster: "cls-other", TagServiceUID: string(svc.UID)}}
	manual := &LoadBalancer{ID: "lb-manual", VIP: "198.18.9.8"}
	env.cloud.add(foreign)
	env.cloud.add(manual)

	env.ensure(t, svc, nodes("n1"))
	require.Len(t, env.owned(svc), 1)
	require.NoError(t, env.engine.EnsureLoadBalancerDeleted(env.ctx, "", svc))
	assert.Empty(t, env.owned(svc), "the Service's own load balancer is deleted")
	_, ok := env.cloud.lb("lb-other")
	assert.True(t, ok, "another cluster's load balancer is untouched")
	_, ok = env.cloud.lb("lb-manual")
	assert.True(t, ok, "a hand-made load balancer is untouched")

	t.Run("already gone deletes cleanly", func(t *testing.T) {
		require.NoError(t, env.engine.EnsureLoadBalancerDeleted(env.ctx, "", svc))
		_, exists, err := env.engine.GetLoadBalancer(env.ctx, "", svc)
		require.NoError(t, err)
		assert.False(t, exists)
	})
	t.Run("deleteOwned refuses an untagged load balancer", func(t *testing.T) {
		err := env.engine.deleteOwned(env.ctx, Owner{UID: svc.UID}, manual)
		require.Error(t, err)
		_, ok := env.cloud.lb("lb-manual")
		assert.True(t, ok)
	})
	t.Run("adopting a Stratus-managed load balancer is refused", func(t *testing.T) {
		s := service(withUID("uid-2"), withName("default", "api"), withAnnotation(AnnotationExistingLB, "lb-other"))
		_, err := env.engine.EnsureLoadBalancer(env.ctx, "", s, nodes("n1"))
		require.Error(t, err)
		assert.Contains(t, err.Error(), "is managed by Stratus (cluster cls-other")
	})
}

func TestEngineAdoptedLoadBalancer(t *testing.T) {
	for _, mode := range modes {
		t.Run(string(mode), func(t *testing.T) {
			env := newTestEnv(t)
			hand := Listener{ID: "lbl-hand", ListenerSpec: ListenerSpec{ListenerKey: ListenerKey{TCP, 443}, Name: "https-by-hand", Targets: []Target{{ID: "ins-x", Port: 8443, Weight: 10}}}}
			env.cloud.add(&LoadBalancer{ID: "lb-existing", VIP: "198.18.7.7", Listeners: []Listener{hand}, Filters: []Filter{{ID: "sg-hand"}}})

			svc := service(withMode(mode), withAnnotation(AnnotationExistingLB, "lb-existing"), withSourceRanges("10.0.0.0/8"))
			st := env.ensure(t, svc, nodes("n1"))
			assert.Equal(t, "198.18.7.7", st.Ingress[0].IP)
			lb, _ := env.cloud.lb("lb-existing")
			require.Len(t, lb.Listeners, 2)
			assert.Equal(t, hand, lb.Listeners[0], "the hand-made listener is untouched")
			assert.Len(t, lb.Filters, 2, "the Service's filter joins the existing one")
			assert.Empty(t, lb.Tags, "an adopted load balancer is not tagged")

			// Another Service wanting the hand-made listener's port conflicts.
			clash := service(withMode(mode), withUID("uid-2"), withName("default", "tls"), withAnnotation(AnnotationExistingLB, "lb-existing"),
				withPorts(v1.ServicePort{Name: "tls", Protocol: v1.ProtocolTCP, Port: 443, NodePort: 30443}))
			_, err := env.engine.EnsureLoadBalancer(env.ctx, "", clash, nodes("n1"))
			var ce *ConflictError
			require.ErrorAs(t, err, &ce)

			svc.Annotations[AnnotationLoadBalancerID] = "lb-existing" // as recorded
			require.NoError(t, env.engine.EnsureLoadBalancerDeleted(env.ctx, "", svc))
			lb, ok := env.cloud.lb("lb-existing")
			require.True(t, ok, "an adopted load balancer stays when the Service goes")
			assert.Equal(t, []Listener{hand}, lb.Listeners)
			assert.Equal(t, []Filter{{ID: "sg-hand"}}, lb.Filters)
		})
	}
}

func TestEngineRollsBackAHalfMadeLoadBalancer(t *testing.T) {
	for _, mode := range modes {
		t.Run(string(mode), func(t *testing.T) {
			env := newTestEnv(t)
			svc := service(withMode(mode))
			quota := errors.New("clb CreateListener: LimitExceeded: load balancer allows 0 listeners (RequestId r-1)")
			env.cloud.failNext("CreateListeners", quota)
			_, err := env.engine.EnsureLoadBalancer(env.ctx, "", svc, nodes("n1"))
			require.Error(t, err)
			assert.Contains(t, err.Error(), "LimitExceeded", "the cloud's code and message reach the event")
			assert.Contains(t, err.Error(), "service default/web")
			assert.Empty(t, env.owned(svc), "nothing half-made is left behind")

			// The retry makes a fresh load balancer (the old token's one is gone).
			env.ensure(t, svc, nodes("n1"))
			lbs := env.owned(svc)
			require.Len(t, lbs, 1)
			assert.Len(t, lbs[0].Listeners, 1)

			t.Run("a restarted engine whose token names a deleted load balancer makes a new one", func(t *testing.T) {
				require.NoError(t, env.engine.EnsureLoadBalancerDeleted(env.ctx, "", svc))
				env.restart(t)
				// First attempt with the UID's token, whose load balancer is gone.
				env.cloud.failNext("CreateListeners", quota)
				_, err := env.engine.EnsureLoadBalancer(env.ctx, "", svc, nodes("n1"))
				require.Error(t, err)
				env.restart(t) // forget the bumped generation too
				env.ensure(t, svc, nodes("n1"))
				assert.Len(t, env.owned(svc), 1)
			})
		})
	}
}

func TestEngineRecoversFromAStaleCache(t *testing.T) {
	env := newTestEnv(t)
	svc := service()
	env.ensure(t, svc, nodes("n1", "n2"))
	lb := env.owned(svc)[0]
	// Someone unbinds n2 by hand: the cache still has it.
	changed := lb.clone()
	changed.Listeners[0].Targets = changed.Listeners[0].Targets[:1]
	env.cloud.add(changed)

	env.cloud.resetCalls()
	require.NoError(t, env.engine.UpdateLoadBalancer(env.ctx, "", svc, nodes("n1")))
	calls := env.cloud.snapshot()
	assert.Equal(t, 1, calls["DeregisterTargets"], "the cache said n2 was bound")
	assert.Equal(t, 1, calls["Get"], "the contradiction makes the engine read the load balancer again")
	got, _ := env.cloud.lb(lb.ID)
	assert.Equal(t, []string{"ins-n1"}, targetIDs(got.Listeners[0]))

	// And a node added back converges from the fresh state.
	require.NoError(t, env.engine.UpdateLoadBalancer(env.ctx, "", svc, nodes("n1", "n2")))
	got, _ = env.cloud.lb(lb.ID)
	assert.Equal(t, []string{"ins-n1", "ins-n2"}, targetIDs(got.Listeners[0]))
}

func TestEngineFailedWriteIsReadAgain(t *testing.T) {
	env := newTestEnv(t)
	svc := service()
	env.ensure(t, svc, nodes("n1"))
	env.cloud.failNext("RegisterTargets", errors.New("clb BatchRegisterTargets: InternalError: try again"))
	require.Error(t, env.engine.UpdateLoadBalancer(env.ctx, "", svc, nodes("n1", "n2")))
	env.cloud.resetCalls()
	require.NoError(t, env.engine.UpdateLoadBalancer(env.ctx, "", svc, nodes("n1", "n2")))
	assert.Equal(t, map[string]int{"Get": 1, "RegisterTargets": 1}, env.cloud.snapshot())
}

func TestEngineSwitchInternalAndPublic(t *testing.T) {
	for _, mode := range modes {
		t.Run(string(mode), func(t *testing.T) {
			env := newTestEnv(t)
			svc := service(withMode(mode))
			public := env.ensure(t, svc, nodes("n1"))
			old := env.owned(svc)[0]

			svc.Annotations[AnnotationInternalSubnet] = "subnet-gz1"
			internal := env.ensure(t, svc, nodes("n1"))
			assert.NotEqual(t, public.Ingress[0].IP, internal.Ingress[0].IP)
			lbs := env.owned(svc)
			require.Len(t, lbs, 1, "the public load balancer is deleted once the internal one works")
			assert.True(t, lbs[0].Internal)
			assert.NotEqual(t, old.ID, lbs[0].ID)
			assert.Equal(t, []string{"ins-n1"}, targetIDs(lbs[0].Listeners[0]))
		})
	}
}

func TestEngineUpdateWithoutLoadBalancer(t *testing.T) {
	env := newTestEnv(t)
	err := env.engine.UpdateLoadBalancer(env.ctx, "", service(), nodes("n1"))
	require.Error(t, err)
	assert.True(t, isNoLoadBalancer(err))
	assert.Empty(t, env.owned(service()))
}

func TestEngineCacheMaxAge(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	env := newTestEnv(t, func(c *Config) {
		c.CacheMaxAge = time.Minute
		c.Now = func() time.Time { return now }
	})
	svc := service()
	env.ensure(t, svc, nodes("n1"))
	env.cloud.resetCalls()
	now = now.Add(59 * time.Second)
	env.ensure(t, svc, nodes("n1"))
	assert.Empty(t, env.cloud.snapshot())
	now = now.Add(2 * time.Second)
	env.ensure(t, svc, nodes("n1"))
	assert.Equal(t, map[string]int{"List": 1}, env.cloud.snapshot(), "an old cache is rebuilt")
}

func TestEngineConcurrentServices(t *testing.T) {
	env := newTestEnv(t)
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Go(func() {
			svc := service(withUID("uid-"+string(rune('A'+i))), withName("default", "svc-"+string(rune('A'+i))))
			_, err := env.engine.EnsureLoadBalancer(env.ctx, "", svc, nodes("n1", "n2"))
			assert.NoError(t, err)
		})
	}
	wg.Wait()
	calls := env.cloud.snapshot()
	assert.Equal(t, 1, calls["List"], "concurrent syncs share one cache build")
	assert.Equal(t, 50, calls["Create"])
	assert.Equal(t, 50, calls["RegisterTargets"])
}

func TestEngineEndpointsDriveTargets(t *testing.T) {
	eps := map[string]int{"n1": 2}
	env := newTestEnv(t, func(c *Config) {
		c.Endpoints = func(*v1.Service) (map[string]int, error) { return eps, nil }
	})
	svc := service(withLocal(32000), withAnnotation(AnnotationLocalOnlyBindNodeWithPod, "true"))
	env.ensure(t, svc, nodes("n1", "n2"))
	assert.Equal(t, []string{"ins-n1"}, targetIDs(env.owned(svc)[0].Listeners[0]))
	eps = map[string]int{"n2": 1}
	require.NoError(t, env.engine.UpdateLoadBalancer(env.ctx, "", svc, nodes("n1", "n2")))
	assert.Equal(t, []string{"ins-n2"}, targetIDs(env.owned(svc)[0].Listeners[0]))

	noEndpoints := newTestEnv(t)
	_, err := noEndpoints.engine.EnsureLoadBalancer(env.ctx, "", svc, nodes("n1"))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "need the EndpointSlice informer")
}
