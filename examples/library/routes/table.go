package routes

import (
	"context"
	"net/netip"
	"slices"
	"strconv"
	"sync"

	"github.com/stratus-cloud/stratus/routes"
)

// NimbusTable is the route table of "Nimbus", a cloud whose API creates routes 10 at a
// time, all or none, and refuses any destination it already routes. Machines listed in
// Running are the next hops that carry traffic.
type NimbusTable struct {
	mu      sync.Mutex
	entries []routes.Route
	nextID  int
	Running map[netip.Addr]bool
	Calls   int
}

var _ routes.Table = (*NimbusTable)(nil)

// Limits: Nimbus takes 10 routes per call.
func (t *NimbusTable) Limits() routes.Limits { return routes.Limits{MaxCreate: 10, MaxDelete: 10} }

// List returns the whole table.
func (t *NimbusTable) List(context.Context) ([]routes.Route, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return slices.Clone(t.entries), nil
}

// Create is Nimbus' "AddRoutes": all or none. Its refusals are routes.Refusal, so that
// the engine splits a refused batch and the good routes land.
func (t *NimbusTable) Create(_ context.Context, rs []routes.Route) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.Calls++
	for _, r := range rs {
		if slices.ContainsFunc(t.entries, func(e routes.Route) bool { return e.Destination == r.Destination }) {
			return &routes.Refusal{Code: "DestinationTaken", Message: r.Destination.String() + " is routed already"}
		}
	}
	for _, r := range rs {
		t.nextID++
		r.ID = "nr-" + strconv.Itoa(t.nextID)
		t.entries = append(t.entries, r)
	}
	return nil
}

// Delete is Nimbus' "RemoveRoutes", by id.
func (t *NimbusTable) Delete(_ context.Context, rs []routes.Route) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.Calls++
	for _, r := range rs {
		i := slices.IndexFunc(t.entries, func(e routes.Route) bool { return e.ID == r.ID })
		if i < 0 {
			return &routes.Refusal{Code: "NoSuchRoute", Message: r.ID, NotFound: true}
		}
		t.entries = slices.Delete(t.entries, i, i+1)
	}
	return nil
}

// LiveGateways says which next hops are running machines. Nimbus' machine list is always
// current, so the freshness the engine asks for does not matter here.
func (t *NimbusTable) LiveGateways(_ context.Context, gws []netip.Addr, _ bool) (map[netip.Addr]bool, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := map[netip.Addr]bool{}
	for _, g := range gws {
		out[g] = t.Running[g]
	}
	return out, nil
}
