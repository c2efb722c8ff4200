package clbbackend

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/stratus-cloud/stratus/cloudapi"
	"github.com/stratus-cloud/stratus/cloudapi/clb"
	"github.com/stratus-cloud/stratus/loadbalancer"
)

// Every CLB write starts a task, and the load balancer refuses another write until it
// ends (FailedOperation.ResourceInOperation). The engine often writes several times in a
// row (listeners, then targets), so before a write this package waits for the previous
// task on the same load balancer, polling DescribeTaskStatus once the task should be done
// by experience. The last task of a sync is not polled at all: a node added costs one
// write and no read. When a later write finds the load balancer still busy, it waits for
// that task then; a task that failed shows up as an error there or as a contradiction in
// a later write (ErrStale, which makes the engine read the load balancer again).

// estimate is a learned duration: how long tasks take here. It starts at 0 (poll at
// once), jumps to what a slow task took, and creeps down while polls find tasks done.
type estimate struct{ v atomic.Int64 }

func (e *estimate) get() time.Duration { return time.Duration(e.v.Load()) }

// observe records that a task was found done after elapsed, on its n-th poll. One slow
// observation (a poll that waited for the client's rate limit) moves the estimate a
// quarter of the way, never more than doubling it.
func (e *estimate) observe(elapsed time.Duration, polls int) {
	for {
		old := e.v.Load()
		next := int64(elapsed)
		switch {
		case polls == 1:
			// Done at the first look: it may have been done earlier. Look a little sooner
			// next time.
			next = old * 9 / 10
		case old > 0:
			next = min(old+(int64(elapsed)-old)/4, 2*old)
		}
		if e.v.CompareAndSwap(old, next) {
			return
		}
	}
}

// pendingTask is the task of the latest write to a load balancer.
type pendingTask struct {
	id string
	at time.Time
}

type tasks struct {
	clb      *clb.Client
	est      estimate
	maxDelay time.Duration

	mu      sync.Mutex
	pending map[string]pendingTask // load balancer id -> task of its latest write
}

func newTasks(c *clb.Client) *tasks {
	return &tasks{clb: c, maxDelay: 2 * time.Second, pending: map[string]pendingTask{}}
}

// write runs one write on load balancer lbID. When the task of the previous write is
// expected to be still running (it started less than a typical task's duration ago, as
// between the steps of one sync), it waits for that task first. Otherwise it sends right
// away, and only a load balancer that turns out busy makes it wait (polling the known
// task, or backing off for one it does not know) and send again. The write's own task is
// recorded and not polled.
func (t *tasks) write(ctx context.Context, lbID string, send func(context.Context) (string, error)) error {
	p, known := t.take(lbID)
	if known && time.Since(p.at) < t.est.get() {
		if err := t.wait(ctx, p); err != nil {
			return err
		}
		known = false
	}
	for attempt := 1; ; attempt++ {
		reqID, err := send(ctx)
		if err == nil {
			t.mu.Lock()
			t.pending[lbID] = pendingTask{id: reqID, at: time.Now()}
			t.mu.Unlock()
			return nil
		}
		if !clb.IsBusy(err) || attempt >= 20 {
			return err
		}
		if known {
			if err := t.wait(ctx, p); err != nil {
				return err
			}
			known = false
			continue
		}
		// Busy with a task this process does not know (another controller's, or one from
		// before a restart): back off and send again.
		delay := min(max(t.est.get()/2, 100*time.Millisecond)<<min(attempt-1, 4), 5*time.Second)
		if err := sleep(ctx, delay); err != nil {
			return fmt.Errorf("%w (load balancer %s stayed busy)", err, lbID)
		}
	}
}

// settle waits for the task of the latest write to lbID, if any (before deleting a
// security group the load balancer must have let go of, for example).
func (t *tasks) settle(ctx context.Context, lbID string) error {
	p, ok := t.take(lbID)
	if !ok {
		return nil
	}
	return t.wait(ctx, p)
}

func (t *tasks) take(lbID string) (pendingTask, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	p, ok := t.pending[lbID]
	delete(t.pending, lbID)
	return p, ok
}

func (t *tasks) forget(lbID string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.pending, lbID)
}

// wait polls the task until it ends. A failed task wraps loadbalancer.ErrStale: the
// write it belonged to did not happen.
func (t *tasks) wait(ctx context.Context, p pendingTask) error {
	if p.id == "" {
		return nil
	}
	if d := time.Until(p.at.Add(t.est.get())); d > 0 {
		if err := sleep(ctx, d); err != nil {
			return err
		}
	}
	step := max(t.est.get()/4, 50*time.Millisecond)
	for polls := 1; ; polls++ {
		out, err := t.clb.DescribeTaskStatus(ctx, &clb.DescribeTaskStatusRequest{TaskId: p.id})
		switch {
		case cloudapi.IsNotFound(err):
			return nil // long finished and forgotten by the cloud
		case err != nil:
			return fmt.Errorf("wait for clb task %s: %w", p.id, err)
		case out.Status == clb.TaskSucceeded:
			t.est.observe(time.Since(p.at), polls)
			return nil
		case out.Status == clb.TaskFailed:
			return fmt.Errorf("clb task %s failed: %w", p.id, loadbalancer.ErrStale)
		}
		if err := sleep(ctx, step); err != nil {
			return fmt.Errorf("wait for clb task %s: %w", p.id, err)
		}
		step = min(2*step, t.maxDelay)
	}
}

func sleep(ctx context.Context, d time.Duration) error {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-timer.C:
		return nil
	}
}

// readiness waits for new load balancers to leave the creating state, the way the API
// documents for CreateLoadBalancer: with DescribeLoadBalancers, which takes 20 ids per
// call, so one call answers for many creations at once.
type readiness struct {
	clb *clb.Client
	est *estimate // shared with the other tasks: a creation takes about as long

	mu      sync.Mutex
	waiters map[string][]chan readyResult
	due     map[string]time.Time
	created map[string]time.Time
	misses  map[string]int
	polls   map[string]int
	kick    chan struct{}
	running bool
}

type readyResult struct {
	lb  *clb.LoadBalancer
	err error
}

func newReadiness(c *clb.Client, est *estimate) *readiness {
	return &readiness{clb: c, est: est, waiters: map[string][]chan readyResult{}, due: map[string]time.Time{}, created: map[string]time.Time{}, misses: map[string]int{}, polls: map[string]int{}, kick: make(chan struct{}, 1)}
}

// wait returns load balancer id as DescribeLoadBalancers shows it once it is ready. One
// that stays absent (a ClientToken that named a deleted load balancer) wraps
// loadbalancer.ErrStale.
func (r *readiness) wait(ctx context.Context, id string, created time.Time) (*clb.LoadBalancer, error) {
	ch := make(chan readyResult, 1)
	r.mu.Lock()
	r.waiters[id] = append(r.waiters[id], ch)
	if _, ok := r.due[id]; !ok {
		r.due[id] = created.Add(r.est.get())
		r.created[id] = created
	}
	if !r.running {
		r.running = true
		go r.loop()
	}
	r.mu.Unlock()
	select {
	case r.kick <- struct{}{}:
	default:
	}
	select {
	case res := <-ch:
		return res.lb, res.err
	case <-ctx.Done():
		return nil, fmt.Errorf("wait for load balancer %s to be created: %w", id, ctx.Err())
	}
}

// loop polls while anyone waits. It sends a call when the earliest waiter is due, for up
// to 20 due ones, after a short pause that lets concurrent creations join the call.
func (r *readiness) loop() {
	const coalesce = 50 * time.Millisecond
	for {
		r.mu.Lock()
		if len(r.waiters) == 0 {
			r.running = false
			r.mu.Unlock()
			return
		}
		next := time.Time{}
		for _, d := range r.due {
			if next.IsZero() || d.Before(next) {
				next = d
			}
		}
		r.mu.Unlock()
		if d := time.Until(next); d > 0 {
			select {
			case <-time.After(d):
			case <-r.kick:
				continue
			}
		}
		time.Sleep(coalesce)
		r.poll()
	}
}

func (r *readiness) poll() {
	now := time.Now()
	r.mu.Lock()
	var ids []string
	for id, d := range r.due {
		if !d.After(now) && len(ids) < maxDescribeLoadBalancerIDs {
			ids = append(ids, id)
		}
	}
	r.mu.Unlock()
	if len(ids) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := r.clb.DescribeLoadBalancers(ctx, &clb.DescribeLoadBalancersRequest{LoadBalancerIds: ids, Limit: cloudapi.Int64(maxDescribeLoadBalancerIDs)})
	r.mu.Lock()
	defer r.mu.Unlock()
	if err != nil {
		for _, id := range ids {
			r.finish(id, readyResult{err: fmt.Errorf("wait for load balancer %s to be created: %w", id, err)})
		}
		return
	}
	seen := map[string]*clb.LoadBalancer{}
	for i := range out.LoadBalancerSet {
		lb := &out.LoadBalancerSet[i]
		seen[lb.LoadBalancerId] = lb
	}
	for _, id := range ids {
		r.polls[id]++
		lb, ok := seen[id]
		switch {
		case ok && lb.Status == clb.StatusNormal:
			r.est.observe(now.Sub(r.created[id]), r.polls[id])
			r.finish(id, readyResult{lb: lb})
		case !ok:
			if r.misses[id]++; r.misses[id] >= 3 {
				r.finish(id, readyResult{err: fmt.Errorf("load balancer %s does not exist: %w", id, loadbalancer.ErrStale)})
				continue
			}
			r.due[id] = now.Add(200 * time.Millisecond)
		default:
			r.due[id] = now.Add(max(r.est.get()/4, 100*time.Millisecond))
		}
	}
}

// finish answers id's waiters; r.mu is held.
func (r *readiness) finish(id string, res readyResult) {
	for _, ch := range r.waiters[id] {
		ch <- res
	}
	delete(r.waiters, id)
	delete(r.due, id)
	delete(r.created, id)
	delete(r.misses, id)
	delete(r.polls, id)
}
