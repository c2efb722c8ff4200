package loadbalancer

import (
	"context"
	"fmt"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"
)

// cache holds the load balancers the engine works with, as it last saw or made them: all
// that this cluster owns (read with one Backend.List when the cache is built) plus the
// adopted ones it has read since. It is what makes an unchanged Service cost no cloud
// call. It is rebuilt when it is older than maxAge (which also repairs changes made by
// hand), and a single load balancer is read again after a write to it failed or the
// cloud contradicted the cache (ErrStale).
type cache struct {
	backend Backend
	cluster string
	maxAge  time.Duration
	now     func() time.Time

	mu       sync.Mutex
	lbs      map[string]*LoadBalancer
	stale    map[string]bool
	builtAt  time.Time
	built    bool
	building chan struct{} // closed when the running build ends
}

func newCache(b Backend, cluster string, maxAge time.Duration, now func() time.Time) *cache {
	return &cache{backend: b, cluster: cluster, maxAge: maxAge, now: now, lbs: map[string]*LoadBalancer{}, stale: map[string]bool{}}
}

// ensure builds the cache unless it is built and young enough. Concurrent callers share
// one build (one List).
func (c *cache) ensure(ctx context.Context) error {
	for {
		c.mu.Lock()
		if c.built && (c.maxAge <= 0 || c.now().Sub(c.builtAt) < c.maxAge) {
			c.mu.Unlock()
			return nil
		}
		if wait := c.building; wait != nil {
			c.mu.Unlock()
			select {
			case <-wait:
				continue
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		done := make(chan struct{})
		c.building = done
		c.mu.Unlock()

		start := c.now()
		lbs, err := c.backend.List(ctx)
		c.mu.Lock()
		c.building = nil
		close(done)
		if err != nil {
			c.mu.Unlock()
			return fmt.Errorf("list the load balancers of cluster %s: %w", c.cluster, err)
		}
		c.lbs, c.stale = map[string]*LoadBalancer{}, map[string]bool{}
		for _, lb := range lbs {
			c.lbs[lb.ID] = lb.clone()
		}
		c.built, c.builtAt = true, start
		c.mu.Unlock()
		klog.V(2).InfoS("Load balancer cache built", "cluster", c.cluster, "loadBalancers", len(lbs))
		return nil
	}
}

// owned returns copies of the load balancers this cluster made for uid, oldest id first.
func (c *cache) owned(uid types.UID) []*LoadBalancer {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []*LoadBalancer
	for _, lb := range c.lbs {
		if lb.ownedBy(c.cluster, uid) {
			out = append(out, lb.clone())
		}
	}
	sortByID(out)
	return out
}

// isStale reports whether id must be read again before use.
func (c *cache) isStale(id string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stale[id]
}

// get returns a copy of load balancer id, reading it from the Backend when the cache does
// not have it or holds it stale. An id the cloud does not know is an error wrapping
// ErrNotFound (and forgotten).
func (c *cache) get(ctx context.Context, id string) (*LoadBalancer, error) {
	c.mu.Lock()
	lb, ok := c.lbs[id]
	fresh := ok && !c.stale[id]
	c.mu.Unlock()
	if fresh {
		return lb.clone(), nil
	}
	return c.refresh(ctx, id)
}

// refresh reads load balancer id from the Backend into the cache.
func (c *cache) refresh(ctx context.Context, id string) (*LoadBalancer, error) {
	lb, err := c.backend.Get(ctx, id)
	if err != nil {
		if isNotFound(err) {
			c.forget(id)
		}
		return nil, err
	}
	c.put(lb)
	return lb.clone(), nil
}

// put stores a copy of lb as current.
func (c *cache) put(lb *LoadBalancer) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.lbs[lb.ID] = lb.clone()
	delete(c.stale, lb.ID)
}

// markStale makes the next use of id read it from the Backend.
func (c *cache) markStale(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.lbs[id]; ok {
		c.stale[id] = true
	}
}

func (c *cache) forget(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.lbs, id)
	delete(c.stale, id)
}
