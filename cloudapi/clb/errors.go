package clb

import "github.com/stratus-cloud/stratus/cloudapi"

// Error codes the clb service answers besides the protocol's common ones.
const (
	// CodeLBNotFound: a LoadBalancerId names no load balancer.
	CodeLBNotFound = "InvalidParameter.LBIdNotFound"
	// CodeListenerNotFound: a ListenerId names no listener of the load balancer.
	CodeListenerNotFound = "InvalidParameter.ListenerIdNotFound"
	// CodeResourceInOperation: the load balancer still runs the task of an earlier write;
	// wait for it (WaitTask) and send the call again.
	CodeResourceInOperation = "FailedOperation.ResourceInOperation"
	// CodeDuplicate: a listener port (per protocol) or a target is already taken.
	CodeDuplicate = "InvalidParameterValue.Duplicate"
	// CodeLength: a list is longer than the action allows (20 targets, 500 batch targets).
	CodeLength = "InvalidParameterValue.Length"
)

// IsBusy reports whether err says the load balancer is busy with an earlier task.
func IsBusy(err error) bool { return cloudapi.HasCode(err, CodeResourceInOperation) }
