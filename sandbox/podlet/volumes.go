package podlet

import (
	"context"
	"errors"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// Volumes prepares a pod's volumes before its sandbox starts and releases them after it
// stops. It is the seam where stage 2 plugs the CSI node plugin in (NodeStageVolume and
// NodePublishVolume through its gRPC socket, under the node's own kubelet dir).
type Volumes interface {
	// Prepare makes every volume of pod available, or returns an error that says which
	// volume could not be, for a Warning event (the pod then stays Pending and is
	// retried).
	Prepare(ctx context.Context, pod *corev1.Pod) error
	// Release undoes Prepare for the pod with uid; it is called after the sandbox stops,
	// also for a pod the API no longer has.
	Release(ctx context.Context, uid string) error
}

// ErrVolumeUnsupported wraps the error of a volume no Volumes implementation can serve.
var ErrVolumeUnsupported = errors.New("volume not supported by the sandbox yet")

// NoVolumes is stage 1's Volumes: the volumes that need no storage (the service-account
// token, ConfigMaps, Secrets, downward API, emptyDir: a server that reads no files has no
// use for them) are accepted as they are; a volume backed by storage (a
// PersistentVolumeClaim, CSI, an ephemeral volume) is refused.
type NoVolumes struct{}

// Prepare refuses storage-backed volumes.
func (NoVolumes) Prepare(_ context.Context, pod *corev1.Pod) error {
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
		return fmt.Errorf("%w: volume %s needs the CSI node plugin, which this sandbox does not run yet", ErrVolumeUnsupported, strings.Join(refused, ", "))
	}
	return nil
}

// Release has nothing to undo.
func (NoVolumes) Release(context.Context, string) error { return nil }
