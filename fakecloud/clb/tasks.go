package clb

import (
	"time"

	"github.com/stratus-cloud/stratus/cloudapi/clb"
	"github.com/stratus-cloud/stratus/fakecloud/api"
	"github.com/stratus-cloud/stratus/fakecloud/store"
)

// taskRetention is how long a finished task stays answerable by DescribeTaskStatus;
// tokenRetention how long a ClientToken keeps returning the load balancers it created.
const (
	taskRetention  = time.Hour
	tokenRetention = 24 * time.Hour
)

// startTask records the task of the write r and marks lbs busy until it is done
// (Options.Delays.Task from now; 0 = done at once). The caller Puts the load balancers.
func (m *Module) startTask(tx *store.Tx, r *api.Request, lbs ...*LoadBalancer) (time.Time, error) {
	done := r.Now.Add(m.opts.Delays.Task)
	return done, m.recordTask(tx, r, done, lbs...)
}

// recordTask records a task for r finishing at done.
func (m *Module) recordTask(tx *store.Tx, r *api.Request, done time.Time, lbs ...*LoadBalancer) error {
	t := &task{TaskId: r.RequestID, Action: r.Action, CreatedTime: r.Now, DoneAt: done}
	for _, lb := range lbs {
		t.LoadBalancerIds = append(t.LoadBalancerIds, lb.LoadBalancerId)
		if done.After(lb.BusyUntil) {
			lb.BusyUntil = done
		}
	}
	for _, old := range m.tasks.List(tx) {
		if r.Now.Sub(old.DoneAt) > taskRetention {
			if err := m.tasks.Delete(tx, old.TaskId); err != nil {
				return err
			}
		}
	}
	// The client puts a fresh token on every create, so forget old ones.
	if r.Action == "CreateLoadBalancer" {
		for _, tok := range m.tokens.List(tx) {
			if tok.Token != "" && r.Now.Sub(tok.CreatedTime) > tokenRetention {
				if err := m.tokens.Delete(tx, tok.Token); err != nil {
					return err
				}
			}
		}
	}
	return m.tasks.Put(tx, t.TaskId, t)
}

// idle refuses a write on a load balancer whose previous task is still running.
func idle(lb *LoadBalancer, now time.Time) error {
	if lb.busy(now) {
		return api.Errorf(clb.CodeResourceInOperation, "load balancer %s is still running a task (until %s); wait for it with DescribeTaskStatus and try again", lb.LoadBalancerId, api.Timestamp(lb.BusyUntil))
	}
	return nil
}

func (m *Module) describeTaskStatus(r *api.Request) (any, error) {
	in, err := api.Decode[clb.DescribeTaskStatusRequest](r)
	if err != nil {
		return nil, err
	}
	if in.TaskId == "" {
		return nil, api.MissingParameter("TaskId")
	}
	out := &clb.DescribeTaskStatusResponse{}
	err = m.w.Store.View(func(tx *store.Tx) error {
		t, ok := m.tasks.Get(tx, in.TaskId)
		if !ok {
			return api.NotFound("", "task", in.TaskId)
		}
		out.Status = clb.TaskSucceeded
		if r.Now.Before(t.DoneAt) {
			out.Status = clb.TaskRunning
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}
