package podlet

import (
	"context"
	"errors"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// Volumes prepares a pod's volumes before its sandbox starts and releases them after it
// stops. CSIVolumes is the real one: it attaches, stages and publishes PersistentVolume
// claims through the CSI node plugin's socket, as a kubelet does.
type Volumes interface {
	// Prepare makes every volume of pod available and returns where the pod's server
	// finds them, or an error for a Warning event (a *VolumeError says which reason and
	// whether it is only waiting).
	Prepare(ctx context.Context, pod *corev1.Pod) ([]Mount, error)
	// Release undoes Prepare for the pod with uid; it is called after the sandbox stops,
	// also for a pod the API no longer has. An error (or a pending detach) keeps the pod
	// terminating: Release is called again.
	Release(ctx context.Context, uid string) error
}

// Mount is a volume as the pod's containers see it: Path in the container, Dir on the
// node where it is published.
type Mount struct {
	Path     string `json:"path"`
	Dir      string `json:"dir"`
	ReadOnly bool   `json:"readOnly,omitempty"`
}

// ErrVolumeUnsupported wraps the error of a volume no Volumes implementation can serve.
var ErrVolumeUnsupported = errors.New("volume not supported by the sandbox")

// VolumeError is a volume that is not ready: Reason is the event reason (FailedMount,
// FailedAttachVolume); Pending says the podlet only waits for someone else (the
// attacher, the claim's binding) and checks again soon, without backing off.
type VolumeError struct {
	Reason  string
	Pending bool
	Err     error
}

func (e *VolumeError) Error() string { return e.Err.Error() }
func (e *VolumeError) Unwrap() error { return e.Err }

func pending(reason string, format string, args ...any) error {
	return &VolumeError{Reason: reason, Pending: true, Err: fmt.Errorf(format, args...)}
}

// NoVolumes serves pods without storage: the volumes that need none (the service-account
// token, ConfigMaps, Secrets, downward API, emptyDir: a server that reads none of them
// has no use for them) are accepted as they are; a volume backed by storage (a
// PersistentVolumeClaim, CSI, an ephemeral volume) is refused.
type NoVolumes struct{}

// Prepare refuses storage-backed volumes.
func (NoVolumes) Prepare(_ context.Context, pod *corev1.Pod) ([]Mount, error) {
	var refused []string
	for _, v := range pod.Spec.Volumes {
		switch {
		case v.PersistentVolumeClaim != nil:
			refused = append(refused, fmt.Sprintf("%s (claim %s)", v.Name, v.PersistentVolumeClaim.ClaimName))
		case v.CSI != nil:
			refused = append(refused, fmt.Sprintf("%s (CSI driver %s)", v.Name, v.CSI.Driver))
		case v.Ephemeral != nil:
			refused = append(refused, v.Name+" (ephemeral volume)")
		}
	}
	if len(refused) > 0 {
		return nil, fmt.Errorf("%w: volume %s needs the CSI node plugin, which this podlet was not given", ErrVolumeUnsupported, strings.Join(refused, ", "))
	}
	return nil, nil
}

// Release has nothing to undo.
func (NoVolumes) Release(context.Context, string) error { return nil }
