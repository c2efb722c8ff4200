package instancelookup

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

// TestMain fails the package when any test leaves a goroutine behind.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// The real DescribeInstances limits (tencentcloud-sdk-go v1.0.162, cvm/v20170312
// models.go), written out here on their own so that the fake below does not trust the
// package's constants: a request over any of them fails the test.
const (
	realMaxInstanceIDs  = 100
	realMaxFilters      = 10
	realMaxFilterValues = 5
	realMaxLimit        = 100
	realDefaultLimit    = 20
)

// strictAPI answers Queries from an in-memory list the way DescribeInstances does, records
// every call, and fails the test on any request the real API would refuse.
type strictAPI struct {
	t *testing.T

	mu        sync.Mutex
	instances []Instance
	queries   []Query
	failNext  int
	failWith  error
	// betweenPages, when set, runs before answering a listing page at an offset > 0
	// (with the lock held): the world changing during a walk.
	betweenPages func(f *strictAPI)
	// block, when set, holds every call until it is closed or the call's context ends.
	block chan struct{}
}

func newAPI(t *testing.T, instances []Instance) *strictAPI {
	return &strictAPI{t: t, instances: instances}
}

func violation(q Query) string {
	filters := 0
	if q.VpcID != "" {
		filters++
	}
	if len(q.PrivateIPs) > 0 {
		filters++
	}
	switch {
	case len(q.IDs) > 0 && filters > 0:
		return "InstanceIds and Filters in one request"
	case len(q.IDs) > realMaxInstanceIDs:
		return fmt.Sprintf("%d InstanceIds", len(q.IDs))
	case filters > realMaxFilters:
		return fmt.Sprintf("%d filters", filters)
	case len(q.PrivateIPs) > realMaxFilterValues:
		return fmt.Sprintf("%d values in private-ip-address", len(q.PrivateIPs))
	case q.Limit > realMaxLimit || q.Limit < 0:
		return fmt.Sprintf("Limit %d", q.Limit)
	case q.Offset < 0:
		return fmt.Sprintf("Offset %d", q.Offset)
	}
	return ""
}

func (f *strictAPI) DescribeInstances(ctx context.Context, q Query) (Page, error) {
	if v := violation(q); v != "" {
		f.t.Errorf("request over the real DescribeInstances limits: %s: %+v", v, q)
		return Page{}, errors.New("InvalidParameterValue.LimitExceeded: " + v)
	}
	f.mu.Lock()
	block := f.block
	f.mu.Unlock()
	if block != nil {
		select {
		case <-block:
		case <-ctx.Done():
			return Page{}, ctx.Err()
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.queries = append(f.queries, q)
	if f.betweenPages != nil && q.Offset > 0 && len(q.IDs) == 0 && len(q.PrivateIPs) == 0 {
		f.betweenPages(f)
	}
	if f.failNext > 0 {
		f.failNext--
		return Page{}, f.failWith
	}
	var match []Instance
	for _, inst := range f.instances {
		if q.VpcID != "" && inst.VpcID != q.VpcID {
			continue
		}
		if len(q.IDs) > 0 && !slices.Contains(q.IDs, inst.ID) {
			continue
		}
		if len(q.PrivateIPs) > 0 && !slices.ContainsFunc(inst.PrivateIPs, func(ip string) bool { return slices.Contains(q.PrivateIPs, ip) }) {
			continue
		}
		match = append(match, inst)
	}
	limit := q.Limit
	if limit == 0 {
		limit = realDefaultLimit
	}
	p := Page{Total: len(match)}
	end := min(len(match), q.Offset+limit)
	if q.Offset < end {
		p.Instances = slices.Clone(match[q.Offset:end])
	}
	return p, nil
}

func (f *strictAPI) calls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.queries)
}

// since returns the queries from the n-th on.
func (f *strictAPI) since(n int) []Query {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.queries[n:])
}

func (f *strictAPI) set(instances []Instance) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.instances = instances
}

func (f *strictAPI) add(instances ...Instance) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.instances = append(f.instances, instances...)
}

func (f *strictAPI) setState(id, state string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := range f.instances {
		if f.instances[i].ID == id {
			f.instances[i].State = state
		}
	}
}

func (f *strictAPI) fail(n int, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failNext, f.failWith = n, err
}

func inst(i int) Instance {
	return Instance{
		ID:         fmt.Sprintf("ins-%06d", i),
		State:      "RUNNING",
		Zone:       "ap-guangzhou-1",
		VpcID:      "vpc-1",
		PrivateIPs: []string{fmt.Sprintf("10.%d.%d.%d", i/62500, i/250%250, i%250+1)},
	}
}

func world(n int) []Instance { return worldFrom(0, n) }

func worldFrom(from, n int) []Instance {
	out := make([]Instance, n)
	for i := range out {
		out[i] = inst(from + i)
	}
	return out
}

func ipsOf(instances []Instance) []string {
	var out []string
	for _, in := range instances {
		out = append(out, in.PrivateIPs[0])
	}
	return out
}

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Unix(1e9, 0)} }

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// newLookup returns a Lookup whose owner stops it, and waits for it, when the test ends.
func newLookup(t *testing.T, api API, cfg Config) *Lookup {
	t.Helper()
	if cfg.VpcID == "" {
		cfg.VpcID = "vpc-1"
	}
	ctx, cancel := context.WithCancel(context.Background())
	l := New(ctx, api, cfg)
	t.Cleanup(func() { cancel(); l.Wait() })
	return l
}

func listingQueries(from, pages int) []Query {
	out := make([]Query, pages)
	for i := range out {
		out[i] = Query{VpcID: "vpc-1", Offset: from + i*MaxPageSize, Limit: MaxPageSize}
	}
	return out
}

func TestSerialLookupsUseOneWalkPerHundred(t *testing.T) {
	api := newAPI(t, world(250))
	clk := newClock()
	l := newLookup(t, api, Config{Batching: true, Now: clk.Now})
	ctx := context.Background()
	for i, in := range world(250) {
		got, err := l.ByPrivateIP(ctx, in.PrivateIPs[0], State)
		require.NoError(t, err, i)
		assert.Equal(t, in.ID, got.ID)
		got, err = l.ByID(ctx, in.ID, State)
		require.NoError(t, err, i)
		assert.Equal(t, in.PrivateIPs, got.PrivateIPs)
	}
	assert.Equal(t, listingQueries(0, 3), api.since(0), "250 instances are 3 pages of 100; every lookup after that is a hit")

	// Within the TTL nothing is asked again; past it, one new walk.
	clk.Add(9 * time.Second)
	_, err := l.ByID(ctx, "ins-000007", State)
	require.NoError(t, err)
	assert.Equal(t, 3, api.calls())
	clk.Add(2 * time.Second)
	_, err = l.ByID(ctx, "ins-000007", State)
	require.NoError(t, err)
	assert.Equal(t, listingQueries(0, 3), api.since(3))
}

func TestWithoutBatchingEveryLookupIsOneCall(t *testing.T) {
	api := newAPI(t, world(120))
	l := newLookup(t, api, Config{Batching: false})
	ctx := context.Background()
	for _, in := range world(120) {
		got, err := l.ByPrivateIP(ctx, in.PrivateIPs[0], State)
		require.NoError(t, err)
		assert.Equal(t, in.ID, got.ID)
	}
	assert.Equal(t, 120, api.calls())
	assert.Equal(t, Query{VpcID: "vpc-1", PrivateIPs: []string{"10.0.0.120"}, Limit: MaxPageSize}, api.since(119)[0])

	_, err := l.ByID(ctx, "ins-gone", State)
	assert.ErrorIs(t, err, ErrNotFound)
	assert.Equal(t, Query{IDs: []string{"ins-gone"}, Limit: MaxPageSize}, api.since(120)[0], "ids go as InstanceIds, never with a filter")
}

func TestConcurrentIDLookupsAreCoalescedIntoInstanceIds(t *testing.T) {
	api := newAPI(t, world(300))
	// Three full batches: each is sent the moment it fills, so the long window only
	// guarantees that no batch goes out half empty, whatever the scheduling.
	l := newLookup(t, api, Config{Batching: true, Window: time.Minute})
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make([]error, 300)
	got := make([]Instance, 300)
	for i := range 300 {
		wg.Go(func() { got[i], errs[i] = l.ConfirmByID(ctx, inst(i).ID) })
	}
	wg.Wait()
	for i := range 300 {
		require.NoError(t, errs[i])
		assert.Equal(t, inst(i).ID, got[i].ID)
	}
	qs := api.since(0)
	require.Len(t, qs, 3, "batches of 100")
	asked := map[string]bool{}
	for _, q := range qs {
		assert.Len(t, q.IDs, MaxIDsPerCall)
		assert.Empty(t, q.VpcID)
		assert.Empty(t, q.PrivateIPs)
		for _, id := range q.IDs {
			assert.False(t, asked[id], "%s asked twice", id)
			asked[id] = true
		}
	}
	assert.Len(t, asked, 300)
}

func TestDuplicateKeysInOneBatchAreAskedOnce(t *testing.T) {
	api := newAPI(t, world(3))
	l := newLookup(t, api, Config{Batching: true, Window: 200 * time.Millisecond})
	var wg sync.WaitGroup
	for range 10 {
		wg.Go(func() {
			_, err := l.ConfirmByID(context.Background(), "ins-000001")
			assert.NoError(t, err)
		})
	}
	wg.Wait()
	// Under load a late goroutine may miss the window and make a second batch; what
	// must hold is that no batch carries the id twice.
	for _, q := range api.since(0) {
		assert.Equal(t, []string{"ins-000001"}, q.IDs)
	}
}

func TestFirstLookupsNeedNoConfirmation(t *testing.T) {
	// The walk a lookup starts begins after it was asked, so its misses are answers.
	api := newAPI(t, world(150))
	l := newLookup(t, api, Config{Batching: true})
	_, err := l.ByPrivateIP(context.Background(), "10.9.9.9", Metadata)
	require.ErrorIs(t, err, ErrNotFound)
	assert.Equal(t, listingQueries(0, 2), api.since(0))
}

// TestPrivateIPMissesTakeTheCheaperConfirmation pins the choice doc.go describes: a
// fresh walk when it costs no more requests than filtered queries of 5 addresses, else
// the filtered queries.
func TestPrivateIPMissesTakeTheCheaperConfirmation(t *testing.T) {
	for _, tc := range []struct {
		name    string
		vpc     int // instances listed before the misses
		misses  int // instances created after the listing, looked up by IP
		absent  int // addresses that match nothing, looked up too
		walk    bool
		filters []int // values per filtered query, in order
	}{
		{name: "one new instance in a VPC of 500: one filtered query", vpc: 500, misses: 1, filters: []int{1}},
		{name: "seven misses: two filtered queries", vpc: 500, misses: 6, absent: 1, filters: []int{5, 2}},
		{name: "twenty misses: four filtered queries, fewer than a 5-page walk", vpc: 500, misses: 20, filters: []int{5, 5, 5, 5}},
		{name: "twenty-one misses: a walk of 5 pages costs no more than five filtered queries", vpc: 479, misses: 19, absent: 2, walk: true},
		{name: "a VPC of one page: always the walk", vpc: 50, misses: 1, walk: true},
		{name: "only absent addresses: still confirmed", vpc: 500, absent: 3, filters: []int{3}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			api := newAPI(t, world(tc.vpc))
			l := newLookup(t, api, Config{Batching: true})
			ctx := context.Background()
			_, err := l.ByPrivateIP(ctx, inst(0).PrivateIPs[0], State)
			require.NoError(t, err)
			listed := api.calls()

			fresh := worldFrom(tc.vpc, tc.misses)
			api.add(fresh...)
			ips := append(ipsOf(fresh), ipsOf(worldFrom(90000, tc.absent))...)
			found, err := l.confirmIPs(ctx, ips)
			require.NoError(t, err)
			assert.Len(t, found, tc.misses)
			for _, in := range fresh {
				assert.Equal(t, in.ID, found[in.PrivateIPs[0]].ID)
			}

			qs := api.since(listed)
			if tc.walk {
				assert.Equal(t, listingQueries(0, (tc.vpc+tc.misses+99)/100), qs)
				return
			}
			var sizes []int
			for _, q := range qs {
				assert.Equal(t, "vpc-1", q.VpcID, "private IPs are only unique in a VPC")
				assert.Empty(t, q.IDs)
				sizes = append(sizes, len(q.PrivateIPs))
			}
			assert.Equal(t, tc.filters, sizes)
		})
	}
}

func TestIncompleteWalkProvesNoAbsence(t *testing.T) {
	api := newAPI(t, world(250))
	l := newLookup(t, api, Config{Batching: true})
	// An instance is deleted between two pages of the first walk: the offsets shift and
	// the first instance of the second page falls between them.
	skipped := inst(100)
	api.betweenPages = func(f *strictAPI) {
		f.instances = slices.DeleteFunc(f.instances, func(in Instance) bool { return in.ID == "ins-000000" })
		f.betweenPages = nil
	}
	got, err := l.ByPrivateIP(context.Background(), skipped.PrivateIPs[0], State)
	require.NoError(t, err, "a walk whose TotalCount changed does not prove the absence")
	assert.Equal(t, skipped.ID, got.ID)
	qs := api.since(3)
	require.Len(t, qs, 1)
	assert.Equal(t, Query{VpcID: "vpc-1", PrivateIPs: skipped.PrivateIPs, Limit: MaxPageSize}, qs[0])
}

func TestStaleListingNeverSaysNotFound(t *testing.T) {
	for _, need := range []Need{State, Metadata} {
		t.Run(fmt.Sprint("need ", need), func(t *testing.T) {
			api := newAPI(t, world(5))
			l := newLookup(t, api, Config{Batching: true})
			ctx := context.Background()
			_, err := l.ByID(ctx, "ins-000000", need)
			require.NoError(t, err)
			listed := api.calls()

			// An instance created after the walk: the listing misses, a direct query
			// (here a one-page walk: the cheaper confirmation in a VPC this small) finds it.
			fresh := Instance{ID: "ins-new", State: "RUNNING", VpcID: "vpc-1", PrivateIPs: []string{"10.0.9.9"}}
			api.add(fresh)
			got, err := l.ByPrivateIP(ctx, "10.0.9.9", need)
			require.NoError(t, err)
			assert.Equal(t, "ins-new", got.ID)
			assert.Equal(t, listed+1, api.calls())
			// ... and is remembered: the next serial lookup is a hit.
			_, err = l.ByID(ctx, "ins-new", need)
			require.NoError(t, err)
			assert.Equal(t, listed+1, api.calls())

			// An instance that is gone: the listing still has it (that is a stale
			// "found", which is allowed), ConfirmByID asks the cloud by id, and
			// afterwards the listing forgets it.
			api.set(world(5)[1:])
			_, err = l.ByID(ctx, "ins-000000", need)
			require.NoError(t, err)
			_, err = l.ConfirmByID(ctx, "ins-000000")
			require.ErrorIs(t, err, ErrNotFound)
			assert.Equal(t, Query{IDs: []string{"ins-000000"}, Limit: MaxPageSize}, api.since(api.calls() - 1)[0])
			_, err = l.ByID(ctx, "ins-000000", need)
			require.ErrorIs(t, err, ErrNotFound)
			_, err = l.ByPrivateIP(ctx, inst(0).PrivateIPs[0], need)
			require.ErrorIs(t, err, ErrNotFound, "its address is forgotten too")
		})
	}
}

// TestAfterAFailedWalk pins TTL honesty: once the listing is older than TTL and a new walk
// fails, a state lookup returns the failure (the controllers retry) and never the old
// listing's answer; a metadata lookup answers from it until MetadataMaxAge.
func TestAfterAFailedWalk(t *testing.T) {
	boom := errors.New("RequestLimitExceeded")
	type step struct {
		advance time.Duration
		need    Need
		byIP    bool
		failing int    // the next calls that fail
		wantErr bool   // the lookup fails with boom
		walks   int    // walks begun by this step
		state   string // the state answered, when no error
	}
	for _, tc := range []struct {
		name  string
		steps []step
	}{
		{name: "state by id after the TTL: the error, not the old listing", steps: []step{
			{advance: 11 * time.Second, need: State, failing: 1, wantErr: true, walks: 1},
			{need: State, wantErr: true, walks: 0},                              // within RetryAfter: no new walk
			{advance: 2 * time.Second, need: State, walks: 1, state: "STOPPED"}, // after it: a new walk
		}},
		{name: "state by IP after the TTL: the error", steps: []step{
			{advance: 11 * time.Second, need: State, byIP: true, failing: 1, wantErr: true, walks: 1},
			{need: State, byIP: true, wantErr: true, walks: 0},
		}},
		{name: "metadata keeps its own max age", steps: []step{
			{advance: 11 * time.Second, need: State, failing: 1, wantErr: true, walks: 1},
			{need: Metadata, walks: 0, state: "RUNNING"},
			{need: Metadata, byIP: true, walks: 0, state: "RUNNING"},
			{advance: 2 * time.Minute, need: Metadata, failing: 1, wantErr: true, walks: 1},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			api := newAPI(t, world(150))
			clk := newClock()
			l := newLookup(t, api, Config{Batching: true, TTL: 10 * time.Second, MetadataMaxAge: 2 * time.Minute, Now: clk.Now})
			ctx := context.Background()
			_, err := l.ByID(ctx, "ins-000001", State)
			require.NoError(t, err)
			api.setState("ins-000001", "STOPPED")
			for i, st := range tc.steps {
				clk.Add(st.advance)
				before := api.calls()
				api.fail(st.failing, boom)
				var got Instance
				if st.byIP {
					got, err = l.ByPrivateIP(ctx, inst(1).PrivateIPs[0], st.need)
				} else {
					got, err = l.ByID(ctx, "ins-000001", st.need)
				}
				// A walk of 150 instances is 2 pages; count the walks begun.
				walks := 0
				for _, q := range api.since(before) {
					if q.Offset == 0 {
						walks++
					}
				}
				assert.Equal(t, st.walks, walks, "step %d: walks", i)
				if st.wantErr {
					require.ErrorIs(t, err, boom, "step %d", i)
					assert.NotErrorIs(t, err, ErrNotFound)
					continue
				}
				require.NoError(t, err, "step %d", i)
				assert.Equal(t, st.state, got.State, "step %d", i)
			}
		})
	}

	t.Run("a walk failing on its second page fails the lookup", func(t *testing.T) {
		api := newAPI(t, world(150))
		clk := newClock()
		l := newLookup(t, api, Config{Batching: true, Now: clk.Now})
		ctx := context.Background()
		_, err := l.ByID(ctx, "ins-000001", State)
		require.NoError(t, err)
		clk.Add(11 * time.Second)
		api.betweenPages = func(f *strictAPI) { f.failNext, f.failWith = 1, boom }
		_, err = l.ByID(ctx, "ins-000001", State)
		require.ErrorIs(t, err, boom)
		assert.ErrorContains(t, err, "list instances of VPC vpc-1 at offset 100")
	})
}

func TestCallerContextDoesNotCancelSharedBatch(t *testing.T) {
	api := newAPI(t, world(2))
	l := newLookup(t, api, Config{Batching: true, Window: 300 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var otherErr error
	wg.Go(func() { _, otherErr = l.ConfirmByID(context.Background(), "ins-000001") })
	// Wait until the other caller's batch is pending, then join it and give up.
	require.Eventually(t, func() bool { l.ids.mu.Lock(); defer l.ids.mu.Unlock(); return l.ids.pending != nil }, 10*time.Second, time.Millisecond)
	cancel()
	_, err := l.ConfirmByID(ctx, "ins-000000")
	assert.ErrorIs(t, err, context.Canceled)
	wg.Wait()
	assert.NoError(t, otherErr)
	for _, q := range api.since(0) {
		assert.Contains(t, q.IDs, "ins-000001")
	}
}

func TestMetadataLookupsOutliveTheTTL(t *testing.T) {
	api := newAPI(t, world(250))
	clk := newClock()
	l := newLookup(t, api, Config{Batching: true, TTL: 10 * time.Second, MetadataMaxAge: time.Minute, Now: clk.Now})
	ctx := context.Background()
	_, err := l.ByPrivateIP(ctx, inst(0).PrivateIPs[0], Metadata)
	require.NoError(t, err)
	require.Equal(t, 3, api.calls())

	// A serial initialization that takes longer than TTL stays on the first listing.
	for i, in := range world(250) {
		clk.Add(150 * time.Millisecond) // 250 lookups: 37.5s, well past TTL
		got, err := l.ByPrivateIP(ctx, in.PrivateIPs[0], Metadata)
		require.NoError(t, err, i)
		assert.Equal(t, in.ID, got.ID)
	}
	assert.Equal(t, 3, api.calls())

	// A state lookup does not accept that listing: it walks again.
	_, err = l.ByID(ctx, "ins-000001", State)
	require.NoError(t, err)
	assert.Equal(t, 6, api.calls())

	// A metadata miss in a listing younger than TTL is confirmed (one filtered query:
	// cheaper than a walk of 3 pages) ...
	api.add(Instance{ID: "ins-new1", VpcID: "vpc-1", PrivateIPs: []string{"10.9.0.1"}}, Instance{ID: "ins-new2", VpcID: "vpc-1", PrivateIPs: []string{"10.9.0.2"}})
	_, err = l.ByPrivateIP(ctx, "10.9.0.1", Metadata)
	require.NoError(t, err)
	assert.Equal(t, 7, api.calls())
	// ... and in a listing older than TTL walks again, which finds the other new ones
	// too.
	clk.Add(11 * time.Second)
	api.add(Instance{ID: "ins-new3", VpcID: "vpc-1", PrivateIPs: []string{"10.9.0.3"}})
	_, err = l.ByPrivateIP(ctx, "10.9.0.3", Metadata)
	require.NoError(t, err)
	assert.Equal(t, 10, api.calls())
	_, err = l.ByPrivateIP(ctx, "10.9.0.2", Metadata)
	require.NoError(t, err)
	assert.Equal(t, 10, api.calls())

	// Past MetadataMaxAge even a metadata hit walks again.
	clk.Add(time.Minute)
	_, err = l.ByPrivateIP(ctx, "10.9.0.2", Metadata)
	require.NoError(t, err)
	assert.Equal(t, 13, api.calls())
}

func TestMalformedIDIsRefusedWithoutAsking(t *testing.T) {
	for _, batching := range []bool{true, false} {
		for _, id := range []string{"ins-", "ins-ABC", "ins-a_b", "i-123", "ins-" + string(make([]byte, 33))} {
			t.Run(fmt.Sprintf("batching=%v/%q", batching, id), func(t *testing.T) {
				api := newAPI(t, world(3))
				l := newLookup(t, api, Config{Batching: batching})
				_, err := l.ByID(context.Background(), id, State)
				require.ErrorIs(t, err, ErrMalformedID)
				assert.NotErrorIs(t, err, ErrNotFound)
				_, err = l.ConfirmByID(context.Background(), id)
				require.ErrorIs(t, err, ErrMalformedID)
				assert.Equal(t, 0, api.calls())
			})
		}
	}
}

// TestStatesAreAnsweredAsListed runs every instance state through every path a lookup
// can take, in both modes: the lookup reports the state, it never interprets it.
func TestStatesAreAnsweredAsListed(t *testing.T) {
	states := []string{"PENDING", "LAUNCH_FAILED", "RUNNING", "STOPPING", "STOPPED", "STARTING", "REBOOTING", "SHUTDOWN", "TERMINATING"}
	lookups := map[string]func(l *Lookup, in Instance) (Instance, error){
		"ByID/State":    func(l *Lookup, in Instance) (Instance, error) { return l.ByID(context.Background(), in.ID, State) },
		"ByID/Metadata": func(l *Lookup, in Instance) (Instance, error) { return l.ByID(context.Background(), in.ID, Metadata) },
		"ByPrivateIP/State": func(l *Lookup, in Instance) (Instance, error) {
			return l.ByPrivateIP(context.Background(), in.PrivateIPs[0], State)
		},
		"ByPrivateIP/Metadata": func(l *Lookup, in Instance) (Instance, error) {
			return l.ByPrivateIP(context.Background(), in.PrivateIPs[0], Metadata)
		},
		"ConfirmByID": func(l *Lookup, in Instance) (Instance, error) { return l.ConfirmByID(context.Background(), in.ID) },
	}
	for _, batching := range []bool{true, false} {
		for name, lookup := range lookups {
			for _, state := range append(states, "gone") {
				t.Run(fmt.Sprintf("batching=%v/%s/%s", batching, name, state), func(t *testing.T) {
					all := world(3)
					target := all[1]
					if state == "gone" {
						all = slices.Delete(all, 1, 2)
					} else {
						all[1].State = state
					}
					api := newAPI(t, all)
					l := newLookup(t, api, Config{Batching: batching})
					got, err := lookup(l, target)
					if state == "gone" {
						require.ErrorIs(t, err, ErrNotFound)
						return
					}
					require.NoError(t, err)
					assert.Equal(t, target.ID, got.ID)
					assert.Equal(t, state, got.State)
				})
			}
		}
	}
}

// TestStopEndsEveryGoroutine stops a Lookup with a walk and batches in flight: every
// lookup returns, Wait returns, no goroutine is left, and later lookups fail at once.
func TestStopEndsEveryGoroutine(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	api := newAPI(t, world(250))
	api.block = make(chan struct{}) // the cloud never answers
	ctx, cancel := context.WithCancel(context.Background())
	l := New(ctx, api, Config{VpcID: "vpc-1", Batching: true, Window: time.Hour})

	var wg sync.WaitGroup
	errs := make(chan error, 3)
	wg.Go(func() { _, err := l.ByID(context.Background(), "ins-000001", State); errs <- err }) // a walk
	wg.Go(func() { _, err := l.ConfirmByID(context.Background(), "ins-000002"); errs <- err }) // an id batch
	wg.Go(func() { _, err := l.ips.get(context.Background(), "10.0.0.3"); errs <- err })       // an IP confirmation
	require.Eventually(t, func() bool {
		l.mu.Lock()
		walking := l.walking != nil
		l.mu.Unlock()
		l.ids.mu.Lock()
		ids := l.ids.pending != nil
		l.ids.mu.Unlock()
		l.ips.mu.Lock()
		ips := l.ips.pending != nil
		l.ips.mu.Unlock()
		return walking && ids && ips
	}, 10*time.Second, time.Millisecond)

	cancel()
	l.Wait()
	wg.Wait()
	close(errs)
	for err := range errs {
		require.Error(t, err)
		assert.True(t, errors.Is(err, ErrStopped) || errors.Is(err, context.Canceled), "%v", err)
		assert.NotErrorIs(t, err, ErrNotFound)
	}
	_, err := l.ByPrivateIP(context.Background(), "10.0.0.4", Metadata)
	assert.ErrorIs(t, err, ErrStopped)
	_, err = l.ConfirmByID(context.Background(), "ins-000004")
	assert.ErrorIs(t, err, ErrStopped)
	close(api.block)
}

func TestBatcherSendsAtItsSizeLimit(t *testing.T) {
	for _, size := range []int{1, 3, MaxFilterValues, MaxIDsPerCall} {
		t.Run(fmt.Sprint("size ", size), func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			g := &group{ctx: ctx}
			t.Cleanup(func() { cancel(); g.wait() })
			var mu sync.Mutex
			var sent [][]int
			b := &batcher[int, int]{size: size, window: time.Minute, timeout: time.Minute, group: g,
				fetch: func(_ context.Context, keys []int) (map[int]int, error) {
					mu.Lock()
					defer mu.Unlock()
					sent = append(sent, slices.Clone(keys))
					out := map[int]int{}
					for _, k := range keys {
						if k%2 == 0 {
							out[k] = k * 10
						}
					}
					return out, nil
				}}
			// 2*size keys: two full batches, each sent the moment it fills.
			var wg sync.WaitGroup
			for k := range 2 * size {
				wg.Go(func() {
					v, err := b.get(context.Background(), k)
					if k%2 == 0 {
						assert.NoError(t, err)
						assert.Equal(t, k*10, v)
					} else {
						assert.ErrorIs(t, err, ErrNotFound)
					}
				})
			}
			wg.Wait()
			require.Len(t, sent, 2)
			assert.Len(t, sent[0], size)
			assert.Len(t, sent[1], size)
		})
	}
}
