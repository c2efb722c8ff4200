package cvm

import (
	"strings"
	"time"

	"github.com/stratus-cloud/stratus/cloudapi"
	"github.com/stratus-cloud/stratus/cloudapi/cvm"
	"github.com/stratus-cloud/stratus/fakecloud/api"
	"github.com/stratus-cloud/stratus/fakecloud/store"
)

// transition describes what one lifecycle action does to an instance in state from.
// ok false means the action is refused in that state.
type transition func(from string) (through, to string, delay time.Duration, ok bool)

func (m *Module) stopInstances(r *api.Request) (any, error) {
	in, err := api.Decode[cvm.StopInstancesRequest](r)
	if err != nil {
		return nil, err
	}
	if in.StopType != "" {
		if err := api.OneOf("StopType", in.StopType, "SOFT", "HARD", "SOFT_FIRST"); err != nil {
			return nil, err
		}
	}
	if in.StoppedMode != "" {
		if err := api.OneOf("StoppedMode", in.StoppedMode, "KEEP_CHARGING", "STOP_CHARGING"); err != nil {
			return nil, err
		}
	}
	err = m.lifecycle(r, "StopInstances", in.InstanceIds, func(from string) (string, string, time.Duration, bool) {
		return cvm.StateStopping, cvm.StateStopped, m.delays.InstanceStop, from == cvm.StateRunning
	})
	if err != nil {
		return nil, err
	}
	return &cvm.StopInstancesResponse{}, nil
}

func (m *Module) startInstances(r *api.Request) (any, error) {
	in, err := api.Decode[cvm.StartInstancesRequest](r)
	if err != nil {
		return nil, err
	}
	err = m.lifecycle(r, "StartInstances", in.InstanceIds, func(from string) (string, string, time.Duration, bool) {
		return cvm.StateStarting, cvm.StateRunning, m.delays.InstanceBoot, from == cvm.StateStopped
	})
	if err != nil {
		return nil, err
	}
	return &cvm.StartInstancesResponse{}, nil
}

func (m *Module) terminateInstances(r *api.Request) (any, error) {
	in, err := api.Decode[cvm.TerminateInstancesRequest](r)
	if err != nil {
		return nil, err
	}
	err = m.lifecycle(r, "TerminateInstances", in.InstanceIds, func(from string) (string, string, time.Duration, bool) {
		return cvm.StateTerminating, gone, m.delays.Terminate, from == cvm.StateRunning || from == cvm.StateStopped || from == cvm.StateLaunchFailed
	})
	if err != nil {
		return nil, err
	}
	return &cvm.TerminateInstancesResponse{}, nil
}

// lifecycle applies one state transition to every instance in ids, all or none: an
// unknown instance or one in a state the action does not accept fails the whole call.
func (m *Module) lifecycle(r *api.Request, action string, ids []string, t transition) error {
	if err := instanceIDs(true, true).Check(ids); err != nil {
		return err
	}
	return m.w.Store.Update(func(tx *store.Tx) error {
		if err := m.reap(tx, r.Now); err != nil {
			return err
		}
		for _, id := range ids {
			x, ok := instancesT.Get(tx, id)
			if !ok || !Exists(x, r.Now) {
				return api.NotFound(cloudapi.CodeInvalidInstanceNotFound, "instance", id)
			}
			from := EffectiveState(x, r.Now)
			through, to, delay, allowed := t(from)
			if !allowed {
				return stateError(id, from, action)
			}
			next := *x
			next.LatestOperation, next.LatestOperationRequestId = action, r.RequestID
			if to == gone && x.ChargeType == "PREPAID" {
				through = cvm.StateShutdown // a prepaid instance is isolated first
			}
			if delay > 0 {
				next.State, next.NextState, next.NextAt = through, to, r.Now.Add(delay)
			} else {
				next.State, next.NextState, next.NextAt = to, "", time.Time{}
			}
			if to == gone {
				if delay <= 0 {
					if err := m.remove(tx, x); err != nil {
						return err
					}
					continue
				}
				if err := reapT.Put(tx, id, &reapEntry{InstanceId: id, At: next.NextAt}); err != nil {
					return err
				}
			}
			if err := instancesT.Put(tx, id, &next); err != nil {
				return err
			}
		}
		return nil
	})
}

// stateError is the real API's answer to an action an instance's state does not allow:
// UnsupportedOperation.InstanceState<State> for the settled states, and
// OperationDenied.InstanceOperationInProgress while another operation runs.
func stateError(id, state, action string) error {
	switch state {
	case cvm.StatePending, cvm.StateStopping, cvm.StateStarting, cvm.StateRebooting:
		if action == "TerminateInstances" {
			return api.Errorf("OperationDenied.InstanceOperationInProgress", "instance %s is %s; %s must wait until the current operation ends", id, state, action)
		}
	}
	return api.Errorf("UnsupportedOperation.InstanceState"+camel(state), "instance %s is %s, which %s does not accept", id, state, action)
}

// camel turns "LAUNCH_FAILED" into "LaunchFailed".
func camel(s string) string {
	var b strings.Builder
	for _, part := range strings.Split(strings.ToLower(s), "_") {
		if part != "" {
			b.WriteString(strings.ToUpper(part[:1]) + part[1:])
		}
	}
	return b.String()
}
