package instancelookup

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"k8s.io/klog/v2"
)

// Config tunes a Lookup. Zero values take the defaults documented per field.
type Config struct {
	// VpcID scopes the listing and the private-IP lookups (private IPs are only unique
	// inside a VPC). Lookups by id are not scoped: an id is unique in the region.
	VpcID string
	// Batching enables the listing cache and the coalescing of lookups. Off, every lookup
	// is one DescribeInstances of its own (the baseline the benchmark compares against).
	Batching bool
	// TTL is how old the VPC listing may get before a lookup that needs an instance's
	// current state refreshes it (default 10s).
	TTL time.Duration
	// MetadataMaxAge is how old a listed instance may be for a lookup that needs only what
	// does not change over an instance's life or changes rarely (zone, type, addresses);
	// default 2m, never less than TTL. It keeps a serial initialization of thousands of
	// nodes, which takes longer than TTL, on the one listing it started with.
	MetadataMaxAge time.Duration
	// Window is how long the batcher waits for more lookups before it sends (default 5ms).
	Window time.Duration
	// RetryAfter is how long a failed listing is not retried; lookups meanwhile use the
	// previous listing, if any, or go direct (default 1s).
	RetryAfter time.Duration
	// CallTimeout bounds one listing or one batch, retries included (default 1m).
	CallTimeout time.Duration
	// Now replaces time.Now (tests).
	Now func() time.Time
}

// Lookup finds instances by id or private IP. It is safe for concurrent use.
type Lookup struct {
	api API
	cfg Config

	ids *batcher
	ips *batcher

	mu         sync.Mutex
	snap       *snapshot
	refreshing chan struct{} // closed when the running refresh ends
	refreshErr error
	failedAt   time.Time
}

// snapshot is one VPC listing, plus what direct lookups found since.
type snapshot struct {
	at   time.Time
	byID map[string]Instance
	byIP map[string]Instance
}

func (s *snapshot) add(inst Instance) {
	s.byID[inst.ID] = inst
	for _, ip := range inst.PrivateIPs {
		s.byIP[ip] = inst
	}
}

// New returns a Lookup over api.
func New(api API, cfg Config) *Lookup {
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
	l := &Lookup{api: api, cfg: cfg}
	l.ids = &batcher{window: cfg.Window, timeout: cfg.CallTimeout, fetch: l.fetchIDs}
	l.ips = &batcher{window: cfg.Window, timeout: cfg.CallTimeout, fetch: l.fetchIPs}
	return l
}

// Batching reports whether the cache and the batcher are on.
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

// ByID returns the instance with id: from the listing when it is there and young enough
// for need, else from a direct query. The error is ErrNotFound only when the direct query
// found nothing.
func (l *Lookup) ByID(ctx context.Context, id string, need Need) (Instance, error) {
	if !l.cfg.Batching {
		return l.single(ctx, Query{IDs: []string{id}}, id, matchID)
	}
	if inst, ok := l.cached(ctx, id, need, func(s *snapshot) (Instance, bool) { i, ok := s.byID[id]; return i, ok }); ok {
		return inst, nil
	}
	return l.direct(ctx, l.ids, id)
}

// ByPrivateIP returns the instance of the VPC with private address ip, like ByID.
func (l *Lookup) ByPrivateIP(ctx context.Context, ip string, need Need) (Instance, error) {
	if !l.cfg.Batching {
		return l.single(ctx, Query{VpcID: l.cfg.VpcID, PrivateIPs: []string{ip}}, ip, matchIP)
	}
	if inst, ok := l.cached(ctx, ip, need, func(s *snapshot) (Instance, bool) { i, ok := s.byIP[ip]; return i, ok }); ok {
		return inst, nil
	}
	return l.direct(ctx, l.ips, ip)
}

// ConfirmByID skips the cache: the answer comes from a query sent after the call. Use it
// before acting on an instance being gone or in a final state.
func (l *Lookup) ConfirmByID(ctx context.Context, id string) (Instance, error) {
	if !l.cfg.Batching {
		return l.single(ctx, Query{IDs: []string{id}}, id, matchID)
	}
	return l.direct(ctx, l.ids, id)
}

// direct asks the batcher and remembers the answer in the current snapshot, so that the
// next serial lookup of the same key is a hit; a confirmed absence evicts it.
func (l *Lookup) direct(ctx context.Context, b *batcher, key string) (Instance, error) {
	inst, err := b.get(ctx, key)
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.snap != nil {
		switch {
		case err == nil:
			l.snap.add(inst)
		case errors.Is(err, ErrNotFound):
			if old, ok := l.snap.byID[key]; ok {
				delete(l.snap.byID, key)
				for _, ip := range old.PrivateIPs {
					delete(l.snap.byIP, ip)
				}
			}
			delete(l.snap.byIP, key)
		}
	}
	return inst, err
}

// cached answers from the listing. A Metadata lookup takes a hit from a listing up to
// MetadataMaxAge old without refreshing it; anything else (a State lookup, or a miss in a
// listing older than TTL, which may predate the instance) first refreshes a listing older
// than TTL. A failed refresh is not an error here: the caller goes direct.
func (l *Lookup) cached(ctx context.Context, key string, need Need, get func(*snapshot) (Instance, bool)) (Instance, bool) {
	if need == Metadata {
		l.mu.Lock()
		s := l.snap
		if s != nil && l.cfg.Now().Sub(s.at) < l.cfg.MetadataMaxAge {
			if inst, ok := get(s); ok {
				l.mu.Unlock()
				return inst, true
			}
		}
		l.mu.Unlock()
	}
	s, err := l.snapshot(ctx)
	if err != nil {
		klog.V(4).InfoS("Instance listing unavailable, looking up directly", "key", key, "err", err)
		return Instance{}, false
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return get(s)
}

// snapshot returns a fresh listing, waiting for (or starting) one refresh shared by every
// concurrent caller. After a failed refresh it returns the previous listing, if any, until
// RetryAfter has passed.
func (l *Lookup) snapshot(ctx context.Context) (*snapshot, error) {
	l.mu.Lock()
	now := l.cfg.Now()
	if l.snap != nil && now.Sub(l.snap.at) < l.cfg.TTL {
		s := l.snap
		l.mu.Unlock()
		return s, nil
	}
	if l.refreshing == nil && !l.failedAt.IsZero() && now.Sub(l.failedAt) < l.cfg.RetryAfter {
		s, err := l.snap, l.refreshErr
		l.mu.Unlock()
		if s != nil {
			return s, nil
		}
		return nil, err
	}
	ch := l.refreshing
	if ch == nil {
		ch = make(chan struct{})
		l.refreshing = ch
		go l.refresh(ch)
	}
	l.mu.Unlock()
	select {
	case <-ch:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	// After a failed refresh the previous listing, if any, still answers.
	if l.snap != nil {
		return l.snap, nil
	}
	return nil, l.refreshErr
}

// refresh lists the whole VPC, page by page, into a new snapshot.
func (l *Lookup) refresh(done chan struct{}) {
	ctx, cancel := context.WithTimeout(context.Background(), l.cfg.CallTimeout)
	defer cancel()
	start := l.cfg.Now()
	s := &snapshot{at: start, byID: map[string]Instance{}, byIP: map[string]Instance{}}
	var err error
	for offset := 0; ; {
		var p Page
		p, err = l.api.DescribeInstances(ctx, Query{VpcID: l.cfg.VpcID, Offset: offset, Limit: MaxBatch})
		if err != nil {
			err = fmt.Errorf("list instances of VPC %s at offset %d: %w", l.cfg.VpcID, offset, err)
			break
		}
		for _, inst := range p.Instances {
			s.add(inst)
		}
		offset += len(p.Instances)
		if len(p.Instances) == 0 || offset >= p.Total {
			break
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.refreshing = nil
	if err != nil {
		l.refreshErr, l.failedAt = err, l.cfg.Now()
		klog.ErrorS(err, "Refreshing the instance listing failed; lookups go direct until the next try", "vpc", l.cfg.VpcID)
	} else {
		l.snap, l.refreshErr, l.failedAt = s, nil, time.Time{}
		klog.V(4).InfoS("Refreshed instance listing", "vpc", l.cfg.VpcID, "instances", len(s.byID), "took", l.cfg.Now().Sub(start))
	}
	close(done)
}

func matchID(inst Instance, id string) bool { return inst.ID == id }

func matchIP(inst Instance, ip string) bool {
	for _, p := range inst.PrivateIPs {
		if p == ip {
			return true
		}
	}
	return false
}

// single is the unbatched path: one query for one key.
func (l *Lookup) single(ctx context.Context, q Query, key string, match func(Instance, string) bool) (Instance, error) {
	q.Limit = MaxBatch
	p, err := l.api.DescribeInstances(ctx, q)
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

func (l *Lookup) fetchIDs(ctx context.Context, ids []string) (map[string]Instance, error) {
	return l.fetch(ctx, Query{IDs: ids}, ids, func(inst Instance) []string { return []string{inst.ID} })
}

func (l *Lookup) fetchIPs(ctx context.Context, ips []string) (map[string]Instance, error) {
	return l.fetch(ctx, Query{VpcID: l.cfg.VpcID, PrivateIPs: ips}, ips, func(inst Instance) []string { return inst.PrivateIPs })
}

// fetch sends one batched query (more pages only if the cloud has more matches than
// fit in one, which for exact ids or IPs it should not) and indexes the answer by key.
func (l *Lookup) fetch(ctx context.Context, q Query, keys []string, keysOf func(Instance) []string) (map[string]Instance, error) {
	want := make(map[string]bool, len(keys))
	for _, k := range keys {
		want[k] = true
	}
	found := map[string]Instance{}
	q.Limit = MaxBatch
	for q.Offset = 0; ; {
		p, err := l.api.DescribeInstances(ctx, q)
		if err != nil {
			return nil, fmt.Errorf("look up %d instances: %w", len(keys), err)
		}
		for _, inst := range p.Instances {
			for _, k := range keysOf(inst) {
				if want[k] {
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
