package instancelookup

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"
)

// Config tunes a Lookup. Zero values take the defaults documented per field.
type Config struct {
	// VpcID scopes the listing and the private-IP lookups (private IPs are only unique
	// inside a VPC). Lookups by id are not scoped: an id is unique in the region.
	VpcID string
	// Batching enables the listing and the coalescing of lookups. Off, every lookup is one
	// DescribeInstances of its own (the baseline the benchmark compares against).
	Batching bool
	// TTL is how old the VPC listing may be for a lookup that needs an instance's current
	// state (default 10s). Such a lookup never answers from an older listing: it walks a
	// new one, and when that fails it returns the error.
	TTL time.Duration
	// MetadataMaxAge is how old a listed instance may be for a lookup that needs only what
	// does not change over an instance's life or changes rarely (zone, type, addresses);
	// default 2m, never less than TTL. It keeps a serial initialization of thousands of
	// nodes, which takes longer than TTL, on the one listing it started with, and it
	// still answers while a newer listing cannot be had.
	MetadataMaxAge time.Duration
	// Window is how long a batcher waits for more lookups before it sends (default 5ms).
	Window time.Duration
	// RetryAfter is how long after a failed listing the lookups that need a newer one
	// return that failure instead of starting another walk (default 1s).
	RetryAfter time.Duration
	// CallTimeout bounds one listing walk or one batch, retries included (default 1m).
	CallTimeout time.Duration
	// Now replaces time.Now (tests).
	Now func() time.Time
}

// ipMissBatch is how many private-IP misses one confirmation collects: at
// MaxFilterValues a query that is 20 filtered queries at most, as many as one walk of a
// 2,000-instance VPC, so the confirmation can choose the cheaper of the two.
const ipMissBatch = 100

// Lookup finds instances by id or private IP. It is safe for concurrent use. Its
// goroutines run under the context given to New; after cancelling it, Wait returns once
// they all have, and every lookup fails with ErrStopped.
type Lookup struct {
	api   API
	cfg   Config
	group *group

	ids *batcher[string, Instance] // lookups by id: InstanceIds, MaxIDsPerCall a call
	ips *batcher[string, Instance] // confirmations of private-IP misses

	mu       sync.Mutex
	snap     *snapshot // the latest complete walk (see listing.go)
	started  uint64    // walks begun
	walking  *walk     // the walk in flight
	walkErr  error     // the latest walk's failure, until one succeeds
	failedAt time.Time
}

// New returns a Lookup over api whose goroutines run under ctx.
func New(ctx context.Context, api API, cfg Config) *Lookup {
	if cfg.TTL <= 0 {
		cfg.TTL = 10 * time.Second
	}
	if cfg.MetadataMaxAge < cfg.TTL {
		cfg.MetadataMaxAge = max(cfg.TTL, 2*time.Minute)
	}
	if cfg.Window <= 0 {
		cfg.Window = 5 * time.Millisecond
	}
	if cfg.RetryAfter <= 0 {
		cfg.RetryAfter = time.Second
	}
	if cfg.CallTimeout <= 0 {
		cfg.CallTimeout = time.Minute
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	l := &Lookup{api: api, cfg: cfg, group: &group{ctx: ctx}}
	l.ids = &batcher[string, Instance]{size: MaxIDsPerCall, window: cfg.Window, timeout: cfg.CallTimeout, group: l.group, fetch: l.fetchIDs}
	l.ips = &batcher[string, Instance]{size: ipMissBatch, window: cfg.Window, timeout: cfg.CallTimeout, group: l.group, fetch: l.confirmIPs}
	return l
}

// Wait blocks until every goroutine the Lookup started has returned. Call it after
// cancelling the context given to New; no goroutine starts once Wait has been called.
func (l *Lookup) Wait() { l.group.wait() }

// Batching reports whether the listing and the batchers are on.
func (l *Lookup) Batching() bool { return l.cfg.Batching }

// Need says what the caller will use an answer for, and so how old it may be.
type Need int

const (
	// State: the caller acts on the instance's state (shut down, gone): the listing may be
	// up to TTL old.
	State Need = iota
	// Metadata: the caller uses zone, type, addresses: the listing may be up to
	// MetadataMaxAge old.
	Metadata
)

// ByID returns the instance with id: from a listing young enough for need when it holds
// id, else from a direct query. The error is ErrNotFound only when a query made after the
// call found nothing, ErrMalformedID when id cannot be an instance id.
func (l *Lookup) ByID(ctx context.Context, id string, need Need) (Instance, error) {
	if err := l.usable(id, true); err != nil {
		return Instance{}, err
	}
	if !l.cfg.Batching {
		return l.single(ctx, Query{IDs: []string{id}}, id, matchID)
	}
	inst, _, ok, err := l.fromListing(ctx, l.walksStarted(), need, func(s *snapshot) (Instance, bool) { i, ok := s.byID[id]; return i, ok })
	if err != nil || ok {
		return inst, err
	}
	// Not in the VPC's listing: new since, gone, or in another VPC. Ask by id.
	return l.directID(ctx, id)
}

// ByPrivateIP returns the instance of the VPC with private address ip, like ByID. A miss
// is confirmed by the walk the lookup itself waited for when that began after the call,
// else by a confirmation query (see doc.go for which).
func (l *Lookup) ByPrivateIP(ctx context.Context, ip string, need Need) (Instance, error) {
	if err := l.usable(ip, false); err != nil {
		return Instance{}, err
	}
	if !l.cfg.Batching {
		return l.single(ctx, Query{VpcID: l.cfg.VpcID, PrivateIPs: []string{ip}}, ip, matchIP)
	}
	asked := l.walksStarted()
	inst, s, ok, err := l.fromListing(ctx, asked, need, func(s *snapshot) (Instance, bool) { i, ok := s.byIP[ip]; return i, ok })
	if err != nil || ok {
		return inst, err
	}
	if s.seq > asked && s.complete {
		return Instance{}, ErrNotFound
	}
	inst, err = l.ips.get(ctx, ip)
	l.remember(inst, err, func(s *snapshot) {
		if old, ok := s.byIP[ip]; ok {
			s.removeID(old.ID)
		}
	})
	return inst, err
}

// ConfirmByID skips the listing: the answer comes from a query sent after the call. Use
// it before acting on an instance being gone or in a final state.
func (l *Lookup) ConfirmByID(ctx context.Context, id string) (Instance, error) {
	if err := l.usable(id, true); err != nil {
		return Instance{}, err
	}
	if !l.cfg.Batching {
		return l.single(ctx, Query{IDs: []string{id}}, id, matchID)
	}
	return l.directID(ctx, id)
}

func (l *Lookup) usable(key string, isID bool) error {
	if l.group.ctx.Err() != nil {
		return l.group.stopped()
	}
	if isID && !wellFormedID(key) {
		return fmt.Errorf("instance id %q: %w", key, ErrMalformedID)
	}
	return nil
}

// fromListing looks key up in a listing fit for need: for Metadata the current one while
// it is younger than MetadataMaxAge and holds key; otherwise (State, or a Metadata miss) a
// listing younger than TTL or begun after asked. A listing that cannot be had is the error.
func (l *Lookup) fromListing(ctx context.Context, asked uint64, need Need, get func(*snapshot) (Instance, bool)) (Instance, *snapshot, bool, error) {
	if need == Metadata {
		l.mu.Lock()
		if s := l.snap; s != nil && l.cfg.Now().Sub(s.at) < l.cfg.MetadataMaxAge {
			if inst, ok := get(s); ok {
				l.mu.Unlock()
				return inst, s, true, nil
			}
		}
		l.mu.Unlock()
	}
	s, err := l.listing(ctx, asked, l.cfg.TTL)
	if err != nil {
		return Instance{}, nil, false, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	inst, ok := get(s)
	return inst, s, ok, nil
}

// directID asks the id batcher and remembers the answer in the current listing, so that
// the next serial lookup of the same id is a hit; a confirmed absence evicts it.
func (l *Lookup) directID(ctx context.Context, id string) (Instance, error) {
	inst, err := l.ids.get(ctx, id)
	l.remember(inst, err, func(s *snapshot) { s.removeID(id) })
	return inst, err
}

// remember puts what a direct query found into the current listing (it is younger than
// the listing, so the listing's age stays an upper bound), or applies evict on a
// confirmed absence.
func (l *Lookup) remember(inst Instance, err error, evict func(*snapshot)) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.snap == nil {
		return
	}
	switch {
	case err == nil:
		l.snap.add(inst)
	case errors.Is(err, ErrNotFound):
		evict(l.snap)
	}
}

func matchID(inst Instance, id string) bool { return inst.ID == id }

func matchIP(inst Instance, ip string) bool { return slices.Contains(inst.PrivateIPs, ip) }

// single is the unbatched path: one query for one key.
func (l *Lookup) single(ctx context.Context, q Query, key string, match func(Instance, string) bool) (Instance, error) {
	q.Limit = MaxPageSize
	p, err := l.describe(ctx, q)
	if err != nil {
		return Instance{}, err
	}
	for _, inst := range p.Instances {
		if match(inst, key) {
			return inst, nil
		}
	}
	return Instance{}, ErrNotFound
}

// describe sends q after checking it against the API's limits.
func (l *Lookup) describe(ctx context.Context, q Query) (Page, error) {
	if err := q.check(); err != nil {
		return Page{}, fmt.Errorf("DescribeInstances not sent, over the API's limits: %w", err)
	}
	return l.api.DescribeInstances(ctx, q)
}

// fetchIDs is the id batcher's query: InstanceIds, at most MaxIDsPerCall of them.
func (l *Lookup) fetchIDs(ctx context.Context, ids []string) (map[string]Instance, error) {
	found, err := l.fetch(ctx, Query{IDs: ids}, ids, func(inst Instance) []string { return []string{inst.ID} })
	if err != nil {
		return nil, fmt.Errorf("look up %d instances by id: %w", len(ids), err)
	}
	return found, nil
}

// confirmIPs answers private-IP misses with a query made after they were asked, by the
// cheaper of two ways (doc.go): a fresh walk of the VPC, which also renews the listing,
// when it takes no more requests than filtered queries of MaxFilterValues addresses each;
// else those filtered queries. A walk that is not complete cannot prove an absence, so
// the IPs it misses are then asked by filter.
func (l *Lookup) confirmIPs(ctx context.Context, ips []string) (map[string]Instance, error) {
	filtered := (len(ips) + MaxFilterValues - 1) / MaxFilterValues
	l.mu.Lock()
	last := l.snap
	l.mu.Unlock()
	found := map[string]Instance{}
	if last != nil && last.pages() <= filtered {
		s, err := l.walkAfter(ctx, l.walksStarted())
		if err != nil {
			return nil, fmt.Errorf("confirm %d private IPs by listing VPC %s: %w", len(ips), l.cfg.VpcID, err)
		}
		var rest []string
		l.mu.Lock()
		for _, ip := range ips {
			if inst, ok := s.byIP[ip]; ok {
				found[ip] = inst
			} else {
				rest = append(rest, ip)
			}
		}
		l.mu.Unlock()
		if s.complete {
			return found, nil
		}
		ips = rest
	}
	for chunk := range slices.Chunk(ips, MaxFilterValues) {
		more, err := l.fetch(ctx, Query{VpcID: l.cfg.VpcID, PrivateIPs: chunk}, chunk, func(inst Instance) []string { return inst.PrivateIPs })
		if err != nil {
			return nil, fmt.Errorf("look up %d private IPs in VPC %s: %w", len(chunk), l.cfg.VpcID, err)
		}
		for k, v := range more {
			found[k] = v
		}
	}
	return found, nil
}

// fetch sends one query, page by page (one page unless the cloud has more matches than
// fit in one, which for exact ids or IPs it should not), and indexes the answer by key.
func (l *Lookup) fetch(ctx context.Context, q Query, keys []string, keysOf func(Instance) []string) (map[string]Instance, error) {
	found := map[string]Instance{}
	q.Limit = MaxPageSize
	for q.Offset = 0; ; {
		p, err := l.describe(ctx, q)
		if err != nil {
			return nil, err
		}
		for _, inst := range p.Instances {
			for _, k := range keysOf(inst) {
				if slices.Contains(keys, k) {
					found[k] = inst
				}
			}
		}
		q.Offset += len(p.Instances)
		if len(p.Instances) == 0 || q.Offset >= p.Total {
			return found, nil
		}
	}
}
