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
)

// fakeAPI answers Queries from an in-memory list the way DescribeInstances does, and
// records every call.
type fakeAPI struct {
	mu        sync.Mutex
	instances []Instance
	queries   []Query
	failNext  int
	failWith  error
}

func (f *fakeAPI) DescribeInstances(_ context.Context, q Query) (Page, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.queries = append(f.queries, q)
	if f.failNext > 0 {
		f.failNext--
		return Page{}, f.failWith
	}
	if len(q.IDs) > MaxBatch || len(q.PrivateIPs) > MaxBatch || q.Limit > MaxBatch {
		return Page{}, fmt.Errorf("query over the API's limit: %d ids, %d ips, limit %d", len(q.IDs), len(q.PrivateIPs), q.Limit)
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
	p := Page{Total: len(match)}
	end := min(len(match), q.Offset+q.Limit)
	if q.Offset < end {
		p.Instances = slices.Clone(match[q.Offset:end])
	}
	return p, nil
}

func (f *fakeAPI) calls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.queries)
}

func (f *fakeAPI) set(instances []Instance) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.instances = instances
}

func (f *fakeAPI) fail(n int, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failNext, f.failWith = n, err
}

func world(n int) []Instance {
	out := make([]Instance, n)
	for i := range out {
		out[i] = Instance{
			ID:         fmt.Sprintf("ins-%06d", i),
			State:      "RUNNING",
			Zone:       "ap-guangzhou-1",
			VpcID:      "vpc-1",
			PrivateIPs: []string{fmt.Sprintf("10.0.%d.%d", i/250, i%250+1)},
		}
	}
	return out
}

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func TestSerialLookupsUseOneListingPerHundred(t *testing.T) {
	api := &fakeAPI{instances: world(250)}
	clk := &clock{t: time.Unix(1e9, 0)}
	l := New(api, Config{VpcID: "vpc-1", Batching: true, Now: clk.Now})
	ctx := context.Background()
	for i, inst := range api.instances {
		got, err := l.ByPrivateIP(ctx, inst.PrivateIPs[0], State)
		require.NoError(t, err, i)
		assert.Equal(t, inst.ID, got.ID)
		got, err = l.ByID(ctx, inst.ID, State)
		require.NoError(t, err, i)
		assert.Equal(t, inst.PrivateIPs, got.PrivateIPs)
	}
	assert.Equal(t, 3, api.calls(), "250 instances are 3 pages of 100; every lookup after that is a hit")
	for i, q := range api.queries {
		assert.Equal(t, Query{VpcID: "vpc-1", Offset: i * 100, Limit: 100}, q)
	}

	// Within the TTL nothing is asked again; past it, one new listing.
	clk.Add(9 * time.Second)
	_, err := l.ByID(ctx, "ins-000007", State)
	require.NoError(t, err)
	assert.Equal(t, 3, api.calls())
	clk.Add(2 * time.Second)
	_, err = l.ByID(ctx, "ins-000007", State)
	require.NoError(t, err)
	assert.Equal(t, 6, api.calls())
}

func TestWithoutBatchingEveryLookupIsOneCall(t *testing.T) {
	api := &fakeAPI{instances: world(120)}
	l := New(api, Config{VpcID: "vpc-1", Batching: false})
	ctx := context.Background()
	for _, inst := range api.instances {
		got, err := l.ByPrivateIP(ctx, inst.PrivateIPs[0], State)
		require.NoError(t, err)
		assert.Equal(t, inst.ID, got.ID)
	}
	assert.Equal(t, 120, api.calls())
	assert.Equal(t, Query{VpcID: "vpc-1", PrivateIPs: []string{"10.0.0.120"}, Limit: 100}, api.queries[119])

	_, err := l.ByID(ctx, "ins-gone", State)
	assert.ErrorIs(t, err, ErrNotFound)
}

func TestConcurrentMissesAreCoalesced(t *testing.T) {
	api := &fakeAPI{instances: world(250)}
	// A long window makes the test independent of scheduling: every goroutine joins a
	// batch before it is sent, unless the batch fills up first.
	l := New(api, Config{VpcID: "vpc-1", Batching: true, Window: 500 * time.Millisecond})
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make([]error, 250)
	got := make([]Instance, 250)
	for i := range 250 {
		wg.Go(func() { got[i], errs[i] = l.ConfirmByID(ctx, api.instances[i].ID) })
	}
	wg.Wait()
	for i := range 250 {
		require.NoError(t, errs[i])
		assert.Equal(t, api.instances[i].ID, got[i].ID)
	}
	assert.Equal(t, 3, api.calls(), "batches of 100, 100 and 50")
	total := 0
	for _, q := range api.queries {
		assert.LessOrEqual(t, len(q.IDs), MaxBatch)
		total += len(q.IDs)
	}
	assert.Equal(t, 250, total, "each id asked once")
}

func TestDuplicateKeysInOneBatchAreAskedOnce(t *testing.T) {
	api := &fakeAPI{instances: world(3)}
	l := New(api, Config{VpcID: "vpc-1", Batching: true, Window: 200 * time.Millisecond})
	var wg sync.WaitGroup
	for range 10 {
		wg.Go(func() {
			_, err := l.ConfirmByID(context.Background(), "ins-000001")
			assert.NoError(t, err)
		})
	}
	wg.Wait()
	require.Equal(t, 1, api.calls())
	assert.Equal(t, []string{"ins-000001"}, api.queries[0].IDs)
}

func TestStaleCacheNeverSaysNotFound(t *testing.T) {
	api := &fakeAPI{instances: world(5)}
	clk := &clock{t: time.Unix(1e9, 0)}
	l := New(api, Config{VpcID: "vpc-1", Batching: true, Now: clk.Now})
	ctx := context.Background()
	_, err := l.ByID(ctx, "ins-000000", State)
	require.NoError(t, err)
	listed := api.calls()

	// An instance created after the listing: the cache misses, a direct query finds it.
	fresh := Instance{ID: "ins-new", State: "RUNNING", VpcID: "vpc-1", PrivateIPs: []string{"10.0.9.9"}}
	api.set(append(world(5), fresh))
	got, err := l.ByPrivateIP(ctx, "10.0.9.9", State)
	require.NoError(t, err)
	assert.Equal(t, "ins-new", got.ID)
	assert.Equal(t, listed+1, api.calls())
	assert.Equal(t, []string{"10.0.9.9"}, api.queries[listed].PrivateIPs)
	assert.Equal(t, "vpc-1", api.queries[listed].VpcID, "private IPs are only unique in a VPC")
	// ... and is remembered: the next serial lookup is a hit.
	_, err = l.ByID(ctx, "ins-new", State)
	require.NoError(t, err)
	assert.Equal(t, listed+1, api.calls())

	// An instance that is gone: the cache still has it (that is a stale "found", which
	// is allowed), ConfirmByID asks the cloud, and afterwards the cache forgets it.
	api.set(world(5)[1:])
	_, err = l.ByID(ctx, "ins-000000", State)
	require.NoError(t, err)
	_, err = l.ConfirmByID(ctx, "ins-000000")
	require.ErrorIs(t, err, ErrNotFound)
	_, err = l.ByID(ctx, "ins-000000", State)
	require.ErrorIs(t, err, ErrNotFound)
}

func TestErrorsAreNeverNotFound(t *testing.T) {
	api := &fakeAPI{instances: world(5)}
	clk := &clock{t: time.Unix(1e9, 0)}
	l := New(api, Config{VpcID: "vpc-1", Batching: true, Now: clk.Now})
	ctx := context.Background()
	boom := errors.New("RequestLimitExceeded")

	// The listing fails: the lookup goes direct, which fails too: the error comes back.
	api.fail(2, boom)
	_, err := l.ByID(ctx, "ins-000001", State)
	require.Error(t, err)
	assert.ErrorIs(t, err, boom)
	assert.NotErrorIs(t, err, ErrNotFound)

	// Within RetryAfter the failed listing is not retried; the direct query works now.
	got, err := l.ByID(ctx, "ins-000001", State)
	require.NoError(t, err)
	assert.Equal(t, "ins-000001", got.ID)
	assert.Equal(t, 3, api.calls())
	assert.Equal(t, []string{"ins-000001"}, api.queries[2].IDs)

	// After RetryAfter the listing is tried again and serves the next lookups.
	clk.Add(2 * time.Second)
	_, err = l.ByID(ctx, "ins-000002", State)
	require.NoError(t, err)
	_, err = l.ByID(ctx, "ins-000003", State)
	require.NoError(t, err)
	assert.Equal(t, 4, api.calls())
	assert.Empty(t, api.queries[3].IDs, "a listing")

	// A failed refresh keeps serving the previous listing.
	clk.Add(11 * time.Second)
	api.fail(1, boom)
	_, err = l.ByID(ctx, "ins-000004", State)
	require.NoError(t, err)
	assert.Equal(t, 5, api.calls())
}

func TestCallerContextDoesNotCancelSharedBatch(t *testing.T) {
	api := &fakeAPI{instances: world(2)}
	l := New(api, Config{VpcID: "vpc-1", Batching: true, Window: 100 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var otherErr error
	wg.Go(func() { _, otherErr = l.ConfirmByID(context.Background(), "ins-000001") })
	time.Sleep(10 * time.Millisecond)
	go func() { time.Sleep(20 * time.Millisecond); cancel() }()
	_, err := l.ConfirmByID(ctx, "ins-000000")
	assert.ErrorIs(t, err, context.Canceled)
	wg.Wait()
	assert.NoError(t, otherErr)
	assert.Equal(t, 1, api.calls())
}

func TestMetadataLookupsOutliveTheTTL(t *testing.T) {
	api := &fakeAPI{instances: world(250)}
	clk := &clock{t: time.Unix(1e9, 0)}
	l := New(api, Config{VpcID: "vpc-1", Batching: true, TTL: 10 * time.Second, MetadataMaxAge: time.Minute, Now: clk.Now})
	ctx := context.Background()
	_, err := l.ByPrivateIP(ctx, "10.0.0.1", Metadata)
	require.NoError(t, err)
	require.Equal(t, 3, api.calls())

	// A serial initialization that takes longer than TTL stays on the first listing.
	for i, inst := range api.instances {
		clk.Add(150 * time.Millisecond) // 250 lookups: 37.5s, well past TTL
		got, err := l.ByPrivateIP(ctx, inst.PrivateIPs[0], Metadata)
		require.NoError(t, err, i)
		assert.Equal(t, inst.ID, got.ID)
	}
	assert.Equal(t, 3, api.calls())

	// A state lookup does not accept that listing: it refreshes.
	_, err = l.ByID(ctx, "ins-000001", State)
	require.NoError(t, err)
	assert.Equal(t, 6, api.calls())

	// A metadata miss in a listing younger than TTL goes direct (one call) ...
	api.set(append(world(250), Instance{ID: "ins-new1", VpcID: "vpc-1", PrivateIPs: []string{"10.9.0.1"}}, Instance{ID: "ins-new2", VpcID: "vpc-1", PrivateIPs: []string{"10.9.0.2"}}))
	_, err = l.ByPrivateIP(ctx, "10.9.0.1", Metadata)
	require.NoError(t, err)
	assert.Equal(t, 7, api.calls())
	// ... and in a listing older than TTL refreshes it, which finds the other new ones too.
	clk.Add(11 * time.Second)
	api.set(append(api.instances, Instance{ID: "ins-new3", VpcID: "vpc-1", PrivateIPs: []string{"10.9.0.3"}}))
	_, err = l.ByPrivateIP(ctx, "10.9.0.3", Metadata)
	require.NoError(t, err)
	assert.Equal(t, 10, api.calls())
	_, err = l.ByPrivateIP(ctx, "10.9.0.2", Metadata)
	require.NoError(t, err)
	assert.Equal(t, 10, api.calls())

	// Past MetadataMaxAge even a metadata hit refreshes.
	clk.Add(time.Minute)
	_, err = l.ByPrivateIP(ctx, "10.9.0.2", Metadata)
	require.NoError(t, err)
	assert.Equal(t, 13, api.calls())
}
