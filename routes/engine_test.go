package routes

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	cloudprovider "k8s.io/cloud-provider"
)

const cluster = "c1"

func mkNode(name, ip string, podCIDRs ...string) *v1.Node {
	return &v1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec:       v1.NodeSpec{PodCIDRs: podCIDRs},
		Status: v1.NodeStatus{Addresses: []v1.NodeAddress{
			{Type: v1.NodeInternalIP, Address: ip}, {Type: v1.NodeHostName, Address: name},
		}},
	}
}

type nodeSet struct {
	mu    sync.Mutex
	nodes []*v1.Node
}

func (s *nodeSet) list() ([]*v1.Node, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*v1.Node(nil), s.nodes...), nil
}

func (s *nodeSet) set(nodes ...*v1.Node) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.nodes = nodes
}

func newEngine(t *testing.T, tbl *fakeTable, batching bool, nodes *nodeSet) *Engine {
	t.Helper()
	e, err := New(Config{ClusterID: cluster, Table: tbl, Nodes: nodes.list, Batching: batching, Window: 20 * time.Millisecond})
	require.NoError(t, err)
	return e
}

func want(node *v1.Node) *cloudprovider.Route {
	return &cloudprovider.Route{TargetNode: types.NodeName(node.Name), TargetNodeAddresses: node.Status.Addresses, DestinationCIDR: node.Spec.PodCIDRs[0]}
}

func route(dest, gw, desc string) Route {
	return Route{Destination: netip.MustParsePrefix(dest), Gateway: netip.MustParseAddr(gw), Description: desc}
}

var modes = []struct {
	name     string
	batching bool
}{{"batching on", true}, {"batching off", false}}

func TestListRoutesOwnershipAndHealth(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			tbl := newFakeTable(t)
			nodes := &nodeSet{}
			nodes.set(mkNode("n1", "10.0.1.1", "10.244.1.0/24"), mkNode("n2", "10.0.1.2", "10.244.2.0/24"))
			own1 := tbl.add(route("10.244.1.0/24", "10.0.1.1", Marker(cluster)))
			own2 := tbl.add(route("10.244.2.0/24", "10.0.1.2", Marker(cluster)))
			ownDead := tbl.add(route("10.244.3.0/24", "10.0.1.3", Marker(cluster)))
			tbl.add(route("10.244.4.0/24", "10.0.1.1", Marker("other")))
			tbl.add(route("10.244.5.0/24", "10.0.1.2", "made by hand"))
			tbl.add(route("10.244.6.0/24", "10.0.1.2", Marker(cluster)+" "))
			tbl.add(Route{Destination: netip.MustParsePrefix("10.244.7.0/24"), Description: Marker(cluster)}) // not an address next hop
			tbl.setLive(true, "10.0.1.1", "10.0.1.2")
			e := newEngine(t, tbl, m.batching, nodes)

			got, err := e.ListRoutes(context.Background(), "kubernetes")
			require.NoError(t, err)
			byName := map[string]*cloudprovider.Route{}
			for _, r := range got {
				byName[r.Name] = r
			}
			require.Len(t, byName, 3, "only this cluster's routes, exactly marked, with an address next hop")
			assert.Equal(t, 1, tbl.count("LiveGateways current"), "blackholes are judged on the current state, in one check")
			cases := []struct {
				name      string
				id        string
				node      types.NodeName
				dest      string
				blackhole bool
			}{
				{"owned, live", own1.ID, "n1", "10.244.1.0/24", false},
				{"owned, other node", own2.ID, "n2", "10.244.2.0/24", false},
				{"owned, gateway gone", ownDead.ID, "", "10.244.3.0/24", true},
			}
			for _, tc := range cases {
				t.Run(tc.name, func(t *testing.T) {
					r := byName[tc.id]
					require.NotNil(t, r)
					assert.Equal(t, tc.node, r.TargetNode)
					assert.Equal(t, tc.dest, r.DestinationCIDR)
					assert.Equal(t, tc.blackhole, r.Blackhole)
				})
			}
		})
	}
}

func TestListRoutesFailsRatherThanGuess(t *testing.T) {
	tbl := newFakeTable(t)
	tbl.add(route("10.244.1.0/24", "10.0.1.1", Marker(cluster)))
	tbl.liveErr = errors.New("DescribeInstances: RequestLimitExceeded")
	e := newEngine(t, tbl, true, &nodeSet{})
	_, err := e.ListRoutes(context.Background(), "")
	require.Error(t, err, "an unknown gateway state must not be reported as a blackhole (the controller would delete the route)")
	assert.Contains(t, err.Error(), "RequestLimitExceeded")

	e2, err := New(Config{ClusterID: cluster, Table: tbl})
	require.NoError(t, err)
	_, err = e2.ListRoutes(context.Background(), "")
	assert.ErrorContains(t, err, "no node lister")
}

// createAll calls CreateRoute for every node at once, as the route controller does.
func createAll(e *Engine, nodes []*v1.Node) map[string]error {
	var mu sync.Mutex
	out := map[string]error{}
	var wg sync.WaitGroup
	for _, n := range nodes {
		wg.Go(func() {
			err := e.CreateRoute(context.Background(), "kubernetes", string(n.UID), want(n))
			mu.Lock()
			out[n.Name] = err
			mu.Unlock()
		})
	}
	wg.Wait()
	return out
}

func fleet(tbl *fakeTable, n int) []*v1.Node {
	var nodes []*v1.Node
	for i := range n {
		ip := fmt.Sprintf("10.0.%d.%d", 1+i/250, 1+i%250)
		nodes = append(nodes, mkNode(fmt.Sprintf("node-%04d", i), ip, fmt.Sprintf("10.%d.%d.0/24", 100+i/256, i%256)))
		tbl.setLive(true, ip)
	}
	return nodes
}

func TestCreateRoutesCoalesced(t *testing.T) {
	cases := []struct {
		name     string
		batching bool
		nodes    int
		maxCalls int
	}{
		{"batching on: 250 routes in calls of up to 100", true, 250, 6},
		{"batching off: one call per route", false, 250, 250},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tbl := newFakeTable(t)
			nodes := fleet(tbl, tc.nodes)
			set := &nodeSet{}
			set.set(nodes...)
			e := newEngine(t, tbl, tc.batching, set)
			for name, err := range createAll(e, nodes) {
				assert.NoError(t, err, name)
			}
			got := tbl.byDest()
			require.Len(t, got, tc.nodes)
			for _, n := range nodes {
				r := got[n.Spec.PodCIDRs[0]]
				assert.Equal(t, n.Status.Addresses[0].Address, r.Gateway.String(), n.Name)
				assert.Equal(t, Marker(cluster), r.Description)
			}
			assert.LessOrEqual(t, tbl.count("Create"), tc.maxCalls)
			if !tc.batching {
				assert.Equal(t, tc.nodes, tbl.count("Create"))
			}

			// Idempotent: routes the engine knows are there cost no call.
			tbl.resetCalls()
			_, err := e.ListRoutes(context.Background(), "")
			require.NoError(t, err)
			for name, err := range createAll(e, nodes) {
				assert.NoError(t, err, name)
			}
			assert.Zero(t, tbl.count("Create"))
		})
	}
}

func TestBadRoutesFailAlone(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			tbl := newFakeTable(t)
			nodes := fleet(tbl, 60)
			// Two bad ones: a podCIDR inside the VPC CIDR, and one a hand-made route holds.
			nodes[7].Spec.PodCIDRs = []string{"10.0.200.0/24"}
			tbl.add(route(nodes[42].Spec.PodCIDRs[0], "10.0.9.9", "made by hand"))
			set := &nodeSet{}
			set.set(nodes...)
			e := newEngine(t, tbl, m.batching, set)
			errs := createAll(e, nodes)
			for i, n := range nodes {
				switch i {
				case 7:
					require.Error(t, errs[n.Name])
					assert.Contains(t, errs[n.Name].Error(), "InvalidParameterValue.VpcCidrConflict", "the cloud's code reaches the caller")
					assert.Contains(t, errs[n.Name].Error(), "node "+n.Name)
				case 42:
					require.Error(t, errs[n.Name])
					assert.Contains(t, errs[n.Name].Error(), "InvalidParameterValue.Duplicate")
				default:
					assert.NoError(t, errs[n.Name], n.Name)
				}
			}
			got := tbl.byDest()
			assert.Len(t, got, 59, "58 good routes and the hand-made one")
			assert.Equal(t, "made by hand", got[nodes[42].Spec.PodCIDRs[0]].Description, "the hand-made route is untouched")
			if m.batching {
				// 60 routes in one call; each bad route costs a split path of about log2(60) calls.
				assert.LessOrEqual(t, tbl.count("Create"), 1+2*2*6)
			}
		})
	}
}

func TestFullTable(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			tbl := newFakeTable(t)
			tbl.quota = 37
			nodes := fleet(tbl, 100)
			set := &nodeSet{}
			set.set(nodes...)
			e := newEngine(t, tbl, m.batching, set)
			errs := createAll(e, nodes)
			failed := 0
			for _, n := range nodes {
				if err := errs[n.Name]; err != nil {
					failed++
					assert.Contains(t, err.Error(), "LimitExceeded", n.Name)
				}
			}
			assert.Equal(t, 63, failed, "every route that fits lands; the rest are told the table is full")
			assert.Len(t, tbl.byDest(), 37)
			if m.batching {
				assert.LessOrEqual(t, tbl.count("Create"), 20, "a full table is not probed route by route")
			}
		})
	}
}

func TestTransientFailureIsNotSplit(t *testing.T) {
	tbl := newFakeTable(t)
	nodes := fleet(tbl, 50)
	tbl.transient["Create"] = 1
	set := &nodeSet{}
	set.set(nodes...)
	e := newEngine(t, tbl, true, set)
	errs := createAll(e, nodes)
	failed := 0
	for _, err := range errs {
		if err != nil {
			failed++
			assert.Contains(t, err.Error(), "InternalError")
		}
	}
	assert.Positive(t, failed)
	assert.Equal(t, 1, tbl.count("Create"), "a failure that is not a refusal is not retried in parts")
	// The next reconcile creates them.
	for name, err := range createAll(e, nodes) {
		assert.NoError(t, err, name)
	}
	assert.Len(t, tbl.byDest(), 50)
}

func TestGatewayNotLive(t *testing.T) {
	tbl := newFakeTable(t)
	n := mkNode("n1", "10.0.1.1", "10.244.1.0/24")
	e := newEngine(t, tbl, true, &nodeSet{nodes: []*v1.Node{n}})
	err := e.CreateRoute(context.Background(), "", "", want(n))
	require.ErrorIs(t, err, ErrGatewayNotLive)
	assert.Contains(t, err.Error(), "node n1")
	assert.Zero(t, tbl.count("Create"))
	assert.Equal(t, 1, tbl.count("LiveGateways"))
	assert.Zero(t, tbl.count("LiveGateways current"), "skipping a create may rest on an older answer")

	noIP := mkNode("n2", "10.0.1.2", "10.244.2.0/24")
	noIP.Status.Addresses = noIP.Status.Addresses[1:]
	assert.ErrorContains(t, e.CreateRoute(context.Background(), "", "", want(noIP)), "no IPv4 InternalIP")
	v6 := mkNode("n3", "10.0.1.3", "fd00::/64")
	assert.ErrorContains(t, e.CreateRoute(context.Background(), "", "", want(v6)), "only IPv4")
}

func TestReplaceRouteWithNewGateway(t *testing.T) {
	cases := []struct {
		name string
		// old node holding the old gateway, nil when none does
		oldNode  *v1.Node
		replaced bool
	}{
		{"old gateway is no node", nil, true},
		{"old node moved to another podCIDR", mkNode("old", "10.0.1.1", "10.244.9.0/24"), true},
		{"old node still claims the destination", mkNode("old", "10.0.1.1", "10.244.1.0/24"), false},
	}
	for _, tc := range cases {
		for _, m := range modes {
			t.Run(tc.name+"/"+m.name, func(t *testing.T) {
				tbl := newFakeTable(t)
				tbl.setLive(true, "10.0.1.1", "10.0.1.2")
				old := tbl.add(route("10.244.1.0/24", "10.0.1.1", Marker(cluster)))
				moved := mkNode("new", "10.0.1.2", "10.244.1.0/24")
				set := &nodeSet{}
				set.set(moved)
				if tc.oldNode != nil {
					set.set(moved, tc.oldNode)
				}
				e := newEngine(t, tbl, m.batching, set)
				_, err := e.ListRoutes(context.Background(), "")
				require.NoError(t, err)

				err = e.CreateRoute(context.Background(), "", "", want(moved))
				got := tbl.byDest()["10.244.1.0/24"]
				if tc.replaced {
					require.NoError(t, err)
					assert.Equal(t, "10.0.1.2", got.Gateway.String(), "replaced")
					assert.NotEqual(t, old.ID, got.ID)
					// The controller's own delete of the stale route, racing, is a no-op.
					assert.NoError(t, e.DeleteRoute(context.Background(), "", &cloudprovider.Route{Name: old.ID, DestinationCIDR: "10.244.1.0/24"}))
				} else {
					require.Error(t, err)
					assert.Contains(t, err.Error(), "Duplicate", "the cloud's answer, on the node that asked")
					assert.Equal(t, old, got, "the other node's route is untouched")
				}
				assert.Len(t, tbl.byDest(), 1, "never two routes to one destination")
			})
		}
	}
}

func TestDeleteRoutes(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			tbl := newFakeTable(t)
			tbl.setLive(true, "10.0.1.1")
			var own []Route
			for i := range 120 {
				own = append(own, tbl.add(route(fmt.Sprintf("10.244.%d.0/24", i), "10.0.1.1", Marker(cluster))))
			}
			foreign := tbl.add(route("10.250.0.0/24", "10.0.1.1", Marker("other")))
			e := newEngine(t, tbl, m.batching, &nodeSet{})
			listed, err := e.ListRoutes(context.Background(), "")
			require.NoError(t, err)
			require.Len(t, listed, 120)
			// One of them is already gone (deleted by hand): still a success.
			tbl.mu.Lock()
			tbl.routes = tbl.routes[1:]
			tbl.mu.Unlock()
			tbl.resetCalls()

			var wg sync.WaitGroup
			errs := make([]error, len(listed))
			for i, r := range listed {
				wg.Go(func() { errs[i] = e.DeleteRoute(context.Background(), "", r) })
			}
			wg.Wait()
			for i, err := range errs {
				assert.NoError(t, err, listed[i].Name)
			}
			assert.Equal(t, map[string]Route{"10.250.0.0/24": foreign}, tbl.byDest())
			if m.batching {
				assert.LessOrEqual(t, tbl.count("Delete"), 2+2*7)
			} else {
				assert.GreaterOrEqual(t, tbl.count("Delete"), 120)
			}

			// Never a route that is not this cluster's in the last listing.
			tbl.resetCalls()
			err = e.DeleteRoute(context.Background(), "", &cloudprovider.Route{Name: foreign.ID, DestinationCIDR: "10.250.0.0/24"})
			assert.ErrorContains(t, err, "not a route of cluster c1")
			assert.Zero(t, tbl.count("Delete"))
			_ = own
		})
	}
}

func TestCreateWaitsForDeleteOfSameDestination(t *testing.T) {
	tbl := newFakeTable(t)
	tbl.setLive(true, "10.0.1.1", "10.0.1.2")
	old := tbl.add(route("10.244.1.0/24", "10.0.1.1", Marker(cluster)))
	n := mkNode("new", "10.0.1.2", "10.244.1.0/24")
	// The old gateway's node still claims the destination as far as the engine can see,
	// so CreateRoute does not replace on its own: only the controller's delete makes room,
	// and the create must wait for it instead of racing it into a duplicate.
	set := &nodeSet{}
	set.set(n, mkNode("old", "10.0.1.1", "10.244.1.0/24"))
	e := newEngine(t, tbl, true, set)
	listed, err := e.ListRoutes(context.Background(), "")
	require.NoError(t, err)
	require.Len(t, listed, 1)

	tbl.holdDelete, tbl.entered = make(chan struct{}), make(chan struct{}, 1)
	waiting := make(chan struct{}, 1)
	e.onWait = func() { waiting <- struct{}{} }
	var wg sync.WaitGroup
	var delErr, createErr error
	wg.Go(func() { delErr = e.DeleteRoute(context.Background(), "", listed[0]) })
	<-tbl.entered // the delete is in flight
	wg.Go(func() { createErr = e.CreateRoute(context.Background(), "", "", want(n)) })
	<-waiting // the create waits for it
	close(tbl.holdDelete)
	wg.Wait()
	require.NoError(t, delErr)
	require.NoError(t, createErr)
	got := tbl.byDest()["10.244.1.0/24"]
	assert.Equal(t, "10.0.1.2", got.Gateway.String())
	assert.NotEqual(t, old.ID, got.ID)
}
