package podlet

import (
	"fmt"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// EchoImage marks a container the podlet can run: its built-in server, which answers
// the pod's name on every container port. A tag or digest is allowed and ignored.
const EchoImage = "sandbox.stratus.io/echo"

// DefaultPort is where the server listens when the pod declares no container port.
const DefaultPort = 8080

// Event reasons the podlet posts on Pods.
const (
	ReasonUnsupported   = "UnsupportedBySandbox"
	ReasonSandboxFailed = "FailedCreatePodSandBox"
	ReasonStarted       = "Started"
	ReasonVolumes       = "FailedMount"
)

// Port is one port the pod's server listens on.
type Port struct {
	Protocol corev1.Protocol `json:"protocol"`
	Port     int32           `json:"port"`
}

// isEcho reports whether image names EchoImage (with an optional tag or digest).
func isEcho(image string) bool {
	rest, ok := strings.CutPrefix(image, EchoImage)
	return ok && (rest == "" || rest[0] == ':' || rest[0] == '@')
}

// Runnable says whether the podlet can run pod, and if not, why, in a sentence for a
// Warning event.
func Runnable(pod *corev1.Pod) (bool, string) {
	const how = "; only pods whose containers all use image " + EchoImage + " run here (see docs/sandbox.md)"
	if len(pod.Spec.InitContainers) > 0 {
		return false, "the sandbox has no container runtime: init containers cannot run" + how
	}
	if len(pod.Spec.EphemeralContainers) > 0 {
		return false, "the sandbox has no container runtime: ephemeral containers cannot run" + how
	}
	var other []string
	for _, c := range pod.Spec.Containers {
		if !isEcho(c.Image) {
			other = append(other, fmt.Sprintf("%s (image %s)", c.Name, c.Image))
		}
	}
	if len(other) > 0 {
		return false, "the sandbox has no container runtime and cannot run container " + strings.Join(other, ", ") + how
	}
	if pod.Spec.HostNetwork {
		return false, "hostNetwork pods are not supported by the sandbox's podlet" + how
	}
	return true, ""
}

// Ports lists the ports the pod's server answers on: every TCP and UDP container port,
// or DefaultPort/TCP when none is declared.
func Ports(pod *corev1.Pod) []Port {
	var out []Port
	for _, c := range pod.Spec.Containers {
		for _, p := range c.Ports {
			proto := p.Protocol
			if proto == "" {
				proto = corev1.ProtocolTCP
			}
			if proto != corev1.ProtocolTCP && proto != corev1.ProtocolUDP {
				continue
			}
			pp := Port{Protocol: proto, Port: p.ContainerPort}
			if !slices.Contains(out, pp) {
				out = append(out, pp)
			}
		}
	}
	if len(out) == 0 {
		out = []Port{{Protocol: corev1.ProtocolTCP, Port: DefaultPort}}
	}
	return out
}

// RunningStatus is the status of a pod whose sandbox runs at podIP on a node at hostIP
// since started: Running, every container ready, the kubelet's conditions True. The
// scheduler's PodScheduled condition is kept as it is.
func RunningStatus(pod *corev1.Pod, podIP, hostIP string, started time.Time) corev1.PodStatus {
	start := metav1.NewTime(started.Truncate(time.Second))
	old := pod.Status
	st := corev1.PodStatus{
		Phase:     corev1.PodRunning,
		HostIP:    hostIP,
		HostIPs:   []corev1.HostIP{{IP: hostIP}},
		PodIP:     podIP,
		PodIPs:    []corev1.PodIP{{IP: podIP}},
		StartTime: &start,
		QOSClass:  old.QOSClass,
	}
	cond := func(t corev1.PodConditionType) corev1.PodCondition {
		c := corev1.PodCondition{Type: t, Status: corev1.ConditionTrue, LastTransitionTime: start}
		// A condition that was already True keeps its transition time.
		for _, oc := range old.Conditions {
			if oc.Type == t && oc.Status == corev1.ConditionTrue {
				c.LastTransitionTime = oc.LastTransitionTime
			}
		}
		return c
	}
	st.Conditions = []corev1.PodCondition{
		cond(corev1.PodReadyToStartContainers),
		cond(corev1.PodInitialized),
		cond(corev1.PodReady),
		cond(corev1.ContainersReady),
	}
	for _, oc := range old.Conditions {
		if oc.Type == corev1.PodScheduled {
			st.Conditions = append(st.Conditions, oc)
		}
	}
	for _, c := range pod.Spec.Containers {
		started := true
		st.ContainerStatuses = append(st.ContainerStatuses, corev1.ContainerStatus{
			Name:        c.Name,
			Image:       c.Image,
			ImageID:     EchoImage,
			ContainerID: "podlet://" + string(pod.UID) + "/" + c.Name,
			Ready:       true,
			Started:     &started,
			State:       corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: start}},
		})
	}
	return st
}

// statusEqual compares what RunningStatus sets, ignoring what the API server adds.
func statusEqual(a, b corev1.PodStatus) bool {
	if a.Phase != b.Phase || a.PodIP != b.PodIP || a.HostIP != b.HostIP || len(a.ContainerStatuses) != len(b.ContainerStatuses) {
		return false
	}
	for _, t := range []corev1.PodConditionType{corev1.PodReady, corev1.ContainersReady, corev1.PodInitialized, corev1.PodReadyToStartContainers} {
		if condStatus(a, t) != condStatus(b, t) {
			return false
		}
	}
	for i := range a.ContainerStatuses {
		x, y := a.ContainerStatuses[i], b.ContainerStatuses[i]
		if x.Name != y.Name || x.Ready != y.Ready || x.ContainerID != y.ContainerID || (x.State.Running == nil) != (y.State.Running == nil) {
			return false
		}
	}
	return true
}

func condStatus(s corev1.PodStatus, t corev1.PodConditionType) corev1.ConditionStatus {
	for _, c := range s.Conditions {
		if c.Type == t {
			return c.Status
		}
	}
	return ""
}
