package routes

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"sync"
	"testing"
)

// fakeTable is an all-or-none route table with the refusals of a VPC route table: a
// destination inside the VPC CIDR, a duplicate destination, a full table. It fails the
// test when a call carries more routes than its limits allow.
type fakeTable struct {
	t      testing.TB
	vpc    netip.Prefix
	quota  int
	limits Limits

	mu        sync.Mutex
	routes    []Route
	nextID    int
	live      map[netip.Addr]bool
	calls     map[string]int
	transient map[string]int // fail the next N calls of an action with a non-refusal
	liveErr   error
	// holdDelete, when set, is closed by the test to let a Delete proceed; entered is
	// signalled when one arrives.
	holdDelete chan struct{}
	entered    chan struct{}
}

func newFakeTable(t testing.TB) *fakeTable {
	return &fakeTable{
		t: t, vpc: netip.MustParsePrefix("10.0.0.0/16"), quota: 10000,
		limits: Limits{MaxCreate: 100, MaxDelete: 100},
		live:   map[netip.Addr]bool{}, calls: map[string]int{}, transient: map[string]int{},
	}
}

func (f *fakeTable) Limits() Limits { return f.limits }

func (f *fakeTable) List(context.Context) ([]Route, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls["List"]++
	return slices.Clone(f.routes), nil
}

func (f *fakeTable) add(r Route) Route {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.nextID++
	r.ID = "rti-" + strconv.Itoa(f.nextID)
	f.routes = append(f.routes, r)
	return r
}

func (f *fakeTable) fail(action string) error {
	if f.transient[action] > 0 {
		f.transient[action]--
		return fmt.Errorf("%s: InternalError: injected", action)
	}
	return nil
}

func (f *fakeTable) Create(_ context.Context, rs []Route) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls["Create"]++
	if len(rs) > f.limits.MaxCreate {
		f.t.Errorf("Create with %d routes, the limit is %d", len(rs), f.limits.MaxCreate)
	}
	if err := f.fail("Create"); err != nil {
		return err
	}
	if len(f.routes)+len(rs) > f.quota {
		return &Refusal{Code: "LimitExceeded", Message: fmt.Sprintf("the table holds at most %d routes", f.quota), Quota: true}
	}
	seen := map[netip.Prefix]bool{}
	for _, r := range f.routes {
		seen[r.Destination] = true
	}
	for i, r := range rs {
		switch {
		case r.Destination.Overlaps(f.vpc):
			return &Refusal{Code: "InvalidParameterValue.VpcCidrConflict", Message: fmt.Sprintf("Routes.%d: %s overlaps the VPC CIDR", i, r.Destination)}
		case seen[r.Destination]:
			return &Refusal{Code: "InvalidParameterValue.Duplicate", Message: fmt.Sprintf("Routes.%d: %s is routed already", i, r.Destination)}
		}
		seen[r.Destination] = true
	}
	for _, r := range rs {
		f.nextID++
		r.ID = "rti-" + strconv.Itoa(f.nextID)
		f.routes = append(f.routes, r)
	}
	return nil
}

func (f *fakeTable) Delete(_ context.Context, rs []Route) error {
	if f.holdDelete != nil {
		f.entered <- struct{}{}
		<-f.holdDelete
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls["Delete"]++
	if len(rs) > f.limits.MaxDelete {
		f.t.Errorf("Delete with %d routes, the limit is %d", len(rs), f.limits.MaxDelete)
	}
	if err := f.fail("Delete"); err != nil {
		return err
	}
	gone := map[string]bool{}
	for i, r := range rs {
		if !slices.ContainsFunc(f.routes, func(x Route) bool { return x.ID == r.ID }) {
			return &Refusal{Code: "InvalidRouteId.NotFound", Message: fmt.Sprintf("Routes.%d: route %s is not in the table", i, r.ID), NotFound: true}
		}
		gone[r.ID] = true
	}
	f.routes = slices.DeleteFunc(f.routes, func(x Route) bool { return gone[x.ID] })
	return nil
}

func (f *fakeTable) LiveGateways(_ context.Context, gws []netip.Addr, current bool) (map[netip.Addr]bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls["LiveGateways"]++
	if current {
		f.calls["LiveGateways current"]++
	}
	if f.liveErr != nil {
		return nil, f.liveErr
	}
	out := make(map[netip.Addr]bool, len(gws))
	for _, g := range gws {
		out[g] = f.live[g]
	}
	return out, nil
}

func (f *fakeTable) setLive(live bool, ips ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, ip := range ips {
		f.live[netip.MustParseAddr(ip)] = live
	}
}

func (f *fakeTable) count(action string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[action]
}

func (f *fakeTable) resetCalls() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = map[string]int{}
}

// byDest returns the table's routes by destination (the test fails on a duplicate).
func (f *fakeTable) byDest() map[string]Route {
	f.mu.Lock()
	defer f.mu.Unlock()
	m := map[string]Route{}
	for _, r := range f.routes {
		if _, dup := m[r.Destination.String()]; dup {
			f.t.Errorf("two routes to %s", r.Destination)
		}
		m[r.Destination.String()] = r
	}
	return m
}
